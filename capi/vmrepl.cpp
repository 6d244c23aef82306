// The C ABI over core/service. Every extern "C" body catches everything and maps it to a
// status + thread-local message: no exception crosses the boundary.
#include "vmrepl/vmrepl.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "core/service/remote_api.h"
#include "core/service/replication_service.h"
#include "core/service/service_api.h"
#include "core/settings/cim_xml.h"
#include "core/settings/json.h"
#include "core/settings/mof.h"

using namespace vmrepl;

namespace {

thread_local std::string t_last_error = "no error";

vmr_status fail(const Status& st) {
  t_last_error = st.message();
  return st.number();
}
vmr_status fail(Code c, std::string msg) { return fail(Status(c, std::move(msg))); }

vmr_status succeed(vmr_status s = VMR_OK) {
  t_last_error = "no error";
  return s;
}

// Runs fn, turning any exception into a status.
template <class F>
vmr_status guarded(F&& fn) noexcept {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return fail(Code::OutOfMemory, "out of memory");
  } catch (const std::exception& e) {
    return fail(Code::Failed, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(Code::Failed, "internal error");
  }
}

char* dup_string(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (!p) throw std::bad_alloc();
  std::memcpy(p, s.data(), s.size() + 1);
  return p;
}

#define VMR_REQUIRE_ARG(cond, what)                                  \
  do {                                                               \
    if (!(cond)) return fail(Code::InvalidParameter, what " is NULL"); \
  } while (0)

}  // namespace

// Job change events for one service: the listener (loop thread) records which jobs changed
// and makes the eventfd readable; vmr_service_dispatch runs the callbacks on its caller's
// thread. Shared by the service and its job handles, so a handle outlives vmr_close safely.
struct EventHub {
  int efd = -1;
  std::mutex mu;
  std::set<Guid> changed;
  struct Reg {
    Guid id;
    vmr_job_callback cb;
    void* ud;
  };
  std::map<vmr_job*, Reg> regs;  // keyed by the public handle

  EventHub() : efd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~EventHub() {
    if (efd >= 0) close(efd);
  }
  void note(const Guid& id) {
    bool wake;
    {
      std::lock_guard<std::mutex> lk(mu);
      wake = changed.empty();
      changed.insert(id);
    }
    if (wake && efd >= 0) {
      uint64_t one = 1;
      ssize_t n = write(efd, &one, sizeof one);
      (void)n;
    }
  }
};

struct ServiceHandle {
  std::unique_ptr<ServiceApi> api;
  std::shared_ptr<EventHub> hub;
};

struct JobHandle {
  JobPtr job;
  std::shared_ptr<EventHub> hub;
};

struct InstanceHandle {
  Instance inst;
};

struct ListHandle {
  std::vector<InstanceHandle> items;
};

namespace {

// The public handle types are never defined: each is a pointer to one of these.
ServiceHandle* S(vmr_service* p) { return reinterpret_cast<ServiceHandle*>(p); }
JobHandle* J(vmr_job* p) { return reinterpret_cast<JobHandle*>(p); }
const InstanceHandle* I(const vmr_instance* p) { return reinterpret_cast<const InstanceHandle*>(p); }
const ListHandle* L(const vmr_list* p) { return reinterpret_cast<const ListHandle*>(p); }
vmr_instance* out_instance(Instance inst) { return reinterpret_cast<vmr_instance*>(new InstanceHandle{std::move(inst)}); }

vmr_job* new_job_handle(vmr_service* s, JobPtr j) {
  return reinterpret_cast<vmr_job*>(new JobHandle{std::move(j), S(s)->hub});
}

vmr_list* out_list(std::vector<Instance> items) {
  auto list = std::make_unique<ListHandle>();
  for (auto& i : items) list->items.push_back(InstanceHandle{std::move(i)});
  return reinterpret_cast<vmr_list*>(list.release());
}

vmr_status out_job(vmr_service* s, Result<JobPtr> r, vmr_job** job) {
  if (!r) return fail(r.status());
  *job = new_job_handle(s, std::move(r).value());
  return succeed(VMR_JOB_STARTED);
}

}  // namespace

