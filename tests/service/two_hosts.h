// Two services on 127.0.0.1 for the replication and failover tests: A (hv-a) replicates to
// B (hv-b); with symmetric() each also admits the other as a primary, as a reverse needs.
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/service/replication_service.h"

namespace vmrepl::test {

namespace sfs = std::filesystem;
using namespace std::chrono_literals;

inline void sh(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  BOOST_REQUIRE_MESSAGE(rc == 0, "command failed: " << cmd);
}

inline void gen(const std::string& args) { sh(std::string("/usr/bin/python3 ") + VMREPL_GEN_IMAGE + " " + args + " >/dev/null"); }

inline std::string read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

inline uint64_t allocated(const std::string& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

inline Instance wait_ok(Result<std::shared_ptr<Job>> r) {
  BOOST_REQUIRE_MESSAGE(r.ok(), "method refused: " << r.status().ToString());
  auto job = *r;
  BOOST_REQUIRE(job->wait(600s).ok());
  Instance snap = job->snapshot();
  BOOST_REQUIRE_MESSAGE(to_number(job->state()) == 7,
                        "job " << job->name() << " ended in " << to_number(job->state()) << ": "
                               << job->outcome().ToString());
  return snap;
}

inline Status wait_fail(Result<std::shared_ptr<Job>> r) {
  BOOST_REQUIRE_MESSAGE(r.ok(), "method refused: " << r.status().ToString());
  auto job = *r;
  BOOST_REQUIRE(job->wait(600s).ok());
  BOOST_REQUIRE(to_number(job->state()) == 10);
  return job->outcome();
}

// Disk 0 of `vm` on `s`, its replica image there, and its (ReplicationMode, ReplicationState).
inline std::string disk(ReplicationService& s, const std::string& vm) {
  auto p = s.disk_path(vm, 0);
  BOOST_REQUIRE(p.ok());
  return *p;
}

inline std::string replica_image(ReplicationService& s, const std::string& vm) {
  auto ref = s.replicator().find_vm(vm);
  BOOST_REQUIRE(ref.ok());
  return Replicator::replica_folder(ref->vm) + "/disk0.img";
}

inline std::pair<uint64_t, uint64_t> mode_state(ReplicationService& s, const std::string& vm) {
  auto i = s.get_system(vm);
  BOOST_REQUIRE_MESSAGE(i.ok(), i.status().ToString());
  return {*i->get_u64("ReplicationMode"), *i->get_u64("ReplicationState")};
}

struct Hosts {
  std::string dir;
  std::unique_ptr<ReplicationService> a, b;
  uint16_t port = 0;

  Hosts() {
    char tmpl[] = "/tmp/vmrepl-repl-XXXXXX";
    dir = ::mkdtemp(tmpl);
    b = open("hv-b", dir + "/b", "{\"hosts\": {\"hv-a\": \"127.0.0.1\"}}");
    port = b->replicator().listen_port();
    a = open("hv-a", dir + "/a", "{\"hosts\": {\"hv-b\": \"127.0.0.1\"}}");
    wait_ok(b->modify_service_settings(
        R"({"__CLASS": "Msvm_ReplicationServiceSettingData", "RecoveryServerEnabled": true, "AllowedAuthenticationType": 1})"));
    wait_ok(b->add_authorization_entry(R"({"__CLASS": "Msvm_ReplicationAuthorizationSettingData", "AllowedPrimaryHostSystem": "hv-a", "TrustGroup": "DEFAULT", "ReplicaStorageLocation": ")" +
                                       dir + "/b-replicas\"}"));
  }
  ~Hosts() {
    a.reset();
    b.reset();
    sfs::remove_all(dir);
  }
  static std::unique_ptr<ReplicationService> open(const std::string& name, const std::string& root, const std::string& extra,
                                                  uint16_t port = 0) {
    auto o = ServiceOptions::from_json(extra);
    BOOST_REQUIRE(o.ok());
    o->host_name = name;
    o->listen = "127.0.0.1:" + std::to_string(port);
    auto s = ReplicationService::open(root, *o);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    return std::move(s).value();
  }
  std::string settings(int history = 3, bool compress = true) const {
    return R"({"RecoveryConnectionPoint": "hv-b", "RecoveryServerPortNumber": )" + std::to_string(port) +
           R"(, "AuthenticationType": 1, "ReplicationInterval": 900, "RecoveryHistory": )" + std::to_string(history) +
           R"(, "CompressionEnabled": )" + (compress ? "true" : "false") + "}";
  }
  // Defines a VM on A whose disk holds `image` (copied sparse).
  std::string define(const std::string& name, const std::string& image) {
    uint64_t size = sfs::file_size(image);
    auto vm = a->define_system(VmDefinition{name, std::nullopt, {size}});
    BOOST_REQUIRE_MESSAGE(vm.ok(), vm.status().ToString());
    sh("cp --sparse=always " + image + " " + *a->disk_path(name, 0));
    return *vm->get_string("Name");
  }
  // A VM on A from a generated mixed image of `mib` MiB, replicated to B (initial replication
  // done) with RecoveryHistory `history`, uncompressed.
  std::string replicated_mixed(const std::string& name, int mib, int seed, int history) {
    gen("mixed " + dir + "/" + name + ".img " + std::to_string(mib) + " " + std::to_string(seed));
    std::string id = define(name, dir + "/" + name + ".img");
    wait_ok(a->create_replication_relationship(name, settings(history, false)));
    wait_ok(a->start_replication(name, 1, "", ""));
    return id;
  }
  // A becomes a recovery server too, admitting hv-b: what a reverse needs of the old primary.
  uint16_t symmetric() {
    wait_ok(a->modify_service_settings(
        R"({"__CLASS": "Msvm_ReplicationServiceSettingData", "RecoveryServerEnabled": true, "AllowedAuthenticationType": 1})"));
    wait_ok(a->add_authorization_entry(R"({"__CLASS": "Msvm_ReplicationAuthorizationSettingData", "AllowedPrimaryHostSystem": "hv-b", "TrustGroup": "DEFAULT", "ReplicaStorageLocation": ")" +
                                       dir + "/a\"}"));
    return a->replicator().listen_port();
  }
  std::string primary_disk(const std::string& vm) { return *a->disk_path(vm, 0); }
  std::string replica_image(const std::string& vm) {
    auto ref = b->replicator().find_vm(vm);
    BOOST_REQUIRE(ref.ok());
    return Replicator::replica_folder(ref->vm) + "/disk0.img";
  }
};

// A service in a process of its own (vmrepl_test_host), for kill -9.
inline uint16_t free_port() {
  for (int p = 20000 + (getpid() % 20000);; ++p) {
    std::string cmd = "! ss -ltn | grep -q ':" + std::to_string(p) + " '";
    if (std::system(cmd.c_str()) == 0) return static_cast<uint16_t>(p);
  }
}

struct HostProcess {
  pid_t pid = -1;
  // vmrepl_test_host's arguments (see test_host_main.cpp); returns its first line.
  std::string start(const std::vector<std::string>& args) {
    int fds[2];
    BOOST_REQUIRE(::pipe(fds) == 0);
    pid = ::fork();
    if (pid == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      std::vector<char*> argv{const_cast<char*>(VMREPL_TEST_HOST)};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(VMREPL_TEST_HOST, argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    char buf[64] = {};
    ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
    ::close(fds[0]);
    BOOST_REQUIRE_MESSAGE(n > 0 && std::string(buf).rfind("ready", 0) == 0, "test host did not start");
    return buf;
  }
  void kill9() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
  void stop() {
    if (pid < 0) return;
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
  ~HostProcess() { stop(); }
};

}  // namespace vmrepl::test
