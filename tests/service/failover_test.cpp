// Failover and ReverseReplicationRelationship between two services on 127.0.0.1: planned
// failover, reverse and failback round trips; unplanned failover where both sides diverged,
// with and without the old primary's history; every precondition's code; revert, commit and
// test failover. Disks are compared byte for byte; what a reverse sends is compared with the
// blocks that really differ.
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <thread>

#include "core/blocks/disk_scanner.h"
#include "core/service/replication_service.h"
#include "tests/service/two_hosts.h"

using namespace vmrepl;
using namespace vmrepl::test;

namespace {

constexpr uint64_t kBlock = 64 * 1024;

uint32_t n(Code c) { return static_cast<uint32_t>(c); }

BlockIndex index_of(const std::string& path) {
  auto idx = scan_file(path);
  BOOST_REQUIRE_MESSAGE(idx.ok(), idx.status().ToString());
  return std::move(idx).value();
}

// Blocks where `x` or `y` differs from `base`.
uint64_t union_changed(const BlockIndex& base, const BlockIndex& x, const BlockIndex& y) {
  uint64_t n = 0;
  for (uint64_t i = 0; i < base.block_count(); ++i) n += (x.entry(i) != base.entry(i) || y.entry(i) != base.entry(i));
  return n;
}

uint64_t u64(const Instance& i, const char* name) {
  auto v = i.get_u64(name);
  BOOST_REQUIRE_MESSAGE(v.ok(), name << ": " << v.status().ToString());
  return *v;
}

// Settings a reverse passes: the recovery side is the old primary.
std::string reverse_settings(const std::string& old_primary, uint16_t port, const std::string& extra = "") {
  return R"({"RecoveryConnectionPoint": ")" + old_primary + R"(", "RecoveryServerPortNumber": )" +
         std::to_string(port) + R"(, "AuthenticationType": 1, "ReplicationInterval": 300, "RecoveryHistory": 3,
            "CompressionEnabled": true)" + extra + "}";
}

// A replicated VM on A (mixed image, `mib` MiB), IR done plus one cycle.
std::string replicated(Hosts& h, const std::string& name, int mib) {
  gen("mixed " + h.dir + "/" + name + ".img " + std::to_string(mib) + " 5");
  std::string id = h.define(name, h.dir + "/" + name + ".img");
  wait_ok(h.a->create_replication_relationship(name, h.settings(3)));
  wait_ok(h.a->start_replication(name, 1, "", ""));
  gen("modify " + h.primary_disk(name) + " 2 61");
  wait_ok(h.a->replicate_now(name));
  return id;
}

// A writer that reports its writes: 6 writes of 64 KiB of fresh bytes at 4 KiB-aligned
// offsets (each touching two blocks), each marked in the change feed first.
void write_marked(ReplicationService& s, const std::string& vm, uint32_t seed) {
  const std::string path = disk(s, vm);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  std::string buf(65536, '\0');
  for (int k = 0; k < 6; ++k) {
    for (auto& c : buf) c = static_cast<char>(seed = seed * 1664525u + 1013904223u);
    const uint64_t off = uint64_t{seed % 400} * 65536 + 4096;
    BOOST_REQUIRE(s.disk_mark_dirty(vm, 0, off, 65536).ok());
    f.seekp(static_cast<std::streamoff>(off));
    f.write(buf.data(), 65536);
    f.flush();
  }
}

