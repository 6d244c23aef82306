#include "core/jobs/job.h"

#include "core/model/cim_datetime.h"

namespace vmrepl {

namespace {
int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
std::string cim_time(int64_t us) { return CimDateTime::from_unix_us(us).format(); }
}  // namespace

Job::Job(JobType type, std::string name, bool cancellable, int64_t retention_us)
    : id_(Guid::generate()),
      type_(type),
      name_(std::move(name)),
      cancellable_(cancellable),
      retention_us_(retention_us) {
  submitted_us_ = changed_us_ = now_us();
}

JobState Job::state() const {
  std::lock_guard<std::mutex> lk(mu_);
  return state_;
}

JobProgress Job::progress() const {
  std::lock_guard<std::mutex> lk(mu_);
  return progress_;
}

Status Job::outcome() const {
  std::lock_guard<std::mutex> lk(mu_);
  return outcome_;
}

uint64_t Job::version() const {
  std::lock_guard<std::mutex> lk(mu_);
  return version_;
}

int64_t Job::finished_us() const {
  std::lock_guard<std::mutex> lk(mu_);
  return finished_us_;
}

Status Job::wait(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lk(mu_);
  auto done = [this] { return settled_; };
  if (timeout.count() < 0) {
    cv_.wait(lk, done);
    return Status::OK();
  }
  if (cv_.wait_for(lk, timeout, done)) return Status::OK();
  return Status::Timeout("job " + id_.to_string() + " (" + name_ + ") still " +
                         std::string(to_string(state_)) + " after " + std::to_string(timeout.count()) +
                         " ms");
}

Status Job::request_state_change(uint16_t requested) {
  if (requested != to_number(JobRequestedState::Terminate) && requested != to_number(JobRequestedState::Kill))
    return Status::InvalidParameter("RequestedState " + std::to_string(requested) +
                                    " is not offered on jobs (4 Terminate or 5 Kill)");
  std::function<void(std::function<void()>)> post;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (job_state_is_final(state_))
      return Status::InvalidState("job " + id_.to_string() + " already ended in JobState " +
                                  std::to_string(to_number(state_)) + " (" + std::string(to_string(state_)) + ")");
    if (!cancellable_) return Status::InvalidState("job " + id_.to_string() + " (" + name_ + ") is not cancellable");
    if (cancel_requested_.exchange(true)) return Status::OK();
    post = post_;
  }
  if (post) {
    post([this] {
      std::function<void()> hook;
      {
        std::lock_guard<std::mutex> lk(mu_);
        hook = on_cancel_;
      }
      if (hook) hook();
    });
  }
  return Status::OK();
}

void Job::set_state(JobState s) {
  std::lock_guard<std::mutex> lk(mu_);
  if (job_state_is_final(state_)) return;
  state_ = s;
  changed_us_ = now_us();
  if (s == JobState::Running && started_us_ == 0) started_us_ = changed_us_;
  ++version_;
}

void Job::set_progress(uint64_t done, uint64_t total) {
  std::lock_guard<std::mutex> lk(mu_);
  progress_.bytes_done = done;
  progress_.bytes_total = total;
  progress_.percent = total ? static_cast<uint16_t>(done >= total ? 100 : done * 100 / total) : 0;
  int64_t elapsed = (started_us_ ? now_us() - started_us_ : 0);
  if (elapsed > 0) {
    // Progress units per second: the ETA's speed, and the rate unless the body reports one.
    const auto speed = static_cast<uint64_t>(static_cast<double>(done) * 1e6 / static_cast<double>(elapsed));
    if (!rate_reported_) progress_.rate_bytes_per_s = speed;
    progress_.eta_s = speed ? static_cast<int64_t>((total > done ? total - done : 0) / speed) : -1;
  }
  ++version_;
}

void Job::set_rate(uint64_t bytes_per_s) {
  std::lock_guard<std::mutex> lk(mu_);
  progress_.rate_bytes_per_s = bytes_per_s;
  rate_reported_ = true;
  ++version_;
}

void Job::set_phase(std::string phase) {
  std::lock_guard<std::mutex> lk(mu_);
  progress_.phase = std::move(phase);
  ++version_;
}

void Job::set_result(const Property& p) {
  std::lock_guard<std::mutex> lk(mu_);
  result_.set(p);
  ++version_;
}

void Job::finish(Status st) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (job_state_is_final(state_)) return;
    outcome_ = st;
    if (st.ok()) {
      state_ = JobState::Completed;
      progress_.percent = 100;
      progress_.eta_s = 0;
    } else if (cancel_requested_.load()) {
      state_ = JobState::Terminated;
    } else {
      state_ = JobState::Exception;
    }
    finished_us_ = changed_us_ = now_us();
    if (started_us_ == 0) started_us_ = finished_us_;
    on_cancel_ = nullptr;
    ++version_;
  }
}

void Job::settle() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    settled_ = true;
  }
  cv_.notify_all();
}

Instance Job::snapshot() const {
  std::lock_guard<std::mutex> lk(mu_);
  Instance i("Msvm_ConcreteJob");
  i.set_string("InstanceID", id_.to_string());
  i.set_string("Name", name_);
  i.set_string("Caption", name_);
  i.set_string("ElementName", name_);
  i.set_u16("JobType", to_number(type_));
  i.set_u16("JobState", to_number(state_));
  i.set_string("JobStatus", std::string(to_string(state_)));
  i.set_u16("PercentComplete", progress_.percent);
  if (job_state_is_final(state_) && !outcome_.ok()) {
    // ErrorCode is uint16 in CIM; the model's codes (32768..32779) fit.
    i.set_u16("ErrorCode", static_cast<uint16_t>(outcome_.number()));
    i.set_string("ErrorDescription", outcome_.message());
    i.set_string("ErrorSummaryDescription", std::string(code_text(outcome_.code())));
  } else {
    i.set_u16("ErrorCode", 0);
    i.set_null("ErrorDescription", CimType::String);
    i.set_null("ErrorSummaryDescription", CimType::String);
  }
  i.set_datetime("TimeSubmitted", cim_time(submitted_us_));
  if (started_us_)
    i.set_datetime("StartTime", cim_time(started_us_));
  else
    i.set_null("StartTime", CimType::DateTime);
  i.set_datetime("TimeOfLastStateChange", cim_time(changed_us_));
  int64_t end = finished_us_ ? finished_us_ : now_us();
  int64_t elapsed = started_us_ ? end - started_us_ : 0;
  i.set_datetime("ElapsedTime", CimInterval::from_us(elapsed < 0 ? 0 : elapsed).format());
  i.set_datetime("TimeBeforeRemoval", CimInterval::from_us(retention_us_).format());
  i.set_bool("DeleteOnCompletion", false);
  i.set_bool("Cancellable", cancellable_);
  i.set_uint_array("OperationalStatus", CimType::UInt16, {2});
  i.set_string_array("StatusDescriptions", {"OK"});
  i.set_u16("HealthState", 5);
  i.set_string("Phase", progress_.phase);
  i.set_u64("BytesDone", progress_.bytes_done);
  i.set_u64("BytesTotal", progress_.bytes_total);
  i.set_u64("RateBytesPerSecond", progress_.rate_bytes_per_s);
  if (progress_.eta_s >= 0)
    i.set_sint("EtaSeconds", CimType::SInt64, progress_.eta_s);
  else
    i.set_null("EtaSeconds", CimType::SInt64);
  for (const auto& p : result_.properties()) i.set(p);
  return i;
}

}  // namespace vmrepl
