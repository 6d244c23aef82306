// Failover, test failover and ReverseReplicationRelationship (spec §8-10), on the Replicator.
//
// Replica side. InitiateFailover materializes a recovery point into the replica VM's own disks
// (vms/<GUID>/disk<N>.img; the replica store under replica/ stays intact) and saves the index
// of what it wrote (repl/failover-disk<N>.idx): the common point a reverse starts from.
// RevertFailover empties those disks again; CommitFailover makes the point the only one.
//
// Reverse, run by the new primary B (the failed-over replica) against the old primary A:
//   1. reverse_begin: A checks that it may become B's replica (authorization at hello, VM off,
//      state 4, or mode 2 state 2 after an unplanned failover) and answers the blocks it
//      changed after the common point k: its per-cycle lists of cycles after k plus what its
//      change feed, or a scan against its last acknowledged index, finds. Without that
//      history it answers "merkle" and its full index instead.
//   2. B adds the blocks it changed since k (its change feed, or a scan against the failover
//      index) and sends its bytes of the union as one cycle r. A applies the cycle through a
//      replica store built in place from its own disks (undo log; so the apply can be undone
//      at any moment, and is, after a crash), checks that its Merkle roots equal B's, and acks:
//      A is now prepared, still showing its prior state.
//   3. B commits (one catalog write: mode 1), then tells A, which commits (mode 2). A prepared
//      reverse that never hears the outcome asks B (at start, and when the session ends); B
//      answers from its relationship. So each side is either as before or reversed.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/blocks/disk_scanner.h"
#include "core/blocks/merkle.h"
#include "core/blocks/sparse_io.h"
#include "core/engine/engine_detail.h"
#include "core/engine/replica_session.h"
#include "core/engine/replicator.h"
#include "core/model/cim_datetime.h"
#include "core/settings/json.h"

namespace vmrepl {

using json = nlohmann::json;
namespace proto = protocol;
using engine_detail::block_sets_from_json;
using engine_detail::call;
using engine_detail::file_exists;
using engine_detail::fsync_dir;
using engine_detail::make_placeholder;
using engine_detail::fetch_index;
using engine_detail::mkdirs;
using engine_detail::mode_text;
using engine_detail::now_us;
using engine_detail::remove_tree;
using engine_detail::state_text;

namespace {

Status wrong_state(const VmRecord& vm, const Relationship& r, std::string_view want) {
  return Status::InvalidState("VM " + vm.name + " is in ReplicationState " + state_text(r.state) + " (mode " +
                              mode_text(r.mode) + "); " + std::string(want));
}

}  // namespace

struct Replicator::ReverseRun {
  std::string source;      // ours: change-feed, scan or merkle
  std::string old_source;  // the old primary's: change-feed, scan or merkle
  uint64_t common_point = 0, cycle = 0;
  uint64_t old_primary_blocks = 0, new_primary_blocks = 0;
  uint64_t blocks_sent = 0, data_bytes = 0, wire_sent = 0, wire_total = 0;
  bool planned = false, old_primary_told = false;
  std::vector<BlockHash> roots;
};

std::string Replicator::failover_index_path(const VmRecord& vm, uint32_t disk) {
  return primary_folder(vm) + "/failover-disk" + std::to_string(disk) + ".idx";
}

// ---- primary: prepare (4), make replica (2) ------------------------------------------------

Result<std::shared_ptr<Job>> Replicator::prepare_failover(const VmRef& vm) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || (*r)->mode != ReplicationMode::Primary)
    return Status::InvalidState("VM " + vm.vm.name + " is not a primary (ReplicationMode " +
                                mode_text(*r ? (*r)->mode : ReplicationMode::None) +
                                "); preparing a planned failover (4) needs mode 1");
  if ((*r)->state != ReplicationState::Replicating)
    return wrong_state(vm.vm, **r, "preparing a planned failover (4) needs state 3 (Replicating)");
  if (vm.vm.enabled_state != kEnabledStateOff)
    return Status::SystemInUse("VM " + vm.vm.name + " is running (EnabledState 2); turn it off before preparing "
                               "a planned failover");
  VmRef ref = vm;
  return spawn_job(JobType::InitiateSyncedReplication, "Prepare planned failover " + vm.vm.name, true,
                   [this, ref](ThreadCtx& t) -> Status {
                     disarm_timer(ref.vm.id);
                     // The final delta, recorded by the replica as the PlannedFailover point.
                     Status st = run_cycle(t, ref, CycleKind::Incremental, ReplicationType::Planned);
                     auto lock = vm_lock(ref.vm.id);
                     std::lock_guard<std::mutex> g(*lock);
                     auto cur = relationship(ref);
                     if (!cur) return cur.status();
                     if (!*cur) return Status::InvalidState("the relationship was removed meanwhile");
                     Relationship rel = **cur;
                     if (!st.ok()) {
                       if (rel.state == ReplicationState::Replicating)
                         arm_timer(ref.vm.id, rel.settings.ReplicationInterval);
                       return st.Annotate("the final cycle of the planned failover");
                     }
                     auto now_vm = ref.store->get(ref.vm.id.to_string());
                     if (!now_vm) return now_vm.status();
                     if (now_vm->enabled_state != kEnabledStateOff) {
                       arm_timer(ref.vm.id, rel.settings.ReplicationInterval);
                       return Status::SystemInUse("VM " + ref.vm.name + " was started during the final cycle");
                     }
                     rel.state = ReplicationState::SyncedReplicationComplete;
                     return put_relationship(ref, rel);
                   });
}