extern "C" {

VMR_EXTERN uint32_t vmr_abi_version(void) { return VMR_ABI_VERSION; }

VMR_EXTERN const char* vmr_version(void) { return VMREPL_VERSION; }

VMR_EXTERN const char* vmr_status_name(vmr_status s) {
  // code_name returns views of string literals: NUL-terminated.
  return code_name(s).data();
}

VMR_EXTERN const char* vmr_last_error_message(void) { return t_last_error.c_str(); }

VMR_EXTERN void vmr_free(void* p) { std::free(p); }

VMR_EXTERN vmr_status vmr_open(const char* uri, const char* options_json, vmr_service** out) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(out, "out");
    *out = nullptr;
    VMR_REQUIRE_ARG(uri, "uri");
    std::string_view u(uri);
    auto handle = std::make_unique<ServiceHandle>();
    if (u.starts_with("local:")) {
      auto opts = ServiceOptions::from_json(options_json ? options_json : "");
      if (!opts) return fail(opts.status());
      auto svc = ReplicationService::open(std::string(u.substr(6)), std::move(opts).value());
      if (!svc) return fail(svc.status());
      handle->api = make_local_api(std::move(svc).value());
    } else {
      auto api = connect_remote_api(u, options_json ? options_json : "");
      if (!api) return fail(api.status());
      handle->api = std::move(api).value();
    }
    handle->hub = std::make_shared<EventHub>();
    std::weak_ptr<EventHub> weak = handle->hub;
    handle->api->set_job_listener([weak](const Guid& id) {
      if (auto hub = weak.lock()) hub->note(id);
    });
    *out = reinterpret_cast<vmr_service*>(handle.release());
    return succeed();
  });
}

VMR_EXTERN void vmr_close(vmr_service* svc) {
  if (!svc) return;
  try {
    S(svc)->api.reset();
  } catch (...) {
  }
  delete S(svc);
}

VMR_EXTERN vmr_status vmr_service_info(vmr_service* svc, vmr_instance** out) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(svc, "service");
    VMR_REQUIRE_ARG(out, "out");
    auto r = S(svc)->api->info();
    if (!r) return fail(r.status());
    *out = out_instance(std::move(r).value());
    return succeed();
  });
}

VMR_EXTERN int vmr_service_fd(vmr_service* svc) { return svc ? S(svc)->hub->efd : -1; }

VMR_EXTERN vmr_status vmr_service_dispatch(vmr_service* svc) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(svc, "service");
    EventHub& hub = *S(svc)->hub;
    uint64_t n;
    while (read(hub.efd, &n, sizeof n) == static_cast<ssize_t>(sizeof n)) {
    }
    std::set<Guid> changed;
    std::vector<vmr_job*> handles;
    {
      std::lock_guard<std::mutex> lk(hub.mu);
      changed.swap(hub.changed);
      for (const auto& [h, reg] : hub.regs)
        if (changed.count(reg.id)) handles.push_back(h);
    }
    for (vmr_job* h : handles) {
      vmr_job_callback cb = nullptr;
      void* ud = nullptr;
      {
        // A callback may have released or re-registered another handle meanwhile.
        std::lock_guard<std::mutex> lk(hub.mu);
        auto it = hub.regs.find(h);
        if (it == hub.regs.end()) continue;
        cb = it->second.cb;
        ud = it->second.ud;
      }
      cb(h, ud);
    }
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_define_system(vmr_service* svc, const char* definition_json, vmr_instance** vm) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(vm, "vm");
    *vm = nullptr;
    VMR_REQUIRE_ARG(svc, "service");
    VMR_REQUIRE_ARG(definition_json, "definition_json");
    auto r = S(svc)->api->define_system(definition_json);
    if (!r) return fail(r.status());
    *vm = out_instance(std::move(r).value());
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_get_system(vmr_service* svc, const char* cs, vmr_instance** vm) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(vm, "vm");
    *vm = nullptr;
    VMR_REQUIRE_ARG(svc, "service");
    VMR_REQUIRE_ARG(cs, "computer_system");
    auto r = S(svc)->api->get_system(cs);
    if (!r) return fail(r.status());
    *vm = out_instance(std::move(r).value());
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_list_systems(vmr_service* svc, vmr_list** vms) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(vms, "vms");
    *vms = nullptr;
    VMR_REQUIRE_ARG(svc, "service");
    auto r = S(svc)->api->list_systems();
    if (!r) return fail(r.status());
    auto list = std::make_unique<ListHandle>();
    for (auto& i : *r) list->items.push_back(InstanceHandle{std::move(i)});
    *vms = reinterpret_cast<vmr_list*>(list.release());
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_destroy_system(vmr_service* svc, const char* cs) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(svc, "service");
    VMR_REQUIRE_ARG(cs, "computer_system");
    Status st = S(svc)->api->destroy_system(cs);
    return st.ok() ? succeed() : fail(st);
  });
}

