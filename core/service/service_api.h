// ServiceApi: the method surface of one host's service as a client sees it, whether the
// service runs in this process (local:, over ReplicationService) or in a vmrepld reached over
// the management protocol (unix:, vmrepl://). The C ABI sits on this interface only, so every
// URI gives the same methods, codes and job behaviour.
//
// Methods keep ReplicationService's contracts (replication_service.h): validation at once,
// long work in the returned job.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/enums.h"
#include "core/model/guid.h"
#include "core/model/instance.h"
#include "core/model/status.h"

namespace vmrepl {

class ReplicationService;

// A job as its client sees it.
class JobView {
 public:
  virtual ~JobView() = default;
  virtual Guid id() const = 0;
  // Msvm_ConcreteJob properties (job.h), as of the latest change seen.
  virtual Instance snapshot() const = 0;
  virtual JobState state() const = 0;
  // OK for Completed; the failure otherwise (only meaningful once final).
  virtual Status outcome() const = 0;
  // OK once final; Timeout when `timeout` passed first (negative: no limit); for a remote
  // job, SystemNotAvailable when the connection to the daemon is lost.
  virtual Status wait(std::chrono::milliseconds timeout) const = 0;
  // RequestStateChange(Terminate).
  virtual Status cancel() = 0;
};
using JobPtr = std::shared_ptr<JobView>;

class ServiceApi {
 public:
  virtual ~ServiceApi() = default;

  virtual Result<Instance> info() = 0;
  virtual int64_t job_retention_s() const = 0;
  // Called (on an internal thread) with the id of every job that changed. Set once, before
  // jobs are started.
  virtual void set_job_listener(std::function<void(const Guid&)> listener) = 0;

  virtual Result<Instance> define_system(std::string_view definition_json) = 0;
  virtual Result<Instance> get_system(std::string_view cs) = 0;
  virtual Result<std::vector<Instance>> list_systems() = 0;
  virtual Status destroy_system(std::string_view cs) = 0;
  virtual Status request_state_change(std::string_view cs, uint16_t requested_state) = 0;
  virtual Result<std::string> disk_path(std::string_view cs, uint32_t disk) = 0;
  virtual Status disk_mark_dirty(std::string_view cs, uint32_t disk, uint64_t offset, uint64_t length) = 0;
  virtual Result<JobPtr> compute_digest(std::string_view cs) = 0;
  // Empty cs: the service-wide limit.
  virtual Status set_bandwidth_limit(std::string_view cs, uint64_t bytes_per_s) = 0;
  virtual Result<uint64_t> bandwidth_limit(std::string_view cs) = 0;

  virtual Result<JobPtr> create_replication_relationship(std::string_view cs, std::string_view sd) = 0;
  virtual Result<JobPtr> start_replication(std::string_view cs, uint16_t type, std::string_view export_location,
                                           std::string_view start_time) = 0;
  virtual Result<JobPtr> modify_replication_settings(std::string_view cs, std::string_view sd) = 0;
  virtual Result<JobPtr> remove_replication_relationship(std::string_view cs) = 0;
  virtual Result<JobPtr> request_replication_state_change(std::string_view cs, uint16_t requested) = 0;
  virtual Result<JobPtr> resynchronize(std::string_view cs, std::string_view start_time) = 0;
  virtual Result<JobPtr> replicate_now(std::string_view cs) = 0;
  virtual Result<JobPtr> test_replication_connection(std::string_view point, uint16_t port, uint16_t auth_type,
                                                     std::string_view thumbprint) = 0;
  virtual Result<JobPtr> initiate_failover(std::string_view cs, std::string_view snapshot) = 0;
  virtual Result<JobPtr> revert_failover(std::string_view cs) = 0;
  virtual Result<JobPtr> commit_failover(std::string_view cs) = 0;
  virtual Result<JobPtr> test_replica_system(std::string_view cs, std::string_view snapshot) = 0;
  virtual Result<JobPtr> reverse_replication_relationship(std::string_view cs, std::string_view sd,
                                                         bool verify_full) = 0;
  virtual Result<Instance> get_replication_statistics(std::string_view cs) = 0;
  virtual Result<Instance> get_replication_settings(std::string_view cs) = 0;
  virtual Result<std::vector<Instance>> list_recovery_points(std::string_view cs) = 0;

  virtual Result<JobPtr> modify_service_settings(std::string_view sd) = 0;
  virtual Result<Instance> service_settings() = 0;
  virtual Result<JobPtr> add_authorization_entry(std::string_view entry) = 0;
  virtual Result<JobPtr> modify_authorization_entry(std::string_view entry) = 0;
  virtual Result<JobPtr> remove_authorization_entry(std::string_view allowed_primary) = 0;
  virtual Result<std::vector<Instance>> list_authorization_entries() = 0;

  // FileNotFound when no job has that InstanceID (finished jobs are kept job_retention_s).
  virtual Result<JobPtr> get_job(std::string_view instance_id) = 0;
  virtual Result<std::vector<Instance>> list_jobs() = 0;
};

// The in-process service, owned by the api or (the management server's case) borrowed.
std::unique_ptr<ServiceApi> make_local_api(std::unique_ptr<ReplicationService> svc);
std::unique_ptr<ServiceApi> make_local_api(ReplicationService& svc);
// The local view of a job of an in-process service (the management server hands these out).
JobPtr local_job_view(std::shared_ptr<class Job> job);

}  // namespace vmrepl