Result<std::shared_ptr<Job>> Replicator::make_replica(const VmRef& vm) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || (*r)->mode != ReplicationMode::Primary)
    return Status::InvalidState("VM " + vm.vm.name + " is not a primary (ReplicationMode " +
                                mode_text(*r ? (*r)->mode : ReplicationMode::None) +
                                "); making it a replica (2) needs the old primary, mode 1");
  using RS = ReplicationState;
  const RS s = (*r)->state;
  if (s == RS::Disabled || s == RS::ReadyForReplication || s == RS::WaitingToCompleteInitialReplication || !(*r)->last_cycle)
    return wrong_state(vm.vm, **r, "making it a replica (2) needs a primary that has replicated (state 3, 4, 7-11)");
  if (vm.vm.enabled_state != kEnabledStateOff)
    return Status::SystemInUse("VM " + vm.vm.name + " is running (EnabledState 2); turn it off before making it a replica");
  VmRef ref = vm;
  return spawn_job(JobType::ReplicateStateChange, "Make replica " + vm.vm.name, false, [this, ref](ThreadCtx&) -> Status {
    auto lock = vm_lock(ref.vm.id);
    std::lock_guard<std::mutex> g(*lock);
    auto cur = relationship(ref);
    if (!cur) return cur.status();
    if (!*cur || (*cur)->mode != ReplicationMode::Primary) return Status::InvalidState("the relationship changed meanwhile");
    Relationship rel = **cur;
    disarm_timer(ref.vm.id);
    rel.mode = ReplicationMode::Replica;
    rel.state = ReplicationState::WaitingToCompleteInitialReplication;
    rel.health = ReplicationHealth::Warning;
    rel.health_text = "waiting for the reverse from " + rel.peer_host;
    return put_relationship(ref, rel);
  });
}

// ---- replica: failover ----------------------------------------------------------------------

Status Replicator::primary_vm_running_elsewhere(const VmRecord& vm, const Relationship& rel) {
  if (rel.peer_host.empty() || rel.peer_port == 0) return Status::OK();  // never told its port
  Relationship probe;
  probe.peer_host = rel.peer_host;
  probe.peer_port = rel.peer_port;  // the primary's listener of the relationship's kind
  probe.settings.AuthenticationType = rel.settings.AuthenticationType;
  auto ch = connect_peer(probe);
  if (!ch) return Status::OK();  // unreachable: the unplanned case
  uint64_t seq = 0;
  auto st = call(**ch, ++seq, "status", {{"vm_id", vm.id.to_string()}}, opts_.io_timeout);
  (*ch)->close(Status::OK());
  if (!st) return Status::OK();
  if (st->value("enabled_state", 0) == kEnabledStateRunning && st->value("mode", 0) == to_number(ReplicationMode::Primary))
    return Status::SystemInUse("the primary VM " + vm.name + " is running on " + rel.peer_host +
                               "; failing over now would give two running copies (split brain)");
  return Status::OK();
}

Result<std::shared_ptr<Job>> Replicator::initiate_failover(const VmRef& vm, uint64_t point) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || (*r)->mode != ReplicationMode::Replica)
    return Status::InvalidState("VM " + vm.vm.name + " is not a replica (ReplicationMode " +
                                mode_text(*r ? (*r)->mode : ReplicationMode::None) + "); InitiateFailover needs mode 2");
  using RS = ReplicationState;
  const RS s = (*r)->state;
  if (s != RS::Replicating && s != RS::Suspended && s != RS::Resynchronizing && s != RS::DiskUpdateInProgress)
    return wrong_state(vm.vm, **r, "InitiateFailover needs state 3, 7, 10 or 15");
  if (!(*r)->last_replication_us)
    return Status::InvalidState("VM " + vm.vm.name + " has no LastReplicationTime: nothing was replicated yet");
  if (vm.vm.enabled_state != kEnabledStateOff)
    return Status::SystemInUse("VM " + vm.vm.name + " is running (EnabledState 2); turn it off first");
  auto rs = replica_store(vm);
  if (!rs) return rs.status();
  auto pts = (*rs)->points();
  if (!pts) return pts.status();
  if (pts->empty()) return Status::InvalidState("VM " + vm.vm.name + " has no recovery point");
  const RecoveryPoint* chosen = &pts->back();
  if (point) {
    chosen = nullptr;
    for (const auto& p : *pts)
      if (p.seq == point) chosen = &p;
    if (!chosen) return Status::InvalidParameter("SnapshotSettingData: recovery point " + std::to_string(point) +
                                                 " does not exist for VM " + vm.vm.name);
  }
  const RecoveryPoint p = *chosen;
  const bool latest = p.seq == pts->back().seq;
  Relationship rel = **r;
  const RS prior = rel.state;
  rel.state = RS::FailoverInProgress;
  VMREPL_RETURN_IF_ERROR(put_relationship(vm, rel));
  VmRef ref = vm;
  return spawn_job(JobType::InitiateFailover, "Failover " + vm.vm.name, false,
                   [this, ref, p, latest, prior](ThreadCtx& t) -> Status {
                     auto lock = vm_lock(ref.vm.id);
                     std::lock_guard<std::mutex> g(*lock);
                     auto restore = [&](Status st) {
                       if (auto cur = relationship(ref); cur && *cur) {
                         Relationship back = **cur;
                         back.state = prior;
                         put_relationship(ref, back);
                       }
                       return st;
                     };
                     t.phase("checking that the primary is not running");
                     auto relr = relationship(ref);
                     if (!relr || !*relr) return restore(relr ? Status::InvalidState("relationship gone") : relr.status());
                     Status alive = primary_vm_running_elsewhere(ref.vm, **relr);
                     if (!alive.ok()) return restore(alive);
                     auto store = replica_store(ref);
                     if (!store) return restore(store.status());
                     std::vector<std::string> dest;
                     for (const auto& d : ref.vm.disks) dest.push_back(d.path);
                     t.phase("materializing recovery point " + std::to_string(p.seq));
                     auto m = (*store)->materialize(p.seq, dest);
                     if (!m) return restore(m.status());
                     // The index of the failed-over disks: the point a reverse compares against.
                     VMREPL_RETURN_IF_ERROR(mkdirs(primary_folder(ref.vm)));
                     for (uint32_t d = 0; d < ref.vm.disks.size(); ++d) {
                       Result<BlockIndex> idx = Status::Failed("unset");
                       if (latest) idx = BlockIndex::load(ReplicaSession::index_path(ref.vm, p.seq, d));
                       if (!idx || idx->block_size() != opts_.block_size || idx->algorithm() != opts_.hash) {
                         ScanOptions so;
                         so.algorithm = opts_.hash;
                         so.block_size = opts_.block_size;
                         idx = scan_file(ref.vm.disks[d].path, so);
                       }
                       if (!idx) return restore(idx.status());
                       Status sv = idx->save(failover_index_path(ref.vm, d));
                       if (!sv.ok()) return restore(sv);
                     }
                     // A change feed that exists is now exact: the disks are the point and the
                     // VM has not run. From here it records every write.
                     if (feed_attached(ref.vm)) {
                       auto f = feed(ref);
                       if (!f) return restore(f.status());
                       if ((*f)->open_cycle()) (*f)->abort_cycle(*(*f)->open_cycle());
                       auto fc = (*f)->begin_cycle();
                       if (!fc) return restore(fc.status());
                       VMREPL_RETURN_IF_ERROR((*f)->ack_cycle(fc->epoch));
                     }
                     auto cur = relationship(ref);
                     if (!cur || !*cur) return restore(cur ? Status::InvalidState("relationship gone") : cur.status());
                     Relationship done = **cur;
                     done.state = ReplicationState::Recovered;
                     done.failover_point = p.seq;
                     done.failed_over_type =
                         p.type == RecoveryPointType::PlannedFailover ? ReplicationType::Planned : p.replication_type;
                     done.health = ReplicationHealth::Warning;
                     done.health_text = "failed over to recovery point " + std::to_string(p.seq) + "; not yet reversed";
                     VMREPL_RETURN_IF_ERROR(put_relationship(ref, done));
                     t.result(Property{"RecoveryPointSequence", CimType::UInt64, false, std::vector<Scalar>{p.seq}});
                     t.result(Property{"CopyMethod", CimType::String, false,
                                       std::vector<Scalar>{std::string(m->method() == CopyMethod::Reflink ? "reflink" : "sparse-copy")}});
                     t.result(Property{"BytesCopied", CimType::UInt64, false, std::vector<Scalar>{m->bytes_copied}});
                     t.result(Property{"UndoLogsApplied", CimType::UInt64, false, std::vector<Scalar>{m->undo_logs_applied}});
                     return Status::OK();
                   });
}

