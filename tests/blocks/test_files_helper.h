// Shared helpers of the core/blocks suites: a temporary directory that cleans itself up,
// deterministic random bytes, whole-file read/write, running bench/gen_image.py, the
// allocation of a file on disk, and printers so that BOOST_TEST can show failing values.
//
// Thread-safety: test-thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "core/blocks/block_index.h"
#include "core/blocks/hash.h"
#include "core/blocks/sparse_io.h"
#include "core/model/status.h"

namespace vmrepl {

inline std::ostream& operator<<(std::ostream& os, const BlockHash& h) { return os << h.to_hex(); }
inline std::ostream& operator<<(std::ostream& os, Code c) {
  return os << code_name(c) << " (" << static_cast<uint32_t>(c) << ")";
}
inline std::ostream& operator<<(std::ostream& os, Xxh3Path p) { return os << xxh3_path_name(p); }
inline std::ostream& operator<<(std::ostream& os, HashAlgorithm a) {
  return os << hash_algorithm_name(a);
}
inline std::ostream& operator<<(std::ostream& os, const Extent& e) {
  return os << "[" << e.offset << ", +" << e.length << ")";
}

}  // namespace vmrepl

namespace vmrepl::testing {

// mkdtemp under /tmp; removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// n bytes from a seeded xorshift generator (reproducible across runs).
std::vector<std::byte> random_bytes(std::size_t n, uint64_t seed);
std::vector<std::byte> text_bytes(std::size_t n, uint64_t seed);  // printable, log-like
void write_file(const std::string& path, std::span<const std::byte> data);
std::vector<std::byte> read_file(const std::string& path);
// Runs /usr/bin/python3 VMREPL_GEN_IMAGE args...; fails the test unless it exits 0.
void gen_image(const std::vector<std::string>& args);
// Runs a program (argv[0] looked up in PATH); fails the test unless it exits 0.
void run_program(const std::vector<std::string>& argv);
// Bytes the filesystem allocated for the file (st_blocks x 512).
uint64_t allocated_bytes(const std::string& path);
uint64_t file_size(const std::string& path);

}  // namespace vmrepl::testing
