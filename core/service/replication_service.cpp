#include "core/service/replication_service.h"

#include <strings.h>

#include "core/model/cim_datetime.h"
#include "core/model/enums.h"
#include "core/model/object_path.h"
#include "core/service/digest_job.h"
#include "core/settings/authorization_setting_data.h"
#include "core/settings/decode.h"
#include "core/settings/replication_setting_data.h"
#include "core/settings/service_setting_data.h"

#ifndef VMREPL_VERSION
#define VMREPL_VERSION "0.1.0"
#endif

namespace vmrepl {

Result<std::unique_ptr<ReplicationService>> ReplicationService::open(const std::string& root, ServiceOptions opts) {
  if (root.empty() || root.front() != '/')
    return Status::InvalidParameter("host root must be an absolute path (got '" + root.substr(0, 128) + "')");
  auto store = VmStore::open(root);
  if (!store) return store.status();
  std::unique_ptr<ReplicationService> svc(new ReplicationService(root, std::move(opts), std::move(store).value()));
  VMREPL_RETURN_IF_ERROR(svc->replicator_->start());
  return svc;
}

ReplicationService::ReplicationService(std::string root, ServiceOptions opts, std::unique_ptr<VmStore> store)
    : root_(std::move(root)), opts_(std::move(opts)), store_(std::move(store)) {
  loop_ = std::make_unique<EventLoop>();
  jobs_ = std::make_unique<JobManager>(*loop_, JobManager::Options{std::chrono::seconds(opts_.job_retention_s)});
  ReplicatorOptions ro;
  ro.host_name = opts_.host_name;
  ro.listen = opts_.listen;
  ro.tls_listen = opts_.tls_listen;
  ro.tls = TlsConfig{opts_.tls_certificate, opts_.tls_key, opts_.tls_ca};
  ro.hosts = opts_.hosts;
  ro.cycle_interval_override_s = opts_.cycle_interval_override_s;
  ro.block_size = opts_.block_size;
  ro.hash = opts_.hash;
  ro.zstd_level = opts_.zstd_level;
  ro.connect_timeout = std::chrono::milliseconds(opts_.connect_timeout_ms);
  ro.io_timeout = std::chrono::milliseconds(opts_.io_timeout_ms);
  replicator_ = std::make_unique<Replicator>(*loop_, *jobs_, *store_, std::move(ro));
  VmStore* st = store_.get();
  // Every finished job is recorded in the catalog (history outlives the in-memory retention).
  // Ordered, not synced: the job's effects are durable already, and its record is, with the
  // next synced catalog change; a power loss before that loses only the history row.
  jobs_->set_on_final([st](const Job& job) {
    Instance snap = job.snapshot();
    st->catalog().put_job(job.id().to_string(), to_number(job.type()), to_number(job.state()), job.finished_us(),
                          job_record_json(snap), Catalog::Durability::Ordered);
  });
}

ReplicationService::~ReplicationService() {
  // Threads first (they use the loop, the jobs and the stores), then the jobs, then the loop.
  replicator_->shutdown();
  jobs_->shutdown(std::chrono::seconds(30));
  loop_.reset();
  replicator_.reset();
  jobs_.reset();
}

Instance ReplicationService::info() const {
  Instance i("Msvm_ReplicationService");
  i.set_string("Name", "replicasvc");
  i.set_string("CreationClassName", "Msvm_ReplicationService");
  i.set_string("SystemCreationClassName", "Msvm_ComputerSystem");
  i.set_string("SystemName", opts_.host_name);
  i.set_string("HostName", opts_.host_name);
  i.set_string("HostRoot", root_);
  i.set_string("Version", VMREPL_VERSION);
  i.set_u16("EnabledState", 2);
  i.set_u16("HealthState", 5);
  i.set_uint_array("OperationalStatus", CimType::UInt16, {2});
  i.set_u32("BlockSize", opts_.block_size);
  i.set_string("HashAlgorithm", std::string(hash_algorithm_name(opts_.hash)));
  i.set_u64("JobRetentionSeconds", static_cast<uint64_t>(opts_.job_retention_s));
  i.set_string("ListenAddress", opts_.listen);
  i.set_u16("ListenPort", replicator_->listen_port());
  i.set_string("TlsListenAddress", opts_.tls_listen);
  i.set_u16("TlsListenPort", replicator_->tls_listen_port());
  // What this host presents with AuthenticationType 2: the thumbprint relationships name.
  i.set_string("HostCertificateThumbPrint", replicator_->own_thumbprint("sha1"));
  const Instance settings = service_settings();
  for (const auto& p : settings.properties())
    if (p.name != "InstanceID" && p.name != "ElementName") i.set(p);
  return i;
}

Result<VmRef> ReplicationService::resolve(std::string_view cs) const {
  if (cs.empty()) return Status::InvalidParameter("ComputerSystem is empty");
  if (cs.size() > 4096) return Status::InvalidParameter("ComputerSystem is longer than 4096 characters");
  // An object path names its class and keys; anything else is a GUID or a name.
  bool is_path = cs.starts_with("\\\\") || cs.starts_with("//") || cs.find("=\"") != std::string_view::npos ||
                 cs.starts_with("Msvm_") || cs.starts_with("CIM_");
  if (!is_path) return replicator_->find_vm(cs);
  auto p = ObjectPath::parse(cs);
  if (!p) return p.status().Annotate("ComputerSystem");
  if (p->class_name != "Msvm_ComputerSystem" && p->class_name != "CIM_ComputerSystem")
    return Status::InvalidParameter("ComputerSystem path names class " + p->class_name +
                                    ", not Msvm_ComputerSystem");
  if (!p->host.empty() && p->host != "." && strcasecmp(p->host.c_str(), opts_.host_name.c_str()) != 0)
    return Status::InvalidParameter("ComputerSystem path names host " + p->host + "; this service is " +
                                    opts_.host_name);
  const std::string* name = p->key("Name");
  if (!name) return Status::InvalidParameter("ComputerSystem path has no Name key");
  auto g = Guid::parse(*name);
  if (!g) return g.status().Annotate("ComputerSystem Name key");
  return replicator_->find_vm(g->to_string());
}

Instance ReplicationService::vm_instance(const VmRef& ref) const {
  const VmRecord& vm = ref.vm;
  Instance i("Msvm_ComputerSystem");
  i.set_string("Name", vm.id.to_string());
  i.set_string("ElementName", vm.name);
  i.set_string("CreationClassName", "Msvm_ComputerSystem");
  i.set_string("Path", ObjectPath::computer_system(opts_.host_name, vm.id.to_string()).format());
  i.set_u16("EnabledState", vm.enabled_state);
  i.set_u16("ReplicationMode", to_number(ReplicationMode::None));
  i.set_u16("ReplicationState", to_number(ReplicationState::Disabled));
  i.set_u16("ReplicationHealth", to_number(ReplicationHealth::NotApplicable));
  i.set_datetime("InstallDate", CimDateTime::from_unix_us(vm.created_us).format());
  // HealthState 5 OK, 25 critical failure (a file of the VM is missing or damaged).
  i.set_u16("HealthState", vm.integrity.ok() ? 5 : 25);
  i.set_string_array("StatusDescriptions", {vm.integrity.ok() ? std::string("OK") : vm.integrity.message()});
  std::vector<std::string> paths;
  std::vector<uint64_t> sizes;
  for (const auto& d : vm.disks) {
    paths.push_back(d.path);
    sizes.push_back(d.size_bytes);
  }
  i.set_string_array("DiskPaths", std::move(paths));
  i.set_uint_array("DiskSizes", CimType::UInt64, sizes);
  i.set_string("Folder", vm.folder);
  auto rel = replicator_->relationship(ref);
  if (rel && *rel) (*rel)->describe(i);
  return i;
}

Result<Instance> ReplicationService::define_system(const VmDefinition& def) {
  auto vm = store_->define(def);
  if (!vm) return vm.status();
  return vm_instance(VmRef{store_.get(), std::move(vm).value()});
}

Result<Instance> ReplicationService::get_system(std::string_view cs) const {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  return vm_instance(*vm);
}

Result<std::vector<Instance>> ReplicationService::list_systems() const {
  std::vector<Instance> out;
  for (VmStore* s : replicator_->stores()) {
    auto vms = s->list();
    if (!vms) return vms.status();
    for (auto& vm : *vms) out.push_back(vm_instance(VmRef{s, std::move(vm)}));
  }
  return out;
}

Status ReplicationService::destroy_system(std::string_view cs) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  if (vm->vm.enabled_state == to_number(EnabledState::Enabled))
    return Status::SystemInUse("VM " + vm->vm.name + " is running (EnabledState 2); turn it off first");
  auto rel = replicator_->relationship(*vm);
  if (!rel) return rel.status();
  // A test VM (mode 3) goes with DestroySystem: its replica may make another one.
  if (*rel && (*rel)->mode == ReplicationMode::TestReplica) VMREPL_RETURN_IF_ERROR(replicator_->forget_test_system(*vm));
  else if (*rel && (*rel)->mode != ReplicationMode::None)
    return Status::InvalidState("VM " + vm->vm.name + " has a replication relationship (mode " +
                                std::to_string(to_number((*rel)->mode)) + "); remove it first");
  return vm->store->remove(vm->vm.id.to_string());
}