Result<std::shared_ptr<Job>> Replicator::revert_failover(const VmRef& vm) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || ((*r)->mode != ReplicationMode::Primary && (*r)->mode != ReplicationMode::Replica))
    return Status::InvalidState("VM " + vm.vm.name + " has no failover to revert (ReplicationMode " +
                                mode_text(*r ? (*r)->mode : ReplicationMode::None) + ")");
  const Relationship& rel = **r;
  VmRef ref = vm;
  if (rel.mode == ReplicationMode::Primary) {
    if (rel.state != ReplicationState::SyncedReplicationComplete)
      return wrong_state(vm.vm, rel, "RevertFailover on a primary cancels a prepared failover: it needs state 4");
    return spawn_job(JobType::RevertFailover, "Cancel planned failover " + vm.vm.name, false, [this, ref](ThreadCtx&) -> Status {
      auto lock = vm_lock(ref.vm.id);
      std::lock_guard<std::mutex> g(*lock);
      auto cur = relationship(ref);
      if (!cur) return cur.status();
      if (!*cur || (*cur)->state != ReplicationState::SyncedReplicationComplete || !(*cur)->reverse_json.empty())
        return Status::InvalidState("the relationship changed meanwhile");
      Relationship back = **cur;
      back.state = ReplicationState::Replicating;
      VMREPL_RETURN_IF_ERROR(put_relationship(ref, back));
      arm_timer(ref.vm.id, back.settings.ReplicationInterval);
      return Status::OK();
    });
  }
  if (rel.state != ReplicationState::Recovered && rel.state != ReplicationState::FailoverInProgress)
    return wrong_state(vm.vm, rel, "RevertFailover on a replica needs state 5 (Recovered)");
  if (vm.vm.enabled_state != kEnabledStateOff)
    return Status::SystemInUse("VM " + vm.vm.name + " is running (EnabledState 2); turn it off first");
  return spawn_job(JobType::RevertFailover, "Revert failover " + vm.vm.name, false, [this, ref](ThreadCtx&) -> Status {
    auto lock = vm_lock(ref.vm.id);
    std::lock_guard<std::mutex> g(*lock);
    auto cur = relationship(ref);
    if (!cur) return cur.status();
    if (!*cur || (*cur)->state != ReplicationState::Recovered) return Status::InvalidState("the relationship changed meanwhile");
    // The failover disks are discarded: the replica VM's disks are empty again.
    for (const auto& d : ref.vm.disks) VMREPL_RETURN_IF_ERROR(make_placeholder(d.path, d.size_bytes));
    VMREPL_RETURN_IF_ERROR(fsync_dir(ref.vm.folder));
    for (uint32_t d = 0; d < ref.vm.disks.size(); ++d) std::remove(failover_index_path(ref.vm, d).c_str());
    Relationship back = **cur;
    back.state = ReplicationState::Replicating;
    back.failover_point = 0;
    back.failed_over_type = ReplicationType::None;
    back.health = ReplicationHealth::Ok;
    back.health_text.clear();
    return put_relationship(ref, back);
  });
}

Result<std::shared_ptr<Job>> Replicator::commit_failover(const VmRef& vm) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || (*r)->mode != ReplicationMode::Replica)
    return Status::InvalidState("VM " + vm.vm.name + " is not a replica (ReplicationMode " +
                                mode_text(*r ? (*r)->mode : ReplicationMode::None) + "); CommitFailover needs mode 2");
  if ((*r)->state != ReplicationState::Recovered)
    return wrong_state(vm.vm, **r, "CommitFailover needs state 5 (Recovered)");
  VmRef ref = vm;
  return spawn_job(JobType::CommitFailover, "Commit failover " + vm.vm.name, false, [this, ref](ThreadCtx&) -> Status {
    auto lock = vm_lock(ref.vm.id);
    std::lock_guard<std::mutex> g(*lock);
    auto cur = relationship(ref);
    if (!cur) return cur.status();
    if (!*cur || (*cur)->state != ReplicationState::Recovered) return Status::InvalidState("the relationship changed meanwhile");
    Relationship rel = **cur;
    auto rs = replica_store(ref);
    if (!rs) return rs.status();
    // The other points go: the failover point is the only one left (the replica image too is
    // rolled back to it, so the image stays the common point of a later reverse).
    if ((*rs)->image_seq() != rel.failover_point) VMREPL_RETURN_IF_ERROR((*rs)->rollback_to(rel.failover_point));
    VMREPL_RETURN_IF_ERROR((*rs)->drop_points_except(rel.failover_point));
    rel.state = ReplicationState::Committed;
    return put_relationship(ref, rel);
  });
}

// ---- replica: test failover -----------------------------------------------------------------

