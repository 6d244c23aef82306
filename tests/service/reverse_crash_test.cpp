// A reverse interrupted at random moments: cancelled through its job, or either service
// killed with SIGKILL (a real separate process, vmrepl_test_host). Once both sides are up
// again each is in its prior state or the reverse completed, never a mix; the old primary's
// disks are exactly as before when it did not complete; a second reverse then succeeds.
// VMREPL_CRASH_TRIALS raises the trial count (soak).
#include <boost/test/unit_test.hpp>
#include <random>
#include <thread>

#include "core/blocks/disk_scanner.h"
#include "core/blocks/merkle.h"
#include "core/service/replication_service.h"
#include "tests/service/two_hosts.h"

using namespace vmrepl;
using namespace vmrepl::test;

namespace {

using Pair = std::pair<uint64_t, uint64_t>;

int trials() {
  const char* env = std::getenv("VMREPL_CRASH_TRIALS");
  return env ? std::max(1, std::atoi(env)) : 10;
}

std::string reverse_settings(const std::string& old_primary, uint16_t port) {
  return R"({"RecoveryConnectionPoint": ")" + old_primary + R"(", "RecoveryServerPortNumber": )" +
         std::to_string(port) + R"(, "AuthenticationType": 1, "ReplicationInterval": 300, "RecoveryHistory": 3})";
}

// A planned failover A -> B of a replicated VM; B then rewrites 8% of its disk, so the reverse
// has enough to send to be interrupted in the middle.
struct Scenario {
  Hosts h;
  uint16_t a_port = 0;
  std::string id, a_disk_before, b_disk;

  explicit Scenario(int seed) {
    a_port = h.symmetric();
    gen("mixed " + h.dir + "/src.img 48 " + std::to_string(seed));
    id = h.define("crash01", h.dir + "/src.img");
    wait_ok(h.a->create_replication_relationship("crash01", h.settings(3, false)));
    wait_ok(h.a->start_replication("crash01", 1, "", ""));
    wait_ok(h.a->request_replication_state_change("crash01", 4));
    wait_ok(h.b->initiate_failover(id, ""));
    b_disk = *h.b->disk_path(id, 0);
    gen("modify " + b_disk + " 8 " + std::to_string(seed + 1));
    a_disk_before = read_file(h.primary_disk("crash01"));
  }

  // Waits until both sides agree: prior (A 1/4, B 2/5) or reversed (A 2/3, B 1/3); then
  // checks the bytes. Returns whether the reverse completed.
  bool settled() {
    const Pair prior_a{1, 4}, prior_b{2, 5}, done_a{2, 3}, done_b{1, 3};
    Pair a{}, b{};
    for (int i = 0; i < 300; ++i) {
      a = mode_state(*h.a, id);
      b = mode_state(*h.b, id);
      if (b == done_b && a == done_a) break;
      // Prior on both sides, and the old primary's disks back where they were.
      if (b == prior_b && a == prior_a && read_file(h.primary_disk("crash01")) == a_disk_before) break;
      std::this_thread::sleep_for(50ms);
    }
    BOOST_TEST_INFO("old primary " << a.first << "/" << a.second << ", new primary " << b.first << "/" << b.second);
    const bool done = b == done_b && a == done_a;
    BOOST_REQUIRE(done || (b == prior_b && a == prior_a));
    if (done)
      BOOST_TEST(read_file(replica_image(*h.a, id)) == read_file(b_disk));
    else
      BOOST_TEST(read_file(h.primary_disk("crash01")) == a_disk_before);
    return done;
  }

