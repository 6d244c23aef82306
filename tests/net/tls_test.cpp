#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/net/tls.h"
#include "core/net/unix.h"
#include "net/test_loop.h"

using namespace vmrepl;
using namespace vmrepl::test;

namespace {

// Certificates made once per process by tools/mkcerts.sh: server, client and an expired one
// from the test CA; rogue from an unrelated CA.
struct Certs {
  std::string dir;
  Certs() {
    char tmpl[] = "/tmp/vmr-tls-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = tmpl;
    std::string tool = std::string(VMREPL_SOURCE_DIR) + "/tools/mkcerts.sh";
    std::string cmd = "sh " + tool + " " + dir + " server client --expired old && sh " + tool + " --other-ca " +
                      dir + " rogue";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("mkcerts.sh failed");
  }
  ~Certs() { std::filesystem::remove_all(dir); }
  std::string pem(const std::string& n) const { return dir + "/" + n + ".pem"; }
  std::string key(const std::string& n) const { return dir + "/" + n + ".key"; }
  // "sha1" / "sha256" -> thumbprint, as mkcerts.sh wrote it from openssl's own fingerprint.
  std::map<std::string, std::string> thumbprints(const std::string& n) const {
    std::map<std::string, std::string> m;
    std::ifstream f(dir + "/" + n + ".thumbprint");
    std::string alg, hex;
    while (f >> alg >> hex) m[alg] = hex;
    return m;
  }
};

const Certs& certs() {
  static Certs c;
  return c;
}

std::shared_ptr<TlsContext> context(const std::string& name, bool server, const std::string& ca = "ca") {
  TlsConfig cfg;
  if (!name.empty()) {
    cfg.certificate_file = certs().pem(name);
    cfg.key_file = certs().key(name);
  }
  cfg.ca_file = certs().pem(ca);
  auto c = TlsContext::create(cfg, server);
  if (!c) throw std::runtime_error(c.status().ToString());
  return *c;
}

ConnectionOptions with_tls(std::shared_ptr<TlsContext> ctx) {
  ConnectionOptions o;
  o.tls = std::move(ctx);
  return o;
}

struct Fixture {
  const Certs& made = certs();  // first: making them takes a while, and the loop's clock
  TestLoop loop;                // must not start before

