#include "core/engine/channel.h"

#include <algorithm>
#include <cctype>
#include <future>

#include "core/net/tcp.h"
#include "core/net/unix.h"

namespace vmrepl {

Channel::Channel(EventLoop& loop, std::unique_ptr<Connection> conn)
    : loop_(loop), conn_(std::move(conn)), peer_(conn_->peer()), tls_(conn_->is_tls()) {}

Result<std::shared_ptr<Channel>> Channel::connect(EventLoop& loop, const std::string& host, uint16_t port,
                                                  std::chrono::milliseconds timeout,
                                                  std::chrono::milliseconds stall_timeout,
                                                  std::shared_ptr<TlsContext> tls, const std::string& tls_peer_name) {
  return connect_with(loop, timeout, stall_timeout, std::move(tls), tls_peer_name, [host, port, timeout](uv_loop_t* uv, ConnectHandler done,
                                                                 const ConnectionOptions& opts) {
    tcp_connect(uv, host, port, static_cast<uint64_t>(timeout.count()), std::move(done), opts);
  });
}

Result<std::shared_ptr<Channel>> Channel::connect_unix(EventLoop& loop, const std::string& path,
                                                       std::chrono::milliseconds timeout,
                                                       std::chrono::milliseconds stall_timeout,
                                                       std::shared_ptr<TlsContext> tls) {
  return connect_with(loop, timeout, stall_timeout, std::move(tls), {}, [path, timeout](uv_loop_t* uv, ConnectHandler done,
                                                           const ConnectionOptions& opts) {
    unix_connect(uv, path, static_cast<uint64_t>(timeout.count()), std::move(done), opts);
  });
}

Result<std::shared_ptr<Channel>> Channel::connect_with(EventLoop& loop, std::chrono::milliseconds timeout,
                                                       std::chrono::milliseconds stall_timeout,
                                                       std::shared_ptr<TlsContext> tls, const std::string& tls_peer_name,
                                                       const Connector& start) {
  std::promise<Result<std::shared_ptr<Channel>>> done;
  auto fut = done.get_future();
  auto opts = protocol::connection_options();
  opts.write_stall_timeout_ms = static_cast<uint64_t>(std::max<int64_t>(stall_timeout.count(), 1));
  opts.tls = std::move(tls);
  opts.tls_peer_name = tls_peer_name;
  if (opts.tls && timeout.count() > 0) opts.tls_handshake_timeout_ms = static_cast<uint64_t>(timeout.count());
  loop.post([&loop, &done, &start, opts] {
    start(
        loop.uv(),
        [&loop, &done](Result<std::unique_ptr<Connection>> r) {
          if (!r) {
            done.set_value(r.status());
            return;
          }
          done.set_value(adopt(loop, std::move(r).value()));
        },
        opts);
  });
  auto r = fut.get();
  if (!r || !(*r)->tls_) return r;
  // The handshake is part of connecting: its failure is the connect's.
  std::shared_ptr<Channel> ch = std::move(r).value();
  std::unique_lock<std::mutex> lk(ch->mu_);
  ch->cv_.wait(lk, [&] { return ch->secure_ || ch->closed_; });
  if (!ch->secure_) return ch->close_reason_;
  return ch;
}

std::shared_ptr<Channel> Channel::adopt(EventLoop& loop, std::unique_ptr<Connection> conn) {
  std::shared_ptr<Channel> ch(new Channel(loop, std::move(conn)));
  ch->attach();
  return ch;
}

void Channel::attach() {
  conn_->set_buffer_pool(&loop_.buffers());
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
  if (tls_) {
    conn_->on_handshake([weak] {
      auto self = weak.lock();
      if (!self) return;
      std::lock_guard<std::mutex> lk(self->mu_);
      self->secure_ = true;
      self->peer_sha1_ = self->conn_->peer_certificate_thumbprint("sha1");
      self->peer_sha256_ = self->conn_->peer_certificate_thumbprint("sha256");
      self->cv_.notify_all();
    });
  }
  conn_->on_close([weak](const Status& reason) {
    auto self = weak.lock();
    if (!self) return;
    std::lock_guard<std::mutex> lk(self->mu_);
    if (!self->closed_) {
      self->closed_ = true;
      // Timeout and a refused TLS certificate keep their codes; any other failure is the
      // connection's loss.
      Code code = reason.code() == Code::Timeout || reason.code() == Code::AccessDenied ? reason.code()
                                                                                       : Code::SystemNotAvailable;
      self->close_reason_ = reason.ok() ? Status::SystemNotAvailable("connection to " + self->peer_ + " closed by the peer")
                                        : Status(code, "connection to " + self->peer_ + ": " + reason.message());
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

Status Channel::send(protocol::Message&& m) {
  Status st = send(static_cast<const protocol::Message&>(m));
  if (auto* b = std::get_if<protocol::BlockBatch>(&m)) give_buffer(std::move(b->payload));
  return st;
}

Status Channel::send(const protocol::Message& m) {
  // A batch is encoded into a warm buffer of the pool (the connection gives it back once
  // written); other messages are small.
  std::vector<uint8_t> payload;
  if (const auto* b = std::get_if<protocol::BlockBatch>(&m))
    payload = loop_.buffers().take(protocol::encoded_batch_bytes(*b));
  protocol::encode_into(m, payload);
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
  // A batch keeps the frame's buffer as its payload; any other frame's buffer is reused.
  auto m = protocol::decode_owned(payload);
  if (payload.capacity()) give_buffer(std::move(payload));
  return m;
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

std::string Channel::peer_thumbprint(std::string_view algo) const {
  std::lock_guard<std::mutex> lk(mu_);
  std::string a;
  for (char c : algo) {
    if (c != '-') a += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return a == "sha1" ? peer_sha1_ : a == "sha256" ? peer_sha256_ : std::string();
}

bool Channel::peer_certificate_names(const std::string& host) {
  if (!tls_) return false;
  auto self = shared_from_this();
  return loop_.run_sync([self, &host] { return self->conn_ && self->conn_->peer_certificate_names(host); });
}

bool Channel::is_open() const {
  std::lock_guard<std::mutex> lk(mu_);
  return !closed_;
}

bool Channel::peer_has(std::string_view capability) const {
  return std::find(peer_caps_.begin(), peer_caps_.end(), capability) != peer_caps_.end();
}

bool Channel::has_pending() const {
  std::lock_guard<std::mutex> lk(mu_);
  return !inbox_.empty();
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