Status ReplicationService::request_state_change(std::string_view cs, uint16_t requested) {
  if (requested != to_number(EnabledState::Enabled) && requested != to_number(EnabledState::Disabled))
    return Status::InvalidParameter("RequestedState " + std::to_string(requested) +
                                    " is not supported for a VM (2 running, 3 off)");
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  if (requested == to_number(EnabledState::Enabled)) {
    auto rel = replicator_->relationship(*vm);
    if (!rel) return rel.status();
    if (*rel) {
      const Relationship& r = **rel;
      // One running copy: a prepared primary, a replica not failed over and an old primary
      // in the middle of a reverse stay off.
      if (!r.reverse_json.empty())
        return Status::InvalidState("VM " + vm->vm.name + " is becoming the replica of " + r.peer_host +
                                    " (a reverse is under way); it cannot start");
      if (r.mode == ReplicationMode::Primary && r.state == ReplicationState::SyncedReplicationComplete)
        return Status::InvalidState("VM " + vm->vm.name +
                                    " is prepared for a planned failover (ReplicationState 4); RevertFailover first");
      if (r.mode == ReplicationMode::Replica && r.state != ReplicationState::Recovered &&
          r.state != ReplicationState::Committed)
        return Status::InvalidState("VM " + vm->vm.name + " is a replica in ReplicationState " +
                                    std::to_string(to_number(r.state)) + " (" + std::string(to_string(r.state)) +
                                    "); it starts only after InitiateFailover (5 or 6)");
    }
  }
  return vm->store->set_enabled_state(vm->vm.id, requested);
}

