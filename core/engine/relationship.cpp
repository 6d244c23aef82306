#include "core/engine/relationship.h"

#include <nlohmann/json.hpp>

#include "core/model/cim_datetime.h"
#include "core/settings/json.h"
#include "core/store/sqlite.h"

namespace vmrepl {

namespace {
using json = nlohmann::json;

std::string cim_or_zero(int64_t us) {
  // A never-set datetime is the CIM zero point, as WMI shows it.
  return us ? CimDateTime::from_unix_us(us).format() : "00000000000000.000000+000";
}
}  // namespace

Instance ReplicationStatistics::to_instance(ReplicationHealth health) const {
  Instance i("Msvm_ReplicationStatistics");
  i.set_datetime("StartStatisticTime", cim_or_zero(start_us));
  i.set_datetime("EndStatisticTime", CimDateTime::now().format());
  i.set_u32("ReplicationSuccessCount", success_count);
  i.set_u32("ReplicationMissCount", miss_count);
  i.set_u32("ReplicationFailureCount", failure_count);
  i.set_u32("NetworkFailureCount", network_failure_count);
  i.set_u32("ApplicationConsistentSnapshotFailureCount", 0);
  i.set_u64("ReplicationSize", replication_size);
  i.set_u64("MaxReplicationSize", max_replication_size);
  i.set_u64("PendingReplicationSize", pending_size);
  i.set_u32("ReplicationLatency", latency_s);
  i.set_u32("MaxReplicationLatency", max_latency_s);
  i.set_u32("ReplicationHealth", to_number(health));
  i.set_datetime("LastTestFailoverTime", cim_or_zero(last_test_failover_us));
  return i;
}

void Relationship::describe(Instance& vm) const {
  vm.set_u16("ReplicationMode", to_number(mode));
  vm.set_u16("ReplicationState", to_number(state));
  vm.set_u16("ReplicationHealth", to_number(health));
  vm.set_u16("FailedOverReplicationType", to_number(failed_over_type));
  vm.set_u16("LastReplicationType", to_number(last_replication_type));
  vm.set_datetime("LastReplicationTime", cim_or_zero(last_replication_us));
  vm.set_datetime("LastApplyTime", cim_or_zero(last_apply_us));
  vm.set_string("ReplicationHealthDescription", health_text);
  vm.set_string("ReplicationPeer", peer_port ? peer_host + ":" + std::to_string(peer_port) : peer_host);
}

std::string Relationship::to_json() const {
  json j;
  j["vm_id"] = vm_id.to_string();
  j["mode"] = to_number(mode);
  j["state"] = to_number(state);
  j["health"] = to_number(health);
  j["settings"] = encode_json(settings.to_instance());
  j["peer_host"] = peer_host;
  j["peer_port"] = peer_port;
  j["last_replication_us"] = last_replication_us;
  j["last_apply_us"] = last_apply_us;
  j["last_replication_type"] = to_number(last_replication_type);
  j["failed_over_type"] = to_number(failed_over_type);
  j["last_cycle"] = last_cycle;
  j["health_text"] = health_text;
  json s;
  s["start_us"] = stats.start_us;
  s["success"] = stats.success_count;
  s["miss"] = stats.miss_count;
  s["failure"] = stats.failure_count;
  s["network_failure"] = stats.network_failure_count;
  s["size"] = stats.replication_size;
  s["max_size"] = stats.max_replication_size;
  s["pending"] = stats.pending_size;
  s["latency_s"] = stats.latency_s;
  s["max_latency_s"] = stats.max_latency_s;
  s["last_test_failover_us"] = stats.last_test_failover_us;
  j["stats"] = s;
  j["failover_point"] = failover_point;
  j["test_vm"] = test_vm;
  j["reverse"] = reverse_json;
  j["reverse_commit_pending"] = reverse_commit_pending;
  j["bandwidth_limit"] = bandwidth_limit;
  return j.dump();
}

Result<Relationship> Relationship::from_json(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Failed("relationship record is not a JSON object");
  try {
    Relationship r;
    auto g = Guid::parse(j.at("vm_id").get<std::string>());
    if (!g) return g.status();
    r.vm_id = *g;
    auto mode = ReplicationMode_from_number(j.at("mode").get<uint64_t>());
    auto state = ReplicationState_from_number(j.at("state").get<uint64_t>());
    auto health = ReplicationHealth_from_number(j.at("health").get<uint64_t>());
    auto lrt = ReplicationType_from_number(j.at("last_replication_type").get<uint64_t>());
    auto fot = ReplicationType_from_number(j.at("failed_over_type").get<uint64_t>());
    if (!mode || !state || !health || !lrt || !fot) return Status::Failed("relationship record has an unknown enum value");
    r.mode = *mode;
    r.state = *state;
    r.health = *health;
    r.last_replication_type = *lrt;
    r.failed_over_type = *fot;
    auto inst = decode_json(j.at("settings").get<std::string>(), ReplicationSettingData::kClassName);
    if (!inst) return inst.status();
    auto rsd = ReplicationSettingData::from_instance(*inst);
    if (!rsd) return rsd.status();
    r.settings = std::move(rsd).value();
    r.peer_host = j.at("peer_host").get<std::string>();
    r.peer_port = j.at("peer_port").get<uint16_t>();
    r.last_replication_us = j.at("last_replication_us").get<int64_t>();
    r.last_apply_us = j.at("last_apply_us").get<int64_t>();
    r.last_cycle = j.at("last_cycle").get<uint64_t>();
    r.health_text = j.at("health_text").get<std::string>();
    const json& s = j.at("stats");
    r.stats.start_us = s.at("start_us").get<int64_t>();
    r.stats.success_count = s.at("success").get<uint32_t>();
    r.stats.miss_count = s.at("miss").get<uint32_t>();
    r.stats.failure_count = s.at("failure").get<uint32_t>();
    r.stats.network_failure_count = s.at("network_failure").get<uint32_t>();
    r.stats.replication_size = s.at("size").get<uint64_t>();
    r.stats.max_replication_size = s.at("max_size").get<uint64_t>();
    r.stats.pending_size = s.at("pending").get<uint64_t>();
    r.stats.latency_s = s.at("latency_s").get<uint32_t>();
    r.stats.max_latency_s = s.at("max_latency_s").get<uint32_t>();
    r.stats.last_test_failover_us = s.at("last_test_failover_us").get<int64_t>();
    // Added with failover; absent in older records.
    r.failover_point = j.value("failover_point", uint64_t{0});
    r.test_vm = j.value("test_vm", std::string());
    r.reverse_json = j.value("reverse", std::string());
    r.reverse_commit_pending = j.value("reverse_commit_pending", false);
    // Added with bandwidth limits.
    r.bandwidth_limit = j.value("bandwidth_limit", uint64_t{0});
    return r;
  } catch (const json::exception& e) {
    return Status::Failed(std::string("relationship record is damaged: ") + e.what());
  }
}

Result<std::optional<Relationship>> RelationshipTable::get(const Guid& vm) const {
  std::optional<std::string> text;
  Status st = catalog_.read([&](sqlite::Db& db) -> Status {
    auto stmt = db.prepare("SELECT record FROM relationships WHERE vm_id = ?1");
    if (!stmt) return stmt.status();
    VMREPL_RETURN_IF_ERROR(stmt->bind_text(1, vm.to_string()));
    auto row = stmt->step();
    if (!row) return row.status();
    if (*row) text = stmt->column_text(0);
    return Status::OK();
  });
  if (!st.ok()) return st;
  if (!text) return std::optional<Relationship>{};
  auto r = Relationship::from_json(*text);
  if (!r) return r.status().Annotate("relationship of VM " + vm.to_string());
  return std::optional<Relationship>{std::move(r).value()};
}

Status RelationshipTable::put_in(sqlite::Db& db, const Relationship& r) {
  auto stmt = db.prepare(
      "INSERT INTO relationships(vm_id, record) VALUES(?1, ?2) "
      "ON CONFLICT(vm_id) DO UPDATE SET record = json_set(excluded.record, '$.bandwidth_limit', "
      "COALESCE(json_extract(relationships.record, '$.bandwidth_limit'), 0))");
  if (!stmt) return stmt.status();
  VMREPL_RETURN_IF_ERROR(stmt->bind_text(1, r.vm_id.to_string()));
  VMREPL_RETURN_IF_ERROR(stmt->bind_text(2, r.to_json()));
  return stmt->run();
}

Status RelationshipTable::put(const Relationship& r, Catalog::Durability durability) {
  return catalog_.transact([&](sqlite::Db& db) -> Status { return put_in(db, r); }, durability);
}

Status RelationshipTable::set_bandwidth_limit(const Guid& vm, uint64_t bytes_per_s) {
  if (bytes_per_s > static_cast<uint64_t>(INT64_MAX)) return Status::InvalidParameter("bandwidth limit out of range");
  return catalog_.transact([&](sqlite::Db& db) -> Status {
    auto stmt = db.prepare("UPDATE relationships SET record = json_set(record, '$.bandwidth_limit', ?2) WHERE vm_id = ?1");
    if (!stmt) return stmt.status();
    VMREPL_RETURN_IF_ERROR(stmt->bind_text(1, vm.to_string()));
    VMREPL_RETURN_IF_ERROR(stmt->bind_int(2, static_cast<int64_t>(bytes_per_s)));
    VMREPL_RETURN_IF_ERROR(stmt->run());
    if (db.changes() == 0) return Status::FileNotFound("VM " + vm.to_string() + " has no relationship record");
    return Status::OK();
  });
}

Status RelationshipTable::remove(const Guid& vm) {
  return catalog_.transact([&](sqlite::Db& db) -> Status {
    auto stmt = db.prepare("DELETE FROM relationships WHERE vm_id = ?1");
    if (!stmt) return stmt.status();
    VMREPL_RETURN_IF_ERROR(stmt->bind_text(1, vm.to_string()));
    return stmt->run();
  });
}

Result<std::vector<Relationship>> RelationshipTable::list() const {
  std::vector<std::string> rows;
  Status st = catalog_.read([&](sqlite::Db& db) -> Status {
    auto stmt = db.prepare("SELECT record FROM relationships ORDER BY vm_id");
    if (!stmt) return stmt.status();
    for (;;) {
      auto row = stmt->step();
      if (!row) return row.status();
      if (!*row) break;
      rows.push_back(stmt->column_text(0));
    }
    return Status::OK();
  });
  if (!st.ok()) return st;
  std::vector<Relationship> out;
  for (const auto& t : rows) {
    auto r = Relationship::from_json(t);
    if (!r) return r.status();
    out.push_back(std::move(r).value());
  }
  return out;
}

}  // namespace vmrepl
