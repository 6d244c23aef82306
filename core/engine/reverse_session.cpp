// The old primary's side of ReverseReplicationRelationship (see failover.cpp for the whole
// exchange): reverse_begin, the reverse cycle applied in place, verify, commit and abort, and
// the new primary's answer when an old primary asks how a reverse ended.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/blocks/disk_scanner.h"
#include "core/blocks/merkle.h"
#include "core/blocks/sparse_io.h"
#include "core/blocks/unique_fd.h"
#include "core/engine/engine_detail.h"
#include "core/engine/replica_session.h"
#include "core/settings/json.h"

namespace vmrepl {

using json = nlohmann::json;
namespace proto = protocol;
using engine_detail::block_sets_to_json;
using engine_detail::fsync_dir;
using engine_detail::hex_entries;
using engine_detail::make_placeholder;
using engine_detail::mkdirs;
using engine_detail::mode_text;
using engine_detail::remove_tree;
using engine_detail::state_text;

struct ReplicaSession::ReverseCtx {
  Guid vm_id;
  bool planned = false;
  uint16_t port = 0;             // the new primary's listener
  std::string settings_json;     // its Msvm_ReplicationSettingData, for our relationship
  std::vector<BlockIndex> now;   // our disks as they are (what the reverse starts from)
  uint64_t cycle = 0;            // set once prepared
};

Guid ReplicaSession::reverse_vm() const { return rev_ ? rev_->vm_id : Guid(); }

namespace {

ScanOptions scan_options(const ReplicatorOptions& o) {
  ScanOptions so;
  so.algorithm = o.hash;
  so.block_size = o.block_size;
  return so;
}

// Re-hashes `blocks` of `idx` from the disk at `path`.
Status rehash(const std::string& path, BlockIndex& idx, const BlockSet& blocks) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::Failed("cannot open " + path + ": " + std::strerror(errno));
  std::vector<std::byte> buf(idx.block_size());
  Status st;
  blocks.for_each_run([&](const BlockRun& r) {
    for (uint64_t b = r.first; b < r.end() && st.ok(); ++b) {
      std::span<std::byte> bytes(buf.data(), idx.block_length(b));
      st = pread_full(fd.get(), bytes, idx.block_offset(b));
      if (st.ok()) idx.set_from_bytes(b, bytes);
    }
  });
  return st;
}

}  // namespace

