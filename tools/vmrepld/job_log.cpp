#include "tools/vmrepld/job_log.h"

#include <cstdio>
#include <string>

namespace vmrepld {

namespace {

constexpr std::chrono::seconds kForgetAfter{60};

std::string seconds(std::chrono::steady_clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", std::chrono::duration<double>(d).count());
  return buf;
}

}  // namespace

void JobLog::on_change(const std::shared_ptr<vmrepl::Job>& job) {
  using vmrepl::JobState;
  const JobState state = job->state();
  const auto now = Clock::now();
  auto [it, inserted] = seen_.try_emplace(job->id(), Seen{state, now, {}});
  if (!inserted) {
    if (it->second.state == state || vmrepl::job_state_is_final(it->second.state)) return;
    it->second.state = state;
  }
  const std::string who = "job \"" + job->name() + "\" (" + job->id().to_string() + ") ";
  if (!vmrepl::job_state_is_final(state)) {
    log_.debug("jobs", who + std::string(vmrepl::to_string(state)));
    return;
  }
  it->second.ended = now;
  const std::string took = seconds(now - it->second.first);
  if (state == JobState::Completed) {
    log_.info("jobs", who + "Completed in " + took);
  } else {
    const vmrepl::Status out = job->outcome();
    const std::string text = who + std::string(vmrepl::to_string(state)) + " after " + took + ": " +
                             std::to_string(out.number()) + " " + out.ToString();
    log_.log(state == JobState::Terminated ? LogLevel::Info : LogLevel::Warn, "jobs", text);
  }
  prune(now);
}

void JobLog::prune(Clock::time_point now) {
  std::erase_if(seen_, [now](const auto& e) {
    return vmrepl::job_state_is_final(e.second.state) && now - e.second.ended > kForgetAfter;
  });
}

}  // namespace vmrepld