Result<std::shared_ptr<Job>> Replicator::test_replica_system(const VmRef& vm, uint64_t point) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || (*r)->mode != ReplicationMode::Replica)
    return Status::InvalidState("VM " + vm.vm.name + " is not a replica (ReplicationMode " +
                                mode_text(*r ? (*r)->mode : ReplicationMode::None) + "); TestReplicaSystem needs mode 2");
  if ((*r)->state != ReplicationState::Replicating && (*r)->state != ReplicationState::Suspended)
    return wrong_state(vm.vm, **r, "TestReplicaSystem needs state 3 or 7");
  if (!(*r)->last_replication_us) return Status::InvalidState("VM " + vm.vm.name + " has no LastReplicationTime");
  if (!(*r)->test_vm.empty())
    return Status::InvalidState("VM " + vm.vm.name + " already has a test VM (" + (*r)->test_vm +
                                "); destroy it first: one test VM at a time");
  const std::string test_name = vm.vm.name + " - Test";
  VMREPL_RETURN_IF_ERROR(validate_vm_name(test_name).Annotate("the test VM's name"));
  VmRef ref = vm;
  return spawn_job(JobType::InitiateTestReplica, "Test failover " + vm.vm.name, false,
                   [this, ref, point, test_name](ThreadCtx& t) -> Status {
                     auto lock = vm_lock(ref.vm.id);
                     std::lock_guard<std::mutex> g(*lock);
                     auto cur = relationship(ref);
                     if (!cur) return cur.status();
                     if (!*cur || !(*cur)->test_vm.empty()) return Status::InvalidState("a test VM exists already");
                     auto rs = replica_store(ref);
                     if (!rs) return rs.status();
                     auto pts = (*rs)->points();
                     if (!pts) return pts.status();
                     if (pts->empty()) return Status::InvalidState("no recovery point");
                     uint64_t seq = point ? point : pts->back().seq;
                     bool found = false;
                     for (const auto& p : *pts) found = found || p.seq == seq;
                     if (!found)
                       return Status::InvalidParameter("SnapshotSettingData: recovery point " + std::to_string(seq) +
                                                       " does not exist");
                     VmDefinition def;
                     def.name = test_name;
                     for (const auto& d : ref.vm.disks) def.disk_sizes.push_back(d.size_bytes);
                     auto tv = ref.store->define(def);
                     if (!tv) return tv.status();
                     VmRef test{ref.store, *tv};
                     std::vector<std::string> dest;
                     for (const auto& d : tv->disks) dest.push_back(d.path);
                     t.phase("materializing recovery point " + std::to_string(seq));
                     auto m = (*rs)->materialize(seq, dest);
                     if (!m) {
                       ref.store->remove(tv->id.to_string());
                       return m.status();
                     }
                     Relationship trel;
                     trel.vm_id = tv->id;
                     trel.mode = ReplicationMode::TestReplica;
                     trel.state = ReplicationState::Disabled;
                     trel.health = ReplicationHealth::Ok;
                     trel.settings = (*cur)->settings;
                     trel.peer_host = ref.vm.id.to_string();  // the replica it was made from
                     trel.failover_point = seq;
                     VMREPL_RETURN_IF_ERROR(put_relationship(test, trel));
                     Relationship rel = **cur;
                     rel.test_vm = tv->id.to_string();
                     rel.stats.last_test_failover_us = now_us();
                     VMREPL_RETURN_IF_ERROR(put_relationship(ref, rel));
                     t.result(Property{"ResultingSystem", CimType::String, false, std::vector<Scalar>{tv->id.to_string()}});
                     t.result(Property{"RecoveryPointSequence", CimType::UInt64, false, std::vector<Scalar>{seq}});
                     return Status::OK();
                   });
}

Status Replicator::forget_test_system(const VmRef& test_vm) {
  auto r = relationship(test_vm);
  if (!r) return r.status();
  if (!*r || (*r)->mode != ReplicationMode::TestReplica) return Status::OK();
  auto parent = find_vm((*r)->peer_host);
  if (parent) {
    auto lock = vm_lock(parent->vm.id);
    std::lock_guard<std::mutex> g(*lock);
    auto pr = relationship(*parent);
    if (pr && *pr && (*pr)->test_vm == test_vm.vm.id.to_string()) {
      Relationship rel = **pr;
      rel.test_vm.clear();
      VMREPL_RETURN_IF_ERROR(put_relationship(*parent, rel));
    }
  }
  return RelationshipTable(test_vm.store->catalog()).remove(test_vm.vm.id);
}

// ---- reverse: the new primary's side ----------------------------------------------------------

Result<std::shared_ptr<Job>> Replicator::reverse(const VmRef& vm, const ReplicationSettingData& rsd, bool verify_full) {
  VmRef ref = vm;
  return spawn_job(JobType::ReverseReplication, "Reverse replication " + vm.vm.name, true,
                   [this, ref, rsd, verify_full](ThreadCtx& t) -> Status {
                     ReverseRun run;
                     Status st = run_reverse(t, ref, rsd, verify_full, false, run);
                     // The old primary's history did not describe its disks after all: compare
                     // the whole disks instead (the first attempt left both sides as they were).
                     if (st.code() == Code::Failed && run.source != "merkle" && !t.cancelled() &&
                         st.message().find("disagrees") != std::string::npos) {
                       t.phase("history did not match; comparing the whole disks");
                       run = ReverseRun{};
                       st = run_reverse(t, ref, rsd, verify_full, true, run);
                     }
                     // No answer in time from the old primary is the network's failure:
                     // the model reports it as 32777.
                     if (st.code() == Code::Timeout) return Status::SystemNotAvailable(st.message());
                     if (!st.ok()) return st;
                     t.result(Property{"ChangeSource", CimType::String, false, std::vector<Scalar>{run.source}});
                     t.result(Property{"OldPrimaryChangeSource", CimType::String, false,
                                       std::vector<Scalar>{run.old_source}});
                     t.result(Property{"CommonPoint", CimType::UInt64, false, std::vector<Scalar>{run.common_point}});
                     t.result(Property{"CycleId", CimType::UInt64, false, std::vector<Scalar>{run.cycle}});
                     t.result(Property{"OldPrimaryChangedBlocks", CimType::UInt64, false,
                                       std::vector<Scalar>{run.old_primary_blocks}});
                     t.result(Property{"NewPrimaryChangedBlocks", CimType::UInt64, false,
                                       std::vector<Scalar>{run.new_primary_blocks}});
                     t.result(Property{"BlocksSent", CimType::UInt64, false, std::vector<Scalar>{run.blocks_sent}});
                     t.result(Property{"DataBytesSent", CimType::UInt64, false, std::vector<Scalar>{run.data_bytes}});
                     t.result(Property{"WireBytesSent", CimType::UInt64, false, std::vector<Scalar>{run.wire_sent}});
                     t.result(Property{"WireBytes", CimType::UInt64, false, std::vector<Scalar>{run.wire_total}});
                     t.result(Property{"Planned", CimType::Boolean, false, std::vector<Scalar>{run.planned}});
                     t.result(Property{"OldPrimaryCommitted", CimType::Boolean, false,
                                       std::vector<Scalar>{run.old_primary_told}});
                     std::vector<Scalar> roots;
                     for (const auto& h : run.roots) roots.emplace_back(h.to_hex(opts_.hash));
                     t.result(Property{"DiskMerkleRoots", CimType::String, true, std::move(roots)});
                     return Status::OK();
                   });
}

