#include "core/engine/replica_session.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/blocks/disk_scanner.h"
#include "core/engine/engine_detail.h"
#include "core/blocks/merkle.h"
#include "core/blocks/sparse_io.h"
#include "core/protocol/block_batch.h"
#include "core/settings/json.h"

namespace vmrepl {

using json = nlohmann::json;
namespace proto = protocol;
using engine_detail::hex_entries;
using engine_detail::now_us;

namespace {

constexpr std::chrono::seconds kSessionIdle{300};
// Received batches applied with one undo fdatasync, at most (group commit, receive_cycle).
constexpr uint64_t kApplyGroupBytes = uint64_t{8} << 20;

}  // namespace

std::string ReplicaSession::index_path(const VmRecord& vm, uint64_t seq, uint32_t disk) {
  return Replicator::replica_folder(vm) + "/index-" + std::to_string(seq) + "-disk" + std::to_string(disk) + ".idx";
}

Result<BlockIndex> ReplicaSession::image_index(Replicator& r, const VmRecord& vm, ReplicaStore& rs, uint32_t disk,
                                               bool rescan) {
  auto idx = BlockIndex::load(index_path(vm, rs.image_seq(), disk));
  if (!rescan && idx && idx->disk_size() == vm.disks[disk].size_bytes && idx->block_size() == r.options().block_size &&
      idx->algorithm() == r.options().hash)
    return idx;
  // No index for this point (first use, or a crash between commit and save): rebuild it.
  ScanOptions so;
  so.algorithm = r.options().hash;
  so.block_size = r.options().block_size;
  auto scanned = scan_file(rs.image_path(disk), so);
  if (!scanned) return scanned.status();
  VMREPL_RETURN_IF_ERROR(scanned->save(index_path(vm, rs.image_seq(), disk)));
  return scanned;
}

void ReplicaSession::run() {
  auto hello = ch_->expect<proto::Hello>(r_.opts_.io_timeout);
  if (!hello) return;
  proto::HelloReply reply;
  reply.service_id = r_.service_id_;
  reply.host_name = r_.opts_.host_name;
  reply.capabilities = {"cycles-v1", std::string(proto::kBlockRangesCapability)};
  Status ok = proto::check_protocol_version(hello->protocol_version);
  if (ok.ok()) {
    auto entry = r_.server_->admit(hello->host_name);
    if (entry) {
      entry_ = std::move(entry).value();
    } else if (r_.is_peer(hello->host_name)) {
      // Our own primary or recovery server may ask how a VM stands (split-brain check, the
      // outcome of a reverse) even where no entry admits it as a primary.
      limited_ = true;
      limited_reason_ = entry.status();
    } else {
      ok = entry.status();
    }
  }
  if (ok.ok()) ok = ch_->is_tls() ? check_tls_peer(hello->host_name) : check_plain_peer();
  // The primary's listener of the same kind as this session: we call it back (failover's
  // split-brain check, a reverse's outcome) the way it called us.
  const std::string port_cap = ch_->is_tls() ? "tls-listen-port:" : "listen-port:";
  for (const auto& c : hello->capabilities)
    if (c.rfind(port_cap, 0) == 0) primary_port_ = static_cast<uint16_t>(std::atoi(c.c_str() + port_cap.size()));
  if (!ok.ok()) {
    reply.accepted = false;
    reply.error_code = ok.number();
    reply.error_text = ok.message();
    ch_->send(reply);
    ch_->close(ok);
    return;
  }
  primary_host_ = hello->host_name;
  reply.accepted = true;
  if (!ch_->send(reply).ok()) return;

  struct Ended {
    ReplicaSession* s;
    ~Ended() { s->session_ended(); }
  } ended{this};
  for (;;) {
    auto m = ch_->recv(kSessionIdle);
    if (!m) return;
    if (limited_) {
      auto* q = std::get_if<proto::Request>(&*m);
      if (!q || (q->method != "status" && q->method != "reverse_outcome")) {
        Status no = limited_reason_;
        if (q)
          ch_->send(proto::Response{q->seq, no.number(), no.message(), ""});
        else
          ch_->send(proto::error_from(no, 0));
        return;
      }
    }
    if (auto* c = std::get_if<proto::RelationshipCreate>(&*m)) {
      Status st = handle_create(*c);
      ch_->send(proto::Ack{c->seq, st.ok() ? 0 : st.number(), st.ok() ? "" : st.message(), ""});
    } else if (auto* mo = std::get_if<proto::RelationshipModify>(&*m)) {
      Status st = handle_modify(*mo);
      ch_->send(proto::Ack{mo->seq, st.ok() ? 0 : st.number(), st.ok() ? "" : st.message(), ""});
    } else if (auto* rm = std::get_if<proto::RelationshipRemove>(&*m)) {
      Status st = handle_remove(*rm);
      ch_->send(proto::Ack{rm->seq, st.ok() ? 0 : st.number(), st.ok() ? "" : st.message(), ""});
    } else if (auto* b = std::get_if<proto::CycleBegin>(&*m)) {
      Status st = rev_ && b->vm_id == reverse_vm() ? reverse_cycle(*b) : handle_cycle(*b);
      if (!st.ok()) {
        ch_->send(proto::error_from(st, b->seq));
        return;  // the stream of this cycle is unusable now
      }
    } else if (auto* q = std::get_if<proto::Request>(&*m)) {
      auto body = q->method.rfind("reverse_", 0) == 0 ? reverse_request(*q) : handle_request(*q);
      proto::Response resp;
      resp.seq = q->seq;
      if (body) {
        resp.body_json = std::move(body).value();
      } else {
        resp.code = body.status().number();
        resp.text = body.status().message();
      }
      ch_->send(resp);
    } else {
      ch_->send(proto::Error{static_cast<uint32_t>(Code::InvalidParameter),
                             "unexpected message '" + std::string(proto::message_type(*m)) + "'", std::nullopt});
      return;
    }
  }
}

// A certificate session (TLS listener) is admitted when this server allows certificate
// authentication and the primary's certificate names the host it says it is: the
// authorization entries admit host names, so the name must be proven.
Status ReplicaSession::check_tls_peer(const std::string& host) {
  uint16_t allowed = r_.server_->settings().AllowedAuthenticationType;
  // A peer's questions (limited session) need no recovery-server settings, only a proven name.
  if (!limited_ && allowed != 2 && allowed != 3)
    return Status::AccessDenied(r_.opts_.host_name + " does not accept certificate authentication (AllowedAuthenticationType " +
                                std::to_string(allowed) + ")");
  if (!ch_->peer_certificate_names(host))
    return Status::AccessDenied("the certificate of " + host + " (thumbprint " + ch_->peer_thumbprint("sha1") +
                                ") is not issued to " + host);
  return Status::OK();
}

// A recovery server that allows certificate authentication only takes no plaintext primary.
Status ReplicaSession::check_plain_peer() {
  const uint16_t allowed = r_.server_->settings().AllowedAuthenticationType;
  if (!limited_ && allowed == 2)
    return Status::AccessDenied(r_.opts_.host_name + " accepts certificate authentication only (AllowedAuthenticationType 2): "
                                "connect to its certificate listener with AuthenticationType 2");
  return Status::OK();
}

// AuthenticationType 2: the relationship names the primary's certificate (spec §3), which
// this session's TLS peer must present.
Status ReplicaSession::check_certificate(const ReplicationSettingData& s) {
  if (!s.AuthenticationType || *s.AuthenticationType != 2) return Status::OK();
  std::string want = s.CertificateThumbPrint.value_or("");
  if (!ch_->is_tls())
    return Status::AccessDenied("the relationship uses certificate authentication (AuthenticationType 2, thumbprint " +
                                want + "): connect to the certificate listener of " + r_.opts_.host_name);
  std::string got = ch_->peer_thumbprint(thumbprint_algorithm(want));
  if (!same_thumbprint(got, want))
    return Status::AccessDenied("primary " + primary_host_ + " presented certificate " + got +
                                "; the relationship's CertificateThumbPrint is " + want);
  return Status::OK();
}

Result<VmRef> ReplicaSession::replica_vm(const Guid& id, bool for_cycle, bool check_cert) {
  auto vm = r_.find_vm(id.to_string());
  if (!vm) return vm.status();
  auto rel = r_.relationship(*vm);
  if (!rel) return rel.status();
  if (!*rel || (*rel)->mode != ReplicationMode::Replica)
    return Status::InvalidState("VM " + vm->vm.name + " is not a replica here (ReplicationMode " +
                                std::to_string(*rel ? to_number((*rel)->mode) : 0) + ")");
  if (check_cert) VMREPL_RETURN_IF_ERROR(check_certificate((*rel)->settings));
  if (for_cycle) {
    auto s = (*rel)->state;
    if (s != ReplicationState::WaitingToCompleteInitialReplication && s != ReplicationState::Replicating &&
        s != ReplicationState::Resynchronizing && s != ReplicationState::WaitingToStartResynchronization)
      return Status::InvalidState("replica VM " + vm->vm.name + " is in ReplicationState " + std::to_string(to_number(s)) +
                                  " (" + std::string(to_string(s)) + "); it accepts no cycle");
  }
  return vm;
}

Status ReplicaSession::handle_create(const proto::RelationshipCreate& m) {
  if (m.block_size != r_.opts_.block_size || m.hash_algorithm != r_.opts_.hash)
    return Status::InvalidParameter("block size " + std::to_string(m.block_size) + " / hash " +
                                    std::string(hash_algorithm_name(m.hash_algorithm)) + " differ from this server's (" +
                                    std::to_string(r_.opts_.block_size) + " / " +
                                    std::string(hash_algorithm_name(r_.opts_.hash)) + ")");
  auto inst = decode_json(m.settings_json, ReplicationSettingData::kClassName);
  if (!inst) return inst.status();
  auto rsd = ReplicationSettingData::from_instance(*inst);
  if (!rsd) return rsd.status();
  VMREPL_RETURN_IF_ERROR(check_certificate(*rsd));
  auto existing = r_.find_vm(m.vm_id.to_string());
  if (existing) {
    auto rel = r_.relationship(*existing);
    if (!rel) return rel.status();
    if (*rel && (*rel)->mode == ReplicationMode::Replica && (*rel)->peer_host == primary_host_) return Status::OK();
    return Status::InvalidState("VM " + m.vm_id.to_string() + " already exists on " + r_.opts_.host_name +
                                " (ReplicationMode " + std::to_string(*rel ? to_number((*rel)->mode) : 0) + ")");
  }
  if (existing.status().code() != Code::FileNotFound) return existing.status();
  // Replicas live only under the admitting entry's storage location.
  auto store = r_.location_store(*entry_.ReplicaStorageLocation);
  if (!store) return store.status().Annotate("ReplicaStorageLocation " + *entry_.ReplicaStorageLocation);
  VmDefinition def{m.vm_name, m.vm_id, m.disk_sizes};
  auto vm = (*store)->define(def);
  if (!vm) return vm.status();
  Relationship rel;
  rel.vm_id = m.vm_id;
  rel.mode = ReplicationMode::Replica;
  rel.state = ReplicationState::WaitingToCompleteInitialReplication;
  rel.health = ReplicationHealth::Ok;
  rel.settings = std::move(rsd).value();
  rel.settings.RecoveryHostSystem = r_.opts_.host_name;
  rel.peer_host = primary_host_;
  rel.peer_port = primary_port_;
  return r_.put_relationship(VmRef{*store, std::move(vm).value()}, rel);
}

Status ReplicaSession::handle_modify(const proto::RelationshipModify& m) {
  // Checked against the new settings: a primary may move to another certificate this way.
  auto vm = replica_vm(m.vm_id, false, /*check_cert=*/false);
  if (!vm) return vm.status();
  auto inst = decode_json(m.settings_json, ReplicationSettingData::kClassName);
  if (!inst) return inst.status();
  auto rsd = ReplicationSettingData::from_instance(*inst);
  if (!rsd) return rsd.status();
  VMREPL_RETURN_IF_ERROR(check_certificate(*rsd));
  auto lock = r_.vm_lock(m.vm_id);
  std::lock_guard<std::mutex> g(*lock);
  auto rel = r_.relationship(*vm);
  if (!rel || !*rel) return rel ? Status::InvalidState("relationship gone") : rel.status();
  Relationship nr = **rel;
  nr.settings = std::move(rsd).value();
  nr.settings.RecoveryHostSystem = r_.opts_.host_name;
  return r_.put_relationship(*vm, nr);
}

Status ReplicaSession::handle_remove(const proto::RelationshipRemove& m) {
  auto vm = replica_vm(m.vm_id, false);
  if (!vm) return vm.status();
  auto lock = r_.vm_lock(m.vm_id);
  std::lock_guard<std::mutex> g(*lock);
  {
    std::lock_guard<std::mutex> lk(r_.mu_);
    r_.replica_stores_.erase(m.vm_id);
  }
  return RelationshipTable(vm->store->catalog()).remove(m.vm_id);
}

Result<std::string> ReplicaSession::handle_request(const proto::Request& m) {
  json body = json::parse(m.body_json, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return Status::InvalidParameter("request body is not a JSON object");
  auto idv = Guid::parse(body.value("vm_id", ""));
  if (m.method == "status") {
    if (!idv) return idv.status();
    auto vm = r_.find_vm(idv->to_string());
    if (!vm) return vm.status();
    auto rel = r_.relationship(*vm);
    if (!rel) return rel.status();
    json out;
    out["mode"] = *rel ? to_number((*rel)->mode) : 0;
    out["state"] = *rel ? to_number((*rel)->state) : 0;
    out["enabled_state"] = vm->vm.enabled_state;
    if (limited_) return out.dump();
    uint64_t latest = 0;
    if (*rel && (*rel)->mode == ReplicationMode::Replica) {
      auto rs = r_.replica_store(*vm);
      if (!rs) return rs.status();
      latest = (*rs)->image_seq();
    }
    out["latest"] = latest;
    return out.dump();
  }
  if (m.method == "index") {
    if (!idv) return idv.status();
    auto vm = replica_vm(*idv, false);
    if (!vm) return vm.status();
    uint64_t disk = body.value("disk", uint64_t{0}), first = body.value("first", uint64_t{0}),
             count = body.value("count", uint64_t{0});
    if (disk >= vm->vm.disks.size()) return Status::InvalidParameter("disk " + std::to_string(disk) + " does not exist");
    auto lock = r_.vm_lock(*idv);
    std::lock_guard<std::mutex> g(*lock);
    auto rs = r_.replica_store(*vm);
    if (!rs) return rs.status();
    auto idx = image_index(r_, vm->vm, **rs, static_cast<uint32_t>(disk), body.value("rescan", false));
    if (!idx) return idx.status();
    if (first > idx->block_count() || count > 100000 || count > idx->block_count() - first)
      return Status::InvalidParameter("index range out of bounds");
    json out;
    out["entries"] = hex_entries(*idx, first, count);
    return out.dump();
  }
  if (m.method == "adopt_seed") {
    if (!idv) return idv.status();
    auto vm = replica_vm(*idv, true);
    if (!vm) return vm.status();
    auto lock = r_.vm_lock(*idv);
    std::lock_guard<std::mutex> g(*lock);
    auto rel = r_.relationship(*vm);
    if (!rel || !*rel || (*rel)->state != ReplicationState::WaitingToCompleteInitialReplication)
      return Status::InvalidState("a seeded initial replication needs the replica waiting for it (state 2)");
    // The seed is the copy an operator put in the replica VM's disks: it becomes the image
    // the replica store starts from, and the VM's disks become empty placeholders again.
    {
      std::lock_guard<std::mutex> lk(r_.mu_);
      r_.replica_stores_.erase(*idv);
    }
    auto rs = r_.replica_store(*vm);
    if (!rs) return rs.status();
    if ((*rs)->image_seq() != 0) return Status::InvalidState("the replica already holds a replicated point");
    std::vector<std::string> images;
    for (uint32_t d = 0; d < vm->vm.disks.size(); ++d) images.push_back((*rs)->image_path(d));
    {
      std::lock_guard<std::mutex> lk(r_.mu_);
      r_.replica_stores_.erase(*idv);
    }
    for (uint32_t d = 0; d < vm->vm.disks.size(); ++d) {
      const std::string& seed = vm->vm.disks[d].path;
      if (::rename(seed.c_str(), images[d].c_str()) != 0)
        return Status::Failed("cannot adopt the seed " + seed + ": " + std::strerror(errno));
      VMREPL_RETURN_IF_ERROR(create_sparse_file(seed, vm->vm.disks[d].size_bytes));
      std::remove(index_path(vm->vm, 0, d).c_str());
    }
    rs = r_.replica_store(*vm);
    if (!rs) return rs.status();
    for (uint32_t d = 0; d < vm->vm.disks.size(); ++d) {
      auto idx = image_index(r_, vm->vm, **rs, d);
      if (!idx) return idx.status();
    }
    return std::string("{}");
  }
  return Status::InvalidParameter("unknown request '" + m.method + "'");
}

Status ReplicaSession::handle_cycle(const proto::CycleBegin& b) {
  // A cycle from the new primary of a reverse we prepared proves it committed: finish ours.
  if (auto pv = r_.find_vm(b.vm_id.to_string())) {
    auto lock = r_.vm_lock(b.vm_id);
    std::lock_guard<std::mutex> g(*lock);
    auto rel = r_.relationship(*pv);
    if (rel && *rel && !(*rel)->reverse_json.empty()) {
      json rec = json::parse((*rel)->reverse_json, nullptr, false);
      const uint64_t cycle = rec.is_discarded() ? 0 : rec.value("cycle", uint64_t{0});
      if (rec.value("phase", "") == "prepared" && rec.value("coordinator", "") == primary_host_ && cycle < b.cycle_id)
        VMREPL_RETURN_IF_ERROR(r_.reverse_finalize(*pv, cycle));
    }
  }
  auto vm = replica_vm(b.vm_id, true);
  if (!vm) return vm.status();
  auto lock = r_.vm_lock(b.vm_id);
  std::lock_guard<std::mutex> g(*lock);
  const VmRecord& rec = vm->vm;
  const size_t nd = rec.disks.size();
  if (b.disk_sizes.size() != nd) return Status::InvalidParameter("cycle names " + std::to_string(b.disk_sizes.size()) + " disks; the replica has " + std::to_string(nd));
  for (size_t d = 0; d < nd; ++d)
    if (b.disk_sizes[d] != rec.disks[d].size_bytes) return Status::InvalidParameter("disk " + std::to_string(d) + " size differs from the replica's");
  if (b.block_size != r_.opts_.block_size) return Status::InvalidParameter("block size differs from the replica's");
  auto rs = r_.replica_store(*vm);
  if (!rs) return rs.status();
  ReplicaStore& store = **rs;
  if (b.cycle_id <= store.image_seq())
    return Status::InvalidParameter("cycle " + std::to_string(b.cycle_id) + " is not after the replica's latest point " +
                                    std::to_string(store.image_seq()));
  std::vector<BlockIndex> idx(nd);
  for (size_t d = 0; d < nd; ++d) {
    auto i = image_index(r_, rec, store, static_cast<uint32_t>(d));
    if (!i) return i.status();
    idx[d] = std::move(i).value();
  }
  auto type = b.point_type == to_number(RecoveryPointType::PlannedFailover) ? RecoveryPointType::PlannedFailover
              : b.point_type == to_number(RecoveryPointType::ApplicationConsistent) ? RecoveryPointType::ApplicationConsistent
                                                                                      : RecoveryPointType::Standard;
  // Accepted: the primary sends its batches only after this, so a refusal above always
  // reaches it as the answer (not as a broken pipe on its next batch).
  VMREPL_RETURN_IF_ERROR(ch_->send(proto::Ack{b.seq, 0, "", "{\"accepted\":true}"}));
  const uint64_t bytes_at_begin = ch_->bytes_consumed();
  const int64_t begun_us = now_us();
  CycleResult res;
  VMREPL_RETURN_IF_ERROR(receive_cycle(b, rec, store, idx, type, res));
  auto rel = r_.relationship(*vm);
  if (!rel || !*rel) return rel ? Status::InvalidState("relationship gone") : rel.status();
  Relationship nr = **rel;
  // A resynchronization starts the history again (spec §10); otherwise keep RecoveryHistory,
  // pruned in the commit's transaction. The merged logs' space is freed after the ack
  // (closing them, see prune).
  std::vector<fs::Fd> dead_logs;
  const bool restart_history = b.full && nr.state != ReplicationState::WaitingToCompleteInitialReplication;
  if (!restart_history) {
    res.info.keep_history = nr.settings.RecoveryHistory;
    res.info.dead = &dead_logs;
  }
  nr.state = ReplicationState::Replicating;
  nr.health = ReplicationHealth::Ok;
  nr.health_text.clear();
  nr.last_cycle = b.cycle_id;
  nr.last_replication_us = res.info.created_us;
  nr.last_apply_us = now_us();
  nr.last_replication_type = res.info.replication_type;
  if (primary_port_) nr.peer_port = primary_port_;  // where a failover checks the primary
  nr.stats.success_count++;
  const uint64_t cycle_bytes = ch_->bytes_consumed() - bytes_at_begin;
  nr.stats.replication_size += cycle_bytes;
  nr.stats.max_replication_size = std::max(nr.stats.max_replication_size, cycle_bytes);
  const uint32_t latency = static_cast<uint32_t>((now_us() - begun_us) / 1000000);
  nr.stats.latency_s += latency;
  nr.stats.max_latency_s = std::max(nr.stats.max_latency_s, latency);
  if (!nr.stats.start_us) nr.stats.start_us = res.info.created_us;
  // The point, the prune and the relationship's record land in one transaction.
  res.info.also = [&nr](sqlite::Db& db) { return RelationshipTable::put_in(db, nr); };
  VMREPL_RETURN_IF_ERROR(res.apply->commit(res.info));
  res.apply.reset();
  if (restart_history) store.drop_points_except(b.cycle_id);
  json data;
  data["applied_blocks"] = res.applied;
  Status acked = ch_->send(proto::Ack{res.end_seq, 0, "", data.dump()});
  // The point's index is saved after the ack, while the primary records its side (still under
  // the VM's lock, so the next cycle finds it): a crash before it only costs that cycle a
  // rescan of the image (image_index), never a wrong index.
  for (size_t d = 0; d < nd; ++d) {
    idx[d].save(index_path(rec, b.cycle_id, static_cast<uint32_t>(d)));
    for (uint64_t old = b.cycle_id - 1; old + 2 >= b.cycle_id && old > 0; --old)
      std::remove(index_path(rec, old, static_cast<uint32_t>(d)).c_str());
  }
  dead_logs.clear();
  return acked;
}

Status ReplicaSession::receive_cycle(const proto::CycleBegin& b, const VmRecord& rec, ReplicaStore& store,
                                     std::vector<BlockIndex>& idx, RecoveryPointType type, CycleResult& res) {
  const size_t nd = rec.disks.size();
  auto applyr = store.begin_apply(b.cycle_id, type);
  if (!applyr) return applyr.status();
  auto& apply = **applyr;
  // Group commit: batches that arrived while one was applied go to the undo log together
  // (one fdatasync for all of them); an idle link applies each batch at once, so the disk
  // works while the next one travels.
  std::vector<BlockUpdate> updates;
  std::vector<std::vector<uint8_t>> held;  // the buffers `updates` points into
  uint64_t group_bytes = 0;
  // A block written in part is hashed as the store leaves it: the range plus the rest of the
  // block as this replica held it, which is what the Merkle root then checks.
  const ReplicaStore::Apply::BlockContentFn hash_partial =
      [&idx](uint32_t d, uint64_t blk, std::span<const std::byte> bytes) { idx[d].set_from_bytes(blk, bytes); };
  auto flush = [&]() -> Status {
    Status st = apply.apply_batch(updates, hash_partial);
    updates.clear();
    group_bytes = 0;
    for (auto& h : held) ch_->give_buffer(std::move(h));
    held.clear();
    return st;
  };
  for (;;) {
    auto m = ch_->recv(r_.opts_.io_timeout);
    if (!m) {
      apply.abort();
      return m.status();
    }
    if (auto* batch = std::get_if<proto::BlockBatch>(&*m)) {
      if (batch->vm_id != b.vm_id || batch->cycle_id != b.cycle_id || batch->disk >= nd) {
        apply.abort();
        return Status::InvalidParameter("block batch does not belong to cycle " + std::to_string(b.cycle_id));
      }
      const uint32_t d = batch->disk;
      const proto::BatchGeometry geo{rec.disks[d].size_bytes, b.block_size};
      // A group is one store batch, or one protocol batch (whose blocks are distinct): either
      // way each partly written block is hashed from its content after the group.
      const size_t n = batch->zero_blocks.size() + batch->data_blocks.size() + batch->ranges.size();
      if (!updates.empty() && updates.size() + n > apply.max_batch_blocks()) {
        if (Status st = flush(); !st.ok()) {
          apply.abort();
          return st;
        }
      }
      // A raw batch is applied from the frame's own buffer; a compressed one is opened first.
      if (batch->codec == proto::Codec::Raw) {
        if (Status ok = proto::check_batch(*batch, geo); !ok.ok()) {
          apply.abort();
          return ok;
        }
        held.push_back(std::move(batch->payload));
      } else {
        auto data = proto::open_batch(*batch, geo);
        if (!data) {
          apply.abort();
          return data.status();
        }
        held.push_back(std::move(data).value());
      }
      const std::vector<uint8_t>& raw = held.back();
      for (uint64_t blk : batch->zero_blocks) {
        updates.push_back(BlockUpdate{d, blk, {}});
        idx[d].set_zero(blk);
      }
      size_t off = 0;
      for (uint64_t blk : batch->data_blocks) {
        uint32_t len = idx[d].block_length(blk);
        std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(raw.data() + off), len);
        off += len;
        updates.push_back(BlockUpdate{d, blk, bytes});
        idx[d].set_from_bytes(blk, bytes);
      }
      for (const auto& r : batch->ranges) {
        std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(raw.data() + off), r.length);
        off += r.length;
        updates.push_back(BlockUpdate{d, r.block, bytes, r.offset});
      }
      group_bytes += off;
      res.applied += batch->zero_blocks.size() + batch->data_blocks.size() + batch->ranges.size();
      if (group_bytes >= kApplyGroupBytes || !ch_->has_pending()) {
        if (Status st = flush(); !st.ok()) {
          apply.abort();
          return st;
        }
      }
    } else if (auto* end = std::get_if<proto::CycleEnd>(&*m)) {
      if (Status st = flush(); !st.ok()) {
        apply.abort();
        return st;
      }
      if (end->disk_roots.size() != nd) {
        apply.abort();
        return Status::InvalidParameter("cycle end carries " + std::to_string(end->disk_roots.size()) + " roots");
      }
      CommitInfo& info = res.info;
      info.created_us = now_us();
      info.replication_type = type == RecoveryPointType::PlannedFailover ? ReplicationType::Planned : ReplicationType::Regular;
      info.hash_algorithm = r_.opts_.hash;
      for (size_t d = 0; d < nd; ++d) {
        BlockHash mine = merkle_root(idx[d]);
        if (!(mine == end->disk_roots[d])) {
          apply.abort();
          return Status::Failed("the replica disagrees with the primary on disk " + std::to_string(d) + ": root " +
                                mine.to_hex(r_.opts_.hash) + " here, " + end->disk_roots[d].to_hex(r_.opts_.hash) +
                                " there; the cycle was rolled back");
        }
        info.roots.push_back(mine);
      }
      res.end_seq = end->seq;
      res.apply = std::move(applyr).value();
      return Status::OK();
    } else {
      apply.abort();
      return Status::InvalidParameter("unexpected message '" + std::string(proto::message_type(*m)) + "' inside a cycle");
    }
  }
}

}  // namespace vmrepl
