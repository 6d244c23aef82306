// Relationship: the replication state of one VM on one host (the primary's or the replica's
// side), persisted in the catalog that holds the VM. WMI exposes the same facts on
// Msvm_ComputerSystem (ReplicationMode/State/Health, LastReplication*) and on
// Msvm_ReplicationRelationship; the numbers are the spec's (§5).
//
// Thread-safety: values; RelationshipTable serializes through the Catalog.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/model/enums.h"
#include "core/model/guid.h"
#include "core/model/instance.h"
#include "core/model/status.h"
#include "core/settings/replication_setting_data.h"
#include "core/store/catalog.h"

namespace vmrepl {

// Msvm_ReplicationStatistics counters of the current monitoring period (spec §6).
struct ReplicationStatistics {
  int64_t start_us = 0;
  uint32_t success_count = 0;
  uint32_t miss_count = 0;
  uint32_t failure_count = 0;
  uint32_t network_failure_count = 0;
  uint64_t replication_size = 0;      // bytes sent (wire)
  uint64_t max_replication_size = 0;  // largest cycle
  uint64_t pending_size = 0;          // bytes known dirty, not sent yet
  uint32_t latency_s = 0;             // total
  uint32_t max_latency_s = 0;
  int64_t last_test_failover_us = 0;
  Instance to_instance(ReplicationHealth health) const;
};

struct Relationship {
  Guid vm_id;
  ReplicationMode mode = ReplicationMode::None;
  ReplicationState state = ReplicationState::Disabled;
  ReplicationHealth health = ReplicationHealth::NotApplicable;
  ReplicationSettingData settings;
  // The other side: the recovery server for a primary, the primary for a replica.
  std::string peer_host;
  uint16_t peer_port = 0;
  int64_t last_replication_us = 0;  // LastReplicationTime (0 = never)
  int64_t last_apply_us = 0;        // replica: LastApplyTime
  ReplicationType last_replication_type = ReplicationType::None;
  ReplicationType failed_over_type = ReplicationType::None;
  uint64_t last_cycle = 0;          // primary: last acknowledged cycle; replica: last applied
  std::string health_text;          // why health is not OK
  ReplicationStatistics stats;
  // Failover (replica side): the point the VM was failed over to (0 = none), and the test VM
  // made by TestReplicaSystem (one at a time).
  uint64_t failover_point = 0;
  std::string test_vm;
  // Reverse, on the old primary: the pending reverse while it is prepared but not yet known
  // to be committed by the new primary (JSON: phase, coordinator, cycle, prior record).
  std::string reverse_json;
  // Reverse, on the new primary: committed here, the old primary not yet told.
  bool reverse_commit_pending = false;
  // Wire bytes/s this VM's transfers may use (0 = no limit of its own); changed only through
  // RelationshipTable::set_bandwidth_limit.
  uint64_t bandwidth_limit = 0;

  // ReplicationMode / ReplicationState / ... added to a VM instance.
  void describe(Instance& vm) const;
  std::string to_json() const;
  static Result<Relationship> from_json(std::string_view text);
};

// The relationships table of one catalog.
class RelationshipTable {
 public:
  explicit RelationshipTable(Catalog& c) : catalog_(c) {}
  Result<std::optional<Relationship>> get(const Guid& vm) const;
  // Inserts or replaces the record, except the bandwidth_limit of an existing one: a writer
  // holding an older copy (a cycle) must not undo a limit changed while it ran.
  Status put(const Relationship& r, Catalog::Durability durability = Catalog::Durability::Full);
  // The same, inside a transaction the caller runs (with its other changes).
  static Status put_in(sqlite::Db& db, const Relationship& r);
  // Sets the stored record's bandwidth_limit alone; FileNotFound when there is no record.
  // REQUIRES: bytes_per_s <= INT64_MAX.
  Status set_bandwidth_limit(const Guid& vm, uint64_t bytes_per_s);
  Status remove(const Guid& vm);
  Result<std::vector<Relationship>> list() const;

 private:
  Catalog& catalog_;
};

}  // namespace vmrepl