Status Replicator::run_reverse(ThreadCtx& t, VmRef vmref, const ReplicationSettingData& rsd, bool verify_full,
                               bool force_merkle, ReverseRun& out) {
  t.phase("reading the common point");
  auto lock = vm_lock(vmref.vm.id);
  std::lock_guard<std::mutex> guard(*lock);
  auto fresh = vmref.store->get(vmref.vm.id.to_string());
  if (!fresh) return fresh.status();
  const VmRecord vm = std::move(fresh).value();
  if (!vm.integrity.ok()) return vm.integrity;
  auto relr = relationship(vmref);
  if (!relr) return relr.status();
  if (!*relr || (*relr)->mode != ReplicationMode::Replica ||
      ((*relr)->state != ReplicationState::Recovered && (*relr)->state != ReplicationState::Committed))
    return Status::InvalidState("VM " + vm.name + " is no longer failed over (state 5 or 6 needed)");
  const Relationship rel = **relr;
  const size_t nd = vm.disks.size();
  const uint64_t k = rel.failover_point;
  const uint32_t bs = opts_.block_size;
  out.common_point = k;

  // The common point as the failover wrote it; without it only a whole comparison is possible.
  std::vector<BlockIndex> base_k(nd);
  for (uint32_t d = 0; d < nd && !force_merkle; ++d) {
    auto b = BlockIndex::load(failover_index_path(vm, d));
    if (!b || b->block_size() != bs || b->algorithm() != opts_.hash || b->disk_size() != vm.disks[d].size_bytes)
      force_merkle = true;
    else
      base_k[d] = std::move(b).value();
  }
  std::vector<BlockHash> k_roots;
  {
    auto rs = replica_store(vmref);
    if (rs) {
      auto pts = (*rs)->points();
      if (pts)
        for (const auto& p : *pts)
          if (p.seq == k) k_roots = p.roots;
    }
  }

  t.phase("contacting the old primary");
  Relationship peer;
  peer.peer_host = *rsd.RecoveryConnectionPoint;
  peer.peer_port = rsd.RecoveryServerPortNumber;
  peer.settings.AuthenticationType = rsd.AuthenticationType;
  auto chr = connect_peer(peer);
  if (!chr) return chr.status();
  Channel& ch = **chr;
  uint64_t seq = 0;

  // Our own disks: a scan can run while the old primary works out its side.
  ChangeFeed* cf = nullptr;
  FeedCycle fc;
  fc.scan_required = true;
  if (feed_attached(vm)) {
    auto f = feed(vmref);
    if (!f) return f.status();
    cf = *f;
    auto r = cf->begin_cycle();
    if (!r) return r.status();
    fc = std::move(r).value();
  }
  struct AbortEpoch {
    ChangeFeed* f;
    uint64_t e;
    bool armed = true;
    ~AbortEpoch() {
      if (f && armed) f->abort_cycle(e);
    }
  } abort_epoch{cf, fc.epoch};
  const bool use_feed = cf && !fc.scan_required && !force_merkle;
  std::vector<BlockIndex> now(nd);
  std::vector<Status> scan_st(nd);
  std::thread scanner;
  if (!use_feed) {
    scanner = std::thread([&] {
      ScanOptions so;
      so.algorithm = opts_.hash;
      so.block_size = bs;
      for (size_t d = 0; d < nd; ++d) {
        auto s = scan_file(vm.disks[d].path, so);
        if (!s)
          scan_st[d] = s.status();
        else
          now[d] = std::move(s).value();
      }
    });
  }
  struct Joiner {
    std::thread& th;
    ~Joiner() {
      if (th.joinable()) th.join();
    }
  } joiner{scanner};

  ReplicationSettingData mine = rsd;
  mine.PrimaryConnectionPoint = opts_.host_name;
  mine.PrimaryHostSystem = opts_.host_name;
  mine.RecoveryHostSystem = rsd.RecoveryConnectionPoint;
  mine.InstanceID = "Microsoft:" + vm.id.to_string() + "\\HVR\\0";
  mine.VirtualSystemIdentifier = vm.id.to_string();
  mine.ElementName = vm.name;
  json roots_hex = json::array();
  for (const auto& h : k_roots) roots_hex.push_back(h.to_hex(opts_.hash));
  t.phase("asking the old primary what it changed after point " + std::to_string(k));
  auto begin = call(ch, ++seq, "reverse_begin",
                    {{"vm_id", vm.id.to_string()},
                     {"point", k},
                     {"point_roots", roots_hex},
                     {"force_merkle", force_merkle},
                     {"port", ch.is_tls() ? tls_listen_port() : listen_port()},  // where it calls us back
                     {"settings", encode_json(mine.to_instance())},
                     {"disk_sizes", [&] {
                        json a = json::array();
                        for (const auto& d : vm.disks) a.push_back(d.size_bytes);
                        return a;
                      }()}},
                    opts_.io_timeout * 20);
  if (!begin) return begin.status().Annotate("old primary " + peer.peer_host);
  const bool merkle = begin->value("mode", "") == "merkle";
  out.old_source = begin->value("source", "");
  out.planned = begin->value("planned", false);
  const uint64_t a_last = begin->value("last_cycle", uint64_t{0});
  if (scanner.joinable()) scanner.join();
  if (merkle && use_feed) {
    // The old primary has no usable history: our side is read whole as well.
    ScanOptions so;
    so.algorithm = opts_.hash;
    so.block_size = bs;
    for (size_t d = 0; d < nd; ++d) {
      auto s = scan_file(vm.disks[d].path, so);
      if (!s) return s.status().Annotate("disk " + std::to_string(d));
      now[d] = std::move(s).value();
    }
  }
  for (size_t d = 0; d < nd; ++d)
    if (!scan_st[d].ok()) return scan_st[d].Annotate("disk " + std::to_string(d));

  std::vector<std::vector<uint64_t>> candidates(nd);
  std::vector<BlockIndex> a_now;
  if (merkle) {
    out.source = "merkle";
    t.phase("fetching the old primary's index");
    a_now.resize(nd);
    for (size_t d = 0; d < nd; ++d) {
      auto idx = fetch_index(ch, seq, "reverse_index", {{"vm_id", vm.id.to_string()}, {"disk", d}}, opts_.hash, bs,
                             vm.disks[d].size_bytes, opts_.io_timeout * 20);
      if (!idx) return idx.status();
      a_now[d] = std::move(idx).value();
      auto df = diff(a_now[d], now[d]);
      if (!df) return df.status();
      candidates[d] = std::move(df).value();
    }
  } else {
    out.source = use_feed ? "change-feed" : "scan";
    std::vector<uint64_t> counts;
    for (const auto& d : vm.disks) counts.push_back(BlockIndex::block_count_for(d.size_bytes, bs));
    auto a_sets = block_sets_from_json(begin->value("blocks", json::array()), counts);
    if (!a_sets) return a_sets.status().Annotate("old primary's changed blocks");
    for (const auto& s : *a_sets) out.old_primary_blocks += s.block_count();
    DiskBlockSets all = std::move(a_sets).value();
    for (size_t d = 0; d < nd; ++d) {
      BlockSet mine_changed;
      if (use_feed) {
        mine_changed = feed_blocks(fc.blocks[d]);
        now[d] = base_k[d].clone();
      } else {
        auto df = diff(base_k[d], now[d]);
        if (!df) return df.status();
        for (uint64_t b : *df) mine_changed.insert(b, 1);
      }
      out.new_primary_blocks += mine_changed.block_count();
      all[d].insert(mine_changed);
      candidates[d] = all[d].to_indexes();
    }
  }
  if (t.cancelled()) return Status::Failed("cancelled");

  // One cycle carries our bytes of every candidate.
  const uint64_t cycle = std::max({rel.last_cycle, a_last, k}) + 2;
  out.cycle = cycle;
  t.phase("sending the divergence");
  proto::CycleBegin cb;
  cb.seq = ++seq;
  cb.vm_id = vm.id;
  cb.cycle_id = cycle;
  cb.point_type = to_number(RecoveryPointType::Standard);
  cb.full = false;
  for (const auto& d : vm.disks) cb.disk_sizes.push_back(d.size_bytes);
  cb.block_size = bs;
  cb.compression = mine.CompressionEnabled.value_or(false);
  cb.zstd_level = opts_.zstd_level;
  if (Status st = ch.send(cb); !st.ok()) return engine_detail::peer_refusal(ch, st);
  // The old primary prepares (its disks become the replica's image) and accepts, or refuses.
  if (auto accepted = ch.expect<proto::Ack>(opts_.io_timeout * 20); !accepted) return accepted.status();
  uint64_t total = 0;
  for (const auto& d : vm.disks) total += d.size_bytes;
  SendPlan plan{vm, cycle, cb.compression, merkle ? &a_now : nullptr, 0, total};
  SendTally tally(nd);
  Status sent = send_blocks(t, ch, seq, plan, now, candidates, tally);
  if (!sent.ok()) {
    // Cancelled or failed midway: the old primary undoes the cycle when the stream breaks;
    // wait for its answer so that, when this job ends, it is back in its prior state.
    if (sent.code() == Code::SystemNotAvailable && !t.cancelled()) return engine_detail::peer_refusal(ch, sent);
    ch.send(proto::error_from(Status::Failed("reverse stopped by the new primary: " + sent.message())));
    ch.recv(opts_.io_timeout);
    return sent;
  }
  proto::CycleEnd end;
  end.seq = ++seq;
  end.vm_id = vm.id;
  end.cycle_id = cycle;
  for (size_t d = 0; d < nd; ++d) end.disk_roots.push_back(merkle_root(now[d]));
  end.blocks_sent = tally.blocks;
  end.bytes_sent = ch.bytes_sent();
  if (Status st = ch.send(end); !st.ok()) return engine_detail::peer_refusal(ch, st);
  t.phase("waiting for the old primary to apply and verify");
  auto ack = ch.expect<proto::Ack>(opts_.io_timeout * 10);
  if (!ack) return ack.status();
  if (ack->code != 0) return Status(static_cast<Code>(ack->code), ack->text);
  out.roots = end.disk_roots;

  if (verify_full) {
    t.phase("verifying: both sides re-read their disks");
    std::vector<BlockHash> again(nd);
    std::vector<Status> vst(nd);
    std::thread th([&] {
      ScanOptions so;
      so.algorithm = opts_.hash;
      so.block_size = bs;
      for (size_t d = 0; d < nd; ++d) {
        auto s = scan_file(vm.disks[d].path, so);
        if (!s)
          vst[d] = s.status();
        else
          again[d] = merkle_root(*s);
      }
    });
    auto theirs = call(ch, ++seq, "reverse_verify", {{"vm_id", vm.id.to_string()}}, opts_.io_timeout * 20);
    th.join();
    Status bad;
    if (!theirs) bad = theirs.status();
    for (size_t d = 0; d < nd && bad.ok(); ++d) {
      if (!vst[d].ok()) bad = vst[d];
      else if (!(again[d] == end.disk_roots[d]))
        bad = Status::Failed("verify=full: disk " + std::to_string(d) + " changed here during the reverse");
      else if (theirs->value("roots", json::array()).size() != nd ||
               (*theirs)["roots"][d].get<std::string>() != end.disk_roots[d].to_hex(opts_.hash))
        bad = Status::Failed("verify=full: the old primary's disk " + std::to_string(d) + " disagrees after the reverse");
    }
    if (!bad.ok()) {
      call(ch, ++seq, "reverse_abort", {{"vm_id", vm.id.to_string()}, {"cycle", cycle}}, opts_.io_timeout * 4);
      return bad;
    }
  }

  // Commit here: one catalog write decides the reverse.
  t.phase("committing");
  VMREPL_RETURN_IF_ERROR(mkdirs(primary_folder(vm)));
  auto hist = history(vmref);
  if (!hist) return hist.status();
  VMREPL_RETURN_IF_ERROR((*hist)->prune(0));
  Status saved;
  for (uint32_t d = 0; d < nd && saved.ok(); ++d) saved = now[d].save(acked_index_path(vm, d));
  if (saved.ok()) saved = (*hist)->put(cycle, tally.sets);
  if (!saved.ok()) {
    call(ch, ++seq, "reverse_abort", {{"vm_id", vm.id.to_string()}, {"cycle", cycle}}, opts_.io_timeout * 4);
    return saved;
  }
  Relationship nr = rel;
  nr.mode = ReplicationMode::Primary;
  nr.state = out.planned ? ReplicationState::Replicating : ReplicationState::ReadyForReplication;
  nr.health = ReplicationHealth::Ok;
  nr.health_text.clear();
  nr.settings = mine;
  nr.peer_host = *rsd.RecoveryConnectionPoint;
  nr.peer_port = rsd.RecoveryServerPortNumber;
  nr.last_cycle = cycle;
  nr.last_replication_us = now_us();
  nr.last_replication_type = out.planned ? ReplicationType::Planned : ReplicationType::Regular;
  nr.failover_point = 0;
  nr.failed_over_type = ReplicationType::None;
  nr.reverse_commit_pending = true;
  Status committed = put_relationship(vmref, nr);
  if (!committed.ok()) {
    call(ch, ++seq, "reverse_abort", {{"vm_id", vm.id.to_string()}, {"cycle", cycle}}, opts_.io_timeout * 4);
    return committed;
  }
  abort_epoch.armed = false;
  if (cf) cf->ack_cycle(fc.epoch);
  // What this host kept as a replica is of no use to a primary.
  {
    std::lock_guard<std::mutex> lk(mu_);
    replica_stores_.erase(vm.id);
  }
  ReplicaStore::forget(vmref.store->catalog(), vm.id);
  discard_later(vm.folder, replica_folder(vm));
  for (uint32_t d = 0; d < nd; ++d) std::remove(failover_index_path(vm, d).c_str());

  auto told = call(ch, ++seq, "reverse_commit", {{"vm_id", vm.id.to_string()}, {"cycle", cycle}}, opts_.io_timeout * 4);
  out.old_primary_told = told.ok();
  if (told) {
    nr.reverse_commit_pending = false;
    put_relationship(vmref, nr);
  } else {
    tell_reverse_committed(vmref);  // keeps trying in the background
  }
  out.blocks_sent = tally.blocks;
  out.data_bytes = tally.data_bytes;
  out.wire_sent = ch.bytes_sent();
  out.wire_total = ch.bytes_sent() + ch.bytes_received();
  ch.close(Status::OK());
  if (nr.state == ReplicationState::Replicating) arm_timer(vm.id, nr.settings.ReplicationInterval);
  return Status::OK();
}