VMR_EXTERN vmr_status vmr_request_state_change(vmr_service* svc, const char* cs, uint16_t requested_state,
                                               vmr_job** job) {
  return guarded([&]() -> vmr_status {
    if (job) *job = nullptr;
    VMR_REQUIRE_ARG(svc, "service");
    VMR_REQUIRE_ARG(cs, "computer_system");
    Status st = S(svc)->api->request_state_change(cs, requested_state);
    return st.ok() ? succeed() : fail(st);
  });
}

VMR_EXTERN vmr_status vmr_disk_path(vmr_service* svc, const char* cs, uint32_t disk, char** path) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(path, "path");
    *path = nullptr;
    VMR_REQUIRE_ARG(svc, "service");
    VMR_REQUIRE_ARG(cs, "computer_system");
    auto r = S(svc)->api->disk_path(cs, disk);
    if (!r) return fail(r.status());
    *path = dup_string(*r);
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_set_bandwidth_limit(vmr_service* svc, const char* cs, uint64_t bytes_per_s) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(svc, "service");
    if (cs && !*cs) return fail(Code::InvalidParameter, "computer_system is empty (NULL means the whole service)");
    Status st = S(svc)->api->set_bandwidth_limit(cs ? cs : "", bytes_per_s);
    return st.ok() ? succeed() : fail(st);
  });
}

VMR_EXTERN vmr_status vmr_get_bandwidth_limit(vmr_service* svc, const char* cs, uint64_t* bytes_per_s) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(bytes_per_s, "bytes_per_s");
    *bytes_per_s = 0;
    VMR_REQUIRE_ARG(svc, "service");
    if (cs && !*cs) return fail(Code::InvalidParameter, "computer_system is empty (NULL means the whole service)");
    auto r = S(svc)->api->bandwidth_limit(cs ? cs : "");
    if (!r) return fail(r.status());
    *bytes_per_s = *r;
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_compute_digest(vmr_service* svc, const char* cs, vmr_job** job) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(job, "job");
    *job = nullptr;
    VMR_REQUIRE_ARG(svc, "service");
    VMR_REQUIRE_ARG(cs, "computer_system");
    return out_job(svc, S(svc)->api->compute_digest(cs), job);
  });
}

VMR_EXTERN vmr_status vmr_job_get(vmr_job* job, vmr_instance** props) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(props, "props");
    *props = nullptr;
    VMR_REQUIRE_ARG(job, "job");
    *props = out_instance(J(job)->job->snapshot());
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_job_wait(vmr_job* job, int64_t timeout_ms) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(job, "job");
    Status st = J(job)->job->wait(std::chrono::milliseconds(timeout_ms));
    return st.ok() ? succeed() : fail(st);
  });
}

VMR_EXTERN vmr_status vmr_job_cancel(vmr_job* job) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(job, "job");
    Status st = J(job)->job->cancel();
    return st.ok() ? succeed() : fail(st);
  });
}

