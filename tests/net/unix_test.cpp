#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <sys/un.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/net/unix.h"
#include "net/test_loop.h"

using namespace vmrepl;
using namespace vmrepl::test;

namespace {

struct Fixture {
  TestLoop loop;
  std::string dir;
  std::string path;

  Fixture() {
    char tmpl[] = "/tmp/vmr-unix-XXXXXX";
    BOOST_TEST_REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    path = dir + "/s.sock";
  }
  ~Fixture() { std::filesystem::remove_all(dir); }

  struct Server {
    std::unique_ptr<UnixListener> listener;
    std::vector<std::unique_ptr<Endpoint>> accepted;
  };
  std::unique_ptr<Server> serve(const ConnectionOptions& options = {}, bool start = true, unsigned mode = 0600) {
    auto s = std::make_unique<Server>();
    Server* raw = s.get();
    auto l = UnixListener::listen(
        loop.uv(), path, mode,
        [raw, start](std::unique_ptr<Connection> c) {
          raw->accepted.push_back(std::make_unique<Endpoint>(std::move(c), start));
        },
        options);
    BOOST_TEST_REQUIRE(l.ok(), l.status().ToString());
    s->listener = std::move(*l);
    return s;
  }

  Result<std::unique_ptr<Connection>> connect(const std::string& p, const ConnectionOptions& options = {}) {
    std::optional<Result<std::unique_ptr<Connection>>> got;
    unix_connect(
        loop.uv(), p, 2000, [&got](Result<std::unique_ptr<Connection>> r) { got.emplace(std::move(r)); }, options);
    BOOST_TEST(!got.has_value());  // never from inside unix_connect
    BOOST_REQUIRE(loop.run_until([&] { return got.has_value(); }));
    return std::move(*got);
  }

  // A socket file nobody listens on, as a crashed listener leaves it.
  void make_stale_socket() {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, path.size());
    BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    ::close(fd);
  }