// ---- reverse: the old primary's side ----------------------------------------------------------

// The pending reverse record (Relationship::reverse_json): {"phase": "preparing"|"prepared",
// "coordinator", "port", "cycle", "planned", "settings", "prior" (the relationship before)}.

Status Replicator::reverse_revert(const VmRef& vm) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || (*r)->reverse_json.empty()) return Status::OK();
  json rec = json::parse((*r)->reverse_json, nullptr, false);
  if (rec.is_discarded()) return Status::Failed("pending reverse record of " + vm.vm.name + " is damaged");
  const uint64_t cycle = rec.value("cycle", uint64_t{0});
  {
    std::lock_guard<std::mutex> lk(mu_);
    replica_stores_.erase(vm.vm.id);
  }
  // 1. Undo the applied cycle while the images are still in the replica layout.
  bool all_images = true;
  std::vector<std::string> images;
  for (uint32_t d = 0; d < vm.vm.disks.size(); ++d) {
    images.push_back(replica_folder(vm.vm) + "/disk" + std::to_string(d) + ".img");
    all_images = all_images && file_exists(images.back());
  }
  if (all_images) {
    auto rs = replica_store(vm);
    if (!rs) return rs.status().Annotate("undoing the reverse of " + vm.vm.name);
    auto pts = (*rs)->points();
    if (!pts) return pts.status();
    if (!pts->empty() && pts->back().seq == cycle && cycle > 1) VMREPL_RETURN_IF_ERROR((*rs)->rollback_to(cycle - 1));
    std::lock_guard<std::mutex> lk(mu_);
    replica_stores_.erase(vm.vm.id);
  }
  // 2. The disks go back where the VM has them (each rename replaces a placeholder).
  for (uint32_t d = 0; d < vm.vm.disks.size(); ++d)
    if (file_exists(images[d]) && ::rename(images[d].c_str(), vm.vm.disks[d].path.c_str()) != 0)
      return Status::Failed("cannot move " + images[d] + " back: " + std::strerror(errno));
  VMREPL_RETURN_IF_ERROR(fsync_dir(vm.vm.folder));
  // 3. Nothing of the replica remains; the relationship is the one before.
  VMREPL_RETURN_IF_ERROR(ReplicaStore::forget(vm.store->catalog(), vm.vm.id));
  VMREPL_RETURN_IF_ERROR(remove_tree(replica_folder(vm.vm)));
  auto prior = Relationship::from_json(rec.value("prior", ""));
  if (!prior) return prior.status().Annotate("pending reverse of " + vm.vm.name);
  return put_relationship(vm, *prior);
}

