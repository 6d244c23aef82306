#include "core/jobs/job_manager.h"

namespace vmrepl {

namespace {
int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void JobContext::on_cancel(std::function<void()> hook) const {
  bool run_now = false;
  {
    std::lock_guard<std::mutex> lk(job_->mu_);
    if (job_state_is_final(job_->state_)) return;
    job_->on_cancel_ = hook;
    run_now = job_->cancel_requested_.load();
  }
  // A cancel that arrived before the hook existed still reaches it.
  if (run_now && hook) hook();
}

void JobContext::phase(std::string name) const {
  job_->set_phase(std::move(name));
  mgr_->notify(job_);
}

void JobContext::progress(uint64_t done, uint64_t total) const {
  job_->set_progress(done, total);
  mgr_->notify(job_);
}

void JobContext::rate(uint64_t bytes_per_s) const {
  job_->set_rate(bytes_per_s);
  mgr_->notify(job_);
}

void JobContext::result(const Property& p) const {
  job_->set_result(p);
  mgr_->notify(job_);
}

void JobContext::finish(Status st) const {
  if (job_state_is_final(job_->state())) return;
  job_->finish(std::move(st));
  if (mgr_->on_final_) mgr_->on_final_(*job_);
  mgr_->notify(job_);
  job_->settle();
}

JobManager::JobManager(EventLoop& loop, Options opts) : loop_(loop), opts_(opts) {
  loop_.run_sync([this] {
    sweep_timer_ = new uv_timer_t;
    uv_timer_init(loop_.uv(), sweep_timer_);
    sweep_timer_->data = this;
    uint64_t period = std::min<uint64_t>(1000, static_cast<uint64_t>(opts_.retention.count()) * 1000 / 2 + 1);
    uv_timer_start(
        sweep_timer_, [](uv_timer_t* t) { static_cast<JobManager*>(t->data)->sweep(); }, period, period);
    return 0;
  });
}

JobManager::~JobManager() {
  if (!shut_down_) shutdown(std::chrono::milliseconds(0));
}

std::shared_ptr<Job> JobManager::submit(JobType type, std::string name, bool cancellable, Body body) {
  auto job = std::make_shared<Job>(type, std::move(name), cancellable,
                                   static_cast<int64_t>(opts_.retention.count()) * 1000000);
  {
    std::lock_guard<std::mutex> jl(job->mu_);
    EventLoop* loop = &loop_;
    job->post_ = [loop](std::function<void()> fn) { loop->post(std::move(fn)); };
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    jobs_[job->id()] = job;
  }
  loop_.post([this, job, body = std::move(body)] {
    job->set_state(JobState::Starting);
    job->set_state(JobState::Running);
    notify(job);
    body(JobContext(this, job));
  });
  return job;
}

std::shared_ptr<Job> JobManager::find(const Guid& id) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Job>> JobManager::list() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<std::shared_ptr<Job>> out;
  for (const auto& [id, j] : jobs_) out.push_back(j);
  return out;
}

size_t JobManager::size() const {
  std::lock_guard<std::mutex> lk(mu_);
  return jobs_.size();
}

void JobManager::add_listener(Listener l) {
  loop_.run_sync([&] {
    listeners_.push_back(std::move(l));
    return 0;
  });
}

void JobManager::set_on_final(std::function<void(const Job&)> hook) {
  loop_.run_sync([&] {
    on_final_ = std::move(hook);
    return 0;
  });
}

void JobManager::notify(const std::shared_ptr<Job>& job) {
  for (const auto& l : listeners_) l(job);
}

void JobManager::sweep() {
  const int64_t now = now_us();
  const int64_t keep = static_cast<int64_t>(opts_.retention.count()) * 1000000;
  std::lock_guard<std::mutex> lk(mu_);
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    int64_t fin = it->second->finished_us();
    if (fin && now - fin >= keep)
      it = jobs_.erase(it);
    else
      ++it;
  }
}

void JobManager::shutdown(std::chrono::milliseconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  for (const auto& j : list())
    if (!job_state_is_final(j->state()) && j->cancellable()) j->request_state_change(4);
  auto deadline = std::chrono::steady_clock::now() + grace;
  for (const auto& j : list()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    j->wait(left.count() > 0 ? left : std::chrono::milliseconds(0));
  }
  loop_.run_sync([this] {
    if (sweep_timer_) {
      uv_timer_stop(sweep_timer_);
      uv_close(reinterpret_cast<uv_handle_t*>(sweep_timer_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      sweep_timer_ = nullptr;
    }
    listeners_.clear();
    on_final_ = nullptr;
    return 0;
  });
}

}  // namespace vmrepl
