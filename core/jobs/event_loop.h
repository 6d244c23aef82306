// EventLoop: a libuv loop on its own thread, the engine's single orchestrating thread.
//
// Heavy work goes to the libuv thread pool (uv_queue_work); the loop thread only schedules.
// post() and run_sync() may be called from any thread; everything else in the engine that
// touches uv handles runs on the loop thread.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>

#include "core/blocks/buffer_pool.h"

namespace vmrepl {

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();  // stops the loop after the queued work ran, closes every handle, joins
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Any thread. Runs fn on the loop thread, in posting order. After stop, fn is dropped.
  void post(std::function<void()> fn);

  // Any thread. Runs fn on the loop thread and returns its result; inline when already there.
  template <class F>
  auto run_sync(F&& fn) -> std::invoke_result_t<F> {
    using R = std::invoke_result_t<F>;
    if (in_loop_thread()) return fn();
    std::packaged_task<R()> task(std::forward<F>(fn));
    auto fut = task.get_future();
    post([&task] { task(); });
    return fut.get();
  }

  bool in_loop_thread() const { return std::this_thread::get_id() == thread_id_; }
  // REQUIRES: loop thread.
  uv_loop_t* uv() { return &loop_; }
  // Any thread. The large buffers of this loop's connections (frames, batches), kept warm
  // across messages and cycles (buffer_pool.h).
  BufferPool& buffers() { return buffers_; }

 private:
  static void on_async(uv_async_t* a);
  void drain();

  uv_loop_t loop_{};
  uv_async_t async_{};
  std::mutex mu_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
  std::thread::id thread_id_;
  BufferPool buffers_{kKeptBufferBytes, kMaxBufferBytes};
  static constexpr std::size_t kKeptBufferBytes = std::size_t{64} << 20;
  static constexpr std::size_t kMaxBufferBytes = std::size_t{32} << 20;
};

}  // namespace vmrepl
