#include "core/jobs/event_loop.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>

namespace vmrepl {

EventLoop::EventLoop() {
  if (uv_loop_init(&loop_) != 0 || uv_async_init(&loop_, &async_, &EventLoop::on_async) != 0) {
    std::fprintf(stderr, "vmrepl: cannot initialise the event loop\n");
    std::abort();
  }
  async_.data = this;
  std::promise<void> started;
  auto ready = started.get_future();
  thread_ = std::thread([this, &started] {
    // Every socket write happens on this thread. A write to a peer that went away must give
    // EPIPE, not a SIGPIPE that kills the program hosting the library: block it here (the
    // signal stays pending on this thread, which never unblocks it).
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    thread_id_ = std::this_thread::get_id();
    started.set_value();
    uv_run(&loop_, UV_RUN_DEFAULT);
  });
  ready.wait();
}

EventLoop::~EventLoop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  uv_async_send(&async_);
  thread_.join();
  // The loop returned: every handle is closed. Close the loop itself.
  uv_loop_close(&loop_);
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_ && !in_loop_thread()) return;
    queue_.push_back(std::move(fn));
  }
  uv_async_send(&async_);
}

void EventLoop::on_async(uv_async_t* a) { static_cast<EventLoop*>(a->data)->drain(); }

void EventLoop::drain() {
  for (;;) {
    std::deque<std::function<void()>> batch;
    bool stop;
    {
      std::lock_guard<std::mutex> lk(mu_);
      batch.swap(queue_);
      stop = stopping_;
    }
    for (auto& fn : batch) fn();
    if (!batch.empty()) continue;  // work may have posted more work
    if (stop) {
      // Close every handle still open (timers, TCP...) so uv_run returns.
      uv_walk(
          &loop_,
          [](uv_handle_t* h, void*) {
            if (!uv_is_closing(h)) uv_close(h, nullptr);
          },
          nullptr);
    }
    return;
  }
}

}  // namespace vmrepl