Result<std::string> ReplicationService::disk_path(std::string_view cs, uint32_t disk) const {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  if (disk >= vm->vm.disks.size())
    return Status::InvalidParameter("disk " + std::to_string(disk) + " does not exist (VM " + vm->vm.name + " has " +
                                    std::to_string(vm->vm.disks.size()) + ")");
  return vm->vm.disks[disk].path;
}

Status ReplicationService::disk_mark_dirty(std::string_view cs, uint32_t disk, uint64_t offset, uint64_t length) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  return replicator_->mark_dirty(*vm, disk, offset, length);
}

Status ReplicationService::set_bandwidth_limit(std::string_view cs, uint64_t bytes_per_s) {
  if (cs.empty()) return replicator_->set_bandwidth_limit(std::nullopt, bytes_per_s);
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  return replicator_->set_bandwidth_limit(vm->vm.id, bytes_per_s);
}

Result<uint64_t> ReplicationService::bandwidth_limit(std::string_view cs) const {
  if (cs.empty()) return replicator_->bandwidth_limit(std::nullopt);
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  return replicator_->bandwidth_limit(vm->vm.id);
}

Result<std::shared_ptr<Job>> ReplicationService::compute_digest(std::string_view cs) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  if (!vm->vm.integrity.ok()) return Status::Failed(vm->vm.integrity.message());
  DigestJob::Params params{vm->vm, opts_.block_size, opts_.hash};
  EventLoop* loop = loop_.get();
  return jobs_->submit(JobType::ConsistencyCheckerRun, "ComputeDigest " + vm->vm.name, true,
                       [loop, params](const JobContext& ctx) { DigestJob::start(loop, params, ctx); });
}

std::shared_ptr<Job> ReplicationService::find_job(std::string_view instance_id) const {
  auto g = Guid::parse(instance_id);
  if (!g) return nullptr;
  return jobs_->find(*g);
}

std::vector<std::shared_ptr<Job>> ReplicationService::list_jobs() const { return jobs_->list(); }

