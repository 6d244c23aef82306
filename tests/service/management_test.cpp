// The same scenarios through every way a client reaches a service: local: (in process) and
// unix: (a ManagementServer on the service, the client over the admin socket). Each host is a
// ReplicationService; the test drives it only through its ServiceApi, the interface under
// the C ABI. Disks are compared byte for byte, codes and states by number.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <boost/test/data/test_case.hpp>
#include <sstream>
#include <boost/test/unit_test.hpp>
#include <thread>

#include "core/service/management_protocol.h"
#include "core/service/management_server.h"
#include "core/service/remote_api.h"
#include "core/service/service_api.h"
#include "tests/service/two_hosts.h"

using namespace vmrepl;
using namespace vmrepl::test;
namespace bdata = boost::unit_test::data;

namespace {

enum class Transport { Local, Unix, Tls };
const char* const kTransports[] = {"local", "unix", "tls"};
Transport transport_of(const char* name) {
  std::string n(name);
  return n == "unix" ? Transport::Unix : n == "tls" ? Transport::Tls : Transport::Local;
}

// Test certificates (tools/mkcerts.sh) in `dir`: ca.pem, NAME.pem/.key, NAME.thumbprint.
void make_certs(const std::string& dir, const std::string& names) {
  sh("sh " VMREPL_SOURCE_DIR "/tools/mkcerts.sh " + dir + " " + names + " >/dev/null 2>&1");
}
std::string thumbprint(const std::string& dir, const std::string& name, const std::string& algo = "sha1") {
  std::istringstream in(read_file(dir + "/" + name + ".thumbprint"));
  std::string a, hex;
  while (in >> a >> hex)
    if (a == algo) return hex;
  BOOST_FAIL("no " << algo << " thumbprint for " << name);
  return {};
}
std::string client_options(const std::string& dir, const std::string& name, const std::string& ca = "ca.pem") {
  return R"({"tls_certificate": ")" + dir + "/" + name + R"(.pem", "tls_key": ")" + dir + "/" + name +
         R"(.key", "tls_ca": ")" + dir + "/" + ca + "\"}";
}

uint64_t u64(const Instance& i, const char* name) {
  auto v = i.get_u64(name);
  BOOST_REQUIRE_MESSAGE(v.ok(), name << ": " << v.status().ToString());
  return *v;
}

Instance ok_job(Result<JobPtr> r) {
  BOOST_REQUIRE_MESSAGE(r.ok(), "method refused: " << r.status().ToString());
  BOOST_REQUIRE((*r)->wait(600s).ok());
  BOOST_REQUIRE_MESSAGE(to_number((*r)->state()) == 7, "job ended in " << to_number((*r)->state()) << ": "
                                                                      << (*r)->outcome().ToString());
  return (*r)->snapshot();
}

Status failed_job(Result<JobPtr> r) {
  BOOST_REQUIRE_MESSAGE(r.ok(), "method refused: " << r.status().ToString());
  BOOST_REQUIRE((*r)->wait(600s).ok());
  BOOST_REQUIRE(to_number((*r)->state()) == 10);
  return (*r)->outcome();
}

// One host: its service, and the client view the test uses.
struct Host {
  std::string name;
  std::unique_ptr<ReplicationService> svc;
  std::unique_ptr<ManagementServer> server;
  std::unique_ptr<ServiceApi> api;