  unsigned mode_of(const std::string& p) {
    struct stat st {};
    BOOST_TEST_REQUIRE(::stat(p.c_str(), &st) == 0);
    BOOST_TEST(S_ISSOCK(st.st_mode));
    return st.st_mode & 07777;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(unix_tests, Fixture)

BOOST_AUTO_TEST_CASE(frames_both_ways_with_names_and_peer_uid) {
  auto server = serve();
  auto c = connect(path);
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  Endpoint client(std::move(*c));
  BOOST_TEST_REQUIRE(loop.run_until([&] { return server->accepted.size() == 1; }));
  Endpoint& srv = *server->accepted[0];
  srv.on_frame_extra = [](Endpoint& e, std::vector<uint8_t>& f) { BOOST_TEST(e.conn->send(f).ok()); };
  std::vector<std::vector<uint8_t>> sent = {pattern(1, 1), pattern(1u << 20, 2), pattern(70000, 3)};
  for (const auto& f : sent) BOOST_TEST(client.conn->send(f).ok());
  BOOST_TEST(loop.run_until([&] { return client.frames.size() == sent.size(); }));
  for (std::size_t i = 0; i < sent.size(); ++i) BOOST_TEST((client.frames[i] == sent[i]));
  BOOST_TEST(loop.run_until([&] { return client.conn->queued_bytes() == 0 && srv.conn->queued_bytes() == 0; }));
  BOOST_TEST(client.conn->stats().bytes_sent == srv.conn->stats().bytes_received);
  BOOST_TEST(client.conn->stats().frames_received == sent.size());

  BOOST_TEST(client.conn->peer() == "unix:" + path);
  BOOST_TEST(client.conn->local() == "unix:" + path);
  BOOST_TEST(srv.conn->local() == "unix:" + path);
  BOOST_TEST(srv.conn->peer() ==
             "unix:peer pid " + std::to_string(::getpid()) + " uid " + std::to_string(::getuid()));
  BOOST_TEST_REQUIRE(srv.conn->peer_uid().has_value());
  BOOST_TEST(*srv.conn->peer_uid() == static_cast<uint32_t>(::getuid()));
  BOOST_TEST((client.conn->peer_uid() == srv.conn->peer_uid()));
  BOOST_TEST(server->listener->accepted() == 1u);
  BOOST_TEST(server->listener->path() == path);
}

BOOST_AUTO_TEST_CASE(socket_file_has_exactly_the_requested_mode) {
  {
    auto server = serve();
    BOOST_TEST(mode_of(path) == 0600u);
  }
  // Neither narrowed by the umask nor left wider.
  mode_t old = ::umask(077);
  {
    auto server = serve({}, true, 0660);
    BOOST_TEST(mode_of(path) == 0660u);
  }
  ::umask(old);
  auto bad = UnixListener::listen(loop.uv(), path, 01777, [](std::unique_ptr<Connection>) {});
  BOOST_TEST(bad.status().number() == 32773u);
}

BOOST_AUTO_TEST_CASE(stale_socket_file_is_replaced) {
  make_stale_socket();
  auto refused = connect(path);
  BOOST_TEST(refused.status().number() == 32777u);
  BOOST_TEST(refused.status().message() ==
             "cannot connect to unix:" + path + ": connection refused (ECONNREFUSED)");

  auto server = serve();
  auto c = connect(path);
  BOOST_TEST(c.ok(), c.status().ToString());
  BOOST_TEST(loop.run_until([&] { return server->accepted.size() == 1; }));
}

BOOST_AUTO_TEST_CASE(live_listener_is_refused_with_system_in_use) {
  auto first = serve();
  auto second = UnixListener::listen(loop.uv(), path, 0600, [](std::unique_ptr<Connection>) {});
  BOOST_TEST(second.status().number() == 32774u);
  BOOST_TEST(second.status().message() == "cannot listen on unix:" + path + ": another process listens on it");
  // The first one still owns the file and serves.
  auto c = connect(path);
  BOOST_TEST(c.ok());
  BOOST_TEST(loop.run_until([&] { return first->accepted.size() == 2; }));  // the probe, then us
}

BOOST_AUTO_TEST_CASE(a_path_that_is_not_a_socket_is_left_alone) {
  { std::ofstream(path) << "data"; }
  auto l = UnixListener::listen(loop.uv(), path, 0600, [](std::unique_ptr<Connection>) {});
  BOOST_TEST(l.status().number() == 32774u);
  BOOST_TEST(l.status().message().find("is not a socket") != std::string::npos);
  BOOST_TEST(std::filesystem::is_regular_file(path));
}

BOOST_AUTO_TEST_CASE(path_longer_than_sun_path_is_refused_naming_the_limit) {
  BOOST_TEST(unix_path_max() == sizeof(sockaddr_un{}.sun_path) - 1);
  std::string longp = dir + "/" + std::string(120, 'x');
  auto l = UnixListener::listen(loop.uv(), longp, 0600, [](std::unique_ptr<Connection>) {});
  BOOST_TEST(l.status().number() == 32773u);
  BOOST_TEST(l.status().message().find("exceeds the 107-byte limit") != std::string::npos);
  auto c = connect(longp);
  BOOST_TEST(c.status().number() == 32773u);
  BOOST_TEST(c.status().message().find("exceeds the 107-byte limit") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(connect_to_a_missing_path_is_system_not_available) {
  auto c = connect(dir + "/nobody.sock");
  BOOST_TEST(c.status().number() == 32777u);
  BOOST_TEST(c.status().message() ==
             "cannot connect to unix:" + dir + "/nobody.sock: no such file or directory (ENOENT)");
}

BOOST_AUTO_TEST_CASE(destructor_stops_listening_and_unlinks_only_its_own_file) {
  auto server = serve();
  BOOST_TEST(std::filesystem::exists(path));
  server.reset();
  BOOST_TEST(!std::filesystem::exists(path));
  BOOST_TEST(connect(path).status().number() == 32777u);

  // A file that replaced ours is someone else's: it stays.
  server = serve();
  std::filesystem::remove(path);
  make_stale_socket();
  server.reset();
  BOOST_TEST(std::filesystem::exists(path));
  BOOST_TEST(loop.run_until([&] { return loop.open_handles() == 0; }));
}

BOOST_AUTO_TEST_CASE(peer_that_stops_reading_ends_in_the_write_stall_timeout) {
  ConnectionOptions client;
  client.send_high_watermark = 1u << 20;
  client.send_low_watermark = 256u << 10;
  client.send_queue_cap = 4u << 20;
  client.write_stall_timeout_ms = 300;
  auto server = serve({}, /*start=*/false);
  auto c = connect(path, client);
  BOOST_TEST_REQUIRE(c.ok());
  Endpoint e(std::move(*c));
  std::vector<uint8_t> chunk = pattern(256u << 10, 5);
  Status refused;
  auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    Status s = e.conn->send(chunk);
    if (!s.ok()) {
      refused = s;
      break;
    }
    BOOST_TEST_REQUIRE(e.conn->queued_bytes() <= client.send_queue_cap);
    loop.run_for(1);
  }
  BOOST_TEST(refused.message().find("send queue full") == 0u);
  BOOST_TEST(!e.conn->writable());
  BOOST_TEST_REQUIRE(loop.run_until([&] { return e.closed.has_value(); }, 3000));
  BOOST_TEST(e.closed->number() == 32772u);
  BOOST_TEST(e.closed->message().find("none written for 300 ms") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(graceful_shutdown_and_close_behave_as_over_tcp) {
  auto server = serve();
  auto c = connect(path);
  BOOST_TEST_REQUIRE(c.ok());
  Endpoint client(std::move(*c));
  std::vector<uint8_t> big = pattern(3u << 20, 7);
  BOOST_TEST(client.conn->send(big).ok());
  client.conn->shutdown();
  BOOST_TEST(client.conn->send({4}).number() == 32775u);
  BOOST_TEST_REQUIRE(loop.run_until([&] { return server->accepted.size() == 1 && server->accepted[0]->closed; }));
  BOOST_TEST(server->accepted[0]->closed->ok());
  BOOST_TEST_REQUIRE(server->accepted[0]->frames.size() == 1u);
  BOOST_TEST((server->accepted[0]->frames[0] == big));
  BOOST_TEST(loop.run_until([&] { return client.closed.has_value(); }));
  BOOST_TEST(client.closed->ok());

  // A close on the accepting side reaches the connecting side as a clean EOF.
  auto c2 = connect(path);
  BOOST_TEST_REQUIRE(c2.ok());
  BOOST_TEST_REQUIRE(loop.run_until([&] { return server->accepted.size() == 2; }));
  server->accepted[1]->conn->close(Status::Failed("operator said so"));
  Endpoint other(std::move(*c2));
  BOOST_TEST(loop.run_until([&] { return server->accepted[1]->closed && other.closed; }));
  BOOST_TEST(server->accepted[1]->closed->message() == "operator said so");
  BOOST_TEST(other.closed->ok());
}

BOOST_AUTO_TEST_SUITE_END()