Status Replicator::reverse_finalize(const VmRef& vm, uint64_t cycle) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r) return Status::InvalidState("VM " + vm.vm.name + " has no relationship");
  if ((*r)->reverse_json.empty()) {
    if ((*r)->mode == ReplicationMode::Replica && (*r)->last_cycle >= cycle) return Status::OK();  // done before
    return Status::InvalidState("VM " + vm.vm.name + " has no prepared reverse");
  }
  json rec = json::parse((*r)->reverse_json, nullptr, false);
  if (rec.is_discarded()) return Status::Failed("pending reverse record of " + vm.vm.name + " is damaged");
  if (rec.value("phase", "") != "prepared" || rec.value("cycle", uint64_t{0}) != cycle)
    return Status::InvalidState("VM " + vm.vm.name + " has no prepared reverse for cycle " + std::to_string(cycle));
  auto inst = decode_json(rec.value("settings", ""), ReplicationSettingData::kClassName);
  if (!inst) return inst.status();
  auto rsd = ReplicationSettingData::from_instance(*inst);
  if (!rsd) return rsd.status();
  auto rs = replica_store(vm);
  if (!rs) return rs.status();
  VMREPL_RETURN_IF_ERROR((*rs)->drop_points_except(cycle));
  Relationship nr = **r;
  const bool planned = rec.value("planned", false);
  nr.mode = ReplicationMode::Replica;
  nr.state = planned ? ReplicationState::Replicating : ReplicationState::WaitingToCompleteInitialReplication;
  nr.health = ReplicationHealth::Ok;
  nr.health_text.clear();
  nr.settings = std::move(rsd).value();
  nr.settings.RecoveryHostSystem = opts_.host_name;
  nr.peer_host = rec.value("coordinator", "");
  nr.peer_port = rec.value("port", uint16_t{0});
  nr.last_cycle = cycle;
  nr.last_replication_us = now_us();
  nr.last_apply_us = nr.last_replication_us;
  nr.last_replication_type = planned ? ReplicationType::Planned : ReplicationType::Regular;
  nr.failover_point = 0;
  nr.failed_over_type = ReplicationType::None;
  nr.reverse_json.clear();
  nr.reverse_commit_pending = false;
  VMREPL_RETURN_IF_ERROR(put_relationship(vm, nr));
  disarm_timer(vm.vm.id);
  return drop_primary_tracking(vm);
}