VMR_EXTERN uint16_t vmr_job_state(vmr_job* job) { return job ? to_number(J(job)->job->state()) : 0; }

VMR_EXTERN vmr_status vmr_job_error_code(vmr_job* job) {
  if (!job) return VMR_INVALID_PARAMETER;
  if (!job_state_is_final(J(job)->job->state())) return VMR_OK;
  return J(job)->job->outcome().number();
}

VMR_EXTERN vmr_status vmr_job_set_callback(vmr_job* job, vmr_job_callback cb, void* userdata) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(job, "job");
    std::lock_guard<std::mutex> lk(J(job)->hub->mu);
    if (cb)
      J(job)->hub->regs[job] = EventHub::Reg{J(job)->job->id(), cb, userdata};
    else
      J(job)->hub->regs.erase(job);
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_get_job(vmr_service* svc, const char* instance_id, vmr_job** job) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(job, "job");
    *job = nullptr;
    VMR_REQUIRE_ARG(svc, "service");
    VMR_REQUIRE_ARG(instance_id, "instance_id");
    auto j = S(svc)->api->get_job(instance_id);
    if (!j) return fail(j.status());
    *job = new_job_handle(svc, std::move(j).value());
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_list_jobs(vmr_service* svc, vmr_list** jobs) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(jobs, "jobs");
    *jobs = nullptr;
    VMR_REQUIRE_ARG(svc, "service");
    auto r = S(svc)->api->list_jobs();
    if (!r) return fail(r.status());
    *jobs = out_list(std::move(r).value());
    return succeed();
  });
}

VMR_EXTERN void vmr_job_release(vmr_job* job) {
  if (!job) return;
  {
    std::lock_guard<std::mutex> lk(J(job)->hub->mu);
    J(job)->hub->regs.erase(job);
  }
  delete J(job);
}

VMR_EXTERN const char* vmr_instance_class(const vmr_instance* inst) {
  return inst ? I(inst)->inst.class_name().c_str() : "";
}

VMR_EXTERN size_t vmr_instance_count(const vmr_instance* inst) { return inst ? I(inst)->inst.properties().size() : 0; }

VMR_EXTERN const char* vmr_instance_name_at(const vmr_instance* inst, size_t i) {
  if (!inst || i >= I(inst)->inst.properties().size()) return nullptr;
  return I(inst)->inst.properties()[i].name.c_str();
}

