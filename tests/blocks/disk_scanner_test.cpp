// DiskScanner on real files: indexes equal to hashing block by block in the test (synthetic
// layouts and gen_image.py images), holes never read, sparse == fully written copy, bounded
// work in flight, progress, cancellation with drained work, and object lifetime.
#include "core/blocks/disk_scanner.h"

#include <fcntl.h>
#include <uv.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "blocks/test_files_helper.h"
#include "core/blocks/merkle.h"
#include "core/blocks/sparse_io.h"
#include "core/blocks/unique_fd.h"

namespace vmrepl {
namespace {

constexpr uint64_t kMiB = 1 << 20;

// The expected index, computed independently: read the whole file, and per block hash its
// bytes; "zero" is decided with memcmp against zeros, not with the library's is_all_zero.
struct Expected {
  std::vector<BlockHash> hashes;
  std::vector<bool> zero;
  uint64_t zero_blocks = 0;
};

Expected expected_for(const std::string& path, HashAlgorithm alg, uint32_t bs) {
  const auto bytes = testing::read_file(path);
  const std::vector<std::byte> zeros(bs);
  Expected e;
  for (uint64_t off = 0; off < bytes.size(); off += bs) {
    const auto block = std::span(bytes).subspan(off, std::min<uint64_t>(bs, bytes.size() - off));
    e.hashes.push_back(hash_bytes(alg, block));
    const bool z = std::memcmp(block.data(), zeros.data(), block.size()) == 0;
    e.zero.push_back(z);
    e.zero_blocks += z;
  }
  return e;
}

void require_matches(const BlockIndex& x, const Expected& e, const std::string& what) {
  BOOST_REQUIRE_MESSAGE(x.block_count() == e.hashes.size(), what);
  for (uint64_t i = 0; i < x.block_count(); ++i) {
    if (!(x.entry(i).hash == e.hashes[i]) || x.entry(i).is_zero() != e.zero[i]) {
      BOOST_FAIL(what << ": block " << i << " differs (zero " << x.entry(i).is_zero() << " vs "
                      << e.zero[i] << ")");
    }
  }
}

// One scan on a private loop, with everything the callbacks saw.
struct Run {
  std::optional<Result<BlockIndex>> result;
  bool cancelled = false;
  int done_calls = 0;
  bool loop_alive_at_done = true;
  bool progress_after_done = false;
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  ScanStats stats;
};

using OnProgress = std::function<void(DiskScanner&, uint64_t, uint64_t)>;

Run run_scan(const std::string& path, const ScanOptions& opt, OnProgress on_progress = {}) {
  uv_loop_t loop;
  BOOST_REQUIRE(uv_loop_init(&loop) == 0);
  Run run;
  {
    DiskScanner scanner(&loop, path, opt);
    const Status st = scanner.start(
        [&](uint64_t done, uint64_t total) {
          if (run.done_calls > 0) run.progress_after_done = true;
          run.progress.emplace_back(done, total);
          if (on_progress) on_progress(scanner, done, total);
        },
        [&](Result<BlockIndex> r, bool cancelled) {
          ++run.done_calls;
          run.cancelled = cancelled;
          run.loop_alive_at_done = uv_loop_alive(&loop) != 0;  // true if any work is pending
          run.result.emplace(std::move(r));
        });
    BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
    BOOST_TEST(scanner.running());
    uv_run(&loop, UV_RUN_DEFAULT);
    BOOST_TEST(!scanner.running());
    run.stats = scanner.stats();
  }
  BOOST_TEST(uv_loop_close(&loop) == 0);
  BOOST_REQUIRE(run.done_calls == 1);
  return run;
}

// A 2.6 MB layout in 64 KiB blocks covering every case the scanner distinguishes.
uint64_t write_synthetic(const std::string& path) {
  constexpr uint32_t bs = 64 << 10;
  const uint64_t size = 40 * uint64_t{bs} + 1000;
  BOOST_REQUIRE(create_sparse_file(path, size).ok());
  auto fd = open_file(path, O_RDWR);
  BOOST_REQUIRE(fd.ok());
  auto put = [&](uint64_t block, std::span<const std::byte> data, uint64_t within = 0) {
    BOOST_REQUIRE(pwrite_full(fd->get(), data, block * bs + within).ok());
  };
  for (uint64_t b = 0; b < 4; ++b) put(b, testing::random_bytes(bs, b));  // data
  put(4, std::vector<std::byte>(bs));                                       // written zeros
  // 5..9: hole
  put(10, std::vector<std::byte>{std::byte{1}}, bs - 1);                    // last byte only
  put(11, std::vector<std::byte>{std::byte{1}});                            // first byte only
  put(12, testing::text_bytes(bs, 12));
  // 13..20: hole (spans a 256 KiB chunk completely)
  for (uint64_t b = 21; b < 31; ++b) put(b, testing::random_bytes(bs, b));
  put(31, std::vector<std::byte>(bs));
  put(33, testing::random_bytes(bs / 2, 33), bs / 4);  // data in the middle of a block
  for (uint64_t b = 35; b < 40; b += 2) put(b, testing::text_bytes(bs, b));
  put(40, testing::random_bytes(1000, 40));  // partial last block
  return size;
}

struct SharedImages {
  testing::TempDir dir;
  std::string mixed64 = dir.file("mixed64.img");
  SharedImages() { testing::gen_image({"mixed", mixed64, "64", "11"}); }
};

// Generated once per test process; removed at exit.
const SharedImages& images() {
  static const SharedImages s;
  return s;
}

struct Files {
  testing::TempDir dir;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(disk_scanner_tests, Files)

BOOST_AUTO_TEST_CASE(synthetic_layout_matches_block_by_block_hashing) {
  const std::string path = dir.file("synthetic.img");
  const uint64_t size = write_synthetic(path);
  for (HashAlgorithm alg : {HashAlgorithm::Xxh3_128, HashAlgorithm::Sha256}) {
    const Expected e = expected_for(path, alg, 64 << 10);
    BOOST_TEST(e.hashes.size() == 41u);
    for (uint32_t chunk : {64u << 10, 128u << 10, 256u << 10, 4u << 20}) {
      for (uint32_t in_flight : {1u, 3u}) {
        for (bool skip : {true, false}) {
          ScanOptions opt;
          opt.algorithm = alg;
          opt.chunk_size = chunk;
          opt.max_in_flight = in_flight;
          opt.skip_holes = skip;
          Run run = run_scan(path, opt);
          BOOST_REQUIRE_MESSAGE(run.result->ok(), run.result->status().ToString());
          const BlockIndex& x = **run.result;
          require_matches(x, e, "chunk " + std::to_string(chunk) + " in flight " +
                                    std::to_string(in_flight) + (skip ? " skip" : " read"));
          BOOST_TEST(x.disk_size() == size);
          BOOST_TEST(x.algorithm() == alg);
          BOOST_TEST(run.stats.zero_blocks == e.zero_blocks);
          BOOST_TEST(run.stats.peak_in_flight <= in_flight);
          // Holes: blocks 5..9, 13..20, 32, 34, 36, 38 are never read; block 33 is (half data).
          BOOST_TEST(run.stats.bytes_read == (skip ? size - 17 * uint64_t{64 << 10} : size));
          BOOST_TEST(run.stats.hole_blocks == (skip ? 17u : 0u));
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(written_zero_tail_is_a_zero_block_of_its_own_length) {
  const std::string path = dir.file("tail.img");
  std::vector<std::byte> content = testing::random_bytes(3 * 4096, 1);
  content.resize(3 * 4096 + 10);  // 10 written zero bytes
  testing::write_file(path, content);
  ScanOptions opt;
  opt.block_size = 4096;
  opt.chunk_size = 8192;
  auto x = scan_file(path, opt);
  BOOST_REQUIRE(x.ok());
  BOOST_TEST(x->block_count() == 4u);
  BOOST_TEST(x->entry(3).is_zero());
  BOOST_TEST(x->entry(3).hash == hash_bytes(HashAlgorithm::Xxh3_128, std::vector<std::byte>(10)));
  require_matches(*x, expected_for(path, HashAlgorithm::Xxh3_128, 4096), "tail");
}

BOOST_AUTO_TEST_CASE(empty_file_gives_an_empty_index_and_one_progress_call) {
  const std::string path = dir.file("empty.img");
  BOOST_REQUIRE(create_sparse_file(path, 0).ok());
  Run run = run_scan(path, {});
  BOOST_REQUIRE(run.result->ok());
  BOOST_TEST((**run.result).block_count() == 0u);
  BOOST_TEST(run.progress == (std::vector<std::pair<uint64_t, uint64_t>>{{0, 0}}));
  BOOST_TEST(MerkleTree::from_index(**run.result).root() == hash_bytes(HashAlgorithm::Xxh3_128, {}));
}

BOOST_AUTO_TEST_CASE(missing_file_ends_with_file_not_found) {
  Run run = run_scan(dir.file("absent.img"), {});
  BOOST_TEST(!run.cancelled);
  BOOST_TEST(run.result->status().code() == Code::FileNotFound);
  BOOST_TEST(run.result->status().message().find("absent.img") != std::string::npos);
  BOOST_TEST(run.progress.empty());
  ScanStats stats;
  BOOST_TEST(scan_file(dir.file("absent.img"), {}, &stats).status().code() == Code::FileNotFound);
}

BOOST_AUTO_TEST_CASE(bad_options_and_double_start_are_refused_synchronously) {
  uv_loop_t loop;
  BOOST_REQUIRE(uv_loop_init(&loop) == 0);
  auto done = [](Result<BlockIndex>, bool) {};
  std::vector<ScanOptions> bad(5);
  bad[0].chunk_size = 100000;       // not a multiple of 64 KiB
  bad[1].max_in_flight = 0;
  bad[2].max_in_flight = 65;
  bad[3].block_size = 3000;
  bad[4].chunk_size = 512u << 20;   // above the 256 MiB cap
  for (const ScanOptions& o : bad) {
    DiskScanner s(&loop, "/nonexistent", o);
    BOOST_TEST(s.start(nullptr, done).code() == Code::InvalidParameter);
    BOOST_TEST(!s.running());
    BOOST_TEST(check_scan_options(o).code() == Code::InvalidParameter);
  }
  DiskScanner no_done(&loop, "/nonexistent", {});
  BOOST_TEST(no_done.start(nullptr, nullptr).code() == Code::InvalidParameter);
  {
    DiskScanner s(&loop, "/nonexistent", {});
    BOOST_REQUIRE(s.start(nullptr, done).ok());
    BOOST_TEST(s.start(nullptr, done).code() == Code::InvalidState);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  BOOST_TEST(uv_loop_close(&loop) == 0);
}

BOOST_AUTO_TEST_CASE(mixed_image_matches_block_by_block_hashing) {
  const std::string& path = images().mixed64;
  for (HashAlgorithm alg : {HashAlgorithm::Xxh3_128, HashAlgorithm::Sha256}) {
    const Expected e = expected_for(path, alg, 64 << 10);
    ScanStats stats;
    ScanOptions opt;
    opt.algorithm = alg;
    auto x = scan_file(path, opt, &stats);
    BOOST_REQUIRE(x.ok());
    require_matches(*x, e, "mixed64");
    // gen_image writes ~40% zero blocks, all as data (the file is not sparse).
    BOOST_TEST(e.zero_blocks > 300u);
    BOOST_TEST(stats.zero_blocks == e.zero_blocks);
    BOOST_TEST(stats.bytes_read == 64 * kMiB);
    BOOST_TEST(stats.chunks_total == 16u);
  }
}

BOOST_AUTO_TEST_CASE(sparse_image_never_reads_holes_and_equals_its_full_copy) {
  const std::string sparse = dir.file("sparse.img"), full = dir.file("full.img");
  testing::gen_image({"sparse", sparse, "256", "32", "5"});
  testing::run_program({"cp", "--sparse=never", sparse, full});
  BOOST_TEST(testing::allocated_bytes(sparse) < 40 * kMiB);
  BOOST_TEST(testing::allocated_bytes(full) >= 256 * kMiB);

  ScanStats s_stats, f_stats;
  auto s = scan_file(sparse, {}, &s_stats);
  auto f = scan_file(full, {}, &f_stats);
  BOOST_REQUIRE(s.ok() && f.ok());
  // Exactly the 32 data extents of 1 MiB are read; the 224 MiB of holes are not.
  BOOST_TEST(s_stats.bytes_read == 32 * kMiB);
  BOOST_TEST(s_stats.hole_blocks == 224u * 16);
  BOOST_TEST(s_stats.chunks_skipped > 0u);
  BOOST_TEST(s_stats.chunks_skipped + s_stats.chunks_read == 64u);
  BOOST_TEST(f_stats.bytes_read == 256 * kMiB);
  BOOST_TEST(f_stats.hole_blocks == 0u);
  BOOST_TEST(f_stats.zero_blocks == 224u * 16);
  BOOST_TEST((*s == *f));
  BOOST_TEST(MerkleTree::from_index(*s).root() == MerkleTree::from_index(*f).root());
  require_matches(*s, expected_for(full, HashAlgorithm::Xxh3_128, 64 << 10), "sparse");
}

BOOST_AUTO_TEST_CASE(ranges_cover_the_disk_in_order_with_the_final_entries) {
  // Small chunks and several in flight, holes skipped: every block is handed over exactly
  // once, in disk order, and equals the finished index.
  const std::string sparse = dir.file("sparse.img");
  testing::gen_image({"sparse", sparse, "64", "8", "9"});
  ScanOptions opt;
  opt.chunk_size = 256 << 10;
  opt.max_in_flight = 8;
  std::vector<BlockEntry> seen;
  std::vector<uint64_t> starts;
  auto r = scan_file(sparse, opt, nullptr, [&](uint64_t first, std::span<const BlockEntry> entries) {
    BOOST_REQUIRE_EQUAL(first, seen.size());  // contiguous, no gap, no repeat
    BOOST_REQUIRE(!entries.empty());
    starts.push_back(first);
    seen.insert(seen.end(), entries.begin(), entries.end());
    return true;
  });
  BOOST_REQUIRE(r.ok());
  BOOST_REQUIRE_EQUAL(seen.size(), r->block_count());
  for (uint64_t i = 0; i < seen.size(); ++i) BOOST_REQUIRE(seen[i] == r->entry(i));
  BOOST_TEST(starts.size() > 1u);  // handed over as the scan went, not once at the end
  // A partial last block and a file that is not a whole number of chunks.
  const std::string odd = dir.file("odd.img");
  write_synthetic(odd);
  uint64_t covered = 0;
  auto o = scan_file(odd, opt, nullptr, [&](uint64_t first, std::span<const BlockEntry> entries) {
    BOOST_REQUIRE_EQUAL(first, covered);
    covered += entries.size();
    return true;
  });
  BOOST_REQUIRE(o.ok());
  BOOST_TEST(covered == o->block_count());
}

BOOST_AUTO_TEST_CASE(scan_file_into_fills_the_callers_index_which_may_edit_handed_ranges) {
  const std::string sparse = dir.file("into.img");
  testing::gen_image({"sparse", sparse, "64", "8", "11"});
  ScanOptions opt;
  opt.chunk_size = 256 << 10;
  opt.max_in_flight = 8;
  auto want = scan_file(sparse, opt);
  BOOST_REQUIRE(want.ok());
  auto into = BlockIndex::create(opt.algorithm, opt.block_size, 64u << 20);
  BOOST_REQUIRE(into.ok());
  // The caller marks block `first` of every handed range as data with a hash of its own: the
  // scan must not write over entries it has handed over.
  const std::string tag = "edited by the caller";
  const BlockHash mark = hash_bytes(opt.algorithm, std::as_bytes(std::span(tag.data(), tag.size())));
  std::vector<uint64_t> edited;
  Status st = scan_file_into(sparse, *into, opt, nullptr, [&](uint64_t first, std::span<const BlockEntry> entries) {
    BOOST_REQUIRE(entries.data() == into->entries().data() + first);  // its own entries, no copy
    into->set_data(first, mark);
    edited.push_back(first);
    return true;
  });
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST(edited.size() > 1u);
  for (uint64_t i = 0; i < want->block_count(); ++i) {
    const bool is_edited = std::find(edited.begin(), edited.end(), i) != edited.end();
    BOOST_REQUIRE(into->entry(i) == (is_edited ? BlockEntry{mark, 0} : want->entry(i)));
  }
  // An index of another size is refused before anything is read.
  auto small = BlockIndex::create(opt.algorithm, opt.block_size, 32u << 20);
  BOOST_REQUIRE(small.ok());
  ScanStats stats;
  Status bad = scan_file_into(sparse, *small, opt, &stats);
  BOOST_TEST(bad.code() == Code::Failed);
  BOOST_TEST(bad.message().find("the file is 67108864 bytes; the index to fill describes 33554432") !=
             std::string::npos, bad.message());
  BOOST_TEST(stats.bytes_read == 0u);
}

BOOST_AUTO_TEST_CASE(a_range_callback_returning_false_cancels_the_scan) {
  ScanOptions opt;
  opt.chunk_size = 1 << 20;
  int calls = 0;
  ScanStats stats;
  auto r = scan_file(images().mixed64, opt, &stats, [&](uint64_t, std::span<const BlockEntry>) {
    ++calls;
    return false;
  });
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.status().message().find("cancelled") != std::string::npos);
  BOOST_TEST(calls == 1);
  BOOST_TEST(stats.chunks_read < 64u);  // the rest of the disk was not read
}

BOOST_AUTO_TEST_CASE(index_and_merkle_diff_find_exactly_the_modified_blocks) {
  const std::string a = dir.file("a.img"), b = dir.file("b.img");
  testing::run_program({"cp", images().mixed64, a});
  testing::run_program({"cp", a, b});
  testing::gen_image({"modify", b, "2", "9"});
  const auto ba = testing::read_file(a), bb = testing::read_file(b);
  std::vector<uint64_t> expected;
  for (uint64_t i = 0; i * (64 << 10) < ba.size(); ++i) {
    if (std::memcmp(ba.data() + i * (64 << 10), bb.data() + i * (64 << 10), 64 << 10) != 0) {
      expected.push_back(i);
    }
  }
  BOOST_TEST(expected.size() > 10u);
  auto xa = scan_file(a), xb = scan_file(b);
  BOOST_REQUIRE(xa.ok() && xb.ok());
  auto d = diff(*xa, *xb);
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(*d == expected, boost::test_tools::per_element());
  auto md = diff(MerkleTree::from_index(*xa), MerkleTree::from_index(*xb));
  BOOST_REQUIRE(md.ok());
  BOOST_TEST(md->leaves == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(progress_is_monotonic_and_ends_at_total_before_done) {
  ScanOptions opt;
  opt.chunk_size = 1 << 20;
  Run run = run_scan(images().mixed64, opt);
  BOOST_REQUIRE(run.result->ok());
  BOOST_TEST(run.progress.size() >= 2u);
  for (std::size_t i = 1; i < run.progress.size(); ++i) {
    BOOST_TEST(run.progress[i].first > run.progress[i - 1].first);
  }
  for (const auto& [done, total] : run.progress) BOOST_TEST(total == 64 * kMiB);
  BOOST_TEST(run.progress.back().first == 64 * kMiB);
  BOOST_TEST(!run.progress_after_done);
  BOOST_TEST(run.stats.bytes_done == run.stats.bytes_total);
}

BOOST_AUTO_TEST_CASE(cancel_at_thirty_percent_ends_cancelled_with_work_drained) {
  const std::string path = dir.file("mixed256.img");
  testing::gen_image({"mixed", path, "256", "3"});
  bool cancelled_once = false;
  uint64_t at_cancel = 0;
  Run run = run_scan(path, {}, [&](DiskScanner& s, uint64_t done, uint64_t total) {
    if (!cancelled_once && done * 10 >= total * 3) {
      cancelled_once = true;
      at_cancel = done;
      s.cancel();
      s.cancel();  // idempotent
    }
  });
  BOOST_TEST(cancelled_once);
  BOOST_TEST(run.cancelled);
  BOOST_TEST(run.result->status().code() == Code::Failed);
  BOOST_TEST(run.result->status().message().find("cancelled") != std::string::npos);
  // No progress after cancel(); nothing queued or running when done fired.
  BOOST_TEST(run.progress.back().first == at_cancel);
  BOOST_TEST(!run.loop_alive_at_done);
  BOOST_TEST(run.stats.bytes_done < run.stats.bytes_total);
  BOOST_TEST(run.stats.peak_in_flight <= 4u);
  BOOST_TEST(run.stats.chunks_read < run.stats.chunks_total);
  BOOST_TEST_MESSAGE("cancelled at " << at_cancel << " of " << run.stats.bytes_total
                                      << "; chunks that ran: " << run.stats.chunks_read);
}

BOOST_AUTO_TEST_CASE(cancel_right_after_start_ends_cancelled_without_reading) {
  uv_loop_t loop;
  BOOST_REQUIRE(uv_loop_init(&loop) == 0);
  DiskScanner s(&loop, images().mixed64, {});
  int done_calls = 0;
  bool was_cancelled = false;
  Status status;
  BOOST_REQUIRE(s.start([](uint64_t, uint64_t) { BOOST_FAIL("progress after cancel"); },
                        [&](Result<BlockIndex> r, bool cancelled) {
                          ++done_calls;
                          was_cancelled = cancelled;
                          status = r.status();
                        })
                    .ok());
  s.cancel();
  BOOST_TEST(s.running());  // done always comes from the loop, never from inside cancel()
  BOOST_TEST(done_calls == 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  BOOST_TEST(done_calls == 1);
  BOOST_TEST(was_cancelled);
  BOOST_TEST(status.message() == "scan of " + images().mixed64 + " cancelled");
  BOOST_TEST(s.stats().bytes_read == 0u);
  s.cancel();  // after done: no effect
  BOOST_TEST(uv_loop_close(&loop) == 0);
}

BOOST_AUTO_TEST_CASE(work_in_flight_and_buffer_memory_are_bounded) {
  for (uint32_t in_flight : {1u, 2u, 4u}) {
    ScanOptions opt;
    opt.chunk_size = 1 << 20;
    opt.max_in_flight = in_flight;
    Run run = run_scan(images().mixed64, opt);
    BOOST_REQUIRE(run.result->ok());
    BOOST_TEST(run.stats.peak_in_flight <= in_flight);
    BOOST_TEST(run.stats.buffer_bytes <= uint64_t{in_flight} * opt.chunk_size);
    BOOST_TEST(run.stats.chunks_read == 64u);
  }
}

BOOST_AUTO_TEST_CASE(destroying_the_scanner_early_is_safe_and_silent) {
  uv_loop_t loop;
  BOOST_REQUIRE(uv_loop_init(&loop) == 0);
  int done_calls = 0;
  auto done = [&](Result<BlockIndex>, bool) { ++done_calls; };
  {
    // Right after start: the open/size/extent work item is still queued or running.
    auto s = std::make_unique<DiskScanner>(&loop, images().mixed64, ScanOptions{});
    BOOST_REQUIRE(s->start(nullptr, done).ok());
    s.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  {
    // From a progress callback, with chunks in flight.
    std::unique_ptr<DiskScanner> s = std::make_unique<DiskScanner>(&loop, images().mixed64, ScanOptions{});
    BOOST_REQUIRE(s->start([&](uint64_t, uint64_t) { s.reset(); }, done).ok());
    uv_run(&loop, UV_RUN_DEFAULT);
    BOOST_TEST(!s);
  }
  BOOST_TEST(done_calls == 0);
  BOOST_TEST(uv_loop_close(&loop) == 0);
}

BOOST_AUTO_TEST_CASE(done_callback_may_destroy_the_scanner) {
  uv_loop_t loop;
  BOOST_REQUIRE(uv_loop_init(&loop) == 0);
  auto s = std::make_unique<DiskScanner>(&loop, images().mixed64, ScanOptions{});
  uint64_t blocks = 0;
  BOOST_REQUIRE(s->start(nullptr, [&](Result<BlockIndex> r, bool) {
                   BOOST_REQUIRE(r.ok());
                   blocks = r->block_count();
                   s.reset();
                 }).ok());
  uv_run(&loop, UV_RUN_DEFAULT);
  BOOST_TEST(!s);
  BOOST_TEST(blocks == 1024u);
  BOOST_TEST(uv_loop_close(&loop) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace vmrepl