Result<std::string> ReplicaSession::reverse_request(const proto::Request& m) {
  json body = json::parse(m.body_json, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return Status::InvalidParameter("request body is not a JSON object");
  auto id = Guid::parse(body.value("vm_id", ""));
  if (!id) return id.status();
  auto vm = r_.find_vm(id->to_string());
  if (!vm) return vm.status().Annotate("on " + r_.opts_.host_name);
  auto lock = r_.vm_lock(*id);
  std::lock_guard<std::mutex> g(*lock);
  auto relr = r_.relationship(*vm);
  if (!relr) return relr.status();
  const uint64_t cycle = body.value("cycle", uint64_t{0});

  if (m.method == "reverse_outcome") {
    // We are the new primary; the old one asks whether the reverse of `cycle` committed.
    std::string outcome = "unknown";
    if (*relr) {
      const Relationship& rel = **relr;
      if (rel.mode == ReplicationMode::Primary && rel.last_cycle >= cycle && rel.peer_host == primary_host_)
        outcome = "committed";
      else if (rel.mode == ReplicationMode::Replica &&
               (rel.state == ReplicationState::Recovered || rel.state == ReplicationState::Committed))
        outcome = "aborted";
    }
    return json{{"outcome", outcome}}.dump();
  }
  if (!*relr) return Status::InvalidState("VM " + vm->vm.name + " has no replication relationship on " + r_.opts_.host_name);

  if (m.method == "reverse_begin") {
    // A new attempt: the new primary did not commit the one we may hold.
    if (!(*relr)->reverse_json.empty()) {
      VMREPL_RETURN_IF_ERROR(r_.reverse_revert(*vm));
      relr = r_.relationship(*vm);
      if (!relr || !*relr) return relr ? Status::InvalidState("relationship gone") : relr.status();
    }
    rev_.reset();
    const Relationship rel = **relr;
    const VmRecord& rec = vm->vm;
    if (rec.enabled_state != kEnabledStateOff)
      return Status::SystemInUse("VM " + rec.name + " is running on " + r_.opts_.host_name +
                                 " (EnabledState 2); turn it off before the reverse");
    const bool planned = rel.mode == ReplicationMode::Primary && rel.state == ReplicationState::SyncedReplicationComplete;
    const bool unplanned = rel.mode == ReplicationMode::Replica &&
                           rel.state == ReplicationState::WaitingToCompleteInitialReplication && rel.last_cycle > 0;
    if (!planned && !unplanned)
      return Status::InvalidState("VM " + rec.name + " on " + r_.opts_.host_name + " is in ReplicationState " +
                                  state_text(rel.state) + " (mode " + mode_text(rel.mode) +
                                  "); a reverse needs it prepared for failover (mode 1, state 4) or made a replica "
                                  "(mode 2, state 2)");
    if (rel.peer_host != primary_host_)
      return Status::InvalidState("VM " + rec.name + " replicates with " + rel.peer_host + ", not with " + primary_host_);
    const json sizes = body.value("disk_sizes", json::array());
    bool same = sizes.size() == rec.disks.size();
    for (size_t d = 0; same && d < rec.disks.size(); ++d)
      same = sizes[d].is_number_unsigned() && sizes[d].get<uint64_t>() == rec.disks[d].size_bytes;
    if (!same) return Status::InvalidParameter("IncludedDisks: the disks differ between the two hosts");
    {
      // The new relationship's settings: with AuthenticationType 2 they name the new primary's
      // certificate, which this session's peer must be presenting.
      auto inst = decode_json(body.value("settings", ""), ReplicationSettingData::kClassName);
      if (!inst) return inst.status().Annotate("settings");
      auto rsd = ReplicationSettingData::from_instance(*inst);
      if (!rsd) return rsd.status();
      VMREPL_RETURN_IF_ERROR(check_certificate(*rsd));
    }
    const uint64_t k = body.value("point", uint64_t{0});
    const size_t nd = rec.disks.size();
    const ScanOptions so = scan_options(r_.opts_);

    // Delta: what we changed after k is known from our cycle lists and our feed or a scan.
    bool delta = !body.value("force_merkle", false) && k > 0 && k <= rel.last_cycle;
    std::vector<BlockIndex> acked(nd);
    for (uint32_t d = 0; d < nd && delta; ++d) {
      auto a = BlockIndex::load(Replicator::acked_index_path(rec, d));
      if (!a || a->block_size() != r_.opts_.block_size || a->algorithm() != r_.opts_.hash)
        delta = false;
      else
        acked[d] = std::move(a).value();
    }
    const json k_roots = body.value("point_roots", json::array());
    if (delta && k == rel.last_cycle && k_roots.size() == nd)
      for (size_t d = 0; d < nd && delta; ++d)
        delta = k_roots[d].is_string() &&
                k_roots[d].get<std::string>() == merkle_root(acked[d]).to_hex(r_.opts_.hash);
    DiskBlockSets changed(nd);
    if (delta && k < rel.last_cycle) {
      auto h = r_.history(*vm);
      auto seqs = h ? (*h)->seqs() : Result<std::vector<uint64_t>>(h.status());
      if (!seqs) {
        delta = false;
      } else {
        uint64_t want = k + 1;
        for (uint64_t s : *seqs)
          if (s == want && want <= rel.last_cycle) ++want;
        if (want != rel.last_cycle + 1) {
          delta = false;  // a cycle list after k is missing
        } else {
          auto u = (*h)->union_since(k, rel.last_cycle);
          if (!u) return u.status();
          changed = std::move(u).value();
        }
      }
    }
    std::string source;
    std::vector<BlockIndex> now(nd);
    if (delta) {
      ChangeFeed* cf = nullptr;
      if (r_.feed_attached(rec)) {
        auto f = r_.feed(*vm);
        if (f && (*f)->trusted() && !(*f)->open_cycle()) cf = *f;
      }
      if (cf) {
        source = "change-feed";
        DiskBlockSets pending = cf->pending();
        for (auto& units : pending) units = r_.feed_blocks(units);
        for (size_t d = 0; d < nd; ++d) {
          now[d] = acked[d].clone();
          if (d < pending.size()) {
            VMREPL_RETURN_IF_ERROR(rehash(rec.disks[d].path, now[d], pending[d]));
            changed[d].insert(pending[d]);
          }
        }
      } else {
        source = "scan";
        for (size_t d = 0; d < nd; ++d) {
          auto sc = scan_file(rec.disks[d].path, so);
          if (!sc) return sc.status().Annotate("disk " + std::to_string(d));
          now[d] = std::move(sc).value();
          auto df = diff(acked[d], now[d]);
          if (!df) return df.status();
          for (uint64_t b : *df) changed[d].insert(b, 1);
        }
      }
    } else {
      source = "merkle";
      for (size_t d = 0; d < nd; ++d) {
        auto sc = scan_file(rec.disks[d].path, so);
        if (!sc) return sc.status().Annotate("disk " + std::to_string(d));
        now[d] = std::move(sc).value();
      }
    }
    auto ctx = std::make_shared<ReverseCtx>();
    ctx->vm_id = *id;
    ctx->planned = planned;
    ctx->port = body.value("port", uint16_t{0});
    ctx->settings_json = body.value("settings", "");
    ctx->now = std::move(now);
    rev_ = ctx;
    json out;
    out["mode"] = delta ? "delta" : "merkle";
    out["source"] = source;
    out["planned"] = planned;
    out["last_cycle"] = rel.last_cycle;
    if (delta) out["blocks"] = block_sets_to_json(changed);
    return out.dump();
  }

  if (m.method == "reverse_index") {
    if (!rev_ || rev_->vm_id != *id) return Status::InvalidState("no reverse under way for VM " + vm->vm.name);
    const uint64_t disk = body.value("disk", uint64_t{0}), first = body.value("first", uint64_t{0}),
                   count = body.value("count", uint64_t{0});
    if (disk >= rev_->now.size()) return Status::InvalidParameter("disk " + std::to_string(disk) + " does not exist");
    const BlockIndex& idx = rev_->now[disk];
    if (first > idx.block_count() || count > 100000 || count > idx.block_count() - first)
      return Status::InvalidParameter("index range out of bounds");
    return json{{"entries", hex_entries(idx, first, count)}}.dump();
  }

  if (m.method == "reverse_verify") {
    if (!rev_ || rev_->vm_id != *id || !rev_->cycle) return Status::InvalidState("no prepared reverse for VM " + vm->vm.name);
    auto rs = r_.replica_store(*vm);
    if (!rs) return rs.status();
    json roots = json::array();
    for (uint32_t d = 0; d < vm->vm.disks.size(); ++d) {
      auto sc = scan_file((*rs)->image_path(d), scan_options(r_.opts_));
      if (!sc) return sc.status();
      roots.push_back(merkle_root(*sc).to_hex(r_.opts_.hash));
    }
    return json{{"roots", roots}}.dump();
  }

  if (m.method == "reverse_commit") {
    VMREPL_RETURN_IF_ERROR(r_.reverse_finalize(*vm, cycle));
    rev_.reset();
    return std::string("{}");
  }

  if (m.method == "reverse_abort") {
    VMREPL_RETURN_IF_ERROR(r_.reverse_revert(*vm));
    rev_.reset();
    return std::string("{}");
  }
  return Status::InvalidParameter("unknown request '" + m.method + "'");
}

Status ReplicaSession::reverse_cycle(const proto::CycleBegin& b) {
  auto ctx = rev_;
  auto vm = r_.find_vm(b.vm_id.to_string());
  if (!vm) return vm.status();
  auto lock = r_.vm_lock(b.vm_id);
  std::lock_guard<std::mutex> g(*lock);
  const VmRecord& rec = vm->vm;
  const size_t nd = rec.disks.size();
  if (ctx->cycle) return Status::InvalidState("the reverse of VM " + rec.name + " is already prepared");
  // What reverse_begin checked may have changed since (someone started the VM).
  if (rec.enabled_state != kEnabledStateOff)
    return Status::SystemInUse("VM " + rec.name + " was started on " + r_.opts_.host_name + " during the reverse");
  if (auto relr = r_.relationship(*vm); !relr || !*relr || !(*relr)->reverse_json.empty() ||
                                        (*relr)->peer_host != primary_host_ ||
                                        (ctx->planned ? (*relr)->state != ReplicationState::SyncedReplicationComplete
                                                      : (*relr)->state != ReplicationState::WaitingToCompleteInitialReplication))
    return Status::InvalidState("the relationship of VM " + rec.name + " changed during the reverse");
  if (b.cycle_id < 2 || b.disk_sizes.size() != nd || b.block_size != r_.opts_.block_size)
    return Status::InvalidParameter("reverse cycle does not match VM " + rec.name);
  for (size_t d = 0; d < nd; ++d)
    if (b.disk_sizes[d] != rec.disks[d].size_bytes) return Status::InvalidParameter("disk " + std::to_string(d) + " size differs");
  std::vector<BlockIndex> idx(nd);
  for (size_t d = 0; d < nd; ++d) idx[d] = ctx->now[d].clone();
  Status st = reverse_prepare(*vm, b, idx);
  auto fail = [&](Status why) {
    Status undone = r_.reverse_revert(*vm);
    rev_.reset();
    if (!undone.ok()) return why.Annotate("undoing it also failed (" + undone.message() + "); it is undone at restart");
    return why;
  };
  if (!st.ok()) return fail(st);
  auto rs = r_.replica_store(*vm);
  if (!rs) return fail(rs.status());
  if (Status acc = ch_->send(proto::Ack{b.seq, 0, "", "{\"accepted\":true}"}); !acc.ok()) return fail(acc);
  CycleResult res;
  st = receive_cycle(b, rec, **rs, idx, RecoveryPointType::Standard, res);
  if (st.ok()) st = res.apply->commit(res.info);
  if (!st.ok()) return fail(st);
  res.apply.reset();
  // Prepared: the new primary decides now.
  auto relr = r_.relationship(*vm);
  if (!relr || !*relr) return fail(relr ? Status::InvalidState("relationship gone") : relr.status());
  Relationship rel = **relr;
  json rec_json = json::parse(rel.reverse_json, nullptr, false);
  rec_json["phase"] = "prepared";
  rel.reverse_json = rec_json.dump();
  st = r_.put_relationship(*vm, rel);
  if (!st.ok()) return fail(st);
  ctx->cycle = b.cycle_id;
  return ch_->send(proto::Ack{res.end_seq, 0, "", json{{"applied_blocks", res.applied}}.dump()});
}

// Our disks become the replica's image, in place, with the reverse's starting state as its
// base point (cycle - 1), so the cycle's undo log can take them back exactly.
Status ReplicaSession::reverse_prepare(const VmRef& vm, const proto::CycleBegin& b, std::vector<BlockIndex>& idx) {
  const VmRecord& rec = vm.vm;
  const std::string folder = Replicator::replica_folder(rec);
  // What an earlier replica role left is of no use: gone before anything records the reverse,
  // so that every image found below the record is one of our own disks.
  {
    std::lock_guard<std::mutex> lk(r_.mu_);
    r_.replica_stores_.erase(rec.id);
  }
  VMREPL_RETURN_IF_ERROR(ReplicaStore::forget(vm.store->catalog(), rec.id));
  VMREPL_RETURN_IF_ERROR(r_.discard_later(rec.folder, folder));
  auto relr = r_.relationship(vm);
  if (!relr || !*relr) return relr ? Status::InvalidState("relationship gone") : relr.status();
  Relationship rel = **relr;
  json record{{"phase", "preparing"},     {"coordinator", primary_host_}, {"port", rev_->port}, {"tls", ch_->is_tls()},
              {"cycle", b.cycle_id},      {"planned", rev_->planned},     {"settings", rev_->settings_json},
              {"prior", rel.to_json()}};
  rel.reverse_json = record.dump();
  VMREPL_RETURN_IF_ERROR(r_.put_relationship(vm, rel));
  VMREPL_RETURN_IF_ERROR(mkdirs(folder));
  for (uint32_t d = 0; d < rec.disks.size(); ++d) {
    const std::string image = folder + "/disk" + std::to_string(d) + ".img";
    if (::rename(rec.disks[d].path.c_str(), image.c_str()) != 0)
      return Status::Failed("cannot move " + rec.disks[d].path + ": " + std::strerror(errno));
  }
  VMREPL_RETURN_IF_ERROR(fsync_dir(folder));
  for (const auto& d : rec.disks) VMREPL_RETURN_IF_ERROR(make_placeholder(d.path, d.size_bytes));
  VMREPL_RETURN_IF_ERROR(fsync_dir(rec.folder));
  auto rs = r_.replica_store(vm);
  if (!rs) return rs.status();
  auto base = (*rs)->begin_apply(b.cycle_id - 1, RecoveryPointType::Standard);
  if (!base) return base.status();
  CommitInfo info;
  info.created_us = engine_detail::now_us();
  info.replication_type = ReplicationType::Regular;
  info.hash_algorithm = r_.opts_.hash;
  for (const auto& i : idx) info.roots.push_back(merkle_root(i));
  VMREPL_RETURN_IF_ERROR((*base)->commit(info));
  for (uint32_t d = 0; d < rec.disks.size(); ++d) VMREPL_RETURN_IF_ERROR(idx[d].save(index_path(rec, b.cycle_id - 1, d)));
  return Status::OK();
}

void ReplicaSession::session_ended() {
  if (!rev_ || !rev_->cycle) return;
  // Prepared, and the new primary went away before telling us: ask it (or wait for it).
  auto vm = r_.find_vm(rev_->vm_id.to_string());
  if (vm) r_.resolve_reverse_later(*vm);
}

}  // namespace vmrepl
