// ReplicationService: one host's engine and the method surface of the model.
//
// It owns the EventLoop (its own thread), the JobManager and the VmStore of a host root.
// Methods validate their inputs synchronously and answer with an error code at once; long
// operations return a Job that runs on the loop (its heavy work on the libuv thread pool).
//
// "computer_system" arguments accept an Msvm_ComputerSystem object path (full or relative),
// a VM GUID or a VM name.
//
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine/replicator.h"
#include "core/jobs/event_loop.h"
#include "core/jobs/job_manager.h"
#include "core/model/instance.h"
#include "core/service/service_options.h"
#include "core/store/vm_store.h"

namespace vmrepl {

class ReplicationService {
 public:
  // root: absolute host root (created if missing).
  static Result<std::unique_ptr<ReplicationService>> open(const std::string& root, ServiceOptions opts);
  ~ReplicationService();  // cancels running jobs, waits for them at a safe point, closes
  ReplicationService(const ReplicationService&) = delete;
  ReplicationService& operator=(const ReplicationService&) = delete;

  // HostName, HostRoot, Version, BlockSize, HashAlgorithm, JobRetention... (Msvm_ReplicationService).
  Instance info() const;
  const ServiceOptions& options() const { return opts_; }

  Result<Instance> define_system(const VmDefinition& def);
  Result<Instance> get_system(std::string_view computer_system) const;
  Result<std::vector<Instance>> list_systems() const;
  // The VM must be off (SystemInUse otherwise).
  Status destroy_system(std::string_view computer_system);
  // EnabledState 2 (running) or 3 (off); anything else -> InvalidParameter.
  Status request_state_change(std::string_view computer_system, uint16_t requested_state);
  Result<std::string> disk_path(std::string_view computer_system, uint32_t disk) const;
  // The change feed: a write to [offset, offset+length) of a disk, recorded durably before
  // this returns (group-committed). Cycles then send those blocks without scanning.
  Status disk_mark_dirty(std::string_view computer_system, uint32_t disk, uint64_t offset, uint64_t length);

  // Bandwidth limit in bytes/s (0 = none) of one relationship (persisted with it) or, for an
  // empty computer_system, of the whole service; changes apply to transfers in progress.
  Status set_bandwidth_limit(std::string_view computer_system, uint64_t bytes_per_s);
  Result<uint64_t> bandwidth_limit(std::string_view computer_system) const;

  // ComputeDigest: the BlockIndex and Merkle root of every disk of the VM. The index of disk
  // N is kept next to the image (disk<N>.idx). Result properties on the job: MerkleRoot,
  // DiskMerkleRoots[], HashAlgorithm, BlockSize, BlockCount, ZeroBlocks, BytesRead.
  Result<std::shared_ptr<Job>> compute_digest(std::string_view computer_system);

  // ---- replication (spec §2, §8): validation at once, the work in the returned job ----
  Result<std::shared_ptr<Job>> create_replication_relationship(std::string_view cs, std::string_view setting_data);
  Result<std::shared_ptr<Job>> start_replication(std::string_view cs, uint16_t type, std::string_view export_location,
                                                 std::string_view start_time);
  Result<std::shared_ptr<Job>> modify_replication_settings(std::string_view cs, std::string_view setting_data);
  Result<std::shared_ptr<Job>> remove_replication_relationship(std::string_view cs);
  Result<std::shared_ptr<Job>> request_replication_state_change(std::string_view cs, uint16_t requested);
  Result<std::shared_ptr<Job>> resynchronize(std::string_view cs, std::string_view start_time);
  Result<std::shared_ptr<Job>> replicate_now(std::string_view cs);
  Result<std::shared_ptr<Job>> test_replication_connection(std::string_view point, uint16_t port, uint16_t auth_type,
                                                           std::string_view thumbprint);
  // ---- failover and reverse (spec §8-10) ----
  // `snapshot`: a recovery point (its InstanceID "Microsoft:<GUID>\RP\<seq>", an object path
  // holding it, or the bare sequence number); empty = the latest.
  Result<std::shared_ptr<Job>> initiate_failover(std::string_view cs, std::string_view snapshot);
  Result<std::shared_ptr<Job>> revert_failover(std::string_view cs);
  Result<std::shared_ptr<Job>> commit_failover(std::string_view cs);
  Result<std::shared_ptr<Job>> test_replica_system(std::string_view cs, std::string_view snapshot);
  // Validates everything it can at once (mode, state, setting data) and answers the code;
  // the job (JobType 104) does the rest. verify_full: both sides re-read and re-hash their
  // disks before the commit instead of trusting their maintained indexes alone.
  Result<std::shared_ptr<Job>> reverse_replication_relationship(std::string_view cs, std::string_view setting_data,
                                                               bool verify_full = false);
  Result<Instance> get_replication_statistics(std::string_view cs);
  Result<Instance> get_replication_settings(std::string_view cs);
  Result<std::vector<Instance>> list_recovery_points(std::string_view cs);

  // ---- recovery-server settings and authorization (spec §4) ----
  Result<std::shared_ptr<Job>> modify_service_settings(std::string_view setting_data);
  Instance service_settings() const;
  Result<std::shared_ptr<Job>> add_authorization_entry(std::string_view entry);
  Result<std::shared_ptr<Job>> modify_authorization_entry(std::string_view entry);
  Result<std::shared_ptr<Job>> remove_authorization_entry(std::string_view allowed_primary);
  std::vector<Instance> list_authorization_entries() const;

  Replicator& replicator() { return *replicator_; }

  std::shared_ptr<Job> find_job(std::string_view instance_id) const;
  std::vector<std::shared_ptr<Job>> list_jobs() const;
  JobManager& jobs() { return *jobs_; }
  EventLoop& loop() { return *loop_; }

  // The VM a computer_system argument names, in whichever store holds it. InvalidParameter
  // for a malformed object path or one naming another class or host; FileNotFound for an
  // unknown VM.
  Result<VmRef> resolve(std::string_view computer_system) const;

 private:
  ReplicationService(std::string root, ServiceOptions opts, std::unique_ptr<VmStore> store);
  Instance vm_instance(const VmRef& vm) const;
  // A job that runs `fn` (quick, synchronous work) so the method keeps WMI's 4096 + Job shape.
  std::shared_ptr<Job> quick_job(JobType type, std::string name, std::function<Status()> fn);

  const std::string root_;
  const ServiceOptions opts_;
  std::unique_ptr<VmStore> store_;
  // Destroyed in reverse order: the loop stops (running what is left) before the job
  // manager and the store go away.
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Replicator> replicator_;  // stopped first: its threads use everything above
};

}  // namespace vmrepl
