#include "blocks/test_files_helper.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

extern char** environ;

namespace vmrepl::testing {

TempDir::TempDir() {
  std::string tmpl = "/tmp/vmrepl-blocks-test-XXXXXX";
  BOOST_REQUIRE_MESSAGE(::mkdtemp(tmpl.data()) != nullptr, "mkdtemp: " << std::strerror(errno));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<std::byte> random_bytes(std::size_t n, uint64_t seed) {
  std::vector<std::byte> out(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 88172645463325252ull;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<std::byte>(x >> 32);
  }
  return out;
}

std::vector<std::byte> text_bytes(std::size_t n, uint64_t seed) {
  static const char* kWords[] = {"kernel ", "sshd ", "accepted ", "connection ", "from ",
                                 "port ",   "200 ",  "GET ",      "/api/v1 ",    "\n"};
  std::vector<std::byte> out;
  out.reserve(n);
  const auto r = random_bytes(n, seed);
  for (std::size_t i = 0; out.size() < n; ++i) {
    for (const char* c = kWords[static_cast<uint8_t>(r[i % n]) % 10]; *c && out.size() < n; ++c) {
      out.push_back(static_cast<std::byte>(*c));
    }
  }
  return out;
}

void write_file(const std::string& path, std::span<const std::byte> data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  BOOST_REQUIRE_MESSAGE(f.good(), "write " << path);
}

std::vector<std::byte> read_file(const std::string& path) {
  // One read() loop: byte-wise stream iterators crawl in the unoptimized sanitizer build.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  BOOST_REQUIRE_MESSAGE(fd >= 0, "open " << path << ": " << std::strerror(errno));
  struct stat st;
  BOOST_REQUIRE(::fstat(fd, &st) == 0);
  std::vector<std::byte> out(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    BOOST_REQUIRE_MESSAGE(n > 0, "read " << path);
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return out;
}

void run_program(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  const int rc = ::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ);
  BOOST_REQUIRE_MESSAGE(rc == 0, "spawn " << argv[0] << ": " << std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string cmd;
  for (const auto& a : argv) cmd += a + " ";
  BOOST_REQUIRE_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "failed: " << cmd);
}

void gen_image(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/python3", VMREPL_GEN_IMAGE};
  argv.insert(argv.end(), args.begin(), args.end());
  run_program(argv);
}

uint64_t allocated_bytes(const std::string& path) {
  struct stat st;
  BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

uint64_t file_size(const std::string& path) {
  struct stat st;
  BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace vmrepl::testing
