#include <boost/test/unit_test.hpp>

#include <chrono>

#include "net/test_loop.h"

using namespace vmrepl;
using namespace vmrepl::test;

namespace {

struct Fixture {
  TestLoop loop;

  Result<std::unique_ptr<Connection>> connect(const std::string& host, uint16_t port, uint64_t timeout_ms,
                                              long* elapsed_ms = nullptr) {
    std::optional<Result<std::unique_ptr<Connection>>> got;
    auto t0 = std::chrono::steady_clock::now();
    tcp_connect(loop.uv(), host, port, timeout_ms,
                [&got](Result<std::unique_ptr<Connection>> r) { got.emplace(std::move(r)); });
    BOOST_TEST(!got.has_value());  // never from inside tcp_connect
    BOOST_REQUIRE(loop.run_until([&] { return got.has_value(); }, 10000));
    if (elapsed_ms) {
      *elapsed_ms = static_cast<long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
    }
    return std::move(*got);
  }
};

// A listening socket with backlog 0 whose one queue slot is taken: further SYNs are dropped,
// so a connect to it hangs (deterministic on loopback, unlike a "non-routable" address that
// a sandbox's network may answer).
struct FullBacklog {
  int fd = -1;
  uint16_t port = 0;
  std::unique_ptr<RawClient> filler;
  FullBacklog() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    filler = std::make_unique<RawClient>(port);
  }
  ~FullBacklog() {
    filler.reset();
    ::close(fd);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(tcp_tests, Fixture)

BOOST_AUTO_TEST_CASE(port_zero_picks_a_free_port) {
  auto l = TcpListener::listen(loop.uv(), "127.0.0.1", 0, [](std::unique_ptr<Connection>) {});
  BOOST_TEST_REQUIRE(l.ok());
  BOOST_TEST((*l)->port() != 0);
  BOOST_TEST((*l)->host() == "127.0.0.1");
  auto c = connect("127.0.0.1", (*l)->port(), 2000);
  BOOST_TEST(c.ok());
  BOOST_TEST(loop.run_until([&] { return (*l)->accepted() == 1; }));
}

BOOST_AUTO_TEST_CASE(ipv6_loopback_and_names_resolve) {
  auto l = TcpListener::listen(loop.uv(), "::1", 0, [](std::unique_ptr<Connection>) {});
  if (!l.ok()) {
    BOOST_TEST_MESSAGE("no IPv6 loopback here: " << l.status().ToString());
    return;
  }
  auto c = connect("::1", (*l)->port(), 2000);
  BOOST_TEST_REQUIRE(c.ok());
  BOOST_TEST((*c)->peer() == "[::1]:" + std::to_string((*l)->port()));
}

BOOST_AUTO_TEST_CASE(localhost_name_connects) {
  auto l = TcpListener::listen(loop.uv(), "127.0.0.1", 0, [](std::unique_ptr<Connection>) {});
  BOOST_TEST_REQUIRE(l.ok());
  // "localhost" may resolve to ::1 first; every address is tried in turn.
  auto c = connect("localhost", (*l)->port(), 2000);
  BOOST_TEST(c.ok());
}

BOOST_AUTO_TEST_CASE(taken_port_is_system_in_use) {
  auto a = TcpListener::listen(loop.uv(), "127.0.0.1", 0, [](std::unique_ptr<Connection>) {});
  BOOST_TEST_REQUIRE(a.ok());
  auto b = TcpListener::listen(loop.uv(), "127.0.0.1", (*a)->port(), [](std::unique_ptr<Connection>) {});
  BOOST_TEST(b.status().number() == 32774u);
  BOOST_TEST(b.status().message() == "cannot listen on 127.0.0.1:" + std::to_string((*a)->port()) +
                                         ": address already in use (EADDRINUSE)");
}

BOOST_AUTO_TEST_CASE(non_numeric_listen_address_is_invalid) {
  auto l = TcpListener::listen(loop.uv(), "my-host", 0, [](std::unique_ptr<Connection>) {});
  BOOST_TEST(l.status().number() == 32773u);
  BOOST_TEST(l.status().message() == "listen address 'my-host' is not a numeric IPv4 or IPv6 address");
}

BOOST_AUTO_TEST_CASE(connect_to_a_closed_port_is_system_not_available) {
  uint16_t port;
  {
    auto l = TcpListener::listen(loop.uv(), "127.0.0.1", 0, [](std::unique_ptr<Connection>) {});
    port = (*l)->port();
  }
  loop.run_for(10);
  auto c = connect("127.0.0.1", port, 2000);
  BOOST_TEST(c.status().number() == 32777u);
  BOOST_TEST(c.status().message() == "cannot connect to 127.0.0.1:" + std::to_string(port) +
                                         ": connection refused (ECONNREFUSED)");
}

BOOST_AUTO_TEST_CASE(connect_that_gets_no_answer_times_out) {
  FullBacklog hang;
  long ms = 0;
  auto c = connect("127.0.0.1", hang.port, 200, &ms);
  BOOST_TEST(c.status().number() == 32772u);
  BOOST_TEST(c.status().message() == "connect to 127.0.0.1:" + std::to_string(hang.port) + " timed out after 200 ms");
  BOOST_TEST(ms >= 190);
  BOOST_TEST(ms < 1500);
  // The abandoned attempt frees everything it held.
  BOOST_TEST(loop.run_until([&] { return loop.open_handles() == 0; }));
}

BOOST_AUTO_TEST_CASE(destroying_the_listener_inside_its_handler_is_safe) {
  std::unique_ptr<TcpListener> l;
  std::unique_ptr<Connection> accepted;
  l = TcpListener::listen(loop.uv(), "127.0.0.1", 0, [&](std::unique_ptr<Connection> c) {
    accepted = std::move(c);
    l.reset();
  }).value();
  auto c = connect("127.0.0.1", l->port(), 2000);
  BOOST_TEST(c.ok());
  BOOST_TEST(loop.run_until([&] { return accepted != nullptr; }));
  BOOST_TEST(l == nullptr);
  accepted.reset();
  c = Status::Failed("drop");
  BOOST_TEST(loop.run_until([&] { return loop.open_handles() == 0; }));
}

BOOST_AUTO_TEST_SUITE_END()
