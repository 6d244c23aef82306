// ServiceApi over an in-process ReplicationService: a thin adapter.
#include "core/service/replication_service.h"
#include "core/service/service_api.h"

namespace vmrepl {

namespace {

class LocalJob final : public JobView {
 public:
  explicit LocalJob(std::shared_ptr<Job> j) : job_(std::move(j)) {}
  Guid id() const override { return job_->id(); }
  Instance snapshot() const override { return job_->snapshot(); }
  JobState state() const override { return job_->state(); }
  Status outcome() const override { return job_->outcome(); }
  Status wait(std::chrono::milliseconds timeout) const override { return job_->wait(timeout); }
  Status cancel() override { return job_->request_state_change(to_number(JobRequestedState::Terminate)); }

 private:
  std::shared_ptr<Job> job_;
};

Result<JobPtr> view(Result<std::shared_ptr<Job>> r) {
  if (!r) return r.status();
  return local_job_view(std::move(r).value());
}

class LocalApi final : public ServiceApi {
 public:
  LocalApi(std::unique_ptr<ReplicationService> owned, ReplicationService& svc) : owned_(std::move(owned)), s_(svc) {}

  Result<Instance> info() override { return s_.info(); }
  int64_t job_retention_s() const override { return s_.options().job_retention_s; }
  void set_job_listener(std::function<void(const Guid&)> l) override {
    s_.jobs().add_listener([l = std::move(l)](const std::shared_ptr<Job>& j) { l(j->id()); });
  }

  Result<Instance> define_system(std::string_view json) override {
    auto def = parse_vm_definition_json(json);
    if (!def) return def.status();
    return s_.define_system(*def);
  }
  Result<Instance> get_system(std::string_view cs) override { return s_.get_system(cs); }
  Result<std::vector<Instance>> list_systems() override { return s_.list_systems(); }
  Status destroy_system(std::string_view cs) override { return s_.destroy_system(cs); }
  Status request_state_change(std::string_view cs, uint16_t st) override { return s_.request_state_change(cs, st); }
  Result<std::string> disk_path(std::string_view cs, uint32_t disk) override { return s_.disk_path(cs, disk); }
  Status disk_mark_dirty(std::string_view cs, uint32_t disk, uint64_t off, uint64_t len) override {
    return s_.disk_mark_dirty(cs, disk, off, len);
  }
  Result<JobPtr> compute_digest(std::string_view cs) override { return view(s_.compute_digest(cs)); }
  Status set_bandwidth_limit(std::string_view cs, uint64_t bps) override { return s_.set_bandwidth_limit(cs, bps); }
  Result<uint64_t> bandwidth_limit(std::string_view cs) override { return s_.bandwidth_limit(cs); }

  Result<JobPtr> create_replication_relationship(std::string_view cs, std::string_view sd) override {
    return view(s_.create_replication_relationship(cs, sd));
  }
  Result<JobPtr> start_replication(std::string_view cs, uint16_t type, std::string_view export_location,
                                   std::string_view start_time) override {
    return view(s_.start_replication(cs, type, export_location, start_time));
  }
  Result<JobPtr> modify_replication_settings(std::string_view cs, std::string_view sd) override {
    return view(s_.modify_replication_settings(cs, sd));
  }
  Result<JobPtr> remove_replication_relationship(std::string_view cs) override {
    return view(s_.remove_replication_relationship(cs));
  }
  Result<JobPtr> request_replication_state_change(std::string_view cs, uint16_t requested) override {
    return view(s_.request_replication_state_change(cs, requested));
  }
  Result<JobPtr> resynchronize(std::string_view cs, std::string_view start_time) override {
    return view(s_.resynchronize(cs, start_time));
  }
  Result<JobPtr> replicate_now(std::string_view cs) override { return view(s_.replicate_now(cs)); }
  Result<JobPtr> test_replication_connection(std::string_view point, uint16_t port, uint16_t auth,
                                             std::string_view thumbprint) override {
    return view(s_.test_replication_connection(point, port, auth, thumbprint));
  }
  Result<JobPtr> initiate_failover(std::string_view cs, std::string_view snapshot) override {
    return view(s_.initiate_failover(cs, snapshot));
  }
  Result<JobPtr> revert_failover(std::string_view cs) override { return view(s_.revert_failover(cs)); }
  Result<JobPtr> commit_failover(std::string_view cs) override { return view(s_.commit_failover(cs)); }
  Result<JobPtr> test_replica_system(std::string_view cs, std::string_view snapshot) override {
    return view(s_.test_replica_system(cs, snapshot));
  }
  Result<JobPtr> reverse_replication_relationship(std::string_view cs, std::string_view sd, bool verify_full) override {
    return view(s_.reverse_replication_relationship(cs, sd, verify_full));
  }
  Result<Instance> get_replication_statistics(std::string_view cs) override { return s_.get_replication_statistics(cs); }
  Result<Instance> get_replication_settings(std::string_view cs) override { return s_.get_replication_settings(cs); }
  Result<std::vector<Instance>> list_recovery_points(std::string_view cs) override {
    return s_.list_recovery_points(cs);
  }

  Result<JobPtr> modify_service_settings(std::string_view sd) override { return view(s_.modify_service_settings(sd)); }
  Result<Instance> service_settings() override { return s_.service_settings(); }
  Result<JobPtr> add_authorization_entry(std::string_view e) override { return view(s_.add_authorization_entry(e)); }
  Result<JobPtr> modify_authorization_entry(std::string_view e) override {
    return view(s_.modify_authorization_entry(e));
  }
  Result<JobPtr> remove_authorization_entry(std::string_view h) override {
    return view(s_.remove_authorization_entry(h));
  }
  Result<std::vector<Instance>> list_authorization_entries() override { return s_.list_authorization_entries(); }

  Result<JobPtr> get_job(std::string_view instance_id) override {
    auto g = Guid::parse(instance_id);
    if (!g) return g.status().Annotate("InstanceID");
    auto j = s_.find_job(instance_id);
    if (!j)
      return Status(Code::FileNotFound, "no job " + g->to_string() + " on this service (finished jobs are kept " +
                                            std::to_string(s_.options().job_retention_s) + " s)");
    return local_job_view(std::move(j));
  }
  Result<std::vector<Instance>> list_jobs() override {
    std::vector<Instance> out;
    for (const auto& j : s_.list_jobs()) out.push_back(j->snapshot());
    return out;
  }

 private:
  std::unique_ptr<ReplicationService> owned_;  // destroyed last (declared first)
  ReplicationService& s_;
};

}  // namespace

JobPtr local_job_view(std::shared_ptr<Job> job) { return std::make_shared<LocalJob>(std::move(job)); }

std::unique_ptr<ServiceApi> make_local_api(std::unique_ptr<ReplicationService> svc) {
  ReplicationService& ref = *svc;
  return std::make_unique<LocalApi>(std::move(svc), ref);
}

std::unique_ptr<ServiceApi> make_local_api(ReplicationService& svc) {
  return std::make_unique<LocalApi>(nullptr, svc);
}

}  // namespace vmrepl
