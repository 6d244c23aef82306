#include "core/service/replication_service.h"

#include <strings.h>

#include "core/model/cim_datetime.h"
#include "core/model/enums.h"
#include "core/model/object_path.h"
#include "core/service/digest_job.h"

#ifndef VMREPL_VERSION
#define VMREPL_VERSION "0.1.0"
#endif

namespace vmrepl {

Result<std::unique_ptr<ReplicationService>> ReplicationService::open(const std::string& root, ServiceOptions opts) {
  if (root.empty() || root.front() != '/')
    return Status::InvalidParameter("host root must be an absolute path (got '" + root.substr(0, 128) + "')");
  auto store = VmStore::open(root);
  if (!store) return store.status();
  return std::unique_ptr<ReplicationService>(
      new ReplicationService(root, std::move(opts), std::move(store).value()));
}

ReplicationService::ReplicationService(std::string root, ServiceOptions opts, std::unique_ptr<VmStore> store)
    : root_(std::move(root)), opts_(std::move(opts)), store_(std::move(store)) {
  loop_ = std::make_unique<EventLoop>();
  jobs_ = std::make_unique<JobManager>(*loop_, JobManager::Options{std::chrono::seconds(opts_.job_retention_s)});
  VmStore* st = store_.get();
  // Every finished job is recorded in the catalog (history outlives the in-memory retention).
  jobs_->set_on_final([st](const Job& job) {
    Instance snap = job.snapshot();
    st->catalog().put_job(job.id().to_string(), to_number(job.type()), to_number(job.state()), job.finished_us(),
                          job_record_json(snap));
  });
}

ReplicationService::~ReplicationService() {
  jobs_->shutdown(std::chrono::seconds(30));
  loop_.reset();
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
  return i;
}

Result<VmRecord> ReplicationService::resolve(std::string_view cs) const {
  if (cs.empty()) return Status::InvalidParameter("ComputerSystem is empty");
  if (cs.size() > 4096) return Status::InvalidParameter("ComputerSystem is longer than 4096 characters");
  // An object path names its class and keys; anything else is a GUID or a name.
  bool is_path = cs.starts_with("\\\\") || cs.starts_with("//") || cs.find("=\"") != std::string_view::npos ||
                 cs.starts_with("Msvm_") || cs.starts_with("CIM_");
  if (!is_path) return store_->get(cs);
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
  return store_->get(g->to_string());
}

Instance ReplicationService::vm_instance(const VmRecord& vm) const {
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
  return i;
}

Result<Instance> ReplicationService::define_system(const VmDefinition& def) {
  auto vm = store_->define(def);
  if (!vm) return vm.status();
  return vm_instance(*vm);
}

Result<Instance> ReplicationService::get_system(std::string_view cs) const {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  return vm_instance(*vm);
}

Result<std::vector<Instance>> ReplicationService::list_systems() const {
  auto vms = store_->list();
  if (!vms) return vms.status();
  std::vector<Instance> out;
  for (const auto& vm : *vms) out.push_back(vm_instance(vm));
  return out;
}

Status ReplicationService::destroy_system(std::string_view cs) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  if (vm->enabled_state == to_number(EnabledState::Enabled))
    return Status::SystemInUse("VM " + vm->name + " is running (EnabledState 2); turn it off first");
  return store_->remove(vm->id.to_string());
}

Status ReplicationService::request_state_change(std::string_view cs, uint16_t requested) {
  if (requested != to_number(EnabledState::Enabled) && requested != to_number(EnabledState::Disabled))
    return Status::InvalidParameter("RequestedState " + std::to_string(requested) +
                                    " is not supported for a VM (2 running, 3 off)");
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  return store_->set_enabled_state(vm->id, requested);
}

Result<std::string> ReplicationService::disk_path(std::string_view cs, uint32_t disk) const {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  if (disk >= vm->disks.size())
    return Status::InvalidParameter("disk " + std::to_string(disk) + " does not exist (VM " + vm->name + " has " +
                                    std::to_string(vm->disks.size()) + ")");
  return vm->disks[disk].path;
}

Result<std::shared_ptr<Job>> ReplicationService::compute_digest(std::string_view cs) {
  auto vm = resolve(cs);
  if (!vm) return vm.status();
  if (!vm->integrity.ok()) return Status::Failed(vm->integrity.message());
  DigestJob::Params params{*vm, opts_.block_size, opts_.hash};
  EventLoop* loop = loop_.get();
  return jobs_->submit(JobType::ConsistencyCheckerRun, "ComputeDigest " + vm->name, true,
                       [loop, params](const JobContext& ctx) { DigestJob::start(loop, params, ctx); });
}

std::shared_ptr<Job> ReplicationService::find_job(std::string_view instance_id) const {
  auto g = Guid::parse(instance_id);
  if (!g) return nullptr;
  return jobs_->find(*g);
}

std::vector<std::shared_ptr<Job>> ReplicationService::list_jobs() const { return jobs_->list(); }

}  // namespace vmrepl