std::shared_ptr<Job> ReplicationService::quick_job(JobType type, std::string name, std::function<Status()> fn) {
  return jobs_->submit(type, std::move(name), false, [fn](const JobContext& ctx) { ctx.finish(fn()); });
}

// ---- replication ------------------------------------------------------------------------

namespace {
Result<ReplicationSettingData> parse_rsd(std::string_view text) {
  if (text.empty()) return Status::InvalidParameter("ReplicationSettingData is empty");
  auto inst = decode_instance(text, ReplicationSettingData::kClassName);
  if (!inst) return inst.status();
  return ReplicationSettingData::from_instance(*inst);
}
}  // namespace

Result<std::shared_ptr<Job>> ReplicationService::create_replication_relationship(std::string_view cs,
                                                                                 std::string_view setting_data) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  auto rsd = parse_rsd(setting_data);
  if (!rsd) return rsd.status();
  if (rsd->VirtualSystemIdentifier && !rsd->VirtualSystemIdentifier->empty() &&
      rsd->VirtualSystemIdentifier != vm->vm.id.to_string())
    return Status::InvalidParameter("VirtualSystemIdentifier " + *rsd->VirtualSystemIdentifier + " is not VM " +
                                    vm->vm.id.to_string());
  return replicator_->create_relationship(*vm, *rsd);
}

Result<std::shared_ptr<Job>> ReplicationService::start_replication(std::string_view cs, uint16_t type,
                                                                   std::string_view export_location,
                                                                   std::string_view start_time) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  if (!start_time.empty()) {
    auto t = parse_cim_datetime(start_time);
    if (!t) return t.status().Annotate("StartTime");
    // A scheduled start is not kept across restarts; only "now" is offered.
    if (t->to_unix_us() > CimDateTime::now().to_unix_us() + 1000000)
      return Status::InvalidParameter("StartTime: only a null or past StartTime (start now) is accepted");
  }
  if (!export_location.empty() && type != to_number(InitialReplicationType::Export))
    return Status::InvalidParameter("InitialReplicationExportLocation is only used with InitialReplicationType 2");
  return replicator_->start_replication(*vm, type);
}

Result<std::shared_ptr<Job>> ReplicationService::modify_replication_settings(std::string_view cs,
                                                                             std::string_view setting_data) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  auto rsd = parse_rsd(setting_data);
  if (!rsd) return rsd.status();
  return replicator_->modify_settings(*vm, *rsd);
}

Result<std::shared_ptr<Job>> ReplicationService::remove_replication_relationship(std::string_view cs) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  return replicator_->remove_relationship(*vm);
}

Result<std::shared_ptr<Job>> ReplicationService::request_replication_state_change(std::string_view cs,
                                                                                  uint16_t requested) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  return replicator_->request_replication_state_change(*vm, requested);
}

namespace {

// A recovery point reference: "...\RP\<seq>" (InstanceID or an object path holding it, with
// backslashes possibly doubled) or the bare number. 0 = the latest.
Result<uint64_t> parse_point(std::string_view ref) {
  if (ref.empty()) return uint64_t{0};
  size_t at = ref.rfind("RP");
  std::string_view digits = at == std::string_view::npos ? ref : ref.substr(at + 2);
  while (!digits.empty() && digits.front() == '\\') digits.remove_prefix(1);
  while (!digits.empty() && (digits.back() == '"' || digits.back() == '\\')) digits.remove_suffix(1);
  uint64_t v = 0;
  if (digits.empty() || digits.size() > 18) return Status::InvalidParameter("SnapshotSettingData: not a recovery point reference");
  for (char c : digits) {
    if (c < '0' || c > '9') return Status::InvalidParameter("SnapshotSettingData: not a recovery point reference");
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v == 0) return Status::InvalidParameter("SnapshotSettingData: recovery point 0 does not exist");
  return v;
}

}  // namespace

Result<std::shared_ptr<Job>> ReplicationService::initiate_failover(std::string_view cs, std::string_view snapshot) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  auto p = parse_point(snapshot);
  if (!p) return p.status();
  return replicator_->initiate_failover(*vm, *p);
}

Result<std::shared_ptr<Job>> ReplicationService::revert_failover(std::string_view cs) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  return replicator_->revert_failover(*vm);
}

Result<std::shared_ptr<Job>> ReplicationService::commit_failover(std::string_view cs) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  return replicator_->commit_failover(*vm);
}

