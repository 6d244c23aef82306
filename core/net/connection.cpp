#include "core/net/connection.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "core/net/connection_impl.h"

namespace vmrepl {

std::string uv_error_text(int err) {
  return std::string(uv_strerror(err)) + " (" + uv_err_name(err) + ")";
}

namespace {

std::string address_text(const sockaddr_storage& ss) {
  char ip[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    uv_ip4_name(a, ip, sizeof ip);
    return std::string(ip) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(a, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return "unknown";
}

}  // namespace

// One frame in flight: the header and the payload stay alive until libuv is done with them.
struct Connection::Impl::WriteReq {
  uv_write_t req{};
  std::array<uint8_t, kFrameHeaderBytes> header{};
  std::vector<uint8_t> payload;
  Impl* conn = nullptr;
  std::size_t wire_bytes() const { return kFrameHeaderBytes + payload.size(); }
};

Connection::Impl* Connection::Impl::create(uv_loop_t* loop, const ConnectionOptions& options) {
  return new Impl(loop, options);
}

Connection::Impl::Impl(uv_loop_t* loop, const ConnectionOptions& options)
    : loop_(loop), options_(options), decoder_(options.max_frame_size) {
  // Neither init can fail for a valid loop: uv_tcp_init without flags creates no socket.
  uv_tcp_init(loop_, &tcp_);
  uv_timer_init(loop_, &timer_);
  tcp_.data = this;
  timer_.data = this;
  shutdown_req_.data = this;
}

void Connection::Impl::established() {
  uv_tcp_nodelay(&tcp_, 1);
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) peer_ = address_text(ss);
  len = sizeof ss;
  if (uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) local_ = address_text(ss);
}

void Connection::Impl::release() {
  owner_alive_ = false;
  if (!closing_) {
    close(Status::OK());
  } else if (closed_ && !in_close_handler_) {
    delete this;
  }
}

void Connection::Impl::start() {
  if (started_ || closing_) return;
  started_ = true;
  update_reading();
  rearm();
}

// ---- receiving -------------------------------------------------------------------------

void Connection::Impl::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
  auto* self = static_cast<Impl*>(h->data);
  *buf = uv_buf_init(reinterpret_cast<char*>(self->read_buf_.data()),
                     static_cast<unsigned>(self->read_buf_.size()));
}

void Connection::Impl::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Impl*>(s->data);
  if (self->closing_) return;
  if (nread > 0) {
    self->stats_.bytes_received += static_cast<uint64_t>(nread);
    self->last_read_ms_ = uv_now(self->loop_);
    self->process({reinterpret_cast<const uint8_t*>(buf->base), static_cast<std::size_t>(nread)});
  } else if (nread == UV_EOF) {
    self->on_eof();
  } else if (nread < 0) {
    self->close(Status::SystemNotAvailable("connection with " + self->peer_ + " failed: " +
                                           uv_error_text(static_cast<int>(nread))));
  }
}

void Connection::Impl::process(std::span<const uint8_t> data) {
  delivering_ = true;
  while (!data.empty() && !closing_) {
    if (user_paused_ || backpressure_paused_) {
      stash_.assign(data.begin(), data.end());
      break;
    }
    bool was_mid = decoder_.mid_frame();
    Result<std::size_t> used = decoder_.consume(data);
    if (!used.ok()) {
      close(used.status().Annotate("from " + peer_));
      break;
    }
    data = data.subspan(*used);
    if (decoder_.frame_ready()) {
      ++stats_.frames_received;
      std::vector<uint8_t> frame = decoder_.take_frame();
      if (owner_alive_ && on_frame_) on_frame_(std::move(frame));
    } else if (!was_mid && decoder_.mid_frame()) {
      frame_started_ms_ = uv_now(loop_);
    }
  }
  delivering_ = false;
  update_reading();
  rearm();
}

void Connection::Impl::on_eof() {
  if (decoder_.mid_frame()) {
    std::string got = decoder_.expected_size() == 0
                          ? "inside the length prefix"
                          : "after " + std::to_string(decoder_.payload_received()) + " of " +
                                std::to_string(decoder_.expected_size()) + " payload bytes";
    close(Status::IncorrectDataType("truncated frame: " + peer_ + " closed the connection " + got));
    return;
  }
  peer_eof_ = true;
  // Let what is queued reach the peer (it may still be reading after its half-close).
  if (outstanding_writes_ == 0) close(Status::OK());
  else update_reading();
}

void Connection::Impl::pause_reading() {
  if (closing_) return;
  user_paused_ = true;
  update_reading();
  rearm();
}

void Connection::Impl::resume_reading() {
  if (closing_) return;
  user_paused_ = false;
  update_reading();
  rearm();
}