VMR_EXTERN vmr_status vmr_instance_type(const vmr_instance* inst, const char* name, uint16_t* cim_type, int* is_array,
                                        int* is_null) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(inst, "instance");
    VMR_REQUIRE_ARG(name, "name");
    const Property* p = I(inst)->inst.find(name);
    if (!p) return fail(Code::InvalidParameter, "no property named " + std::string(name));
    if (cim_type) *cim_type = static_cast<uint16_t>(p->type);
    if (is_array) *is_array = p->is_array ? 1 : 0;
    if (is_null) *is_null = p->is_null() ? 1 : 0;
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_instance_get_u64(const vmr_instance* inst, const char* name, uint64_t* out) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(inst, "instance");
    VMR_REQUIRE_ARG(name, "name");
    VMR_REQUIRE_ARG(out, "out");
    auto r = I(inst)->inst.get_u64(name);
    if (!r) return fail(r.status());
    *out = *r;
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_instance_get_i64(const vmr_instance* inst, const char* name, int64_t* out) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(inst, "instance");
    VMR_REQUIRE_ARG(name, "name");
    VMR_REQUIRE_ARG(out, "out");
    auto r = I(inst)->inst.get_i64(name);
    if (!r) return fail(r.status());
    *out = *r;
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_instance_get_bool(const vmr_instance* inst, const char* name, int* out) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(inst, "instance");
    VMR_REQUIRE_ARG(name, "name");
    VMR_REQUIRE_ARG(out, "out");
    auto r = I(inst)->inst.get_bool(name);
    if (!r) return fail(r.status());
    *out = *r ? 1 : 0;
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_instance_get_string(const vmr_instance* inst, const char* name, char** out) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(out, "out");
    *out = nullptr;
    VMR_REQUIRE_ARG(inst, "instance");
    VMR_REQUIRE_ARG(name, "name");
    auto r = I(inst)->inst.get_string(name);
    if (!r) return fail(r.status());
    *out = dup_string(*r);
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_instance_get_string_array(const vmr_instance* inst, const char* name, char*** out,
                                                    size_t* count) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(out, "out");
    *out = nullptr;
    if (count) *count = 0;
    VMR_REQUIRE_ARG(inst, "instance");
    VMR_REQUIRE_ARG(name, "name");
    auto r = I(inst)->inst.get_string_array(name);
    if (!r) return fail(r.status());
    // One allocation: the pointer table (NULL-terminated) followed by the strings.
    size_t bytes = (r->size() + 1) * sizeof(char*);
    for (const auto& s : *r) bytes += s.size() + 1;
    char** table = static_cast<char**>(std::malloc(bytes));
    if (!table) throw std::bad_alloc();
    char* cursor = reinterpret_cast<char*>(table + r->size() + 1);
    for (size_t i = 0; i < r->size(); ++i) {
      table[i] = cursor;
      std::memcpy(cursor, (*r)[i].c_str(), (*r)[i].size() + 1);
      cursor += (*r)[i].size() + 1;
    }
    table[r->size()] = nullptr;
    *out = table;
    if (count) *count = r->size();
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_instance_to_json(const vmr_instance* inst, char** out) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(out, "out");
    *out = nullptr;
    VMR_REQUIRE_ARG(inst, "instance");
    *out = dup_string(encode_json(I(inst)->inst));
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_instance_to_cim_xml(const vmr_instance* inst, char** out) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(out, "out");
    *out = nullptr;
    VMR_REQUIRE_ARG(inst, "instance");
    *out = dup_string(encode_cim_xml(I(inst)->inst));
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_instance_to_mof(const vmr_instance* inst, char** out) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(out, "out");
    *out = nullptr;
    VMR_REQUIRE_ARG(inst, "instance");
    *out = dup_string(encode_mof(I(inst)->inst));
    return succeed();
  });
}

VMR_EXTERN void vmr_instance_release(vmr_instance* inst) { delete I(inst); }

VMR_EXTERN size_t vmr_list_size(const vmr_list* list) { return list ? L(list)->items.size() : 0; }

VMR_EXTERN const vmr_instance* vmr_list_get(const vmr_list* list, size_t i) {
  if (!list || i >= L(list)->items.size()) return nullptr;
  return reinterpret_cast<const vmr_instance*>(&L(list)->items[i]);
}

VMR_EXTERN void vmr_list_release(vmr_list* list) { delete L(list); }

}  // extern "C"

namespace {

// The common shape of the job-returning methods: check handles, run, hand out the job.
template <class F>
vmr_status job_call(vmr_service* svc, vmr_job** job, F&& fn) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(job, "job");
    *job = nullptr;
    VMR_REQUIRE_ARG(svc, "service");
    return out_job(svc, fn(*S(svc)->api), job);
  });
}

std::string_view sv(const char* s) { return s ? std::string_view(s) : std::string_view(); }

}  // namespace