Status Replicator::discard_later(const std::string& vm_folder, const std::string& path) {
  if (!engine_detail::file_exists(path)) return Status::OK();
  static std::atomic<uint64_t> counter{0};
  const std::string trash = vm_folder + "/trash-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  if (::rename(path.c_str(), trash.c_str()) != 0) return remove_tree(path);
  spawn_thread([trash] { remove_tree(trash); });
  return Status::OK();
}

Status Replicator::drop_primary_tracking(const VmRef& vm) {
  // A replica has no change feed, cycle history or acknowledged index of its own.
  {
    std::lock_guard<std::mutex> lk(mu_);
    feeds_.erase(vm.vm.id);
    histories_.erase(vm.vm.id);
  }
  return remove_tree(primary_folder(vm.vm));
}

namespace {

// Retries `attempt` (true when done) with a growing pause, until done or the service stops.
template <class F>
void retry_until(const std::atomic<bool>& stopping, F attempt) {
  auto pause = std::chrono::milliseconds(200);
  while (!stopping.load() && !attempt()) {
    for (auto waited = std::chrono::milliseconds(0); waited < pause && !stopping.load();
         waited += std::chrono::milliseconds(50))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    pause = std::min<std::chrono::milliseconds>(pause * 2, std::chrono::seconds(10));
  }
}

}  // namespace

void Replicator::resolve_reverse_later(const VmRef& vm) {
  VmRef ref = vm;
  spawn_thread([this, ref] {
    auto lock = vm_lock(ref.vm.id);
    // The pending reverse, read under the VM's lock; the question to the new primary is asked
    // without it (the new primary may be waiting on us), and the answer applied only if the
    // record is still the same. Until the new primary answers, the VM stays locked (it may
    // not start, nor be reverted) and we keep asking.
    auto pending = [&]() -> std::optional<json> {
      auto r = relationship(ref);
      if (!r || !*r || (*r)->reverse_json.empty()) return std::nullopt;
      json rec = json::parse((*r)->reverse_json, nullptr, false);
      if (rec.is_discarded() || rec.value("phase", "") != "prepared") return std::nullopt;
      return rec;
    };
    retry_until(stopping_, [&] {
      std::optional<json> rec;
      {
        std::lock_guard<std::mutex> g(*lock);
        rec = pending();
      }
      if (!rec) return true;
      Relationship probe;
      probe.peer_host = rec->value("coordinator", "");
      probe.peer_port = rec->value("port", uint16_t{0});
      probe.settings.AuthenticationType = rec->value("tls", false) ? 2 : 1;
      const uint64_t cycle = rec->value("cycle", uint64_t{0});
      auto ch = connect_peer(probe);
      if (!ch) return false;
      uint64_t seq = 0;
      auto o = call(**ch, ++seq, "reverse_outcome", {{"vm_id", ref.vm.id.to_string()}, {"cycle", cycle}}, opts_.io_timeout);
      (*ch)->close(Status::OK());
      if (!o) return false;
      const std::string outcome = o->value("outcome", "");
      std::lock_guard<std::mutex> g(*lock);
      auto now = pending();
      if (!now || now->value("cycle", uint64_t{0}) != cycle) return true;
      if (outcome == "committed") return reverse_finalize(ref, cycle).ok();
      if (outcome == "aborted") return reverse_revert(ref).ok();
      return false;
    });
  });
}

void Replicator::tell_reverse_committed(const VmRef& vm) {
  VmRef ref = vm;
  spawn_thread([this, ref] {
    retry_until(stopping_, [&] {
      auto r = relationship(ref);
      if (!r || !*r || !(*r)->reverse_commit_pending) return true;
      auto ch = connect_peer(**r);
      if (!ch) return false;  // meanwhile the old primary may ask us, or take a cycle as the answer
      uint64_t seq = 0;
      auto told = call(**ch, ++seq, "reverse_commit", {{"vm_id", ref.vm.id.to_string()}, {"cycle", (*r)->last_cycle}},
                       opts_.io_timeout * 4);
      (*ch)->close(Status::OK());
      if (!told) return false;
      auto lock = vm_lock(ref.vm.id);
      std::lock_guard<std::mutex> g(*lock);
      auto cur = relationship(ref);
      if (cur && *cur && (*cur)->reverse_commit_pending) {
        Relationship rel = **cur;
        rel.reverse_commit_pending = false;
        put_relationship(ref, rel);
      }
      return true;
    });
  });
}

}  // namespace vmrepl
