// Bandwidth limits of the send path: TokenBucket caps the bytes per second that pass through
// it (the replicator keeps one for the service and one per relationship), RateMeter measures
// the rate a transfer actually reaches (a job's RateBytesPerSecond).
//
// TokenBucket: tokens are bytes, accruing at the rate up to a burst of 250 ms worth; a bucket
// starts empty when a limit is set, so a limit holds from its first byte. acquire() waits
// until the bucket holds min(bytes, burst) tokens, then takes all `bytes`: a request larger
// than the burst leaves the bucket in debt, which the next request waits out. A big request
// therefore never waits for ever, and the long-run rate still holds.
//
// Thread-safety: TokenBucket's methods may be called from any thread; set_rate() takes effect
// for the threads already waiting (they re-compute their wait, or pass at once under 0).
// RateMeter is a value for one thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "core/model/status.h"

namespace vmrepl {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  // The burst: this long at the rate.
  static constexpr std::chrono::milliseconds kBurst{250};
  // A waiter checks its cancel condition at least this often.
  static constexpr std::chrono::milliseconds kCancelPoll{100};

  explicit TokenBucket(uint64_t bytes_per_s = 0);
  TokenBucket(const TokenBucket&) = delete;
  TokenBucket& operator=(const TokenBucket&) = delete;

  // 0 = unlimited. Wakes every waiter.
  void set_rate(uint64_t bytes_per_s);
  uint64_t rate() const;

  // Blocks until `bytes` may pass (at once under no limit), then OK. Returns
  // Failed("cancelled") as soon as `cancelled` (if set) returns true; it is called without the
  // bucket's lock, at least every kCancelPoll while waiting. Takes no tokens when cancelled.
  Status acquire(uint64_t bytes, const std::function<bool()>& cancelled = {});

 private:
  void refill(Clock::time_point now);  // REQUIRES: mu_ held
  double burst() const;                // REQUIRES: mu_ held

  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t rate_ = 0;
  double tokens_ = 0;  // negative while in debt
  Clock::time_point last_;
};

// The rate of a growing byte count: over about the last second, and since the start.
class RateMeter {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kWindow{1000};

  explicit RateMeter(uint64_t total, Clock::time_point now = Clock::now());
  // Records the running total.
  void add(uint64_t total, Clock::time_point now = Clock::now());
  // Bytes/s over about the last kWindow (since the start when that is shorter); 0 before any
  // time has passed.
  uint64_t recent() const;
  // Bytes/s from the start to the last add().
  uint64_t average() const;

 private:
  struct Sample {
    Clock::time_point at;
    uint64_t total;
  };
  static uint64_t rate(const Sample& from, const Sample& to);
  Sample first_;
  std::deque<Sample> samples_;  // the window: front is at least kWindow before back, if known
};

}  // namespace vmrepl