Result<std::shared_ptr<Job>> ReplicationService::test_replica_system(std::string_view cs, std::string_view snapshot) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  auto p = parse_point(snapshot);
  if (!p) return p.status();
  return replicator_->test_replica_system(*vm, *p);
}

Result<std::shared_ptr<Job>> ReplicationService::reverse_replication_relationship(std::string_view cs,
                                                                                  std::string_view setting_data,
                                                                                  bool verify_full) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  auto relr = replicator_->relationship(*vm);
  if (!relr) return relr.status();
  const ReplicationMode mode = *relr ? (*relr)->mode : ReplicationMode::None;
  if (mode != ReplicationMode::Replica)
    return Status::InvalidState("VM " + vm->vm.name + " is in ReplicationMode " + std::to_string(to_number(mode)) + " (" +
                                std::string(to_string(mode)) + "); ReverseReplicationRelationship needs a replica (mode 2)");
  const Relationship& rel = **relr;
  if (rel.state != ReplicationState::Recovered && rel.state != ReplicationState::Committed)
    return Status::InvalidState("VM " + vm->vm.name + " is in ReplicationState " + std::to_string(to_number(rel.state)) +
                                " (" + std::string(to_string(rel.state)) +
                                "); ReverseReplicationRelationship needs 5 (Recovered) or 6 (Committed)");
  auto rsd = parse_rsd(setting_data);
  if (!rsd) return rsd.status();
  if (rsd->InstanceID && !rsd->InstanceID->empty() && rel.settings.InstanceID && *rsd->InstanceID != *rel.settings.InstanceID)
    return Status::InvalidParameter("InstanceID: " + printable(*rsd->InstanceID) + " is not this VM's setting data (" +
                                    *rel.settings.InstanceID + ")");
  if (rsd->VirtualSystemIdentifier && !rsd->VirtualSystemIdentifier->empty() &&
      *rsd->VirtualSystemIdentifier != vm->vm.id.to_string())
    return Status::InvalidParameter("VirtualSystemIdentifier: " + printable(*rsd->VirtualSystemIdentifier) + " is not VM " +
                                    vm->vm.id.to_string());
  VMREPL_RETURN_IF_ERROR(rsd->validate());
  if (!rsd->RecoveryConnectionPoint || rsd->RecoveryConnectionPoint->empty())
    return Status::InvalidParameter("RecoveryConnectionPoint: must name the old primary (" + rel.peer_host + ")");
  if (*rsd->RecoveryConnectionPoint != rel.peer_host)
    return Status::InvalidParameter("RecoveryConnectionPoint: " + printable(*rsd->RecoveryConnectionPoint) +
                                    " is not the old primary of VM " + vm->vm.name + " (" + rel.peer_host + ")");
  if (rsd->RecoveryServerPortNumber == 0)
    return Status::InvalidParameter("RecoveryServerPortNumber: must not be 0");
  if (rsd->AuthenticationType && *rsd->AuthenticationType == 2) {
    if (!rsd->CertificateThumbPrint || rsd->CertificateThumbPrint->empty())
      return Status::InvalidParameter("CertificateThumbPrint: required with AuthenticationType 2 (certificate)");
    // The new primary is us: the relationship names our certificate, as in CreateReplicationRelationship.
    VMREPL_RETURN_IF_ERROR(replicator_->check_own_certificate(*rsd->CertificateThumbPrint));
  }
  if (rsd->IncludedDisks && (rel.settings.IncludedDisks ? *rsd->IncludedDisks != *rel.settings.IncludedDisks
                                                        : !rsd->IncludedDisks->empty()))
    return Status::InvalidParameter("IncludedDisks: the replicated disks cannot change in a reverse");
  return replicator_->reverse(*vm, *rsd, verify_full);
}

Result<std::shared_ptr<Job>> ReplicationService::resynchronize(std::string_view cs, std::string_view start_time) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  if (!start_time.empty()) {
    auto t = parse_cim_datetime(start_time);
    if (!t) return t.status().Annotate("StartTime");
    if (t->to_unix_us() > CimDateTime::now().to_unix_us() + 1000000)
      return Status::InvalidParameter("StartTime: only a null or past StartTime (start now) is accepted");
  }
  return replicator_->resynchronize(*vm);
}

Result<std::shared_ptr<Job>> ReplicationService::replicate_now(std::string_view cs) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  return replicator_->replicate_now(*vm);
}

