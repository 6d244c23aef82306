// The state one invocation of vmreplctl shares between its commands: the parsed global
// options, the open service, and how results, jobs and errors are printed.
//
// Exit codes: 0 ok; 1 a job failed (JobState other than 7 Completed); 2 bad usage; 3 the
// library refused a call at once (its status number is printed, and carried in the JSON).
#pragma once

#include <string>
#include <string_view>

#include "handles.h"
#include "progress.h"

namespace vmreplctl {

enum ExitCode : int { kExitOk = 0, kExitJobFailed = 1, kExitUsage = 2, kExitRefused = 3 };

struct GlobalOptions {
  std::string uri;           // --uri, $VMREPL_URI
  std::string open_options;  // --open-options, $VMREPL_OPEN_OPTIONS: JSON text for vmr_open, as is
  bool json = false;         // --json: one JSON document on stdout, nothing else
  bool quiet = false;        // --quiet: no progress on stderr
};

class Ctl {
 public:
  explicit Ctl(GlobalOptions o) : opts_(std::move(o)) {}

  const GlobalOptions& opts() const { return opts_; }
  bool json() const { return opts_.json; }

  // Opens the service (vmr_open); throws Refused.
  void open();
  // Closes it: a local: root is released for the next invocation.
  void close() { svc_.reset(); }
  vmr_service* svc() const { return svc_.get(); }

  // For a method that returns 0 (done at once) or 4096 with a job: waits for the job with
  // progress, prints its final properties, and returns kExitOk or kExitJobFailed. `vm`, when
  // given, is the VM whose replication state is shown after the job (for people).
  int finish(vmr_status st, vmr_job* job, std::string_view vm = {});

  // Prints a finished job's final properties (all of them with `all`, else the state, the
  // error and the job's own results); returns kExitOk or kExitJobFailed.
  int report_job(const Json& props, std::string_view vm = {}, bool all = false);

  // One JSON document on stdout.
  void print_json(const Json& doc) const;

  // "web01: ReplicationMode 1 Primary, ReplicationState 3 Replicating, ..." (people only).
  void print_vm_state(std::string_view vm) const;

 private:
  GlobalOptions opts_;
  Service svc_;
};

// {"code": N, "name": "InvalidState", "message": "..."}
Json error_json(vmr_status code, std::string_view message);

// "error 32775 InvalidState: <message>" on stderr.
void print_error(vmr_status code, std::string_view message);

}  // namespace vmreplctl
