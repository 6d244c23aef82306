// ReplicaSession: the recovery server's side of one connection from a primary. It admits the
// primary through the authorization entries, then serves relationship messages, control
// requests and cycles, one after the other, on its own thread.
//
// Applying a cycle: every received batch goes through the ReplicaStore (undo log, fsync,
// in-place write); the blocks' hashes update the replica's own index; at CycleEnd the Merkle
// root of every disk must equal the primary's, and only then is the point committed and
// acknowledged. A mismatch, a bad batch or a lost connection rolls the apply back.
//
// Thread-safety: run() on a thread of its own (it blocks).
#pragma once

#include <memory>
#include <optional>

#include "core/engine/replicator.h"

namespace vmrepl {

class ReplicaSession {
 public:
  ReplicaSession(Replicator& r, std::shared_ptr<Channel> ch) : r_(r), ch_(std::move(ch)) {}
  void run();

  // Where the replica's index of its image at point `seq` is kept.
  static std::string index_path(const VmRecord& vm, uint64_t seq, uint32_t disk);
  // The index of the replica image at its latest point (loaded, or rebuilt by a scan).
  // rescan: read the image again instead of trusting the saved index.
  static Result<BlockIndex> image_index(Replicator& r, const VmRecord& vm, ReplicaStore& rs, uint32_t disk,
                                        bool rescan = false);

 private:
  Status handle_create(const protocol::RelationshipCreate& m);
  Status handle_modify(const protocol::RelationshipModify& m);
  Status handle_remove(const protocol::RelationshipRemove& m);
  Status handle_cycle(const protocol::CycleBegin& m);
  Result<std::string> handle_request(const protocol::Request& m);
  // The replica VM `id`; with check_cert, a relationship of AuthenticationType 2 also needs
  // the certificate it names on this session (AccessDenied otherwise).
  Result<VmRef> replica_vm(const Guid& id, bool for_cycle, bool check_cert = true);
  Status check_tls_peer(const std::string& host);
  Status check_plain_peer();
  Status check_certificate(const ReplicationSettingData& s);
  // Receives the batches of cycle `b` into a new apply on `store`, updating `idx`; at the end
  // checks every disk's root against the primary's and commits the point. Any failure
  // rolls the apply back.
  // A cycle received whole and checked against the primary's roots: its Apply waits for
  // the commit, which the caller makes with the relationship's record.
  struct CycleResult {
    CommitInfo info;
    uint64_t applied = 0;
    uint64_t end_seq = 0;
    std::unique_ptr<ReplicaStore::Apply> apply;
  };
  Status receive_cycle(const protocol::CycleBegin& b, const VmRecord& rec, ReplicaStore& store,
                       std::vector<BlockIndex>& idx, RecoveryPointType type, CycleResult& res);

  // The old primary's side of a reverse (reverse_session.cpp).
  struct ReverseCtx;
  Result<std::string> reverse_request(const protocol::Request& m);
  Status reverse_cycle(const protocol::CycleBegin& b);
  Status reverse_prepare(const VmRef& vm, const protocol::CycleBegin& b, std::vector<BlockIndex>& idx);
  void session_ended();
  Guid reverse_vm() const;

  Replicator& r_;
  std::shared_ptr<Channel> ch_;
  std::string primary_host_;
  uint16_t primary_port_ = 0;  // the peer's own listener, from its hello
  // Admitted only as the peer of a relationship here (no authorization entry): status and
  // reverse-outcome questions only.
  bool limited_ = false;
  Status limited_reason_;
  AuthorizationSettingData entry_;
  std::shared_ptr<ReverseCtx> rev_;
};

}  // namespace vmrepl