Result<std::shared_ptr<Job>> ReplicationService::test_replication_connection(std::string_view point, uint16_t port,
                                                                             uint16_t auth_type,
                                                                             std::string_view thumbprint) {
  if (auth_type == 2) {
    if (thumbprint.empty())
      return Status::InvalidParameter("CertificateThumbPrint is required when AuthenticationType is 2");
    // The certificate this host would present as the primary (spec §3): ours.
    VMREPL_RETURN_IF_ERROR(replicator_->check_own_certificate(thumbprint));
  }
  return replicator_->test_connection(std::string(point), port, auth_type);
}

Result<Instance> ReplicationService::get_replication_statistics(std::string_view cs) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  return replicator_->statistics(*vm);
}

Result<Instance> ReplicationService::get_replication_settings(std::string_view cs) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  auto rel = replicator_->relationship(*vm);
  if (!rel) return rel.status();
  if (!*rel || (*rel)->mode == ReplicationMode::None)
    return Status::InvalidState("VM " + vm->vm.name + " has no replication relationship (mode 0)");
  return (*rel)->settings.to_instance();
}

Result<std::vector<Instance>> ReplicationService::list_recovery_points(std::string_view cs) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  return replicator_->recovery_points(*vm);
}

Result<std::shared_ptr<Job>> ReplicationService::modify_service_settings(std::string_view setting_data) {
  if (setting_data.empty()) return Status::InvalidParameter("SettingData is empty");
  auto s = ReplicationServiceSettingData::parse(setting_data);
  if (!s) return s.status();
  Replicator* r = replicator_.get();
  auto v = std::move(s).value();
  VMREPL_RETURN_IF_ERROR(v.validate());
  // Certificate authentication is answered with our listener's certificate: the settings must
  // name it.
  if (v.RecoveryServerEnabled && (v.AllowedAuthenticationType == 2 || v.AllowedAuthenticationType == 3))
    VMREPL_RETURN_IF_ERROR(replicator_->check_own_certificate(v.CertificateThumbPrint.value_or("")));
  return quick_job(JobType::ModifyReplicationServerSettings, "Modify replication server settings",
                   [r, v] { return r->server().set_settings(v); });
}

Instance ReplicationService::service_settings() const { return replicator_->server().settings().to_instance(); }

Result<std::shared_ptr<Job>> ReplicationService::add_authorization_entry(std::string_view entry) {
  if (entry.empty()) return Status::InvalidParameter("AuthorizationEntry is empty");
  auto e = AuthorizationSettingData::parse(entry);
  if (!e) return e.status();
  Replicator* r = replicator_.get();
  auto v = std::move(e).value();
  return quick_job(JobType::ModifyReplicationServerSettings, "Add authorization entry " + *v.AllowedPrimaryHostSystem,
                   [r, v] { return r->server().add_entry(v); });
}

Result<std::shared_ptr<Job>> ReplicationService::modify_authorization_entry(std::string_view entry) {
  if (entry.empty()) return Status::InvalidParameter("AuthorizationEntry is empty");
  auto e = AuthorizationSettingData::parse(entry);
  if (!e) return e.status();
  Replicator* r = replicator_.get();
  auto v = std::move(e).value();
  return quick_job(JobType::ModifyReplicationServerSettings, "Modify authorization entry " + *v.AllowedPrimaryHostSystem,
                   [r, v] { return r->server().modify_entry(v); });
}

Result<std::shared_ptr<Job>> ReplicationService::remove_authorization_entry(std::string_view allowed_primary) {
  if (allowed_primary.empty()) return Status::InvalidParameter("AllowedPrimaryHostSystem is empty");
  Replicator* r = replicator_.get();
  std::string host(allowed_primary);
  bool found = false;
  for (const auto& e : r->server().entries())
    if (strcasecmp(e.AllowedPrimaryHostSystem->c_str(), host.c_str()) == 0) found = true;
  if (!found) return Status::FileNotFound("no authorization entry for AllowedPrimaryHostSystem '" + host + "'");
  return quick_job(JobType::ModifyReplicationServerSettings, "Remove authorization entry " + host,
                   [r, host] { return r->server().remove_entry(host); });
}

std::vector<Instance> ReplicationService::list_authorization_entries() const {
  std::vector<Instance> out;
  for (const auto& e : replicator_->server().entries()) out.push_back(e.to_instance());
  return out;
}

}  // namespace vmrepl
