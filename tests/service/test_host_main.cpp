// A recovery server in a process of its own, for the crash tests: it can be killed with
// SIGKILL at any moment of an apply, and restarted on the same root and port.
//
//   vmrepl_test_host ROOT HOST_NAME PORT PRIMARY_HOST STORAGE_LOCATION [VM REVERSE_SETTINGS]
// Prints "ready <port>" on stdout once it accepts connections; SIGTERM stops it cleanly. With
// VM and REVERSE_SETTINGS it then runs ReverseReplicationRelationship on VM (to be killed
// while it runs) and prints "reversed <JobState>" when the job ends.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/service/replication_service.h"

using namespace vmrepl;

int main(int argc, char** argv) {
  if (argc != 6 && argc != 8) {
    std::fprintf(stderr, "usage: vmrepl_test_host ROOT HOST_NAME PORT PRIMARY_HOST STORAGE_LOCATION [VM SETTINGS]\n");
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // every thread inherits the mask; sigwait below

  ServiceOptions o;
  o.host_name = argv[2];
  o.listen = std::string("127.0.0.1:") + argv[3];
  o.hosts[argv[4]] = "127.0.0.1";
  auto svc = ReplicationService::open(argv[1], o);
  if (!svc) {
    std::fprintf(stderr, "open: %s\n", svc.status().ToString().c_str());
    return 1;
  }
  auto wait = [](Result<std::shared_ptr<Job>> j) {
    if (!j) return j.status();
    (*j)->wait(std::chrono::milliseconds(-1));
    return (*j)->outcome();
  };
  Status st = wait((*svc)->modify_service_settings(
      R"({"__CLASS": "Msvm_ReplicationServiceSettingData", "RecoveryServerEnabled": true, "AllowedAuthenticationType": 1})"));
  bool have_entry = false;
  for (const auto& e : (*svc)->list_authorization_entries())
    if (e.string_or_null("AllowedPrimaryHostSystem") == std::string(argv[4])) have_entry = true;
  if (st.ok() && !have_entry)
    st = wait((*svc)->add_authorization_entry(
        std::string(R"({"__CLASS": "Msvm_ReplicationAuthorizationSettingData", "AllowedPrimaryHostSystem": ")") + argv[4] +
        R"(", "TrustGroup": "DEFAULT", "ReplicaStorageLocation": ")" + argv[5] + "\"}"));
  if (!st.ok()) {
    std::fprintf(stderr, "configure: %s\n", st.ToString().c_str());
    return 1;
  }
  std::printf("ready %u\n", (*svc)->replicator().listen_port());
  std::fflush(stdout);
  if (argc == 8) {
    auto job = (*svc)->reverse_replication_relationship(argv[6], argv[7]);
    if (!job) {
      std::fprintf(stderr, "reverse: %s\n", job.status().ToString().c_str());
      return 1;
    }
    (*job)->wait(std::chrono::milliseconds(-1));
    std::printf("reversed %u\n", static_cast<unsigned>(to_number((*job)->state())));
    std::fflush(stdout);
  }
  int sig = 0;
  sigwait(&set, &sig);
  svc->reset();
  return 0;
}