  // For Tls, `certs` holds ca.pem, <host_name>.pem/.key and client.pem/.key (the manager).
  Host(Transport t, const std::string& host_name, const std::string& root, const std::string& peer,
       const std::string& certs = "")
      : name(host_name) {
    svc = Hosts::open(host_name, root, "{\"hosts\": {\"" + peer + "\": \"127.0.0.1\"}}");
    if (t == Transport::Local) {
      api = make_local_api(*svc);
      return;
    }
    ManagementServerOptions o{root + ".sock", "", nullptr, {}};
    if (t == Transport::Tls) {
      auto ctx = TlsContext::create({certs + "/" + host_name + ".pem", certs + "/" + host_name + ".key", certs + "/ca.pem"},
                                    true);
      BOOST_REQUIRE_MESSAGE(ctx.ok(), ctx.status().ToString());
      o = ManagementServerOptions{"", "127.0.0.1:0", std::move(ctx).value(), {thumbprint(certs, "client")}};
    }
    auto s = ManagementServer::start(*svc, o);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    server = std::move(s).value();
    auto a = t == Transport::Tls ? connect_remote_api("vmrepl://127.0.0.1:" + std::to_string(server->tcp_port()),
                                                      client_options(certs, "client"))
                                 : connect_remote_api("unix:" + root + ".sock", "");
    BOOST_REQUIRE_MESSAGE(a.ok(), a.status().ToString());
    api = std::move(a).value();
  }
  ~Host() {
    api.reset();
    server.reset();
    svc.reset();
  }
  uint16_t port() { return static_cast<uint16_t>(u64(*api->info(), "ListenPort")); }
  std::pair<uint64_t, uint64_t> mode_state(const std::string& vm) {
    auto i = api->get_system(vm);
    BOOST_REQUIRE_MESSAGE(i.ok(), i.status().ToString());
    return {u64(*i, "ReplicationMode"), u64(*i, "ReplicationState")};
  }
  std::string disk(const std::string& vm) {
    auto p = api->disk_path(vm, 0);
    BOOST_REQUIRE_MESSAGE(p.ok(), p.status().ToString());
    return *p;
  }
  // Recovery server admitting `primary`, replicas under `storage`.
  void admit(const std::string& primary, const std::string& storage) {
    ok_job(api->modify_service_settings(
        R"({"__CLASS": "Msvm_ReplicationServiceSettingData", "RecoveryServerEnabled": true, "AllowedAuthenticationType": 1})"));
    ok_job(api->add_authorization_entry(R"({"__CLASS": "Msvm_ReplicationAuthorizationSettingData", "AllowedPrimaryHostSystem": ")" +
                                        primary + R"(", "TrustGroup": "DEFAULT", "ReplicaStorageLocation": ")" + storage +
                                        "\"}"));
  }
};

struct Pair {
  std::string dir;
  std::unique_ptr<Host> a, b;
  explicit Pair(Transport t) {
    char tmpl[] = "/tmp/vmrepl-mgmt-XXXXXX";
    dir = ::mkdtemp(tmpl);
    if (t == Transport::Tls) make_certs(dir + "/certs", "hv-a hv-b client");
    b = std::make_unique<Host>(t, "hv-b", dir + "/b", "hv-a", dir + "/certs");
    a = std::make_unique<Host>(t, "hv-a", dir + "/a", "hv-b", dir + "/certs");
    b->admit("hv-a", dir + "/b-replicas");
    a->admit("hv-b", dir + "/a");
  }
  ~Pair() {
    a.reset();
    b.reset();
    sfs::remove_all(dir);
  }
  std::string settings(const std::string& to, uint16_t port) const {
    return R"({"RecoveryConnectionPoint": ")" + to + R"(", "RecoveryServerPortNumber": )" + std::to_string(port) +
           R"(, "AuthenticationType": 1, "ReplicationInterval": 300, "RecoveryHistory": 2, "CompressionEnabled": true})";
  }
  // A VM on A with a `mib` MiB mixed image, replicated to B (IR + one cycle).
  std::string replicated(const std::string& name, int mib) {
    gen("mixed " + dir + "/" + name + ".img " + std::to_string(mib) + " 7");
    uint64_t size = sfs::file_size(dir + "/" + name + ".img");
    auto vm = a->api->define_system(R"({"name": ")" + name + R"(", "disks": [)" + std::to_string(size) + "]}");
    BOOST_REQUIRE_MESSAGE(vm.ok(), vm.status().ToString());
    sh("cp --sparse=always " + dir + "/" + name + ".img " + a->disk(name));
    ok_job(a->api->create_replication_relationship(name, settings("hv-b", b->port())));
    ok_job(a->api->start_replication(name, 1, "", ""));
    gen("modify " + a->disk(name) + " 2 71");
    ok_job(a->api->replicate_now(name));
    return name;
  }
};

using MS = std::pair<uint64_t, uint64_t>;

}  // namespace

BOOST_AUTO_TEST_SUITE(management_tests)