  struct Server {
    std::unique_ptr<TcpListener> listener;
    std::vector<std::unique_ptr<Endpoint>> accepted;
  };
  std::unique_ptr<Server> serve(const ConnectionOptions& options, bool start = true) {
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

  std::unique_ptr<Endpoint> connect(uint16_t port, const ConnectionOptions& options) {
    std::optional<Result<std::unique_ptr<Connection>>> got;
    tcp_connect(
        loop.uv(), "127.0.0.1", port, 2000, [&got](Result<std::unique_ptr<Connection>> r) { got.emplace(std::move(r)); },
        options);
    if (!loop.run_until([&] { return got.has_value(); })) throw std::runtime_error("no connect");
    if (!got->ok()) throw std::runtime_error(got->status().ToString());
    return std::make_unique<Endpoint>(std::move(**got));
  }

  // A client with `client` options against a server with `server` options: both close
  // reasons, after the client tried to send one frame.
  std::pair<Status, Status> refused(const ConnectionOptions& server, const ConnectionOptions& client) {
    auto srv = serve(server);
    auto c = connect(srv->listener->port(), client);
    BOOST_TEST(c->conn->send({1, 2, 3}).ok());  // queued until a handshake that never finishes
    BOOST_TEST_REQUIRE(loop.run_until([&] { return c->closed && !srv->accepted.empty() && srv->accepted[0]->closed; }));
    BOOST_TEST(srv->accepted[0]->frames.empty());
    BOOST_TEST(c->frames.empty());
    BOOST_TEST(!srv->accepted[0]->conn->secure());
    BOOST_TEST_MESSAGE("server: " << srv->accepted[0]->closed->ToString() << "\nclient: " << c->closed->ToString());
    return {*srv->accepted[0]->closed, *c->closed};
  }
};

bool has(const Status& s, const std::string& text) { return s.message().find(text) != std::string::npos; }

}  // namespace

BOOST_FIXTURE_TEST_SUITE(tls_tests, Fixture)

BOOST_AUTO_TEST_CASE(frames_both_ways_over_tls_including_a_16_MiB_frame) {
  ConnectionOptions so = with_tls(context("server", true)), co = with_tls(context("client", false));
  so.max_frame_size = co.max_frame_size = 32u << 20;
  so.send_queue_cap = co.send_queue_cap = 64u << 20;
  auto srv = serve(so);
  auto c = connect(srv->listener->port(), co);
  bool handshake_seen = false;
  c->conn->on_handshake([&] {
    handshake_seen = true;
    BOOST_TEST(c->frames.empty());
  });
  BOOST_TEST(c->conn->is_tls());
  std::vector<std::vector<uint8_t>> sent = {pattern(1, 1), pattern(16u << 20, 2), pattern(100000, 3), {7}};
  uint64_t frame_bytes = 0;
  for (const auto& f : sent) {
    BOOST_TEST(c->conn->send(f).ok());  // the first ones before the handshake finished
    frame_bytes += 4 + f.size();
  }
  BOOST_TEST_REQUIRE(loop.run_until([&] { return srv->accepted.size() == 1; }));
  Endpoint& s = *srv->accepted[0];
  // Echoes all but the big one (a slow machine needs seconds for 32 MiB more).
  s.on_frame_extra = [](Endpoint& e, std::vector<uint8_t>& f) {
    if (f.size() < (1u << 20)) BOOST_TEST(e.conn->send(f).ok());
  };
  BOOST_TEST_REQUIRE(loop.run_until([&] { return c->frames.size() == sent.size() - 1; }, 15000));
  BOOST_TEST_REQUIRE(s.frames.size() == sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) BOOST_TEST((s.frames[i] == sent[i]));
  BOOST_TEST((c->frames[0] == sent[0]));
  BOOST_TEST((c->frames[1] == sent[2]));
  BOOST_TEST((c->frames[2] == sent[3]));
  BOOST_TEST(handshake_seen);
  BOOST_TEST(c->conn->secure());
  BOOST_TEST(s.conn->secure());
  BOOST_TEST(loop.run_until([&] { return c->conn->queued_bytes() == 0 && s.conn->queued_bytes() == 0; }));
  ConnectionStats cs = c->conn->stats(), ss = s.conn->stats();
  BOOST_TEST(cs.frames_sent == sent.size());
  BOOST_TEST(ss.frames_received == sent.size());
  BOOST_TEST(cs.frames_received == sent.size() - 1);
  // Wire bytes: records and handshake, a little more than the frames.
  BOOST_TEST(cs.bytes_sent > frame_bytes);
  BOOST_TEST(cs.bytes_sent < frame_bytes + frame_bytes / 100 + 8192);
  BOOST_TEST(cs.bytes_sent == ss.bytes_received);
  BOOST_TEST(ss.bytes_sent == cs.bytes_received);
  BOOST_TEST(!c->closed);
  BOOST_TEST(!s.closed);
}

BOOST_AUTO_TEST_CASE(thumbprints_equal_the_ones_openssl_computes) {
  auto srv = serve(with_tls(context("server", true)));
  auto c = connect(srv->listener->port(), with_tls(context("client", false)));
  BOOST_TEST(c->conn->peer_certificate_thumbprint("sha1").empty());  // not before the handshake
  BOOST_TEST(c->conn->send({1}).ok());
  BOOST_TEST_REQUIRE(loop.run_until([&] { return srv->accepted.size() == 1 && srv->accepted[0]->frames.size() == 1; }));
  Endpoint& s = *srv->accepted[0];
  auto server_tp = certs().thumbprints("server"), client_tp = certs().thumbprints("client");
  BOOST_TEST_REQUIRE(server_tp["sha1"].size() == 40u);
  BOOST_TEST(c->conn->peer_certificate_thumbprint("sha1") == server_tp["sha1"]);
  BOOST_TEST(c->conn->peer_certificate_thumbprint("SHA-256") == server_tp["sha256"]);
  BOOST_TEST(s.conn->peer_certificate_thumbprint("SHA1") == client_tp["sha1"]);
  BOOST_TEST(s.conn->peer_certificate_thumbprint("sha256") == client_tp["sha256"]);
  BOOST_TEST(s.conn->peer_certificate_thumbprint("md5").empty());
  BOOST_TEST(context("server", true)->certificate_thumbprint("sha1") == server_tp["sha1"]);

  Pair plain = connect_pair(loop);
  BOOST_TEST(!plain.client->conn->is_tls());
  BOOST_TEST(plain.client->conn->peer_certificate_thumbprint("sha1").empty());
}

BOOST_AUTO_TEST_CASE(a_client_given_a_peer_name_checks_it_in_the_servers_certificate) {
  auto srv = serve(with_tls(context("server", true)));
  ConnectionOptions co = with_tls(context("client", false));
  co.tls_peer_name = "server";
  auto c = connect(srv->listener->port(), co);
  BOOST_TEST(c->conn->send({1}).ok());
  BOOST_TEST_REQUIRE(loop.run_until([&] { return srv->accepted.size() == 1 && srv->accepted[0]->frames.size() == 1; }));
  BOOST_TEST(c->conn->peer_certificate_names("server"));
  BOOST_TEST(c->conn->peer_certificate_names("127.0.0.1"));  // mkcerts.sh adds IP:127.0.0.1
  BOOST_TEST(!c->conn->peer_certificate_names("client"));
  BOOST_TEST(srv->accepted[0]->conn->peer_certificate_names("client"));
  BOOST_TEST(!srv->accepted[0]->conn->peer_certificate_names("server"));

  co.tls_peer_name = "elsewhere";
  auto [s1, c1] = refused(with_tls(context("server", true)), co);
  BOOST_TEST(c1.number() == 32769u);
  BOOST_TEST(has(c1, "certificate verify failed (hostname mismatch)"), c1.ToString());
  BOOST_TEST(s1.number() == 32769u);
}

BOOST_AUTO_TEST_CASE(thumbprints_compare_ignoring_case_and_separators) {
  BOOST_TEST(same_thumbprint("ab cd:EF", "ABCDEF"));
  BOOST_TEST(!same_thumbprint("ABCDEF", "ABCDEE"));
  BOOST_TEST(!same_thumbprint("", ""));
  BOOST_TEST(!same_thumbprint("AB", "ABAB"));
}

BOOST_AUTO_TEST_CASE(wrong_ca_is_refused_with_access_denied_on_both_sides) {
  // The server's certificate comes from a CA the client does not trust.
  auto [s1, c1] = refused(with_tls(context("rogue", true)), with_tls(context("client", false)));
  BOOST_TEST(c1.number() == 32769u);
  BOOST_TEST(has(c1, "TLS handshake with 127.0.0.1:"), c1.ToString());
  BOOST_TEST(has(c1, "failed: certificate verify failed (unable to get local issuer certificate)"), c1.ToString());
  BOOST_TEST(s1.number() == 32769u);
  BOOST_TEST(has(s1, "unknown ca"), s1.ToString());
  // The client's certificate comes from a CA the server does not trust.
  auto [s2, c2] = refused(with_tls(context("server", true)), with_tls(context("rogue", false)));
  BOOST_TEST(s2.number() == 32769u);
  BOOST_TEST(has(s2, "certificate verify failed (unable to get local issuer certificate)"), s2.ToString());
  BOOST_TEST(c2.number() == 32769u);
  BOOST_TEST(has(c2, "unknown ca"), c2.ToString());
}

BOOST_AUTO_TEST_CASE(expired_certificates_are_refused) {
  auto [s1, c1] = refused(with_tls(context("old", true)), with_tls(context("client", false)));
  BOOST_TEST(c1.number() == 32769u);
  BOOST_TEST(has(c1, "certificate verify failed (certificate has expired)"), c1.ToString());
  BOOST_TEST(s1.number() == 32769u);
  BOOST_TEST(has(s1, "certificate expired"), s1.ToString());
  auto [s2, c2] = refused(with_tls(context("server", true)), with_tls(context("old", false)));
  BOOST_TEST(s2.number() == 32769u);
  BOOST_TEST(has(s2, "certificate has expired"), s2.ToString());
  BOOST_TEST(c2.number() == 32769u);
}

BOOST_AUTO_TEST_CASE(client_without_certificate_is_refused) {
  auto [s, c] = refused(with_tls(context("server", true)), with_tls(context("", false)));
  BOOST_TEST(s.number() == 32769u);
  BOOST_TEST(has(s, "peer did not return a certificate"), s.ToString());
  BOOST_TEST(c.number() == 32769u);
  BOOST_TEST(has(c, "certificate required"), c.ToString());
}

BOOST_AUTO_TEST_CASE(plaintext_client_at_a_tls_listener_is_refused_cleanly) {
  long before = rss_kib();
  ConnectionOptions so = with_tls(context("server", true));
  so.shutdown_linger_ms = 200;  // how long a refusing side waits for a peer that never closes
  auto srv = serve(so);
  {
    RawClient raw(srv->listener->port());
    raw.send(*FrameEncoder::encode(pattern(100, 1)));
    BOOST_TEST_REQUIRE(loop.run_until([&] { return !srv->accepted.empty() && srv->accepted[0]->closed; }));
    BOOST_TEST(loop.run_until([&] { return raw.peer_closed(); }));
  }
  Status s = *srv->accepted[0]->closed;
  BOOST_TEST(!s.ok());
  BOOST_TEST(s.number() == 32777u);
  BOOST_TEST(has(s, "TLS handshake with 127.0.0.1:"), s.ToString());
  BOOST_TEST(srv->accepted[0]->frames.empty());

  // A record header announcing more than a record may hold, and that much junk.
  {
    RawClient raw(srv->listener->port());
    std::vector<uint8_t> bytes = {0x16, 0x03, 0x03, 0xFF, 0xFF};
    bytes.resize(70000, 0x55);
    raw.send(bytes);
    BOOST_TEST_REQUIRE(loop.run_until([&] { return srv->accepted.size() == 2 && srv->accepted[1]->closed; }));
    BOOST_TEST(loop.run_until([&] { return raw.peer_closed(); }));
  }
  BOOST_TEST(srv->accepted[1]->closed->number() == 32777u);
  BOOST_TEST_MESSAGE("oversized record: " << srv->accepted[1]->closed->ToString());

  // A plaintext Connection: its frame never arrives, and it is not left hanging either.
  auto c = connect(srv->listener->port(), {});
  BOOST_TEST(c->conn->send(pattern(50, 2)).ok());
  BOOST_TEST_REQUIRE(loop.run_until([&] { return c->closed && srv->accepted.size() == 3 && srv->accepted[2]->closed; }));
  BOOST_TEST(srv->accepted[2]->frames.empty());
  BOOST_TEST(!srv->accepted[2]->closed->ok());
  BOOST_TEST_MESSAGE("plaintext client: " << c->closed->ToString());
  BOOST_TEST(rss_kib() - before < 8192);
}

BOOST_AUTO_TEST_CASE(tls_client_at_a_plaintext_listener_fails_instead_of_hanging) {
  auto srv = serve({});
  auto c = connect(srv->listener->port(), with_tls(context("client", false)));
  BOOST_TEST(c->conn->send({1}).ok());
  BOOST_TEST_REQUIRE(loop.run_until([&] { return c->closed && !srv->accepted.empty() && srv->accepted[0]->closed; }));
  BOOST_TEST(c->closed->number() == 32777u);
  BOOST_TEST(has(*c->closed, "TLS handshake with 127.0.0.1:"), c->closed->ToString());
  // The ClientHello read as a length prefix: the decoder's bounded refusal.
  BOOST_TEST(srv->accepted[0]->closed->number() == 32773u);
  BOOST_TEST(has(*srv->accepted[0]->closed, "exceeds the 8388608-byte limit"));
  BOOST_TEST(srv->accepted[0]->frames.empty());
}

BOOST_AUTO_TEST_CASE(handshake_that_never_finishes_times_out) {
  auto srv = serve({}, /*start=*/false);  // accepts, never answers
  ConnectionOptions co = with_tls(context("client", false));
  co.tls_handshake_timeout_ms = 200;
  auto c = connect(srv->listener->port(), co);
  auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST_REQUIRE(loop.run_until([&] { return c->closed.has_value(); }));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  BOOST_TEST(c->closed->number() == 32772u);
  BOOST_TEST(has(*c->closed, "not finished after 200 ms"));
  BOOST_TEST(ms < 2000);
}

BOOST_AUTO_TEST_CASE(peer_that_stops_reading_ends_in_the_write_stall_timeout) {
  ConnectionOptions co = with_tls(context("client", false));
  co.send_high_watermark = 1u << 20;
  co.send_low_watermark = 256u << 10;
  co.send_queue_cap = 4u << 20;
  co.write_stall_timeout_ms = 300;
  auto srv = serve(with_tls(context("server", true)));
  auto c = connect(srv->listener->port(), co);
  BOOST_TEST_REQUIRE(loop.run_until([&] { return !srv->accepted.empty(); }));
  // The server finishes its handshake, then reads nothing more.
  srv->accepted[0]->conn->on_handshake([&] { srv->accepted[0]->conn->pause_reading(); });
  BOOST_TEST_REQUIRE(loop.run_until([&] { return c->conn->secure(); }));
  std::vector<uint8_t> chunk = pattern(256u << 10, 5);
  Status refused;
  auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    Status st = c->conn->send(chunk);
    if (!st.ok()) {
      refused = st;
      break;
    }
    BOOST_TEST_REQUIRE(c->conn->queued_bytes() <= co.send_queue_cap);
    loop.run_for(1);
  }
  BOOST_TEST(refused.message().find("send queue full") == 0u);
  BOOST_TEST_REQUIRE(loop.run_until([&] { return c->closed.has_value(); }, 3000));
  BOOST_TEST(c->closed->number() == 32772u);
  BOOST_TEST(has(*c->closed, "none written for 300 ms"));
}

