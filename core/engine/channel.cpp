#include "core/engine/channel.h"

#include <algorithm>
#include <future>

#include "core/net/tcp.h"

namespace vmrepl {

Channel::Channel(EventLoop& loop, std::unique_ptr<Connection> conn)
    : loop_(loop), conn_(std::move(conn)), peer_(conn_->peer()) {}

Result<std::shared_ptr<Channel>> Channel::connect(EventLoop& loop, const std::string& host, uint16_t port,
                                                  std::chrono::milliseconds timeout,
                                                  std::chrono::milliseconds stall_timeout) {
  std::promise<Result<std::shared_ptr<Channel>>> done;
  auto fut = done.get_future();
  auto opts = protocol::connection_options();
  opts.write_stall_timeout_ms = static_cast<uint64_t>(std::max<int64_t>(stall_timeout.count(), 1));
  loop.post([&loop, &done, host, port, timeout, opts] {
    tcp_connect(
        loop.uv(), host, port, static_cast<uint64_t>(timeout.count()),
        [&loop, &done](Result<std::unique_ptr<Connection>> r) {
          if (!r) {
            done.set_value(r.status());
            return;
          }
          done.set_value(adopt(loop, std::move(r).value()));
        },
        opts);
  });
  return fut.get();
}

std::shared_ptr<Channel> Channel::adopt(EventLoop& loop, std::unique_ptr<Connection> conn) {
  std::shared_ptr<Channel> ch(new Channel(loop, std::move(conn)));
  ch->attach();
  return ch;
}

void Channel::attach() {
  std::weak_ptr<Channel> weak = weak_from_this();
  conn_->on_frame([weak](std::vector<uint8_t> payload) {
    auto self = weak.lock();
    if (!self) return;
    std::lock_guard<std::mutex> lk(self->mu_);
    self->bytes_received_ += payload.size() + 4;  // the frame and its length prefix
    self->inbox_.push_back(std::move(payload));
    if (self->inbox_.size() >= kPauseAt && !self->paused_) {
      self->paused_ = true;
      self->conn_->pause_reading();
    }
    self->cv_.notify_all();
  });
  conn_->on_drain([weak] {
    auto self = weak.lock();
    if (!self) return;
    std::lock_guard<std::mutex> lk(self->mu_);
    self->writable_ = true;
    self->cv_.notify_all();
  });
  conn_->on_close([weak](const Status& reason) {
    auto self = weak.lock();
    if (!self) return;
    std::lock_guard<std::mutex> lk(self->mu_);
    if (!self->closed_) {
      self->closed_ = true;
      self->close_reason_ = reason.ok() ? Status::SystemNotAvailable("connection to " + self->peer_ + " closed by the peer")
                                        : Status(reason.code() == Code::Timeout ? Code::Timeout : Code::SystemNotAvailable,
                                                 "connection to " + self->peer_ + ": " + reason.message());
    }
    self->cv_.notify_all();
  });
  conn_->start();
}

Channel::~Channel() {
  // The connection belongs to the loop; hand it back there to close and free.
  auto conn = std::make_shared<std::unique_ptr<Connection>>(std::move(conn_));
  loop_.post([conn] {
    if (*conn) {
      (*conn)->on_frame(nullptr);
      (*conn)->on_drain(nullptr);
      (*conn)->on_close(nullptr);
      (*conn)->close(Status::OK());
      conn->reset();
    }
  });
}

Status Channel::send(const protocol::Message& m) {
  std::vector<uint8_t> payload = protocol::encode(m);
  {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [this] { return closed_ || (writable_ && sends_in_flight_ < 4); });
    if (closed_) return close_reason_;
    ++sends_in_flight_;
    bytes_sent_ += payload.size() + 4;
  }
  auto self = shared_from_this();
  auto data = std::make_shared<std::vector<uint8_t>>(std::move(payload));
  loop_.post([self, data] {
    Status st = self->conn_ ? self->conn_->send(std::move(*data)) : Status::SystemNotAvailable("connection gone");
    std::lock_guard<std::mutex> lk(self->mu_);
    --self->sends_in_flight_;
    if (self->conn_) self->writable_ = self->conn_->writable();
    if (!st.ok() && !self->closed_) {
      self->closed_ = true;
      self->close_reason_ = Status::SystemNotAvailable("sending to " + self->peer_ + ": " + st.message());
    }
    self->cv_.notify_all();
  });
  return Status::OK();
}

Result<protocol::Message> Channel::recv(std::chrono::milliseconds timeout) {
  std::vector<uint8_t> payload;
  {
    std::unique_lock<std::mutex> lk(mu_);
    if (!cv_.wait_for(lk, timeout, [this] { return !inbox_.empty() || closed_; }))
      return Status::Timeout("no message from " + peer_ + " within " + std::to_string(timeout.count()) + " ms");
    if (inbox_.empty()) return close_reason_;
    payload = std::move(inbox_.front());
    inbox_.pop_front();
    bytes_consumed_ += payload.size() + 4;
    if (paused_ && inbox_.size() <= kResumeAt) {
      paused_ = false;
      auto self = shared_from_this();
      loop_.post([self] {
        if (self->conn_) self->conn_->resume_reading();
      });
    }
  }
  return protocol::decode(payload);
}

void Channel::close(Status reason) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!closed_) {
      closed_ = true;
      close_reason_ = reason.ok() ? Status::SystemNotAvailable("channel closed") : reason;
    }
    cv_.notify_all();
  }
  auto self = shared_from_this();
  loop_.post([self] {
    if (self->conn_) self->conn_->shutdown();
  });
}

bool Channel::is_open() const {
  std::lock_guard<std::mutex> lk(mu_);
  return !closed_;
}

uint64_t Channel::bytes_sent() const {
  std::lock_guard<std::mutex> lk(mu_);
  return bytes_sent_;
}

uint64_t Channel::bytes_consumed() const {
  std::lock_guard<std::mutex> lk(mu_);
  return bytes_consumed_;
}

uint64_t Channel::bytes_received() const {
  std::lock_guard<std::mutex> lk(mu_);
  return bytes_received_;
}

}  // namespace vmrepl