BOOST_DATA_TEST_CASE(planned_failover_reverse_and_failback, bdata::make(kTransports), transport) {
  Pair p(transport_of(transport));
  const std::string vm = p.replicated("web01", 16);
  BOOST_TEST((p.b->mode_state(vm) == MS{2, 3}));
  auto points = p.b->api->list_recovery_points(vm);
  BOOST_REQUIRE(points.ok());
  BOOST_TEST(points->size() >= 2u);
  // Planned failover A -> B.
  BOOST_REQUIRE(p.a->api->request_state_change(vm, 3).ok());
  ok_job(p.a->api->request_replication_state_change(vm, 4));
  BOOST_TEST((p.a->mode_state(vm) == MS{1, 4}));
  ok_job(p.b->api->initiate_failover(vm, ""));
  BOOST_TEST((p.b->mode_state(vm) == MS{2, 5}));
  BOOST_TEST(read_file(p.b->disk(vm)) == read_file(p.a->disk(vm)));
  // B runs, writes, reverses: A becomes its replica.
  BOOST_REQUIRE(p.b->api->request_state_change(vm, 2).ok());
  gen("modify " + p.b->disk(vm) + " 1 81");
  Instance rev = ok_job(p.b->api->reverse_replication_relationship(vm, p.settings("hv-a", p.a->port()), false));
  BOOST_TEST(u64(rev, "BlocksSent") > 0u);
  BOOST_TEST((p.b->mode_state(vm) == MS{1, 3}));
  BOOST_TEST((p.a->mode_state(vm) == MS{2, 3}));
  // Failback B -> A: the disks are equal again, A is the primary.
  BOOST_REQUIRE(p.b->api->request_state_change(vm, 3).ok());
  ok_job(p.b->api->request_replication_state_change(vm, 4));
  ok_job(p.a->api->initiate_failover(vm, ""));
  BOOST_TEST(read_file(p.a->disk(vm)) == read_file(p.b->disk(vm)));
  ok_job(p.a->api->reverse_replication_relationship(vm, p.settings("hv-b", p.b->port()), false));
  BOOST_TEST((p.a->mode_state(vm) == MS{1, 3}));
  BOOST_TEST((p.b->mode_state(vm) == MS{2, 3}));
  auto stats = p.a->api->get_replication_statistics(vm);
  BOOST_REQUIRE_MESSAGE(stats.ok(), stats.status().ToString());
}

BOOST_DATA_TEST_CASE(errors_keep_their_codes_and_texts, bdata::make(kTransports), transport) {
  Pair p(transport_of(transport));
  const std::string vm = p.replicated("db01", 4);
  // InvalidState names what was found: a primary cannot fail over.
  auto r = p.a->api->initiate_failover(vm, "");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().number() == 32775u);
  BOOST_TEST(r.status().message().find("ReplicationMode 1") != std::string::npos);
  // A replicating VM is not prepared for a reverse: the state is named.
  auto rev = p.b->api->reverse_replication_relationship(vm, p.settings("hv-a", p.a->port()), false);
  BOOST_REQUIRE(!rev.ok());
  BOOST_TEST(rev.status().number() == 32775u);
  // InvalidParameter names the property.
  std::string sd = p.settings("hv-b", p.b->port());
  sd.replace(sd.find("300"), 3, "17");
  auto bad = p.a->api->modify_replication_settings(vm, sd);
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.status().number() == 32773u);
  BOOST_TEST(bad.status().message().find("ReplicationInterval") != std::string::npos);
  // The recovery server of an existing relationship cannot move.
  std::string moved = p.settings("hv-c", p.b->port());
  auto mv = p.a->api->modify_replication_settings(vm, moved);
  BOOST_REQUIRE(!mv.ok());
  BOOST_TEST(mv.status().number() == 32773u);
  BOOST_TEST(mv.status().message().find("RecoveryConnectionPoint") != std::string::npos);
  // Unknown VM.
  auto missing = p.a->api->get_system("nope");
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.status().number() == static_cast<uint32_t>(Code::FileNotFound));
  // A failed job carries its code: nothing listens on port 1.
  Status st = failed_job(p.a->api->test_replication_connection("hv-b", 1, 1, ""));
  BOOST_TEST(st.number() == 32777u);
  // Unknown job id.
  auto nojob = p.a->api->get_job("{00000000-0000-0000-0000-000000000001}");
  BOOST_REQUIRE(!nojob.ok());
  BOOST_TEST(nojob.status().number() == static_cast<uint32_t>(Code::FileNotFound));
}