// Planned failover from `from` to `to` and the reverse on `to`; checks the states and bytes.
void planned_round(ReplicationService& from, ReplicationService& to, const std::string& vm, const std::string& from_name,
                   uint16_t from_port, int seed) {
  BOOST_REQUIRE(from.request_state_change(vm, 3).ok());  // the VM is off
  wait_ok(from.request_replication_state_change(vm, 4));
  BOOST_TEST((mode_state(from, vm) == std::pair<uint64_t, uint64_t>{1, 4}));
  // Prepared: the VM may not start.
  BOOST_TEST(from.request_state_change(vm, 2).number() == n(Code::InvalidState));
  Instance fo = wait_ok(to.initiate_failover(vm, ""));
  BOOST_TEST((mode_state(to, vm) == std::pair<uint64_t, uint64_t>{2, 5}));
  BOOST_TEST(u64(*to.get_system(vm), "FailedOverReplicationType") == 3u);  // planned
  BOOST_TEST(read_file(disk(to, vm)) == read_file(disk(from, vm)));
  // The new primary runs and writes.
  BOOST_REQUIRE(to.request_state_change(vm, 2).ok());
  const BlockIndex before = index_of(disk(to, vm));
  gen("modify " + disk(to, vm) + " 1 " + std::to_string(seed));
  const uint64_t changed = union_changed(before, index_of(disk(to, vm)), before);
  BOOST_REQUIRE(changed > 0);
  Instance rev = wait_ok(to.reverse_replication_relationship(vm, reverse_settings(from_name, from_port)));
  BOOST_TEST((mode_state(to, vm) == std::pair<uint64_t, uint64_t>{1, 3}));
  BOOST_TEST((mode_state(from, vm) == std::pair<uint64_t, uint64_t>{2, 3}));
  BOOST_TEST(read_file(replica_image(from, vm)) == read_file(disk(to, vm)));
  // Only what the new primary changed travelled (within 2%, plus nothing else).
  BOOST_TEST(u64(rev, "BlocksSent") == changed);
  BOOST_TEST(u64(rev, "DataBytesSent") <= changed * kBlock * 102 / 100);
  BOOST_TEST(*rev.get_bool("OldPrimaryCommitted"));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(failover_tests)

BOOST_AUTO_TEST_CASE(planned_failover_reverse_and_three_failback_round_trips) {
  Hosts h;
  const uint16_t a_port = h.symmetric();
  std::string id = replicated(h, "web01", 32);
  for (int round = 0; round < 3; ++round) {
    BOOST_TEST_CONTEXT("round " << round) {
      // A -> B, then replication B -> A goes on with ordinary cycles.
      planned_round(*h.a, *h.b, id, "hv-a", a_port, 300 + round);
      gen("modify " + disk(*h.b, id) + " 1 " + std::to_string(400 + round));
      Instance c = wait_ok(h.b->replicate_now(id));
      BOOST_TEST(read_file(replica_image(*h.a, id)) == read_file(disk(*h.b, id)));
      BOOST_TEST(u64(c, "CycleId") > 0u);
      // Failback: B -> A.
      planned_round(*h.b, *h.a, id, "hv-b", h.port, 500 + round);
      gen("modify " + disk(*h.a, id) + " 1 " + std::to_string(600 + round));
      wait_ok(h.a->replicate_now(id));
      BOOST_TEST(read_file(replica_image(*h.b, id)) == read_file(disk(*h.a, id)));
    }
  }
}

BOOST_AUTO_TEST_CASE(unplanned_failover_both_sides_diverged) {
  for (bool drop_history : {false, true}) {
    BOOST_TEST_CONTEXT("old primary's history " << (drop_history ? "deleted" : "kept")) {
      Hosts h;
      const uint16_t a_port = h.symmetric();
      std::string id = replicated(h, "db01", 32);
      // Two more cycles the replica receives, then writes it never gets.
      for (int c = 0; c < 2; ++c) {
        gen("modify " + h.primary_disk("db01") + " 1 " + std::to_string(70 + c));
        wait_ok(h.a->replicate_now("db01"));
      }
      gen("modify " + h.primary_disk("db01") + " 1 79");
      // Fail over to an older point: the last two shipped cycles are discarded too.
      auto points = h.b->list_recovery_points(id);
      BOOST_REQUIRE(points.ok() && points->size() >= 3);
      const std::string older = *(*points)[points->size() - 3].get_string("InstanceID");
      wait_ok(h.b->initiate_failover(id, older));
      wait_ok(h.b->commit_failover(id));
      BOOST_TEST((mode_state(*h.b, id) == std::pair<uint64_t, uint64_t>{2, 6}));
      BOOST_TEST(h.b->list_recovery_points(id)->size() == 1u);
      const BlockIndex k = index_of(disk(*h.b, id));
      BOOST_REQUIRE(h.b->request_state_change(id, 2).ok());
      gen("modify " + disk(*h.b, id) + " 1 81");
      BOOST_REQUIRE(h.b->request_state_change(id, 3).ok());
      // The old host comes back: made a replica first, then the reverse and the IR.
      wait_ok(h.a->request_replication_state_change("db01", 2));
      BOOST_TEST((mode_state(*h.a, id) == std::pair<uint64_t, uint64_t>{2, 2}));
      if (drop_history) {
        auto ref = h.a->replicator().find_vm(id);
        sfs::remove_all(Replicator::primary_folder(ref->vm) + "/cycles");
      }
      const uint64_t diverged = union_changed(k, index_of(h.primary_disk("db01")), index_of(disk(*h.b, id)));
      Instance rev = wait_ok(h.b->reverse_replication_relationship(id, reverse_settings("hv-a", a_port)));
      BOOST_TEST(*rev.get_string("ChangeSource") == (drop_history ? "merkle" : "scan"));
      BOOST_TEST(*rev.get_string("OldPrimaryChangeSource") == (drop_history ? "merkle" : "scan"));
      BOOST_TEST((mode_state(*h.b, id) == std::pair<uint64_t, uint64_t>{1, 1}));
      BOOST_TEST((mode_state(*h.a, id) == std::pair<uint64_t, uint64_t>{2, 2}));
      Instance ir = wait_ok(h.b->start_replication(id, 1, "", ""));
      BOOST_TEST((mode_state(*h.b, id) == std::pair<uint64_t, uint64_t>{1, 3}));
      BOOST_TEST((mode_state(*h.a, id) == std::pair<uint64_t, uint64_t>{2, 3}));
      BOOST_TEST(read_file(replica_image(*h.a, id)) == read_file(disk(*h.b, id)));
      const uint64_t sent = u64(rev, "DataBytesSent") + u64(ir, "DataBytesSent");
      BOOST_TEST_MESSAGE("diverged " << diverged << " blocks, sent " << sent << " bytes");
      BOOST_TEST(sent <= diverged * kBlock * 105 / 100);
      BOOST_TEST(u64(ir, "BlocksSent") == 0u);  // the reverse already sent everything
    }
  }
}

BOOST_AUTO_TEST_CASE(reverse_takes_both_sides_changes_from_their_change_feeds) {
  Hosts h;
  const uint16_t a_port = h.symmetric();
  gen("mixed " + h.dir + "/feed.img 32 17");
  std::string id = h.define("feed01", h.dir + "/feed.img");
  wait_ok(h.a->create_replication_relationship("feed01", h.settings(3)));
  BOOST_REQUIRE(h.a->disk_mark_dirty("feed01", 0, 0, 4096).ok());  // the writer attaches its feed
  wait_ok(h.a->start_replication("feed01", 1, "", ""));
  for (uint32_t c = 0; c < 3; ++c) {
    write_marked(*h.a, "feed01", 10 + c);
    wait_ok(h.a->replicate_now("feed01"));
  }
  write_marked(*h.a, "feed01", 20);  // never shipped
  // The replica side's writer attaches too; the failover makes its feed exact.
  BOOST_REQUIRE(h.b->disk_mark_dirty(id, 0, 0, 4096).ok());
  auto points = h.b->list_recovery_points(id);
  BOOST_REQUIRE(points.ok() && points->size() >= 3u);
  wait_ok(h.b->initiate_failover(id, *(*points)[points->size() - 2].get_string("InstanceID")));
  wait_ok(h.b->commit_failover(id));
  const BlockIndex k = index_of(disk(*h.b, id));
  write_marked(*h.b, id, 30);
  wait_ok(h.a->request_replication_state_change("feed01", 2));
  const uint64_t diverged = union_changed(k, index_of(h.primary_disk("feed01")), index_of(disk(*h.b, id)));
  Instance rev = wait_ok(h.b->reverse_replication_relationship(id, reverse_settings("hv-a", a_port)));
  BOOST_TEST(*rev.get_string("ChangeSource") == "change-feed");
  BOOST_TEST(*rev.get_string("OldPrimaryChangeSource") == "change-feed");
  BOOST_TEST(u64(rev, "NewPrimaryChangedBlocks") > 0u);
  BOOST_TEST(u64(rev, "OldPrimaryChangedBlocks") > 0u);
  Instance ir = wait_ok(h.b->start_replication(id, 1, "", ""));
  BOOST_TEST(read_file(replica_image(*h.a, id)) == read_file(disk(*h.b, id)));
  BOOST_TEST(u64(rev, "BlocksSent") <= diverged + diverged / 20);
  BOOST_TEST(u64(ir, "BlocksSent") == 0u);
  // From here the new primary's cycles take its writes from the same feed.
  write_marked(*h.b, id, 40);
  Instance c = wait_ok(h.b->replicate_now(id));
  BOOST_TEST(*c.get_string("ChangeSource") == "change-feed");
  BOOST_TEST(read_file(replica_image(*h.a, id)) == read_file(disk(*h.b, id)));
}

BOOST_AUTO_TEST_CASE(reverse_preconditions_answer_at_once_with_their_code) {
  Hosts h;
  const uint16_t a_port = h.symmetric();
  std::string id = replicated(h, "app01", 8);
  const std::string ok = reverse_settings("hv-a", a_port);
  auto code_of = [](Result<std::shared_ptr<Job>> r) { return r.ok() ? 0u : r.status().number(); };
  auto msg_of = [](Result<std::shared_ptr<Job>> r) { return r.ok() ? std::string() : r.status().message(); };
  // Unknown VM, malformed path.
  BOOST_TEST(code_of(h.b->reverse_replication_relationship("nope", ok)) == n(Code::FileNotFound));
  BOOST_TEST(code_of(h.b->reverse_replication_relationship("Msvm_ComputerSystem.Name=", ok)) == n(Code::InvalidParameter));
  // Wrong mode: the primary.
  auto m = h.a->reverse_replication_relationship("app01", ok);
  BOOST_TEST(code_of(m) == n(Code::InvalidState));
  BOOST_TEST(msg_of(h.a->reverse_replication_relationship("app01", ok)).find("ReplicationMode 1") != std::string::npos);
  // Wrong state: a replica that is replicating (3).
  BOOST_TEST(code_of(h.b->reverse_replication_relationship(id, ok)) == n(Code::InvalidState));
  BOOST_TEST(msg_of(h.b->reverse_replication_relationship(id, ok)).find("ReplicationState 3") != std::string::npos);
  // Every state but 5 and 6: 32775 naming the state found.
  {
    auto ref = h.b->replicator().find_vm(id);
    BOOST_REQUIRE(ref.ok());
    auto rel = h.b->replicator().relationship(*ref);
    BOOST_REQUIRE(rel.ok() && *rel);
    const Relationship saved = **rel;
    for (uint16_t st = 0; st <= 21; ++st) {
      if (st == 5 || st == 6) continue;
      Relationship r = saved;
      r.state = *ReplicationState_from_number(st);
      BOOST_REQUIRE(h.b->replicator().put_relationship(*ref, r).ok());
      auto res = h.b->reverse_replication_relationship(id, ok);
      BOOST_TEST_CONTEXT("state " << st) {
        BOOST_TEST(code_of(res) == n(Code::InvalidState));
        BOOST_TEST(msg_of(h.b->reverse_replication_relationship(id, ok)).find("ReplicationState " + std::to_string(st) + " (") !=
                   std::string::npos);
      }
    }
    BOOST_REQUIRE(h.b->replicator().put_relationship(*ref, saved).ok());
  }
  wait_ok(h.b->initiate_failover(id, ""));
  // Setting data: malformed, foreign, port 0, thumbprint, disks, wrong old primary.
  BOOST_TEST(code_of(h.b->reverse_replication_relationship(id, "{not json")) == n(Code::InvalidParameter));
  BOOST_TEST(code_of(h.b->reverse_replication_relationship(id, reverse_settings("hv-a", a_port, R"(, "InstanceID": "Microsoft:00000000-0000-0000-0000-000000000001\\HVR\\0")"))) ==
             n(Code::InvalidParameter));
  BOOST_TEST(msg_of(h.b->reverse_replication_relationship(id, reverse_settings("hv-a", a_port, R"(, "InstanceID": "x")"))).find("InstanceID") == 0u);
  BOOST_TEST(msg_of(h.b->reverse_replication_relationship(id, reverse_settings("hv-a", 0))).find("RecoveryServerPortNumber") == 0u);
  auto thumb = h.b->reverse_replication_relationship(id, R"({"RecoveryConnectionPoint": "hv-a", "RecoveryServerPortNumber": 1, "AuthenticationType": 2})");
  BOOST_TEST(code_of(thumb) == n(Code::InvalidParameter));
  BOOST_TEST(msg_of(h.b->reverse_replication_relationship(id, R"({"RecoveryConnectionPoint": "hv-a", "RecoveryServerPortNumber": 1, "AuthenticationType": 2})")).find("CertificateThumbPrint") == 0u);
  BOOST_TEST(msg_of(h.b->reverse_replication_relationship(id, reverse_settings("hv-c", a_port))).find("RecoveryConnectionPoint") == 0u);
  BOOST_TEST(msg_of(h.b->reverse_replication_relationship(id, reverse_settings("hv-a", a_port, R"(, "IncludedDisks": ["other"])"))).find("IncludedDisks") == 0u);

  // In the job: the old primary is not prepared (state 3) -> 32775 naming its state.
  Status st = wait_fail(h.b->reverse_replication_relationship(id, ok));
  BOOST_TEST(st.number() == n(Code::InvalidState));
  BOOST_TEST(st.message().find("ReplicationState 3") != std::string::npos);
  // Its VM running -> 32774.
  BOOST_REQUIRE(h.a->request_state_change("app01", 2).ok());
  st = wait_fail(h.b->reverse_replication_relationship(id, ok));
  BOOST_TEST(st.number() == n(Code::SystemInUse));
  BOOST_REQUIRE(h.a->request_state_change("app01", 3).ok());
  // An old primary whose entries do not admit the new primary -> 32769.
  wait_ok(h.a->remove_authorization_entry("hv-b"));
  wait_ok(h.a->request_replication_state_change("app01", 2));
  st = wait_fail(h.b->reverse_replication_relationship(id, ok));
  BOOST_TEST(st.number() == n(Code::AccessDenied));
  // Nothing moved on either side; with the entry back the reverse succeeds.
  BOOST_TEST((mode_state(*h.b, id) == std::pair<uint64_t, uint64_t>{2, 5}));
  BOOST_TEST((mode_state(*h.a, id) == std::pair<uint64_t, uint64_t>{2, 2}));
  h.symmetric();
  wait_ok(h.b->reverse_replication_relationship(id, ok));
  BOOST_TEST((mode_state(*h.b, id) == std::pair<uint64_t, uint64_t>{1, 1}));
}

BOOST_AUTO_TEST_CASE(revert_commit_and_test_failover) {
  Hosts h;
  h.symmetric();
  std::string id = replicated(h, "fs01", 16);
  // Prepare, then cancel on the primary: back to 3, the VM may start.
  wait_ok(h.a->request_replication_state_change("fs01", 4));
  BOOST_TEST((mode_state(*h.a, id) == std::pair<uint64_t, uint64_t>{1, 4}));
  BOOST_TEST(h.b->list_recovery_points(id)->back().get_string("VirtualSystemType").value() ==
             "Microsoft:Hyper-V:Snapshot:Replica:PlannedFailover");
  wait_ok(h.a->revert_failover("fs01"));
  BOOST_TEST((mode_state(*h.a, id) == std::pair<uint64_t, uint64_t>{1, 3}));

  // A running primary blocks the failover (split brain): 32774 in the job.
  BOOST_REQUIRE(h.a->request_state_change("fs01", 2).ok());
  BOOST_TEST(wait_fail(h.b->initiate_failover(id, "")).number() == n(Code::SystemInUse));
  BOOST_TEST((mode_state(*h.b, id) == std::pair<uint64_t, uint64_t>{2, 3}));
  // A replica that is not failed over may not start.
  BOOST_TEST(h.b->request_state_change(id, 2).number() == n(Code::InvalidState));

  // Test failover while cycles go on.
  Instance t = wait_ok(h.b->test_replica_system(id, ""));
  const std::string test_vm = *t.get_string("ResultingSystem");
  BOOST_TEST(*h.b->get_system(test_vm)->get_string("ElementName") == "fs01 - Test");
  BOOST_TEST(u64(*h.b->get_system(test_vm), "ReplicationMode") == 3u);
  BOOST_TEST(read_file(disk(*h.b, test_vm)) == read_file(replica_image(*h.b, id)));
  BOOST_TEST(h.b->test_replica_system(id, "").status().number() == n(Code::InvalidState));  // one at a time
  gen("modify " + h.primary_disk("fs01") + " 2 91");
  wait_ok(h.a->replicate_now("fs01"));
  BOOST_TEST(read_file(replica_image(*h.b, id)) == read_file(h.primary_disk("fs01")));
  BOOST_TEST(h.b->destroy_system(test_vm).ok());
  wait_ok(h.b->test_replica_system(id, ""));  // another one now

  // Failover to the latest point, revert: the failover disk is dropped, replication resumes.
  BOOST_REQUIRE(h.a->request_state_change("fs01", 3).ok());
  wait_ok(h.b->initiate_failover(id, ""));
  BOOST_TEST(read_file(disk(*h.b, id)) == read_file(h.primary_disk("fs01")));
  wait_ok(h.b->revert_failover(id));
  BOOST_TEST((mode_state(*h.b, id) == std::pair<uint64_t, uint64_t>{2, 3}));
  BOOST_TEST(allocated(disk(*h.b, id)) == 0u);
  gen("modify " + h.primary_disk("fs01") + " 1 92");
  wait_ok(h.a->replicate_now("fs01"));
  BOOST_TEST(read_file(replica_image(*h.b, id)) == read_file(h.primary_disk("fs01")));

  // Commit to an older point: it becomes the only point and the replica image goes back to it.
  auto points = h.b->list_recovery_points(id);
  BOOST_REQUIRE(points->size() >= 2u);
  const std::string older = *(*points)[points->size() - 2].get_string("InstanceID");
  wait_ok(h.b->initiate_failover(id, older));
  const std::string at_point = read_file(disk(*h.b, id));
  BOOST_TEST(at_point != read_file(h.primary_disk("fs01")));
  wait_ok(h.b->commit_failover(id));
  BOOST_TEST((mode_state(*h.b, id) == std::pair<uint64_t, uint64_t>{2, 6}));
  BOOST_TEST(h.b->list_recovery_points(id)->size() == 1u);
  BOOST_TEST(read_file(replica_image(*h.b, id)) == at_point);
  // Commit and revert need state 5.
  BOOST_TEST(h.b->commit_failover(id).status().number() == n(Code::InvalidState));
  BOOST_TEST(h.b->revert_failover(id).status().number() == n(Code::InvalidState));
}

BOOST_AUTO_TEST_SUITE_END()
