// Helpers for tests over real sockets on 127.0.0.1: a libuv loop driven from the test thread
// (deterministic: no other thread touches it), an Endpoint that records what a Connection
// delivers, a connected pair, a raw POSIX client for sending arbitrary bytes, and the
// process's resident memory. Header-only so the net and protocol suites share it.
//
// Thread-safety: the test thread only.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/net/connection.h"
#include "core/net/tcp.h"

namespace vmrepl::test {

class TestLoop {
 public:
  TestLoop() {
    uv_loop_init(&loop_);
    // A heartbeat, so UV_RUN_ONCE returns often enough for run_until to check its deadline.
    uv_timer_init(&loop_, &tick_);
    uv_timer_start(&tick_, [](uv_timer_t*) {}, 5, 5);
  }
  ~TestLoop() {
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    // A test that failed early may leave handles: close them so the loop can be closed.
    uv_walk(&loop_, [](uv_handle_t* h, void*) { if (!uv_is_closing(h)) uv_close(h, nullptr); }, nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
  TestLoop(const TestLoop&) = delete;
  TestLoop& operator=(const TestLoop&) = delete;

  uv_loop_t* uv() { return &loop_; }

  // Runs the loop until `done()` or `timeout_ms` passed; returns done().
  bool run_until(const std::function<bool()>& done, int timeout_ms = 5000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return done();
      uv_run(&loop_, UV_RUN_ONCE);
    }
    return true;
  }
  void run_for(int ms) {
    run_until([] { return false; }, ms);
  }
  // Handles still open besides the heartbeat (0 once every Connection and listener is gone
  // and their closes have run).
  int open_handles() {
    int n = 0;
    uv_walk(&loop_, [](uv_handle_t*, void* arg) { ++*static_cast<int*>(arg); }, &n);
    return n - 1;
  }

 private:
  uv_loop_t loop_{};
  uv_timer_t tick_{};
};

// A Connection and what it delivered. Handlers capture `this`: keep Endpoints in unique_ptrs.
struct Endpoint {
  std::unique_ptr<Connection> conn;
  std::vector<std::vector<uint8_t>> frames;
  std::optional<Status> closed;
  int drains = 0;
  std::function<void(Endpoint&, std::vector<uint8_t>&)> on_frame_extra;

  explicit Endpoint(std::unique_ptr<Connection> c, bool start = true) : conn(std::move(c)) {
    conn->on_frame([this](std::vector<uint8_t> f) {
      frames.push_back(std::move(f));
      if (on_frame_extra) on_frame_extra(*this, frames.back());
    });
    conn->on_close([this](const Status& s) { closed = s; });
    conn->on_drain([this] { ++drains; });
    if (start) conn->start();
  }
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;
};

struct Pair {
  std::unique_ptr<Endpoint> server;
  std::unique_ptr<Endpoint> client;
};

// A listener on 127.0.0.1:0, one client connected to it, both Connections started.
inline Pair connect_pair(TestLoop& loop, const ConnectionOptions& server_options = {},
                         const ConnectionOptions& client_options = {}) {
  Pair p;
  auto listener = TcpListener::listen(
      loop.uv(), "127.0.0.1", 0,
      [&p](std::unique_ptr<Connection> c) { p.server = std::make_unique<Endpoint>(std::move(c)); },
      server_options);
  if (!listener.ok()) throw std::runtime_error(listener.status().ToString());
  std::optional<Result<std::unique_ptr<Connection>>> got;
  tcp_connect(loop.uv(), "127.0.0.1", (*listener)->port(), 2000,
              [&got](Result<std::unique_ptr<Connection>> r) { got.emplace(std::move(r)); }, client_options);
  if (!loop.run_until([&] { return got.has_value() && p.server != nullptr; })) {
    throw std::runtime_error("connect_pair: no connection");
  }
  if (!got->ok()) throw std::runtime_error(got->status().ToString());
  p.client = std::make_unique<Endpoint>(std::move(**got));
  return p;
}

// A plain blocking-connect, then non-blocking, socket: sends any bytes, sees the peer close.
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect failed");
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // Sends everything (the test's data fits the socket buffers).
  void send(const std::vector<uint8_t>& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n < 0) throw std::runtime_error("send failed");
      off += static_cast<std::size_t>(n);
    }
  }
  // Reads what is available; true once the peer closed (EOF or reset).
  bool peer_closed() {
    uint8_t buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        received.insert(received.end(), buf, buf + n);
        continue;
      }
      if (n == 0) return true;
      return errno != EAGAIN && errno != EWOULDBLOCK;
    }
  }
  void close() {
    ::close(fd_);
    fd_ = -1;
  }
  std::vector<uint8_t> received;

 private:
  int fd_ = -1;
};

// Resident set size of this process, in KiB.
inline long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string key;
  while (f >> key) {
    if (key == "VmRSS:") {
      long v = 0;
      f >> v;
      return v;
    }
    std::getline(f, key);
  }
  return 0;
}

inline std::vector<uint8_t> pattern(std::size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = 2463534242u ^ seed;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
  return v;
}

}  // namespace vmrepl::test
