// Owning wrappers for the handles of the public C ABI, and the one error type of the tool: a
// call the library refused (anything but 0 or 4096), with its status and message.
#pragma once

#include <vmrepl/vmrepl.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace vmreplctl {

using Json = nlohmann::ordered_json;

struct FreeDeleter {
  void operator()(void* p) const { vmr_free(p); }
};
struct ServiceDeleter {
  void operator()(vmr_service* s) const { vmr_close(s); }
};
struct JobDeleter {
  void operator()(vmr_job* j) const { vmr_job_release(j); }
};
struct InstanceDeleter {
  void operator()(vmr_instance* i) const { vmr_instance_release(i); }
};
struct ListDeleter {
  void operator()(vmr_list* l) const { vmr_list_release(l); }
};

using CString = std::unique_ptr<char, FreeDeleter>;
using Service = std::unique_ptr<vmr_service, ServiceDeleter>;
using Job = std::unique_ptr<vmr_job, JobDeleter>;
using Instance = std::unique_ptr<vmr_instance, InstanceDeleter>;
using List = std::unique_ptr<vmr_list, ListDeleter>;

// A call the library refused at once: exit code 3, the status printed.
struct Refused {
  vmr_status code;
  std::string message;
};

// Throws Refused for anything but 0 (done) and 4096 (job started), taking the message of the
// calling thread's last failure.
inline vmr_status check(vmr_status st) {
  if (st != VMR_OK && st != VMR_JOB_STARTED) throw Refused{st, vmr_last_error_message()};
  return st;
}

// The instance as JSON (vmr_instance_to_json), parsed so that lists and job results can be
// composed into one document; property order is kept.
inline Json to_json(const vmr_instance* inst) {
  char* raw = nullptr;
  check(vmr_instance_to_json(inst, &raw));
  CString text(raw);
  return Json::parse(text.get());
}

}  // namespace vmreplctl
