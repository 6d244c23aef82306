// Replication with certificate authentication (AuthenticationType 2, spec §3-4): the primary
// reaches the recovery server's certificate listener (tls_listen) over mutual TLS; the
// relationship's CertificateThumbPrint names the primary's certificate, which the recovery
// server checks on every session of that relationship. Certificates come from
// tools/mkcerts.sh.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>

#include "core/service/replication_service.h"
#include "tests/service/two_hosts.h"

using namespace vmrepl;
using namespace vmrepl::test;
namespace sfs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string mkcerts(const std::string& dir, const std::string& names) {
  sh("sh " + std::string(VMREPL_SOURCE_DIR) + "/tools/mkcerts.sh " + dir + " " + names + " >/dev/null");
  return dir;
}

std::string thumbprint_of(const std::string& certs, const std::string& name, const std::string& algo = "sha1") {
  std::ifstream f(certs + "/" + name + ".thumbprint");
  std::string alg, hex;
  while (f >> alg >> hex)
    if (alg == algo) return hex;
  BOOST_FAIL("no thumbprint for " << name);
  return {};
}
std::string sha1_of(const std::string& certs, const std::string& name) { return thumbprint_of(certs, name); }

std::string tls_json(const std::string& certs, const std::string& name) {
  return "\"tls_certificate\": \"" + certs + "/" + name + ".pem\", \"tls_key\": \"" + certs + "/" + name +
         ".key\", \"tls_ca\": \"" + certs + "/ca.pem\"";
}

// hv-a (primary, with its certificate unless told otherwise) and hv-b (recovery server with
// a plaintext and a certificate listener, admitting hv-a, allowing both authentications).
struct TlsHosts {
  std::string dir, certs;
  std::unique_ptr<ReplicationService> a, b;
  uint16_t tls_port = 0, plain_port = 0;

  explicit TlsHosts(bool a_has_certificate = true) {
    char tmpl[] = "/tmp/vmrepl-tls-XXXXXX";
    dir = ::mkdtemp(tmpl);
    certs = mkcerts(dir + "/certs", "hv-a hv-b");
    b = Hosts::open("hv-b", dir + "/b",
                    R"({"hosts": {"hv-a": "127.0.0.1"}, "tls_listen": "127.0.0.1:0", )" + tls_json(certs, "hv-b") + "}");
    tls_port = b->replicator().tls_listen_port();
    plain_port = b->replicator().listen_port();
    BOOST_REQUIRE(tls_port != 0 && tls_port != plain_port);
    open_a(a_has_certificate ? tls_json(certs, "hv-a") : "");
    wait_ok(b->modify_service_settings(R"({"__CLASS": "Msvm_ReplicationServiceSettingData", "RecoveryServerEnabled": true, "AllowedAuthenticationType": 3, "CertificateThumbPrint": ")" +
                                       sha1_of(certs, "hv-b") + "\"}"));
    wait_ok(b->add_authorization_entry(R"({"__CLASS": "Msvm_ReplicationAuthorizationSettingData", "AllowedPrimaryHostSystem": "hv-a", "TrustGroup": "DEFAULT", "ReplicaStorageLocation": ")" +
                                       dir + "/b-replicas\"}"));
  }
  ~TlsHosts() {
    a.reset();
    b.reset();
    sfs::remove_all(dir);
  }
  void open_a(const std::string& tls) {
    a.reset();
    a = Hosts::open("hv-a", dir + "/a", R"({"hosts": {"hv-b": "127.0.0.1"})" + (tls.empty() ? "" : ", " + tls) + "}");
  }
  std::string settings(const std::string& thumbprint, uint16_t port) const {
    return R"({"RecoveryConnectionPoint": "hv-b", "RecoveryServerPortNumber": )" + std::to_string(port) +
           R"(, "AuthenticationType": 2, "CertificateThumbPrint": ")" + thumbprint +
           R"(", "ReplicationInterval": 900, "RecoveryHistory": 1})";
  }
  std::string define(const std::string& name) {
    gen("mixed " + dir + "/" + name + ".img 8 3");
    auto vm = a->define_system(VmDefinition{name, std::nullopt, {8u << 20}});
    BOOST_REQUIRE_MESSAGE(vm.ok(), vm.status().ToString());
    sh("cp --sparse=always " + dir + "/" + name + ".img " + *a->disk_path(name, 0));
    return *vm->get_string("Name");
  }
  std::string replica_image(const std::string& vm) {
    auto ref = b->replicator().find_vm(vm);
    BOOST_REQUIRE(ref.ok());
    return Replicator::replica_folder(ref->vm) + "/disk0.img";
  }
};