extern "C" {

VMR_EXTERN vmr_status vmr_create_replication_relationship(vmr_service* svc, const char* cs, const char* sd, vmr_job** job) {
  if (!cs) return fail(Code::InvalidParameter, "computer_system is NULL");
  return job_call(svc, job, [&](ServiceApi& s) { return s.create_replication_relationship(cs, sv(sd)); });
}

VMR_EXTERN vmr_status vmr_start_replication(vmr_service* svc, const char* cs, uint16_t type, const char* export_location,
                                            const char* start_time, vmr_job** job) {
  if (!cs) return fail(Code::InvalidParameter, "computer_system is NULL");
  return job_call(svc, job,
                  [&](ServiceApi& s) { return s.start_replication(cs, type, sv(export_location), sv(start_time)); });
}

VMR_EXTERN vmr_status vmr_modify_replication_settings(vmr_service* svc, const char* cs, const char* sd, vmr_job** job) {
  if (!cs) return fail(Code::InvalidParameter, "computer_system is NULL");
  return job_call(svc, job, [&](ServiceApi& s) { return s.modify_replication_settings(cs, sv(sd)); });
}

VMR_EXTERN vmr_status vmr_remove_replication_relationship(vmr_service* svc, const char* cs, vmr_job** job) {
  if (!cs) return fail(Code::InvalidParameter, "computer_system is NULL");
  return job_call(svc, job, [&](ServiceApi& s) { return s.remove_replication_relationship(cs); });
}

VMR_EXTERN vmr_status vmr_request_replication_state_change(vmr_service* svc, const char* cs, uint16_t requested,
                                                           vmr_job** job) {
  if (!cs) return fail(Code::InvalidParameter, "computer_system is NULL");
  return job_call(svc, job, [&](ServiceApi& s) { return s.request_replication_state_change(cs, requested); });
}

VMR_EXTERN vmr_status vmr_initiate_failover(vmr_service* svc, const char* cs, const char* snapshot, vmr_job** job) {
  if (!cs) return fail(Code::InvalidParameter, "computer_system is NULL");
  return job_call(svc, job, [&](ServiceApi& s) { return s.initiate_failover(cs, sv(snapshot)); });
}

VMR_EXTERN vmr_status vmr_revert_failover(vmr_service* svc, const char* cs, vmr_job** job) {
  if (!cs) return fail(Code::InvalidParameter, "computer_system is NULL");
  return job_call(svc, job, [&](ServiceApi& s) { return s.revert_failover(cs); });
}

VMR_EXTERN vmr_status vmr_commit_failover(vmr_service* svc, const char* cs, vmr_job** job) {
  if (!cs) return fail(Code::InvalidParameter, "computer_system is NULL");
  return job_call(svc, job, [&](ServiceApi& s) { return s.commit_failover(cs); });
}

VMR_EXTERN vmr_status vmr_test_replica_system(vmr_service* svc, const char* cs, const char* snapshot, vmr_job** job) {
  if (!cs) return fail(Code::InvalidParameter, "computer_system is NULL");
  return job_call(svc, job, [&](ServiceApi& s) { return s.test_replica_system(cs, sv(snapshot)); });
}

VMR_EXTERN vmr_status vmr_reverse_replication_relationship_ex(vmr_service* svc, const char* cs, const char* sd,
                                                              uint32_t flags, vmr_job** job) {
  if (!cs) return fail(Code::InvalidParameter, "computer_system is NULL");
  if (flags & ~VMR_REVERSE_VERIFY_FULL) return fail(Code::InvalidParameter, "flags: unknown bits");
  return job_call(svc, job, [&](ServiceApi& s) {
    return s.reverse_replication_relationship(cs, sv(sd), (flags & VMR_REVERSE_VERIFY_FULL) != 0);
  });
}

VMR_EXTERN vmr_status vmr_reverse_replication_relationship(vmr_service* svc, const char* cs, const char* sd,
                                                           vmr_job** job) {
  return vmr_reverse_replication_relationship_ex(svc, cs, sd, 0, job);
}

VMR_EXTERN vmr_status vmr_resynchronize(vmr_service* svc, const char* cs, const char* start_time, vmr_job** job) {
  if (!cs) return fail(Code::InvalidParameter, "computer_system is NULL");
  return job_call(svc, job, [&](ServiceApi& s) { return s.resynchronize(cs, sv(start_time)); });
}

VMR_EXTERN vmr_status vmr_replicate_now(vmr_service* svc, const char* cs, vmr_job** job) {
  if (!cs) return fail(Code::InvalidParameter, "computer_system is NULL");
  return job_call(svc, job, [&](ServiceApi& s) { return s.replicate_now(cs); });
}

VMR_EXTERN vmr_status vmr_test_replication_connection(vmr_service* svc, const char* point, uint16_t port,
                                                      uint16_t auth_type, const char* thumbprint, vmr_job** job) {
  if (!point) return fail(Code::InvalidParameter, "recovery_connection_point is NULL");
  return job_call(svc, job, [&](ServiceApi& s) {
    return s.test_replication_connection(point, port, auth_type, sv(thumbprint));
  });
}

VMR_EXTERN vmr_status vmr_get_replication_statistics(vmr_service* svc, const char* cs, vmr_instance** out) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(out, "statistics");
    *out = nullptr;
    VMR_REQUIRE_ARG(svc, "service");
    VMR_REQUIRE_ARG(cs, "computer_system");
    auto r = S(svc)->api->get_replication_statistics(cs);
    if (!r) return fail(r.status());
    *out = out_instance(std::move(r).value());
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_get_replication_settings(vmr_service* svc, const char* cs, vmr_instance** out) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(out, "settings");
    *out = nullptr;
    VMR_REQUIRE_ARG(svc, "service");
    VMR_REQUIRE_ARG(cs, "computer_system");
    auto r = S(svc)->api->get_replication_settings(cs);
    if (!r) return fail(r.status());
    *out = out_instance(std::move(r).value());
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_list_recovery_points(vmr_service* svc, const char* cs, vmr_list** out) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(out, "points");
    *out = nullptr;
    VMR_REQUIRE_ARG(svc, "service");
    VMR_REQUIRE_ARG(cs, "computer_system");
    auto r = S(svc)->api->list_recovery_points(cs);
    if (!r) return fail(r.status());
    *out = out_list(std::move(r).value());
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_modify_service_settings(vmr_service* svc, const char* sd, vmr_job** job) {
  return job_call(svc, job, [&](ServiceApi& s) { return s.modify_service_settings(sv(sd)); });
}

VMR_EXTERN vmr_status vmr_get_service_settings(vmr_service* svc, vmr_instance** out) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(out, "settings");
    *out = nullptr;
    VMR_REQUIRE_ARG(svc, "service");
    auto r = S(svc)->api->service_settings();
    if (!r) return fail(r.status());
    *out = out_instance(std::move(r).value());
    return succeed();
  });
}

