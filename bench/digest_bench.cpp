// digest_bench: scans a disk image N times with the block scanner (core/blocks/disk_scanner.h)
// and prints the best and median wall time, the bytes actually read, the index shape, and
// the process's peak RSS, so the figures sit next to `xxhsum -H2 FILE` on the same file.
//
//   vmrepl_digest_bench FILE [--runs N] [--sha256] [--block-size BYTES] [--chunk-size BYTES]
//                            [--in-flight N] [--no-skip-holes]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/blocks/disk_scanner.h"
#include "core/blocks/merkle.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: vmrepl_digest_bench FILE [--runs N] [--sha256] [--block-size BYTES]\n"
               "                           [--chunk-size BYTES] [--in-flight N] [--no-skip-holes]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string path = argv[1];
  vmrepl::ScanOptions opt;
  int runs = 5;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--runs" && has_value) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--sha256") {
      opt.algorithm = vmrepl::HashAlgorithm::Sha256;
    } else if (a == "--block-size" && has_value) {
      opt.block_size = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 0));
    } else if (a == "--chunk-size" && has_value) {
      opt.chunk_size = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 0));
    } else if (a == "--in-flight" && has_value) {
      opt.max_in_flight = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 0));
    } else if (a == "--no-skip-holes") {
      opt.skip_holes = false;
    } else {
      return usage();
    }
  }
  if (runs < 1) return usage();

  std::vector<double> secs;
  vmrepl::ScanStats stats;
  std::string root;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    auto index = vmrepl::scan_file(path, opt, &stats);
    const auto t1 = std::chrono::steady_clock::now();
    if (!index.ok()) {
      std::fprintf(stderr, "scan failed: %s\n", index.status().ToString().c_str());
      return 1;
    }
    secs.push_back(std::chrono::duration<double>(t1 - t0).count());
    if (r == 0) root = vmrepl::MerkleTree::from_index(*index).root().to_hex(opt.algorithm);
  }
  std::vector<double> sorted = secs;
  std::sort(sorted.begin(), sorted.end());
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);

  std::printf("file            %s\n", path.c_str());
  std::printf("hash            %s (xxh3 path: %s), block %u B, chunk %u B, in flight %u, %s\n",
              std::string(vmrepl::hash_algorithm_name(opt.algorithm)).c_str(),
              std::string(vmrepl::xxh3_path_name(vmrepl::active_xxh3_path())).c_str(),
              opt.block_size, opt.chunk_size, opt.max_in_flight,
              opt.skip_holes ? "holes skipped" : "holes read");
  std::printf("runs            %d\n", runs);
  std::printf("seconds         best %.4f  median %.4f  (all:", sorted.front(),
              sorted[sorted.size() / 2]);
  for (double s : secs) std::printf(" %.4f", s);
  std::printf(")\n");
  std::printf("disk bytes      %llu\n", static_cast<unsigned long long>(stats.bytes_total));
  std::printf("bytes read      %llu (%.1f MiB)\n", static_cast<unsigned long long>(stats.bytes_read),
              static_cast<double>(stats.bytes_read) / (1 << 20));
  std::printf("chunks          %llu total, %llu read, %llu skipped as holes\n",
              static_cast<unsigned long long>(stats.chunks_total),
              static_cast<unsigned long long>(stats.chunks_read),
              static_cast<unsigned long long>(stats.chunks_skipped));
  std::printf("zero blocks     %llu (of which %llu in holes)\n",
              static_cast<unsigned long long>(stats.zero_blocks),
              static_cast<unsigned long long>(stats.hole_blocks));
  std::printf("buffers         %llu bytes, peak in flight %u\n",
              static_cast<unsigned long long>(stats.buffer_bytes), stats.peak_in_flight);
  std::printf("throughput      %.2f GB/s of disk (best run)\n",
              static_cast<double>(stats.bytes_total) / sorted.front() / 1e9);
  std::printf("merkle root     %s\n", root.c_str());
  std::printf("peak RSS        %.1f MiB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}