// Starts or stops reading the socket to match the pause flags; undelivered bytes are
// delivered from the timer first, so resume never calls handlers from inside the caller.
void Connection::Impl::update_reading() {
  if (closing_ || !started_) return;
  bool blocked = user_paused_ || backpressure_paused_ || peer_eof_;
  if (blocked) {
    if (reading_) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
      reading_ = false;
    }
    return;
  }
  if (delivering_) return;  // process() calls again when it is done
  if (!stash_.empty()) {
    deliver_pending_ = true;
    return;
  }
  if (!reading_) {
    int r = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &Impl::on_alloc, &Impl::on_read);
    if (r != 0) {
      close(Status::SystemNotAvailable("cannot read from " + peer_ + ": " + uv_error_text(r)));
      return;
    }
    reading_ = true;
    uint64_t now = uv_now(loop_);
    last_read_ms_ = now;
    if (decoder_.mid_frame()) frame_started_ms_ = now;  // a fresh window after a pause
  }
}

// ---- sending ---------------------------------------------------------------------------

Status Connection::Impl::send(std::vector<uint8_t> payload) {
  if (closing_) return Status::InvalidState("connection with " + peer_ + " is closed");
  if (shutdown_requested_) return Status::InvalidState("connection with " + peer_ + " is shutting down");
  VMREPL_RETURN_IF_ERROR(FrameEncoder::check(payload.size(), options_.max_frame_size));
  std::size_t wire = kFrameHeaderBytes + payload.size();
  if (queued_ > 0 && queued_ + wire > options_.send_queue_cap) {
    return Status::Failed("send queue full: " + std::to_string(queued_) + " bytes queued for " +
                          peer_ + ", a " + std::to_string(wire) + "-byte frame would pass the " +
                          std::to_string(options_.send_queue_cap) + "-byte cap");
  }
  auto* w = new WriteReq;
  w->header = FrameEncoder::header(static_cast<uint32_t>(payload.size()));
  w->payload = std::move(payload);
  w->conn = this;
  w->req.data = w;
  uv_buf_t bufs[2] = {
      uv_buf_init(reinterpret_cast<char*>(w->header.data()), kFrameHeaderBytes),
      uv_buf_init(reinterpret_cast<char*>(w->payload.data()), static_cast<unsigned>(w->payload.size()))};
  if (outstanding_writes_ == 0) {
    last_write_progress_ms_ = uv_now(loop_);
    last_flushed_ = submitted_;
  }
  int r = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), bufs, 2, &Impl::on_write);
  if (r != 0) {
    delete w;
    Status s = Status::SystemNotAvailable("cannot write to " + peer_ + ": " + uv_error_text(r));
    close(s);
    return s;
  }
  ++outstanding_writes_;
  queued_ += wire;
  submitted_ += wire;
  if (!above_high_ && queued_ > options_.send_high_watermark) {
    above_high_ = true;
    if (options_.pause_reading_when_unwritable) {
      backpressure_paused_ = true;
      update_reading();
    }
  }
  rearm();
  return Status::OK();
}

void Connection::Impl::on_write(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  Impl* self = w->conn;
  std::size_t wire = w->wire_bytes();
  delete w;
  self->write_done(wire, status);
}

void Connection::Impl::write_done(std::size_t wire, int status) {
  --outstanding_writes_;
  queued_ -= wire;
  if (closing_) return;
  if (status < 0) {
    close(Status::SystemNotAvailable("write to " + peer_ + " failed: " + uv_error_text(status)));
    return;
  }
  stats_.bytes_sent += wire;
  ++stats_.frames_sent;
  last_write_progress_ms_ = uv_now(loop_);
  last_flushed_ = flushed_bytes();
  if (peer_eof_ && outstanding_writes_ == 0) {
    close(Status::OK());
    return;
  }
  if (above_high_ && queued_ <= options_.send_low_watermark) {
    above_high_ = false;
    backpressure_paused_ = false;
    update_reading();
    if (owner_alive_ && on_drain_ && !closing_) on_drain_();
  }
  rearm();
}

uint64_t Connection::Impl::flushed_bytes() const {
  return submitted_ - uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&tcp_));
}

// ---- timers ----------------------------------------------------------------------------

void Connection::Impl::rearm() {
  if (closing_) return;
  uint64_t now = uv_now(loop_);
  std::optional<uint64_t> due;
  auto consider = [&due](uint64_t t) { due = due ? std::min(*due, t) : t; };
  if (deliver_pending_) consider(now);
  if (reading_ && options_.idle_timeout_ms) consider(last_read_ms_ + options_.idle_timeout_ms);
  if (reading_ && options_.frame_timeout_ms && decoder_.mid_frame())
    consider(frame_started_ms_ + options_.frame_timeout_ms);
  if (outstanding_writes_ > 0 && options_.write_stall_timeout_ms)
    consider(last_write_progress_ms_ + options_.write_stall_timeout_ms);
  if (shutdown_done_) consider(shutdown_done_ms_ + options_.shutdown_linger_ms);
  if (!due) {
    if (armed_) uv_timer_stop(&timer_);
    armed_ = false;
    return;
  }
  if (armed_ && armed_due_ <= *due) return;  // fires early enough; it re-checks then
  uv_timer_start(&timer_, &Impl::on_timer, *due > now ? *due - now : 0, 0);
  armed_ = true;
  armed_due_ = *due;
}

void Connection::Impl::on_timer(uv_timer_t* t) { static_cast<Impl*>(t->data)->timer_fired(); }