bool has(const Status& s, const std::string& text) { return s.message().find(text) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(tls_replication_tests)

BOOST_AUTO_TEST_CASE(initial_replication_and_cycles_over_tls_give_a_byte_equal_replica) {
  TlsHosts h;
  std::string id = h.define("web01");
  wait_ok(h.a->create_replication_relationship("web01", h.settings(sha1_of(h.certs, "hv-a"), h.tls_port)));
  wait_ok(h.a->start_replication("web01", 1, "", ""));
  std::string disk = *h.a->disk_path("web01", 0);
  BOOST_TEST((read_file(disk) == read_file(h.replica_image(id))));
  gen("modify " + disk + " 5 11");
  wait_ok(h.a->replicate_now("web01"));
  BOOST_TEST((read_file(disk) == read_file(h.replica_image(id))));
  // A SHA-256 thumbprint (64 digits), in lower case, names the certificate as well.
  std::string sha256 = thumbprint_of(h.certs, "hv-a", "sha256");
  for (auto& c : sha256) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string id2 = h.define("web02");
  wait_ok(h.a->create_replication_relationship("web02", h.settings(sha256, h.tls_port)));
  wait_ok(h.a->start_replication("web02", 1, "", ""));
  BOOST_TEST((read_file(*h.a->disk_path("web02", 0)) == read_file(h.replica_image(id2))));
}

BOOST_AUTO_TEST_CASE(a_certificate_other_than_the_relationship_names_is_refused_with_access_denied) {
  TlsHosts h;
  std::string id = h.define("web01");
  std::string first = sha1_of(h.certs, "hv-a");
  wait_ok(h.a->create_replication_relationship("web01", h.settings(first, h.tls_port)));
  wait_ok(h.a->start_replication("web01", 1, "", ""));
  // hv-a comes back with another certificate of the same CA and name: the relationship
  // still names the first one, and the recovery server holds it to that.
  std::string other = h.dir + "/certs2";
  sfs::create_directories(other);
  sfs::copy_file(h.certs + "/ca.pem", other + "/ca.pem");
  sfs::copy_file(h.certs + "/ca.key", other + "/ca.key");
  mkcerts(other, "hv-a");
  std::string second = sha1_of(other, "hv-a");
  BOOST_REQUIRE(second != first);
  h.open_a(tls_json(other, "hv-a"));
  Status st = wait_fail(h.a->replicate_now("web01"));
  BOOST_TEST(st.number() == 32769u, st.ToString());
  BOOST_TEST_MESSAGE(st.ToString());
  BOOST_TEST(has(st, "presented certificate " + second), st.ToString());
  BOOST_TEST(has(st, "CertificateThumbPrint is " + first), st.ToString());
  // Naming another host's certificate is refused before anything is sent.
  h.define("web02");
  auto bad = h.a->create_replication_relationship("web02", h.settings(sha1_of(h.certs, "hv-b"), h.tls_port));
  BOOST_TEST(bad.status().number() == 32773u);
  BOOST_TEST_MESSAGE(bad.status().ToString());
  BOOST_TEST(has(bad.status(), "is not this host's certificate"), bad.status().ToString());
  BOOST_TEST(has(bad.status(), second), bad.status().ToString());
}

BOOST_AUTO_TEST_CASE(authentication_type_2_without_tls_options_is_refused_with_a_clear_message) {
  TlsHosts h(/*a_has_certificate=*/false);
  h.define("web01");
  auto r = h.a->create_replication_relationship("web01", h.settings(sha1_of(h.certs, "hv-a"), h.tls_port));
  BOOST_TEST(r.status().number() == 32773u);
  BOOST_TEST_MESSAGE(r.status().ToString());
  BOOST_TEST(has(r.status(), "needs this service's TLS certificate"), r.status().ToString());
  BOOST_TEST(has(r.status(), "tls_certificate"), r.status().ToString());
  auto t = h.a->test_replication_connection("hv-b", h.tls_port, 2, sha1_of(h.certs, "hv-a"));
  BOOST_TEST(t.status().number() == 32773u);
  // Half a TLS configuration is refused when the service opens.
  auto o = ServiceOptions::from_json(R"({"tls_certificate": "/x.pem"})");
  BOOST_TEST(o.status().number() == 32773u);
  o = ServiceOptions::from_json(R"({"tls_listen": "127.0.0.1:0"})");
  BOOST_TEST(o.status().number() == 32773u);
}

BOOST_AUTO_TEST_CASE(the_recovery_server_decides_which_authentication_it_accepts) {
  TlsHosts h;
  h.define("web01");
  // Certificate relationships need the certificate listener...
  Status plain = wait_fail(h.a->create_replication_relationship("web01", h.settings(sha1_of(h.certs, "hv-a"), h.plain_port)));
  BOOST_TEST(plain.number() == 32777u, plain.ToString());
  BOOST_TEST_MESSAGE(plain.ToString());
  BOOST_TEST(has(plain, "TLS handshake"), plain.ToString());
  // ...and a server that allows only Kerberos (1) refuses them.
  wait_ok(h.b->modify_service_settings(
      R"({"__CLASS": "Msvm_ReplicationServiceSettingData", "RecoveryServerEnabled": true, "AllowedAuthenticationType": 1})"));
  Status denied = wait_fail(h.a->create_replication_relationship("web01", h.settings(sha1_of(h.certs, "hv-a"), h.tls_port)));
  BOOST_TEST(denied.number() == 32769u, denied.ToString());
  BOOST_TEST_MESSAGE(denied.ToString());
  BOOST_TEST(has(denied, "does not accept certificate authentication"), denied.ToString());
  // TestReplicationConnection goes the same way.
  wait_ok(h.b->modify_service_settings(
      R"({"__CLASS": "Msvm_ReplicationServiceSettingData", "RecoveryServerEnabled": true, "AllowedAuthenticationType": 2, "CertificateThumbPrint": ")" +
      sha1_of(h.certs, "hv-b") + "\"}"));
  wait_ok(h.a->test_replication_connection("hv-b", h.tls_port, 2, sha1_of(h.certs, "hv-a")));
}

BOOST_AUTO_TEST_SUITE_END()
