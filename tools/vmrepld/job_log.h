// JobLog: what the daemon's log says about jobs. Each job that reaches a final state is
// logged once with its name, InstanceID, JobState and outcome: Completed and Terminated at
// info, Exception and Killed at warn. The states before that are logged at debug.
//
// Thread-safety: on_change() is a JobManager listener, called on the service's loop thread
// only.
#pragma once

#include <chrono>
#include <map>
#include <memory>

#include "core/jobs/job.h"
#include "tools/vmrepld/log.h"

namespace vmrepld {

class JobLog {
 public:
  explicit JobLog(Logger& log) : log_(log) {}
  JobLog(const JobLog&) = delete;
  JobLog& operator=(const JobLog&) = delete;

  void on_change(const std::shared_ptr<vmrepl::Job>& job);

 private:
  using Clock = std::chrono::steady_clock;
  struct Seen {
    vmrepl::JobState state;
    Clock::time_point first;  // about when it was submitted
    Clock::time_point ended;  // when logged as final
  };
  void prune(Clock::time_point now);

  Logger& log_;
  // Jobs seen lately: a listener hears every progress change, and a late one after the final
  // state must not log the job twice. Final entries are dropped a minute later.
  std::map<vmrepl::Guid, Seen> seen_;
};

}  // namespace vmrepld