BOOST_AUTO_TEST_CASE(pause_and_resume_keep_frames_in_order_over_tls) {
  auto srv = serve(with_tls(context("server", true)));
  auto c = connect(srv->listener->port(), with_tls(context("client", false)));
  for (uint8_t i = 0; i < 20; ++i) BOOST_TEST(c->conn->send(std::vector<uint8_t>(3000, i)).ok());
  BOOST_TEST_REQUIRE(loop.run_until([&] { return !srv->accepted.empty(); }));
  Endpoint& s = *srv->accepted[0];
  s.on_frame_extra = [](Endpoint& e, std::vector<uint8_t>&) {
    if (e.frames.size() == 1 || e.frames.size() == 7) e.conn->pause_reading();
  };
  for (int round = 0; round < 2; ++round) {
    BOOST_TEST_REQUIRE(loop.run_until([&] { return s.conn->reading_paused(); }));
    std::size_t n = s.frames.size();
    loop.run_for(50);
    BOOST_TEST(s.frames.size() == n);
    s.conn->resume_reading();
  }
  BOOST_TEST_REQUIRE(loop.run_until([&] { return s.frames.size() == 20; }));
  for (uint8_t i = 0; i < 20; ++i) BOOST_TEST((s.frames[i] == std::vector<uint8_t>(3000, i)));
  BOOST_TEST(!s.closed);
}