BOOST_DATA_TEST_CASE(jobs_are_found_listed_and_cancelled, bdata::make(kTransports), transport) {
  Pair p(transport_of(transport));
  gen("mixed " + p.dir + "/big.img 256 3");
  auto vm = p.a->api->define_system(R"({"name": "big", "disks": [268435456]})");
  BOOST_REQUIRE(vm.ok());
  sh("cp --sparse=always " + p.dir + "/big.img " + p.a->disk("big"));
  ok_job(p.a->api->create_replication_relationship("big", p.settings("hv-b", p.b->port())));
  auto ir = p.a->api->start_replication("big", 1, "", "");
  BOOST_REQUIRE(ir.ok());
  const std::string id = (*ir)->id().to_string();
  auto again = p.a->api->get_job(id);
  BOOST_REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  BOOST_TEST(((*again)->id() == (*ir)->id()));
  auto all = p.a->api->list_jobs();
  BOOST_REQUIRE(all.ok());
  bool listed = false;
  for (const auto& j : *all) listed = listed || j.string_or_null("InstanceID") == id;
  BOOST_TEST(listed);
  BOOST_REQUIRE((*again)->cancel().ok() || job_state_is_final((*ir)->state()));
  BOOST_REQUIRE((*ir)->wait(120s).ok());
  // Both handles see the same final state.
  BOOST_REQUIRE((*again)->wait(10s).ok());
  BOOST_TEST(to_number((*ir)->state()) == to_number((*again)->state()));
  BOOST_TEST(((*ir)->state() == JobState::Terminated || (*ir)->state() == JobState::Completed));
}

BOOST_AUTO_TEST_CASE(job_events_and_wait_need_no_polling_over_unix) {
  Pair p(Transport::Unix);
  std::atomic<int> events{0};
  p.a->api->set_job_listener([&](const Guid&) { ++events; });
  const std::string vm = p.replicated("app01", 8);
  BOOST_TEST(events.load() > 0);
  auto d = p.a->api->compute_digest(vm);
  BOOST_REQUIRE(d.ok());
  BOOST_REQUIRE((*d)->wait(60s).ok());
  Instance snap = (*d)->snapshot();
  BOOST_TEST(u64(snap, "JobState") == 7u);
  BOOST_TEST(snap.string_or_null("MerkleRoot").has_value());
}

