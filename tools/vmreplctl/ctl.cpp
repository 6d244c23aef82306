#include "ctl.h"

#include <cstdio>
#include <iostream>
#include <vector>

#include "format.h"

namespace vmreplctl {

namespace {

// Properties every Msvm_ConcreteJob has: a finished job's summary shows only the others (its
// results: BlocksSent, DataBytesSent, ChangeSource, MerkleRoot, ResultingSystem, ...).
const std::vector<std::string> kJobFrame = {
    "InstanceID",     "Name",           "Caption",        "ElementName",           "JobType",
    "JobState",       "JobStatus",      "PercentComplete", "ErrorCode",            "ErrorDescription",
    "ErrorSummaryDescription",          "TimeSubmitted",  "StartTime",             "TimeOfLastStateChange",
    "ElapsedTime",    "TimeBeforeRemoval", "DeleteOnCompletion", "Cancellable",     "OperationalStatus",
    "StatusDescriptions", "HealthState", "Phase",          "BytesDone",             "BytesTotal",
    "RateBytesPerSecond", "EtaSeconds"};

uint64_t u64_or(const Json& j, const char* k, uint64_t dflt) {
  auto it = j.find(k);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : dflt;
}

std::string str_or(const Json& j, const char* k, std::string dflt = {}) {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : dflt;
}

}  // namespace

Json error_json(vmr_status code, std::string_view message) {
  Json e = Json::object();
  e["code"] = code;
  e["name"] = vmr_status_name(code);
  e["message"] = std::string(message);
  return e;
}

void print_error(vmr_status code, std::string_view message) {
  std::fprintf(stderr, "error %u %s: %.*s\n", static_cast<unsigned>(code), vmr_status_name(code),
               static_cast<int>(message.size()), message.data());
}

void Ctl::open() {
  vmr_service* raw = nullptr;
  const char* options = opts_.open_options.empty() ? nullptr : opts_.open_options.c_str();
  const vmr_status st = vmr_open(opts_.uri.c_str(), options, &raw);
  svc_.reset(raw);
  if (st != VMR_OK) throw Refused{st, vmr_last_error_message()};
}

void Ctl::print_json(const Json& doc) const {
  std::cout << doc.dump(2, ' ', false, Json::error_handler_t::replace) << '\n';
}

void Ctl::print_vm_state(std::string_view vm) const {
  vmr_instance* raw = nullptr;
  if (vmr_get_system(svc_.get(), std::string(vm).c_str(), &raw) != VMR_OK) return;
  Instance inst(raw);
  const Json j = to_json(inst.get());
  std::cout << str_or(j, "ElementName", std::string(vm)) << ": ReplicationMode "
            << numbered("ReplicationMode", u64_or(j, "ReplicationMode", 0)) << ", ReplicationState "
            << numbered("ReplicationState", u64_or(j, "ReplicationState", 0)) << ", ReplicationHealth "
            << numbered("ReplicationHealth", u64_or(j, "ReplicationHealth", 0)) << '\n';
}

int Ctl::finish(vmr_status st, vmr_job* raw, std::string_view vm) {
  Job job(raw);
  check(st);
  if (st == VMR_OK || !job) {
    // Done at once: there is no job to show; the VM's state is the result.
    if (json()) {
      Json doc = Json::object();
      if (!vm.empty()) {
        vmr_instance* i = nullptr;
        check(vmr_get_system(svc_.get(), std::string(vm).c_str(), &i));
        Instance inst(i);
        doc = to_json(inst.get());
      } else {
        doc["ReturnValue"] = 0;
      }
      print_json(doc);
    } else if (!vm.empty()) {
      print_vm_state(vm);
    } else {
      std::cout << "done\n";
    }
    return kExitOk;
  }
  const Json props = wait_for_job(job.get(), choose_progress(json(), opts_.quiet));
  return report_job(props, vm);
}

int Ctl::report_job(const Json& props, std::string_view vm, bool all) {
  const uint64_t state = u64_or(props, "JobState", 0);
  const bool ok = state == 7;
  vmr_status code = static_cast<vmr_status>(u64_or(props, "ErrorCode", 0));
  std::string message = str_or(props, "ErrorDescription");
  if (!ok && code == VMR_OK) code = VMR_FAILED;  // a job that did not complete always fails
  if (!ok && message.empty()) message = "job ended in JobState " + numbered("JobState", state);
  const bool final = state >= 7 && state <= 10;

  if (json()) {
    Json doc = props;
    if (final && !ok) doc["error"] = error_json(code, message);
    print_json(doc);
  } else if (all) {
    print_properties(std::cout, props);
  } else {
    std::cout << str_or(props, "Name", "job") << ": JobState " << numbered("JobState", state);
    const std::string elapsed = str_or(props, "ElapsedTime");
    if (auto t = human_datetime(elapsed); t && !elapsed.empty()) std::cout << " in " << *t;
    std::cout << '\n';
    if (!ok) {
      std::cout << "  ErrorCode         " << numbered("ErrorCode", code) << '\n';
      std::cout << "  ErrorDescription  " << message << '\n';
    }
    print_properties(std::cout, props, kJobFrame, "  ");
    if (ok && !vm.empty()) print_vm_state(vm);
  }
  std::cout.flush();
  if (final && !ok) {
    print_error(code, message);
    return kExitJobFailed;
  }
  return kExitOk;
}

}  // namespace vmreplctl