BOOST_AUTO_TEST_CASE(graceful_shutdown_over_tls_flushes_and_closes_ok) {
  auto srv = serve(with_tls(context("server", true)));
  auto c = connect(srv->listener->port(), with_tls(context("client", false)));
  std::vector<uint8_t> big = pattern(3u << 20, 7);
  BOOST_TEST(c->conn->send(big).ok());
  c->conn->shutdown();  // before the handshake even finished
  BOOST_TEST(c->conn->send({1}).number() == 32775u);
  BOOST_TEST_REQUIRE(loop.run_until([&] { return !srv->accepted.empty() && srv->accepted[0]->closed; }));
  BOOST_TEST(srv->accepted[0]->closed->ok(), srv->accepted[0]->closed->ToString());
  BOOST_TEST_REQUIRE(srv->accepted[0]->frames.size() == 1u);
  BOOST_TEST((srv->accepted[0]->frames[0] == big));
  BOOST_TEST(loop.run_until([&] { return c->closed.has_value(); }));
  BOOST_TEST(c->closed->ok(), c->closed->ToString());
  c.reset();
  srv.reset();
  BOOST_TEST(loop.run_until([&] { return loop.open_handles() == 0; }));
}

BOOST_AUTO_TEST_CASE(tls_over_a_unix_socket) {
  char tmpl[] = "/tmp/vmr-tlsu-XXXXXX";
  BOOST_TEST_REQUIRE(::mkdtemp(tmpl) != nullptr);
  std::string path = std::string(tmpl) + "/s";
  std::unique_ptr<Endpoint> server;
  auto l = UnixListener::listen(
      loop.uv(), path, 0600, [&](std::unique_ptr<Connection> c) { server = std::make_unique<Endpoint>(std::move(c)); },
      with_tls(context("server", true)));
  BOOST_TEST_REQUIRE(l.ok());
  std::optional<Result<std::unique_ptr<Connection>>> got;
  unix_connect(
      loop.uv(), path, 2000, [&](Result<std::unique_ptr<Connection>> r) { got.emplace(std::move(r)); },
      with_tls(context("client", false)));
  BOOST_TEST_REQUIRE(loop.run_until([&] { return got.has_value(); }));
  BOOST_TEST_REQUIRE(got->ok());
  Endpoint client(std::move(**got));
  BOOST_TEST(client.conn->send({9, 9}).ok());
  BOOST_TEST_REQUIRE(loop.run_until([&] { return server && server->frames.size() == 1; }));
  BOOST_TEST(server->conn->peer_certificate_thumbprint("sha1") == certs().thumbprints("client")["sha1"]);
  server.reset();
  (*l).reset();
  std::filesystem::remove_all(tmpl);
}