void Connection::Impl::timer_fired() {
  armed_ = false;
  if (closing_) return;
  if (deliver_pending_) {
    deliver_pending_ = false;
    std::vector<uint8_t> pending = std::move(stash_);
    stash_.clear();
    process(pending);  // ends with update_reading(), which reads again when nothing blocks
    if (closing_) return;
  }
  uint64_t now = uv_now(loop_);
  if (reading_ && options_.idle_timeout_ms && now >= last_read_ms_ + options_.idle_timeout_ms) {
    close(Status::Timeout("no data from " + peer_ + " for " + std::to_string(options_.idle_timeout_ms) +
                          " ms (idle timeout)"));
    return;
  }
  if (reading_ && options_.frame_timeout_ms && decoder_.mid_frame() &&
      now >= frame_started_ms_ + options_.frame_timeout_ms) {
    close(Status::Timeout("frame from " + peer_ + " incomplete after " +
                          std::to_string(options_.frame_timeout_ms) + " ms (" +
                          std::to_string(decoder_.payload_received()) + " of " +
                          std::to_string(decoder_.expected_size()) + " payload bytes)"));
    return;
  }
  if (outstanding_writes_ > 0 && options_.write_stall_timeout_ms) {
    uint64_t flushed = flushed_bytes();
    if (flushed != last_flushed_) {
      last_flushed_ = flushed;
      last_write_progress_ms_ = now;
    } else if (now >= last_write_progress_ms_ + options_.write_stall_timeout_ms) {
      close(Status::Timeout(peer_ + " stopped reading: " + std::to_string(queued_) +
                            " bytes queued, none written for " +
                            std::to_string(options_.write_stall_timeout_ms) + " ms"));
      return;
    }
  }
  if (shutdown_done_ && now >= shutdown_done_ms_ + options_.shutdown_linger_ms) {
    close(Status::OK());  // everything was flushed; the peer just never closed its side
    return;
  }
  rearm();
}

// ---- closing ---------------------------------------------------------------------------

void Connection::Impl::shutdown() {
  if (closing_ || shutdown_requested_) return;
  shutdown_requested_ = true;
  // uv_shutdown waits for the queued writes, then sends FIN.
  int r = uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), &Impl::on_shutdown);
  if (r != 0) close(Status::SystemNotAvailable("cannot shut down the connection with " + peer_ + ": " + uv_error_text(r)));
}

void Connection::Impl::on_shutdown(uv_shutdown_t* req, int status) {
  auto* self = static_cast<Impl*>(req->data);
  if (self->closing_) return;
  if (status < 0) {
    self->close(Status::SystemNotAvailable("shutdown of the connection with " + self->peer_ +
                                           " failed: " + uv_error_text(status)));
    return;
  }
  self->shutdown_done_ = true;
  self->shutdown_done_ms_ = uv_now(self->loop_);
  self->rearm();
}

void Connection::Impl::close(Status reason) {
  if (closing_) return;
  closing_ = true;
  reason_ = std::move(reason);
  reading_ = false;
  stash_ = {};
  uv_timer_stop(&timer_);
  // Closing the stream cancels the pending writes and shutdown (their callbacks run first).
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Impl::on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Impl::on_handle_closed);
}

void Connection::Impl::on_handle_closed(uv_handle_t* h) {
  auto* self = static_cast<Impl*>(h->data);
  if (--self->open_handles_ == 0) self->finished();
}

void Connection::Impl::finished() {
  closed_ = true;
  if (owner_alive_ && on_close_) {
    in_close_handler_ = true;
    on_close_(reason_);
    in_close_handler_ = false;
  }
  if (!owner_alive_) delete this;
}

// ---- Connection ------------------------------------------------------------------------

Connection::Connection(Impl* impl) : impl_(impl) {}
Connection::~Connection() { impl_->release(); }
void Connection::on_frame(FrameHandler h) { impl_->set_frame_handler(std::move(h)); }
void Connection::on_close(CloseHandler h) { impl_->set_close_handler(std::move(h)); }
void Connection::on_drain(DrainHandler h) { impl_->set_drain_handler(std::move(h)); }
void Connection::start() { impl_->start(); }
Status Connection::send(std::vector<uint8_t> payload) { return impl_->send(std::move(payload)); }
bool Connection::writable() const { return impl_->writable(); }
std::size_t Connection::queued_bytes() const { return impl_->queued_bytes(); }
void Connection::pause_reading() { impl_->pause_reading(); }
void Connection::resume_reading() { impl_->resume_reading(); }
bool Connection::reading_paused() const { return impl_->reading_paused(); }
void Connection::shutdown() { impl_->shutdown(); }
void Connection::close(Status reason) { impl_->close(std::move(reason)); }
bool Connection::is_open() const { return impl_->is_open(); }
const std::string& Connection::peer() const { return impl_->peer(); }
const std::string& Connection::local() const { return impl_->local(); }
ConnectionStats Connection::stats() const { return impl_->stats(); }
const ConnectionOptions& Connection::options() const { return impl_->options(); }

}  // namespace vmrepl