  void reverse_again_if_needed(bool done) {
    if (done) return;
    wait_ok(h.b->reverse_replication_relationship(id, reverse_settings("hv-a", a_port)));
    BOOST_TEST((mode_state(*h.b, id) == Pair{1, 3}));
    BOOST_TEST((mode_state(*h.a, id) == Pair{2, 3}));
    BOOST_TEST(read_file(replica_image(*h.a, id)) == read_file(b_disk));
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(reverse_crash_tests)

BOOST_AUTO_TEST_CASE(cancel_at_random_moments) {
  std::mt19937 rng(7);
  int completed = 0;
  for (int trial = 0; trial < trials(); ++trial) {
    BOOST_TEST_CONTEXT("trial " << trial) {
      Scenario s(100 + trial);
      auto job = s.h.b->reverse_replication_relationship(s.id, reverse_settings("hv-a", s.a_port));
      BOOST_REQUIRE(job.ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 25)(rng)));
      (*job)->request_state_change(4);  // may arrive after the job ended: then ignored
      BOOST_REQUIRE((*job)->wait(600s).ok());
      const auto st = to_number((*job)->state());
      BOOST_TEST((st == 7 || st == 8 || st == 10));
      if (st != 7) BOOST_TEST(!(*job)->outcome().message().empty());
      const bool done = s.settled();
      BOOST_TEST(done == (st == 7));
      completed += done;
      s.reverse_again_if_needed(done);
    }
  }
  BOOST_TEST_MESSAGE("cancel: " << completed << " of " << trials() << " reverses completed before the cancel");
}

BOOST_AUTO_TEST_CASE(kill_the_old_primary_during_a_reverse) {
  std::mt19937 rng(11);
  int completed = 0;
  for (int trial = 0; trial < trials(); ++trial) {
    BOOST_TEST_CONTEXT("trial " << trial) {
      Scenario s(200 + trial);
      const std::string a_root = s.h.dir + "/a";
      s.h.a.reset();
      HostProcess a;
      a.start({a_root, "hv-a", std::to_string(s.a_port), "hv-b", a_root});
      auto job = s.h.b->reverse_replication_relationship(s.id, reverse_settings("hv-a", s.a_port));
      BOOST_REQUIRE(job.ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 80)(rng)));
      a.kill9();
      BOOST_REQUIRE((*job)->wait(600s).ok());
      s.h.a = Hosts::open("hv-a", a_root, "{\"hosts\": {\"hv-b\": \"127.0.0.1\"}}", s.a_port);
      const bool done = s.settled();
      completed += done;
      s.reverse_again_if_needed(done);
    }
  }
  BOOST_TEST_MESSAGE("kill the old primary: " << completed << " of " << trials() << " reverses completed");
}

BOOST_AUTO_TEST_CASE(kill_the_new_primary_during_a_reverse) {
  std::mt19937 rng(13);
  int completed = 0;
  for (int trial = 0; trial < trials(); ++trial) {
    BOOST_TEST_CONTEXT("trial " << trial) {
      Scenario s(300 + trial);
      const std::string b_root = s.h.dir + "/b";
      const uint16_t b_port = s.h.port;
      s.h.b.reset();
      HostProcess b;
      b.start({b_root, "hv-b", std::to_string(b_port), "hv-a", s.h.dir + "/b-replicas", s.id,
               reverse_settings("hv-a", s.a_port)});
      std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 120)(rng)));
      b.kill9();
      s.h.b = Hosts::open("hv-b", b_root, "{\"hosts\": {\"hv-a\": \"127.0.0.1\"}}", b_port);
      const bool done = s.settled();
      completed += done;
      s.reverse_again_if_needed(done);
    }
  }
  BOOST_TEST_MESSAGE("kill the new primary: " << completed << " of " << trials() << " reverses completed");
}

BOOST_AUTO_TEST_CASE(a_cut_network_fails_the_reverse_with_32777_and_a_second_reverse_succeeds) {
  Scenario s(400);
  const std::string a_root = s.h.dir + "/a", b_root = s.h.dir + "/b";
  const uint16_t b_port = s.h.port;
  s.h.a.reset();
  HostProcess a;
  a.start({a_root, "hv-a", std::to_string(s.a_port), "hv-b", a_root});
  // The new primary with a short I/O timeout; the old primary stops answering (its process is
  // frozen: connections stay open, nothing comes back), as behind a cut link.
  s.h.b.reset();
  s.h.b = Hosts::open("hv-b", b_root, R"({"hosts": {"hv-a": "127.0.0.1"}, "io_timeout_ms": 1500})", b_port);
  ::kill(a.pid, SIGSTOP);
  Status st = wait_fail(s.h.b->reverse_replication_relationship(s.id, reverse_settings("hv-a", s.a_port)));
  ::kill(a.pid, SIGCONT);
  BOOST_TEST(st.number() == 32777u);
  BOOST_TEST_MESSAGE("cut network: " << st.ToString());
  BOOST_TEST((mode_state(*s.h.b, s.id) == Pair{2, 5}));
  // The link is back: the same reverse succeeds.
  wait_ok(s.h.b->reverse_replication_relationship(s.id, reverse_settings("hv-a", s.a_port)));
  BOOST_TEST((mode_state(*s.h.b, s.id) == Pair{1, 3}));
  a.stop();
  s.h.a = Hosts::open("hv-a", a_root, "{\"hosts\": {\"hv-b\": \"127.0.0.1\"}}", s.a_port);
  BOOST_TEST((mode_state(*s.h.a, s.id) == Pair{2, 3}));
  BOOST_TEST(read_file(replica_image(*s.h.a, s.id)) == read_file(s.b_disk));
}

BOOST_AUTO_TEST_SUITE_END()