BOOST_AUTO_TEST_CASE(context_errors_name_the_file_and_the_reason) {
  TlsConfig cfg{certs().pem("server"), certs().key("server"), certs().pem("ca")};
  BOOST_TEST(TlsContext::create(cfg, true).ok());

  TlsConfig missing = cfg;
  missing.certificate_file = certs().dir + "/nope.pem";
  auto r = TlsContext::create(missing, true);
  BOOST_TEST(r.status().number() == 32773u);
  BOOST_TEST(has(r.status(), "cannot load TLS certificate file '" + missing.certificate_file + "': "), r.status().ToString());

  TlsConfig mismatch = cfg;
  mismatch.key_file = certs().key("client");
  r = TlsContext::create(mismatch, true);
  BOOST_TEST(r.status().number() == 32773u);
  BOOST_TEST(has(r.status(), "cannot load TLS key file '" + mismatch.key_file + "': key values mismatch"),
             r.status().ToString());

  TlsConfig bad_ca = cfg;
  bad_ca.ca_file = certs().key("ca");  // a key, not a certificate
  r = TlsContext::create(bad_ca, false);
  BOOST_TEST(r.status().number() == 32773u);
  BOOST_TEST(has(r.status(), "cannot load TLS CA file"), r.status().ToString());

  BOOST_TEST(TlsContext::create({"", "", cfg.ca_file}, true).status().number() == 32773u);
  BOOST_TEST(TlsContext::create({cfg.certificate_file, cfg.key_file, ""}, false).status().number() == 32773u);
  BOOST_TEST_MESSAGE(r.status().ToString());
}

BOOST_AUTO_TEST_SUITE_END()