BOOST_AUTO_TEST_CASE(unix_socket_is_owner_only_and_refuses_what_is_not_a_management_client) {
  Pair p(Transport::Unix);
  struct stat st {};
  BOOST_REQUIRE(::stat((p.dir + "/a.sock").c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);
  // A replication peer's hello (without the management capability) is refused.
  EventLoop loop;
  auto ch = Channel::connect_unix(loop, p.dir + "/a.sock", 5s);
  BOOST_REQUIRE(ch.ok());
  protocol::Hello hello;
  hello.service_id = Guid::generate();
  hello.host_name = "intruder";
  BOOST_REQUIRE((*ch)->send(hello).ok());
  auto reply = (*ch)->expect<protocol::HelloReply>(5s);
  BOOST_REQUIRE(reply.ok());
  BOOST_TEST(!reply->accepted);
  BOOST_TEST(reply->error_code == 32773u);
  // Garbage after a good hello: the session ends, the server lives on.
  auto c2 = Channel::connect_unix(loop, p.dir + "/a.sock", 5s);
  BOOST_REQUIRE(c2.ok());
  hello.capabilities = {"management"};
  BOOST_REQUIRE((*c2)->send(hello).ok());
  BOOST_REQUIRE((*c2)->expect<protocol::HelloReply>(5s).ok());
  protocol::Request req;
  req.seq = 1;
  req.method = "get_system";
  req.body_json = std::string(100, '[');
  BOOST_REQUIRE((*c2)->send(req).ok());
  auto resp = (*c2)->expect<protocol::Response>(5s);
  BOOST_REQUIRE(resp.ok());
  BOOST_TEST(resp->code == 32773u);
  req.seq = 2;
  req.method = "no_such_method";
  req.body_json = "{}";
  BOOST_REQUIRE((*c2)->send(req).ok());
  resp = (*c2)->expect<protocol::Response>(5s);
  BOOST_REQUIRE(resp.ok());
  BOOST_TEST(resp->code == 32773u);
  req.seq = 3;
  req.method = "get_system";
  req.body_json = R"({"cs": 5})";
  BOOST_REQUIRE((*c2)->send(req).ok());
  resp = (*c2)->expect<protocol::Response>(5s);
  BOOST_REQUIRE(resp.ok());
  BOOST_TEST(resp->code == static_cast<uint32_t>(Code::IncorrectDataType));
  BOOST_TEST(p.a->api->info().ok());
}

namespace {

// In a child running as `uid`: connects to `path` with a plain socket, sends a management
// hello and exits with 0 when refused with AccessDenied, 2 when connect() itself fails with
// EACCES, 1 otherwise.
int hello_as(uid_t uid, const std::string& path) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(uid) != 0 || ::setuid(uid) != 0) ::_exit(3);
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ::_exit(errno == EACCES ? 2 : 1);
    protocol::Hello hello;
    hello.service_id = Guid::generate();
    hello.host_name = "nobody";
    hello.capabilities = {"management"};
    auto payload = protocol::encode(hello);
    auto head = FrameEncoder::header(static_cast<uint32_t>(payload.size()));
    if (::write(fd, head.data(), head.size()) != 4 || ::write(fd, payload.data(), payload.size()) < 0) ::_exit(1);
    uint8_t len[4];
    if (::recv(fd, len, 4, MSG_WAITALL) != 4) ::_exit(1);
    uint32_t n = (uint32_t{len[0]} << 24) | (uint32_t{len[1]} << 16) | (uint32_t{len[2]} << 8) | len[3];
    std::vector<uint8_t> buf(n);
    if (n > (1u << 20) || ::recv(fd, buf.data(), n, MSG_WAITALL) != static_cast<ssize_t>(n)) ::_exit(1);
    auto m = protocol::decode(buf);
    if (!m) ::_exit(1);
    auto* r = std::get_if<protocol::HelloReply>(&*m);
    ::_exit(r && !r->accepted && r->error_code == 32769 ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(only_root_or_the_daemon_user_may_manage) {
  if (::geteuid() != 0) return;  // needs to become another user
  char tmpl[] = "/tmp/vmrepl-mgmt-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  ::chmod(dir.c_str(), 0755);
  auto svc = Hosts::open("hv-a", dir + "/a", "{}");
  auto server = ManagementServer::start(*svc, {dir + "/a.sock", "", nullptr, {}});
  BOOST_REQUIRE(server.ok());
  // 0600: another user cannot even connect.
  BOOST_TEST(hello_as(65534, dir + "/a.sock") == 2);
  // Widened by mistake: the daemon still refuses the other user by its uid.
  ::chmod((dir + "/a.sock").c_str(), 0666);
  BOOST_TEST(hello_as(65534, dir + "/a.sock") == 0);
  server->reset();
  svc.reset();
  sfs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(vmrepl_uri_admits_only_pinned_certificates_of_the_ca) {
  char tmpl[] = "/tmp/vmrepl-mgmt-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  make_certs(dir, "hv-a client stranger");
  make_certs(dir, "--expired old");
  sh("sh " VMREPL_SOURCE_DIR "/tools/mkcerts.sh --other-ca " + dir + "/other rogue >/dev/null 2>&1");
  auto svc = Hosts::open("hv-a", dir + "/a", "{}");
  auto ctx = TlsContext::create({dir + "/hv-a.pem", dir + "/hv-a.key", dir + "/ca.pem"}, true);
  BOOST_REQUIRE(ctx.ok());
  auto server = ManagementServer::start(*svc, {"", "127.0.0.1:0", *ctx, {thumbprint(dir, "client", "sha256")}});
  BOOST_REQUIRE_MESSAGE(server.ok(), server.status().ToString());
  const std::string uri = "vmrepl://127.0.0.1:" + std::to_string((*server)->tcp_port());
  // The pinned client (pinned by SHA-256) manages the host; it may pin the daemon too.
  {
    auto api = connect_remote_api(uri, client_options(dir, "client"));
    BOOST_REQUIRE_MESSAGE(api.ok(), api.status().ToString());
    BOOST_TEST(*(*api)->info()->string_or_null("HostName") == "hv-a");
    std::string pinned = client_options(dir, "client");
    pinned.insert(pinned.size() - 1, R"(, "server_thumbprint": ")" + thumbprint(dir, "hv-a") + "\"");
    BOOST_TEST(connect_remote_api(uri, pinned).ok());
    std::string wrong_pin = client_options(dir, "client");
    wrong_pin.insert(wrong_pin.size() - 1, R"(, "server_thumbprint": ")" + thumbprint(dir, "stranger") + "\"");
    BOOST_TEST(connect_remote_api(uri, wrong_pin).status().number() == 32769u);
  }
  // Right CA, not pinned: refused before any call.
  auto stranger = connect_remote_api(uri, client_options(dir, "stranger"));
  BOOST_REQUIRE(!stranger.ok());
  BOOST_TEST(stranger.status().number() == 32769u);
  BOOST_TEST(stranger.status().message().find("not pinned") != std::string::npos);
  // Another CA, or an expired certificate: the daemon ends the handshake. The client learns
  // it as the daemon's alert (32769) or, when the daemon's close overtakes the alert, as the
  // connection cut (32777); either way nothing can be called.
  auto refused = [](const Status& st) { return st.number() == 32769u || st.number() == 32777u; };
  auto rogue = connect_remote_api(uri, client_options(dir + "/other", "rogue", "../ca.pem"));
  BOOST_REQUIRE(!rogue.ok());
  BOOST_TEST(refused(rogue.status()), rogue.status().ToString());
  auto old = connect_remote_api(uri, client_options(dir, "old"));
  BOOST_REQUIRE(!old.ok());
  BOOST_TEST(refused(old.status()), old.status().ToString());
  // Missing TLS options: a clear 32773 naming them.
  auto bare = connect_remote_api(uri, "");
  BOOST_TEST(bare.status().number() == 32773u);
  BOOST_TEST(bare.status().message().find("tls_certificate") != std::string::npos);
  // Plaintext to the TLS listener: refused, the daemon lives on.
  EventLoop loop;
  auto plain = Channel::connect(loop, "127.0.0.1", (*server)->tcp_port(), 5s);
  if (plain.ok()) {
    protocol::Hello hello;
    hello.service_id = Guid::generate();
    hello.host_name = "plain";
    hello.capabilities = {"management"};
    (void)(*plain)->send(hello);
    BOOST_TEST(!(*plain)->expect<protocol::HelloReply>(5s).ok());
  }
  BOOST_TEST(connect_remote_api(uri, client_options(dir, "client")).ok());
  // vmrepl:// without TLS on the server side is refused at start.
  auto no_tls = ManagementServer::start(*svc, {"", "127.0.0.1:0", nullptr, {}});
  BOOST_TEST(no_tls.status().number() == 32773u);
  server->reset();
  svc.reset();
  sfs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(losing_the_daemon_fails_calls_and_waits_with_32777) {
  char tmpl[] = "/tmp/vmrepl-mgmt-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  auto svc = Hosts::open("hv-a", dir + "/a", "{}");
  auto server = ManagementServer::start(*svc, {dir + "/a.sock", "", nullptr, {}});
  BOOST_REQUIRE(server.ok());
  auto api = connect_remote_api("unix:" + dir + "/a.sock", "");
  BOOST_REQUIRE(api.ok());
  BOOST_REQUIRE((*api)->info().ok());
  server->reset();  // the daemon goes away
  // A call racing the client's notice of the close may have left before it (its answer is
  // then lost: 32771 Unknown); once the loss is known every call is 32777.
  auto r = (*api)->list_systems();
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.status().number() == 32777u || r.status().number() == 32771u), r.status().ToString());
  auto again = (*api)->list_systems();
  BOOST_REQUIRE(!again.ok());
  BOOST_TEST(again.status().number() == 32777u, again.status().ToString());
  api->reset();
  svc.reset();
  // No daemon at all.
  auto none = connect_remote_api("unix:" + dir + "/a.sock", "");
  BOOST_REQUIRE(!none.ok());
  BOOST_TEST(none.status().number() == 32777u);
  auto bad = connect_remote_api("unix:relative.sock", "");
  BOOST_TEST(bad.status().number() == 32773u);
  auto opts = connect_remote_api("unix:" + dir + "/a.sock", R"({"call_timeout": 5})");
  BOOST_TEST(opts.status().number() == 32773u);
  sfs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(instances_round_trip_with_their_types) {
  Instance i("Msvm_Test");
  i.set_u16("A", 7).set_sint("B", CimType::SInt32, -5).set_bool("C", true).set_real("D", 1.5);
  i.set_datetime("E", "20261204123000.000000+000").set_string_array("F", {"x", "y"});
  i.set_uint_array("G", CimType::UInt64, {1, 2, UINT64_MAX}).set_null("H", CimType::String);
  auto back = management::instance_from_json(management::instance_to_json(i));
  BOOST_REQUIRE(back.ok());
  BOOST_TEST((*back == i));
  // Out of range for the type, wrong shapes: refused with the property named.
  auto j = management::instance_to_json(i);
  j["properties"][0]["value"] = 70000;
  auto r = management::instance_from_json(j);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().message().find("'A'") != std::string::npos);
  BOOST_TEST(!management::instance_from_json(nlohmann::json::array()).ok());
  BOOST_TEST(management::parse_body(std::string(1 << 21, ' ')).status().number() == 32773u);
}

BOOST_AUTO_TEST_SUITE_END()
