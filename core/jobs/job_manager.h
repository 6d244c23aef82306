// JobManager: runs every long operation as a Job on the engine's EventLoop.
//
// A job's body runs on the loop thread and drives its work asynchronously (thread-pool work,
// network I/O), reporting through its JobContext and ending with JobContext::finish(). Finished
// jobs stay in the manager for `retention` (default 5 minutes, the CIM TimeBeforeRemoval),
// then are dropped from memory; the on_final hook records them durably (the catalog).
//
// Thread-safety: submit(), find(), list() and add_listener() may be called from any thread.
// Listeners and bodies run on the loop thread.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "core/jobs/event_loop.h"
#include "core/jobs/job.h"

namespace vmrepl {

class JobManager;

// The body's handle on its job. Loop thread only; cheap to copy.
class JobContext {
 public:
  const std::shared_ptr<Job>& job() const { return job_; }
  bool cancelled() const { return job_->cancel_requested(); }
  // Runs on the loop thread when a cancel is requested (at most once). Replaces a previous hook.
  void on_cancel(std::function<void()> hook) const;
  void phase(std::string name) const;
  void progress(uint64_t done, uint64_t total) const;
  // The job's RateBytesPerSecond as the body measures it (e.g. wire bytes of the last second);
  // from the first call on, progress() no longer derives it from done / elapsed.
  void rate(uint64_t bytes_per_s) const;
  // A property the job reports as its result (e.g. the digest's MerkleRoot).
  void result(const Property& p) const;
  // Ends the job: Completed when OK; Terminated when a cancel was requested and st is not OK;
  // Exception otherwise. Later calls are ignored.
  void finish(Status st) const;

 private:
  friend class JobManager;
  JobContext(JobManager* m, std::shared_ptr<Job> j) : mgr_(m), job_(std::move(j)) {}
  JobManager* mgr_;
  std::shared_ptr<Job> job_;
};

class JobManager {
 public:
  struct Options {
    std::chrono::seconds retention{300};
  };
  using Body = std::function<void(const JobContext&)>;
  using Listener = std::function<void(const std::shared_ptr<Job>&)>;

  JobManager(EventLoop& loop, Options opts);
  ~JobManager();  // REQUIRES: shutdown() was called
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // Creates the job (JobState New) and schedules its body on the loop (next iteration).
  std::shared_ptr<Job> submit(JobType type, std::string name, bool cancellable, Body body);

  std::shared_ptr<Job> find(const Guid& id) const;
  std::vector<std::shared_ptr<Job>> list() const;

  // Called on the loop thread after every change of any job.
  void add_listener(Listener l);
  // Called once per job when it becomes final (on the loop thread), before the listeners.
  void set_on_final(std::function<void(const Job&)> hook);

  // Any thread except the loop's: asks every running job to cancel, waits up to `grace` for
  // them to end, then stops the retention timer. Idempotent.
  void shutdown(std::chrono::milliseconds grace);

  size_t size() const;

 private:
  friend class JobContext;
  void notify(const std::shared_ptr<Job>& job);
  void sweep();

  EventLoop& loop_;
  const Options opts_;
  mutable std::mutex mu_;
  std::map<Guid, std::shared_ptr<Job>> jobs_;
  std::vector<Listener> listeners_;  // loop thread after start
  std::function<void(const Job&)> on_final_;
  uv_timer_t* sweep_timer_ = nullptr;  // loop thread
  bool shut_down_ = false;
};

}  // namespace vmrepl