VMR_EXTERN vmr_status vmr_add_authorization_entry(vmr_service* svc, const char* entry, vmr_job** job) {
  return job_call(svc, job, [&](ServiceApi& s) { return s.add_authorization_entry(sv(entry)); });
}

VMR_EXTERN vmr_status vmr_modify_authorization_entry(vmr_service* svc, const char* entry, vmr_job** job) {
  return job_call(svc, job, [&](ServiceApi& s) { return s.modify_authorization_entry(sv(entry)); });
}

VMR_EXTERN vmr_status vmr_remove_authorization_entry(vmr_service* svc, const char* host, vmr_job** job) {
  return job_call(svc, job, [&](ServiceApi& s) { return s.remove_authorization_entry(sv(host)); });
}

VMR_EXTERN vmr_status vmr_disk_mark_dirty(vmr_service* svc, const char* cs, uint32_t disk, uint64_t offset,
                                          uint64_t length) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(svc, "service");
    VMR_REQUIRE_ARG(cs, "computer_system");
    Status st = S(svc)->api->disk_mark_dirty(cs, disk, offset, length);
    return st.ok() ? succeed() : fail(st);
  });
}

VMR_EXTERN vmr_status vmr_list_authorization_entries(vmr_service* svc, vmr_list** out) {
  return guarded([&]() -> vmr_status {
    VMR_REQUIRE_ARG(out, "entries");
    *out = nullptr;
    VMR_REQUIRE_ARG(svc, "service");
    auto r = S(svc)->api->list_authorization_entries();
    if (!r) return fail(r.status());
    *out = out_list(std::move(r).value());
    return succeed();
  });
}

}  // extern "C"
