// Job: one long operation with the CIM_ConcreteJob properties of spec §7, plus vmrepl's
// progress figures (phase, bytes done/total, rate, ETA).
//
// Thread-safety: every public method may be called from any thread. The mutating side is
// JobContext (core/jobs/job_manager.h), used on the loop thread by the job's body.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/model/enums.h"
#include "core/model/guid.h"
#include "core/model/instance.h"
#include "core/model/status.h"

namespace vmrepl {

struct JobProgress {
  std::string phase;
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  uint64_t rate_bytes_per_s = 0;
  int64_t eta_s = -1;  // -1 unknown
  uint16_t percent = 0;
};

class Job {
 public:
  Job(JobType type, std::string name, bool cancellable, int64_t retention_us);
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  const Guid& id() const { return id_; }
  JobType type() const { return type_; }
  const std::string& name() const { return name_; }
  bool cancellable() const { return cancellable_; }

  JobState state() const;
  JobProgress progress() const;
  // The outcome once final: OK for Completed; the failure (or the cancel reason) otherwise.
  Status outcome() const;
  // Increments on every visible change (state, progress, result); for change detection.
  uint64_t version() const;
  // Microseconds since the epoch at which the job reached a final state; 0 before.
  int64_t finished_us() const;

  // Msvm_ConcreteJob instance: InstanceID, Name, JobState, PercentComplete, ErrorCode,
  // ErrorDescription, TimeSubmitted, StartTime, ElapsedTime, Cancellable, JobType, ... plus
  // Phase, BytesDone, BytesTotal, RateBytesPerSecond, EtaSeconds and the job's result
  // properties.
  Instance snapshot() const;

  // Waits until the job is final and its final notifications (catalog record, listeners)
  // were delivered. OK when final, Timeout (32772) when timeout passed first.
  // A negative timeout waits forever.
  Status wait(std::chrono::milliseconds timeout) const;

  // RequestStateChange on the job (spec §7): 4 Terminate and 5 Kill ask for cancellation.
  // Returns OK when the request was taken (the job then ends in Terminated unless it
  // completes first), InvalidState when the job is already final or not cancellable,
  // InvalidParameter for other values (2 Start, 3 Suspend, 6 Service are not offered).
  Status request_state_change(uint16_t requested);
  bool cancel_requested() const { return cancel_requested_.load(); }

 private:
  friend class JobManager;
  friend class JobContext;

  void set_state(JobState s);                 // loop thread
  void set_progress(uint64_t done, uint64_t total);
  void set_rate(uint64_t bytes_per_s);
  void set_phase(std::string phase);
  void finish(Status st);  // final state; waiters still blocked until settle()
  void settle();           // after the final hooks and listeners ran: wakes waiters
  void set_result(const Property& p);

  const Guid id_;
  const JobType type_;
  const std::string name_;
  const bool cancellable_;
  const int64_t retention_us_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  JobState state_ = JobState::New;
  bool settled_ = false;  // final and every hook/listener has seen it
  int64_t submitted_us_ = 0;
  int64_t started_us_ = 0;
  int64_t changed_us_ = 0;
  int64_t finished_us_ = 0;
  JobProgress progress_;
  bool rate_reported_ = false;  // the body reports the rate (set_rate); else done / elapsed
  Status outcome_;
  Instance result_;
  uint64_t version_ = 0;
  std::atomic<bool> cancel_requested_{false};
  std::function<void()> on_cancel_;           // set by the body; runs on the loop thread
  std::function<void(std::function<void()>)> post_;  // posts to the loop (set by JobManager)
};

}  // namespace vmrepl
