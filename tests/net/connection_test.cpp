#include <boost/test/unit_test.hpp>

#include <chrono>
#include <future>

#include "core/jobs/event_loop.h"
#include "net/test_loop.h"

using namespace vmrepl;
using namespace vmrepl::test;

namespace {

struct Fixture {
  TestLoop loop;

  // A listener whose accepted connections become Endpoints (started unless told otherwise).
  struct Server {
    std::unique_ptr<TcpListener> listener;
    std::vector<std::unique_ptr<Endpoint>> accepted;
  };
  std::unique_ptr<Server> serve(const ConnectionOptions& options = {}, bool start = true) {
    auto s = std::make_unique<Server>();
    Server* raw = s.get();
    auto l = TcpListener::listen(
        loop.uv(), "127.0.0.1", 0,
        [raw, start](std::unique_ptr<Connection> c) {
          raw->accepted.push_back(std::make_unique<Endpoint>(std::move(c), start));
        },
        options);
    BOOST_TEST_REQUIRE(l.ok());
    s->listener = std::move(*l);
    return s;
  }

  // Sends `bytes` from a raw client and returns the server side's close reason.
  Status server_reason_after(const std::vector<uint8_t>& bytes, const ConnectionOptions& options = {}) {
    auto server = serve(options);
    RawClient raw(server->listener->port());
    raw.send(bytes);
    BOOST_TEST_REQUIRE(loop.run_until([&] { return !server->accepted.empty() && server->accepted[0]->closed; }));
    BOOST_TEST(loop.run_until([&] { return raw.peer_closed(); }));
    return *server->accepted[0]->closed;
  }
};

std::vector<uint8_t> be32(uint32_t n) {
  auto h = FrameEncoder::header(n);
  return {h.begin(), h.end()};
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(connection_tests, Fixture)

BOOST_AUTO_TEST_CASE(frames_round_trip_with_exact_wire_counters) {
  Pair p = connect_pair(loop);
  p.server->on_frame_extra = [](Endpoint& e, std::vector<uint8_t>& f) { BOOST_TEST(e.conn->send(f).ok()); };
  std::vector<std::vector<uint8_t>> sent = {pattern(1, 1), pattern(1000, 2), pattern(1u << 20, 3), pattern(65536, 4)};
  uint64_t wire = 0;
  for (const auto& f : sent) {
    BOOST_TEST(p.client->conn->send(f).ok());
    wire += 4 + f.size();
  }
  BOOST_TEST(loop.run_until([&] { return p.client->frames.size() == sent.size(); }));
  for (std::size_t i = 0; i < sent.size(); ++i) BOOST_TEST((p.client->frames[i] == sent[i]));
  BOOST_TEST(loop.run_until([&] { return p.client->conn->queued_bytes() == 0 && p.server->conn->queued_bytes() == 0; }));
  ConnectionStats c = p.client->conn->stats(), s = p.server->conn->stats();
  BOOST_TEST(c.bytes_sent == wire);
  BOOST_TEST(c.frames_sent == sent.size());
  BOOST_TEST(c.bytes_received == wire);
  BOOST_TEST(c.frames_received == sent.size());
  BOOST_TEST(s.bytes_received == wire);
  BOOST_TEST(s.bytes_sent == wire);
  BOOST_TEST(p.client->conn->peer() == p.server->conn->local());
  BOOST_TEST(p.client->conn->peer().rfind("127.0.0.1:", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(frame_delivered_one_byte_at_a_time) {
  auto server = serve();
  RawClient raw(server->listener->port());
  std::vector<uint8_t> payload = pattern(50, 9);
  std::vector<uint8_t> stream = *FrameEncoder::encode(payload);
  for (uint8_t b : stream) {
    raw.send({b});
    loop.run_for(2);  // each byte arrives as its own read
  }
  BOOST_TEST_REQUIRE(loop.run_until([&] { return !server->accepted.empty() && !server->accepted[0]->frames.empty(); }));
  BOOST_TEST((server->accepted[0]->frames[0] == payload));
  BOOST_TEST(!server->accepted[0]->closed);
}

BOOST_AUTO_TEST_CASE(garbage_closes_with_the_decoders_status) {
  std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  Status s = server_reason_after(std::vector<uint8_t>(http.begin(), http.end()));
  BOOST_TEST(s.number() == 32773u);
  BOOST_TEST(s.message().find("frame of 1195725856 bytes exceeds the 8388608-byte limit") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(oversized_length_prefix_closes_cleanly_with_bounded_memory) {
  long before = rss_kib();
  std::vector<uint8_t> bytes = be32(0xFFFFFFFFu);
  bytes.resize(4096, 0x55);
  Status s = server_reason_after(bytes);
  BOOST_TEST(s.number() == 32773u);
  BOOST_TEST(s.message().find("frame of 4294967295 bytes exceeds the 8388608-byte limit") != std::string::npos);
  BOOST_TEST(s.message().find("from 127.0.0.1:") == 0u);
  BOOST_TEST(rss_kib() - before < 4096);
}

BOOST_AUTO_TEST_CASE(zero_length_prefix_closes) {
  Status s = server_reason_after(be32(0));
  BOOST_TEST(s.number() == 32776u);
  BOOST_TEST(s.message().find("empty frame (length prefix 0)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(truncated_frame_then_close_is_reported) {
  auto server = serve();
  {
    RawClient raw(server->listener->port());
    std::vector<uint8_t> bytes = be32(100);
    bytes.resize(14, 1);
    raw.send(bytes);
    loop.run_for(20);
  }
  BOOST_TEST_REQUIRE(loop.run_until([&] { return !server->accepted.empty() && server->accepted[0]->closed; }));
  Status s = *server->accepted[0]->closed;
  BOOST_TEST(s.number() == 32776u);
  BOOST_TEST(s.message().find("truncated frame") == 0u);
  BOOST_TEST(s.message().find("after 10 of 100 payload bytes") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(truncated_length_prefix_then_close_is_reported) {
  auto server = serve();
  {
    RawClient raw(server->listener->port());
    raw.send({0, 0});
    loop.run_for(20);
  }
  BOOST_TEST_REQUIRE(loop.run_until([&] { return !server->accepted.empty() && server->accepted[0]->closed; }));
  BOOST_TEST(server->accepted[0]->closed->message().find("inside the length prefix") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(frame_not_finished_in_time_times_out) {
  ConnectionOptions o;
  o.frame_timeout_ms = 150;
  auto server = serve(o);
  RawClient raw(server->listener->port());
  std::vector<uint8_t> bytes = be32(100);
  bytes.resize(10, 1);
  raw.send(bytes);
  auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST_REQUIRE(loop.run_until([&] { return !server->accepted.empty() && server->accepted[0]->closed; }));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  Status s = *server->accepted[0]->closed;
  BOOST_TEST(s.number() == 32772u);
  BOOST_TEST(s.message().find("incomplete after 150 ms (6 of 100 payload bytes)") != std::string::npos);
  BOOST_TEST(ms >= 140);
  BOOST_TEST(ms < 1000);
}

BOOST_AUTO_TEST_CASE(idle_peer_times_out) {
  ConnectionOptions o;
  o.idle_timeout_ms = 150;
  auto server = serve(o);
  RawClient raw(server->listener->port());
  // Activity keeps it open...
  for (int i = 0; i < 4; ++i) {
    raw.send(*FrameEncoder::encode(std::vector<uint8_t>{1}));
    loop.run_for(80);
  }
  BOOST_TEST_REQUIRE(server->accepted.size() == 1u);
  BOOST_TEST(!server->accepted[0]->closed);
  BOOST_TEST(server->accepted[0]->frames.size() == 4u);
  // ...silence closes it.
  BOOST_TEST_REQUIRE(loop.run_until([&] { return server->accepted[0]->closed.has_value(); }));
  Status s = *server->accepted[0]->closed;
  BOOST_TEST(s.number() == 32772u);
  BOOST_TEST(s.message().find("for 150 ms (idle timeout)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(peer_that_stops_reading_hits_the_cap_then_the_write_stall_timeout) {
  long before = rss_kib();
  ConnectionOptions client;
  client.send_high_watermark = 1u << 20;
  client.send_low_watermark = 256u << 10;
  client.send_queue_cap = 4u << 20;
  client.write_stall_timeout_ms = 300;
  auto server = serve({}, /*start=*/false);  // accepted, never read
  std::optional<Result<std::unique_ptr<Connection>>> got;
  tcp_connect(loop.uv(), "127.0.0.1", server->listener->port(), 2000,
              [&](Result<std::unique_ptr<Connection>> r) { got.emplace(std::move(r)); }, client);
  BOOST_TEST_REQUIRE(loop.run_until([&] { return got.has_value(); }));
  Endpoint c(std::move(**got));

  std::vector<uint8_t> chunk = pattern(256u << 10, 5);
  Status refused;
  int sent = 0;
  auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    Status s = c.conn->send(chunk);
    if (!s.ok()) {
      refused = s;
      break;
    }
    ++sent;
    BOOST_TEST_REQUIRE(c.conn->queued_bytes() <= client.send_queue_cap);
    loop.run_for(1);  // let the kernel buffers fill
  }
  BOOST_TEST(refused.number() == 32768u);
  BOOST_TEST(refused.message().find("send queue full") == 0u);
  BOOST_TEST(!c.conn->writable());
  BOOST_TEST(c.conn->is_open());  // refusing a send does not close
  BOOST_TEST(c.conn->queued_bytes() <= client.send_queue_cap);
  BOOST_TEST_MESSAGE("frames accepted before the cap: " << sent);

  BOOST_TEST_REQUIRE(loop.run_until([&] { return c.closed.has_value(); }, 3000));
  BOOST_TEST(c.closed->number() == 32772u);
  BOOST_TEST(c.closed->message().find("stopped reading") != std::string::npos);
  BOOST_TEST(c.closed->message().find("none written for 300 ms") != std::string::npos);
  BOOST_TEST(rss_kib() - before < 16 * 1024);
  BOOST_TEST(!c.conn->send(chunk).ok());
}

BOOST_AUTO_TEST_CASE(pause_holds_frames_and_resume_delivers_them_in_order) {
  Pair p = connect_pair(loop);
  // Pause from inside the handler: the rest of the same read must wait, not be lost.
  p.server->on_frame_extra = [](Endpoint& e, std::vector<uint8_t>&) {
    if (e.frames.size() == 1) e.conn->pause_reading();
  };
  // Five small frames written in one loop turn arrive in one read.
  for (uint8_t i = 0; i < 5; ++i) BOOST_TEST(p.client->conn->send(std::vector<uint8_t>(10, i)).ok());
  BOOST_TEST(loop.run_until([&] { return p.server->frames.size() == 1; }));
  loop.run_for(100);
  BOOST_TEST(p.server->frames.size() == 1u);
  BOOST_TEST(p.server->conn->reading_paused());
  p.server->on_frame_extra = nullptr;
  p.server->conn->resume_reading();
  BOOST_TEST(p.server->frames.size() == 1u);  // never from inside resume_reading()
  BOOST_TEST(loop.run_until([&] { return p.server->frames.size() == 5; }));
  for (uint8_t i = 0; i < 5; ++i) BOOST_TEST((p.server->frames[i] == std::vector<uint8_t>(10, i)));
  BOOST_TEST(!p.server->closed);
}

BOOST_AUTO_TEST_CASE(paused_reader_pushes_back_on_the_writer_and_drain_follows_resume) {
  ConnectionOptions w;
  w.send_high_watermark = 512u << 10;
  w.send_low_watermark = 128u << 10;
  w.send_queue_cap = 64u << 20;
  Pair p = connect_pair(loop, {}, w);
  p.server->conn->pause_reading();
  std::vector<uint8_t> chunk = pattern(128u << 10, 6);
  int sent = 0;
  while (p.client->conn->writable() && sent < 400) {
    BOOST_TEST_REQUIRE(p.client->conn->send(chunk).ok());
    ++sent;
    loop.run_for(1);
  }
  BOOST_TEST(!p.client->conn->writable());
  BOOST_TEST(p.client->drains == 0);
  std::size_t delivered_while_paused = p.server->frames.size();
  loop.run_for(100);
  BOOST_TEST(p.server->frames.size() == delivered_while_paused);
  p.server->conn->resume_reading();
  BOOST_TEST(loop.run_until([&] { return p.server->frames.size() == static_cast<std::size_t>(sent); }));
  BOOST_TEST(p.client->drains == 1);
  BOOST_TEST(p.client->conn->writable());
  BOOST_TEST((p.server->frames.back() == chunk));
}

BOOST_AUTO_TEST_CASE(a_side_whose_replies_back_up_stops_reading_requests_until_it_drains) {
  ConnectionOptions server;
  server.send_high_watermark = 256u << 10;
  server.send_low_watermark = 64u << 10;
  server.write_stall_timeout_ms = 0;  // the client is slow on purpose here
  Pair p = connect_pair(loop, server, {});
  std::vector<uint8_t> reply = pattern(64u << 10, 8);
  p.server->on_frame_extra = [&](Endpoint& e, std::vector<uint8_t>&) { BOOST_TEST(e.conn->send(reply).ok()); };
  p.client->conn->pause_reading();  // asks, but does not read the answers
  const std::size_t requests = 2000;
  for (std::size_t i = 0; i < requests; ++i) {
    BOOST_TEST_REQUIRE(p.client->conn->send({1, 2, 3}).ok());
    if (i % 50 == 0) loop.run_for(1);
  }
  loop.run_for(100);
  std::size_t served = p.server->frames.size();
  BOOST_TEST(served < requests);
  BOOST_TEST(!p.server->conn->writable());
  BOOST_TEST(p.server->conn->queued_bytes() <= server.send_high_watermark + reply.size() + 4);
  loop.run_for(100);
  BOOST_TEST(p.server->frames.size() == served);  // reading stays paused while it cannot write
  p.client->conn->resume_reading();
  BOOST_TEST(loop.run_until([&] { return p.client->frames.size() == requests; }, 20000));
  BOOST_TEST(p.server->frames.size() == requests);
  BOOST_TEST(p.server->drains >= 1);
  BOOST_TEST(!p.server->closed);
}

BOOST_AUTO_TEST_CASE(graceful_shutdown_flushes_and_both_sides_close_ok) {
  Pair p = connect_pair(loop);
  std::vector<uint8_t> big = pattern(3u << 20, 7);
  BOOST_TEST(p.client->conn->send(big).ok());
  BOOST_TEST(p.client->conn->send({1, 2, 3}).ok());
  p.client->conn->shutdown();
  BOOST_TEST(!p.client->conn->is_open());
  BOOST_TEST(p.client->conn->send({4}).number() == 32775u);  // InvalidState
  // The server sees both frames, then EOF at a frame boundary: a clean close...
  BOOST_TEST(loop.run_until([&] { return p.server->closed.has_value(); }));
  BOOST_TEST(p.server->frames.size() == 2u);
  BOOST_TEST((p.server->frames[0] == big));
  BOOST_TEST(p.server->closed->ok());
  // ...and its close is the client's EOF.
  BOOST_TEST(loop.run_until([&] { return p.client->closed.has_value(); }));
  BOOST_TEST(p.client->closed->ok());
  p = {};
  BOOST_TEST(loop.run_until([&] { return loop.open_handles() == 0; }));
}

BOOST_AUTO_TEST_CASE(close_from_either_side_reaches_the_other) {
  for (int side = 0; side < 2; ++side) {
    Pair p = connect_pair(loop);
    Endpoint& closer = side == 0 ? *p.client : *p.server;
    Endpoint& other = side == 0 ? *p.server : *p.client;
    closer.conn->close(Status::Failed("operator said so"));
    BOOST_TEST(closer.conn->send({1}).number() == 32775u);
    BOOST_TEST(!closer.closed);  // on_close runs from the loop, not inside close()
    BOOST_TEST(loop.run_until([&] { return closer.closed && other.closed; }));
    BOOST_TEST(closer.closed->message() == "operator said so");
    BOOST_TEST(other.closed->ok());
  }
}

BOOST_AUTO_TEST_CASE(send_refuses_frames_above_the_limit_or_empty) {
  ConnectionOptions o;
  o.max_frame_size = 1024;
  Pair p = connect_pair(loop, o, o);
  BOOST_TEST(p.client->conn->send(std::vector<uint8_t>(1025)).message() == "frame of 1025 bytes exceeds the 1024-byte limit");
  BOOST_TEST(p.client->conn->send({}).number() == 32773u);
  BOOST_TEST(p.client->conn->is_open());
}

BOOST_AUTO_TEST_CASE(destroying_a_connection_inside_its_handler_is_safe) {
  Pair p = connect_pair(loop);
  bool close_called = false;
  p.server->conn->on_close([&](const Status&) { close_called = true; });
  int seen = 0;
  p.server->conn->on_frame([&](std::vector<uint8_t>) {
    ++seen;
    p.server->conn.reset();  // inside its own handler, with more frames in the same read
  });
  for (int i = 0; i < 3; ++i) BOOST_TEST(p.client->conn->send({1, 2}).ok());
  BOOST_TEST(loop.run_until([&] { return p.client->closed.has_value(); }));
  BOOST_TEST(seen == 1);
  BOOST_TEST(!close_called);
  p = {};
  BOOST_TEST(loop.run_until([&] { return loop.open_handles() == 0; }));
}

BOOST_AUTO_TEST_CASE(works_on_the_engine_event_loop) {
  EventLoop el;
  std::promise<std::vector<uint8_t>> echoed;
  std::unique_ptr<TcpListener> listener;
  std::unique_ptr<Connection> server, client;
  uint16_t port = el.run_sync([&] {
    listener = TcpListener::listen(el.uv(), "127.0.0.1", 0, [&](std::unique_ptr<Connection> c) {
      server = std::move(c);
      server->on_frame([&](std::vector<uint8_t> f) { (void)server->send(std::move(f)); });
      server->on_close([](const Status&) {});
      server->start();
    }).value();
    return listener->port();
  });
  el.run_sync([&] {
    tcp_connect(el.uv(), "127.0.0.1", port, 2000, [&](Result<std::unique_ptr<Connection>> r) {
      client = std::move(r).value();
      client->on_frame([&](std::vector<uint8_t> f) { echoed.set_value(std::move(f)); });
      client->on_close([](const Status&) {});
      client->start();
      (void)client->send({42, 43});
    });
  });
  auto fut = echoed.get_future();
  BOOST_TEST_REQUIRE((fut.wait_for(std::chrono::seconds(5)) == std::future_status::ready));
  BOOST_TEST((fut.get() == std::vector<uint8_t>{42, 43}));
  el.run_sync([&] {  // loop thread only, before the loop goes
    client.reset();
    server.reset();
    listener.reset();
  });
}

BOOST_AUTO_TEST_SUITE_END()
