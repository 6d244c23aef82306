#include "core/engine/bandwidth.h"

#include <algorithm>

namespace vmrepl {

TokenBucket::TokenBucket(uint64_t bytes_per_s) : rate_(bytes_per_s), last_(Clock::now()) {}

double TokenBucket::burst() const {
  return std::max(1.0, static_cast<double>(rate_) * std::chrono::duration<double>(kBurst).count());
}

void TokenBucket::refill(Clock::time_point now) {
  if (now <= last_) return;
  const double dt = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst(), tokens_ + dt * static_cast<double>(rate_));
  last_ = now;
}

void TokenBucket::set_rate(uint64_t bytes_per_s) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    const auto now = Clock::now();
    if (rate_ == 0) {
      tokens_ = 0;  // a new limit starts empty: no free burst right after it is set
    } else {
      refill(now);  // what accrued so far, at the old rate
    }
    last_ = now;
    rate_ = bytes_per_s;
    if (rate_) tokens_ = std::min(tokens_, burst());
  }
  cv_.notify_all();
}

uint64_t TokenBucket::rate() const {
  std::lock_guard<std::mutex> lk(mu_);
  return rate_;
}

Status TokenBucket::acquire(uint64_t bytes, const std::function<bool()>& cancelled) {
  for (;;) {
    if (cancelled && cancelled()) return Status::Failed("cancelled");
    std::unique_lock<std::mutex> lk(mu_);
    if (rate_ == 0) return Status::OK();
    const auto now = Clock::now();
    refill(now);
    const double need = std::min(static_cast<double>(bytes), burst());
    if (tokens_ >= need) {
      tokens_ -= static_cast<double>(bytes);
      return Status::OK();
    }
    // Sleep until the tokens are there (a little past, so one wake-up usually suffices), or
    // until the next cancel check; set_rate() wakes us earlier.
    const auto until_enough = std::chrono::duration<double>((need - tokens_) / static_cast<double>(rate_) + 1e-4);
    const auto wait = std::min<Clock::duration>(std::chrono::duration_cast<Clock::duration>(until_enough), kCancelPoll);
    cv_.wait_until(lk, now + wait);
  }
}

RateMeter::RateMeter(uint64_t total, Clock::time_point now) : first_{now, total} { samples_.push_back(first_); }

void RateMeter::add(uint64_t total, Clock::time_point now) {
  samples_.push_back({now, total});
  // Keep one sample at or before the window's start as the anchor.
  while (samples_.size() >= 2 && samples_[1].at <= now - kWindow) samples_.pop_front();
}

uint64_t RateMeter::rate(const Sample& from, const Sample& to) {
  const double dt = std::chrono::duration<double>(to.at - from.at).count();
  if (dt <= 0 || to.total <= from.total) return 0;
  return static_cast<uint64_t>(static_cast<double>(to.total - from.total) / dt);
}

uint64_t RateMeter::recent() const { return rate(samples_.front(), samples_.back()); }

uint64_t RateMeter::average() const { return rate(first_, samples_.back()); }

}  // namespace vmrepl
