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

// One write in flight: a frame (header and payload), or TLS records (in `payload`), which
// stay alive until libuv is done with them.
struct Connection::Impl::WriteReq {
  uv_write_t req{};
  std::array<uint8_t, kFrameHeaderBytes> header{};
  std::vector<uint8_t> payload;
  Impl* conn = nullptr;
  std::size_t queued = 0;  // frame bytes counted in queued_ (0 for TLS handshake records)
  bool recycle = false;    // a TLS frame's ciphertext: its buffer goes back to tls_spare_
  std::size_t wire = 0;    // bytes handed to the socket
  uint64_t frames = 0;
};

Connection::Impl* Connection::Impl::create(uv_loop_t* loop, const ConnectionOptions& options,
                                           Transport transport) {
  return new Impl(loop, options, transport);
}

Connection::Impl::Impl(uv_loop_t* loop, const ConnectionOptions& options, Transport transport)
    : loop_(loop), options_(options), transport_(transport), decoder_(options.max_frame_size) {
  // No init can fail for a valid loop: without flags they create no socket.
  if (transport_ == Transport::Tcp) uv_tcp_init(loop_, &handle_.tcp);
  else uv_pipe_init(loop_, &handle_.pipe, 0);
  uv_timer_init(loop_, &timer_);
  stream()->data = this;
  timer_.data = this;
  shutdown_req_.data = this;
}

void Connection::Impl::established(bool accepted, const std::string& unix_path) {
  if (transport_ == Transport::Tcp) {
    uv_tcp_nodelay(&handle_.tcp, 1);
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getpeername(&handle_.tcp, reinterpret_cast<sockaddr*>(&ss), &len) == 0) peer_ = address_text(ss);
    len = sizeof ss;
    if (uv_tcp_getsockname(&handle_.tcp, reinterpret_cast<sockaddr*>(&ss), &len) == 0) local_ = address_text(ss);
    setup_tls();
    return;
  }
  // Both ends name the socket file; the accepting end names its peer by credentials, since a
  // connecting unix socket has no address of its own.
  local_ = "unix:" + unix_path;
  uv_os_fd_t fd = -1;
  ucred cred{};
  socklen_t len = sizeof cred;
  bool have_cred = uv_fileno(reinterpret_cast<uv_handle_t*>(&handle_), &fd) == 0 &&
                   ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;
  if (have_cred) peer_uid_ = static_cast<uint32_t>(cred.uid);
  if (!accepted) {
    peer_ = "unix:" + unix_path;
  } else if (have_cred) {
    peer_ = "unix:peer pid " + std::to_string(cred.pid) + " uid " + std::to_string(cred.uid);
  } else {
    peer_ = "unix:peer on " + unix_path;
  }
  setup_tls();
}

void Connection::Impl::setup_tls() {
  if (!options_.tls) return;
  auto session = TlsSession::create(options_.tls, options_.tls_peer_name);
  if (!session) {
    setup_error_ = session.status().Annotate("TLS with " + peer_);
    return;
  }
  tls_ = std::move(session).value();
  tls_plain_ = std::make_unique<std::array<uint8_t, 16u << 10>>();
}

std::string Connection::Impl::peer_certificate_thumbprint(std::string_view algo) const {
  return tls_ && tls_ready_ ? tls_->peer_thumbprint(algo) : std::string();
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
  if (!setup_error_.ok()) {
    close(setup_error_);
    return;
  }
  update_reading();
  if (tls_) {
    handshake_started_ms_ = uv_now(loop_);
    tls_pump();  // a client sends its hello
    return;
  }
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
    std::span<const uint8_t> data{reinterpret_cast<const uint8_t*>(buf->base), static_cast<std::size_t>(nread)};
    if (self->failing_) return;  // input after a failure is dropped
    if (self->tls_) {
      self->tls_->feed(data);
      self->tls_pump();
      if (self->tls_) self->tls_->keep_unread();  // read_buf_ is reused by the next read
    } else {
      self->process(data);
    }
  } else if (nread == UV_EOF) {
    self->on_eof();
  } else if (nread < 0) {
    self->close(self->failing_ ? self->failure_
                               : Status::SystemNotAvailable("connection with " + self->peer_ + " failed: " +
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
  if (failing_) {
    close(failure_);
    return;
  }
  if (tls_ && !tls_ready_) {
    close(Status::SystemNotAvailable("TLS handshake with " + peer_ + " failed: the peer closed the connection"));
    return;
  }
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
  // A handshake, or a failure waiting for the peer to close, reads whatever the pause flags
  // say: they are about frames, and waiting for frames there could only end in a timeout.
  bool frames_flow = !failing_ && !(tls_ && !tls_ready_);
  bool blocked = peer_eof_ || (frames_flow && (user_paused_ || backpressure_paused_));
  if (blocked) {
    if (reading_) {
      uv_read_stop(stream());
      reading_ = false;
    }
    return;
  }
  if (delivering_ || pumping_) return;  // process() / tls_pump() call again when done
  if (frames_flow && (!stash_.empty() || tls_input_pending_)) {
    deliver_pending_ = true;
    return;
  }
  if (!reading_) {
    int r = uv_read_start(stream(), &Impl::on_alloc, &Impl::on_read);
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
  if (failing_) return Status::InvalidState("connection with " + peer_ + " failed: " + failure_.message());
  if (shutdown_requested_) return Status::InvalidState("connection with " + peer_ + " is shutting down");
  VMREPL_RETURN_IF_ERROR(FrameEncoder::check(payload.size(), options_.max_frame_size));
  std::size_t wire = kFrameHeaderBytes + payload.size();
  if (queued_ > 0 && queued_ + wire > options_.send_queue_cap) {
    return Status::Failed("send queue full: " + std::to_string(queued_) + " bytes queued for " +
                          peer_ + ", a " + std::to_string(wire) + "-byte frame would pass the " +
                          std::to_string(options_.send_queue_cap) + "-byte cap");
  }
  if (tls_ && !tls_ready_) {
    tls_pending_.push_back(std::move(payload));  // encrypted once the handshake is done
  } else {
    VMREPL_RETURN_IF_ERROR(tls_ ? tls_write_frame(std::move(payload)) : write_frame(std::move(payload)));
  }
  queued_ += wire;
  note_queued();
  rearm();
  return Status::OK();
}

Status Connection::Impl::write_frame(std::vector<uint8_t> payload) {
  auto* w = new WriteReq;
  w->header = FrameEncoder::header(static_cast<uint32_t>(payload.size()));
  w->payload = std::move(payload);
  w->wire = w->queued = kFrameHeaderBytes + w->payload.size();
  w->frames = 1;
  uv_buf_t bufs[2] = {
      uv_buf_init(reinterpret_cast<char*>(w->header.data()), kFrameHeaderBytes),
      uv_buf_init(reinterpret_cast<char*>(w->payload.data()), static_cast<unsigned>(w->payload.size()))};
  return submit(w, bufs, 2);
}

// Hands `w` to libuv (taking ownership); a failure closes the connection.
Status Connection::Impl::submit(WriteReq* w, uv_buf_t* bufs, unsigned nbufs) {
  w->conn = this;
  w->req.data = w;
  if (outstanding_writes_ == 0) {
    last_write_progress_ms_ = uv_now(loop_);
    last_flushed_ = submitted_;
  }
  int r = uv_write(&w->req, stream(), bufs, nbufs, &Impl::on_write);
  if (r != 0) {
    delete w;
    Status s = Status::SystemNotAvailable("cannot write to " + peer_ + ": " + uv_error_text(r));
    close(s);
    return s;
  }
  ++outstanding_writes_;
  submitted_ += w->wire;
  return Status::OK();
}

void Connection::Impl::note_queued() {
  if (!above_high_ && queued_ > options_.send_high_watermark) {
    above_high_ = true;
    if (options_.pause_reading_when_unwritable) {
      backpressure_paused_ = true;
      update_reading();
    }
  }
}

void Connection::Impl::on_write(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  Impl* self = w->conn;
  self->write_done(*w, status);
  // A sealed frame's buffer serves the next one: warm pages instead of a fresh allocation.
  if (w->recycle && self->tls_spare_.size() < kSpareCiphertextBuffers) {
    w->payload.clear();
    self->tls_spare_.push_back(std::move(w->payload));
  } else if (!w->recycle && self->pool_) {
    self->pool_->give(std::move(w->payload));
  }
  delete w;
}

void Connection::Impl::write_done(const WriteReq& w, int status) {
  --outstanding_writes_;
  queued_ -= w.queued;
  if (closing_) return;
  if (status < 0) {
    close(failing_ ? failure_
                   : Status::SystemNotAvailable("write to " + peer_ + " failed: " + uv_error_text(status)));
    return;
  }
  stats_.bytes_sent += w.wire;
  stats_.frames_sent += w.frames;
  last_write_progress_ms_ = uv_now(loop_);
  last_flushed_ = flushed_bytes();
  if (failing_) return;
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
  return submitted_ - uv_stream_get_write_queue_size(stream());
}

// ---- timers ----------------------------------------------------------------------------

void Connection::Impl::rearm() {
  if (closing_) return;
  uint64_t now = uv_now(loop_);
  std::optional<uint64_t> due;
  auto consider = [&due](uint64_t t) { due = due ? std::min(*due, t) : t; };
  if (failing_) {
    due = failing_since_ms_ + failure_linger_ms();  // the only deadline left
    if (armed_ && armed_due_ <= *due) return;
    uv_timer_start(&timer_, &Impl::on_timer, *due > now ? *due - now : 0, 0);
    armed_ = true;
    armed_due_ = *due;
    return;
  }
  if (deliver_pending_) consider(now);
  if (reading_ && options_.idle_timeout_ms) consider(last_read_ms_ + options_.idle_timeout_ms);
  if (reading_ && options_.frame_timeout_ms && decoder_.mid_frame())
    consider(frame_started_ms_ + options_.frame_timeout_ms);
  if (outstanding_writes_ > 0 && options_.write_stall_timeout_ms)
    consider(last_write_progress_ms_ + options_.write_stall_timeout_ms);
  if (shutdown_done_) consider(shutdown_done_ms_ + options_.shutdown_linger_ms);
  if (tls_ && !tls_ready_ && started_ && !failing_ && options_.tls_handshake_timeout_ms)
    consider(handshake_started_ms_ + options_.tls_handshake_timeout_ms);
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
  uint64_t now = uv_now(loop_);
  if (failing_) {
    if (now >= failing_since_ms_ + failure_linger_ms()) close(failure_);
    else rearm();
    return;
  }
  if (deliver_pending_) {
    deliver_pending_ = false;
    std::vector<uint8_t> pending = std::move(stash_);
    stash_.clear();
    process(pending);  // ends with update_reading(), which reads again when nothing blocks
    if (closing_) return;
    if (tls_ && tls_input_pending_) tls_pump();  // records that wait behind the stash
    if (closing_) return;
  }
  if (tls_ && !tls_ready_ && started_ && !failing_ && options_.tls_handshake_timeout_ms &&
      now >= handshake_started_ms_ + options_.tls_handshake_timeout_ms) {
    close(Status::Timeout("TLS handshake with " + peer_ + " not finished after " +
                          std::to_string(options_.tls_handshake_timeout_ms) + " ms"));
    return;
  }
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
  if (closing_ || shutdown_requested_ || failing_) return;
  shutdown_requested_ = true;
  if (tls_ && !tls_ready_) return;  // tls_handshake_done() continues
  begin_shutdown();
}

void Connection::Impl::begin_shutdown() {
  if (tls_) {
    tls_->close_notify();
    if (!flush_tls_output().ok()) return;
  }
  // uv_shutdown waits for the queued writes, then sends FIN.
  int r = uv_shutdown(&shutdown_req_, stream(), &Impl::on_shutdown);
  if (r != 0) close(Status::SystemNotAvailable("cannot shut down the connection with " + peer_ + ": " + uv_error_text(r)));
}

void Connection::Impl::on_shutdown(uv_shutdown_t* req, int status) {
  auto* self = static_cast<Impl*>(req->data);
  if (self->closing_) return;
  if (self->failing_) {
    if (status < 0) self->close(self->failure_);
    return;
  }
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
  for (const auto& p : tls_pending_) queued_ -= kFrameHeaderBytes + p.size();
  tls_pending_.clear();
  uv_timer_stop(&timer_);
  // Closing the stream cancels the pending writes and shutdown (their callbacks run first).
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_), &Impl::on_handle_closed);
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

// ---- TLS -------------------------------------------------------------------------------

// Runs the session over what was fed: the handshake first, then records into frames, as long
// as reading is not paused.
void Connection::Impl::tls_pump() {
  pumping_ = true;
  if (!tls_ready_ && !closing_ && !failing_) {
    TlsSession::Step st = tls_->handshake();
    if (st == TlsSession::Step::Failed) {
      tls_failed();
    } else if (flush_tls_output().ok() && st == TlsSession::Step::Done) {
      tls_handshake_done();
    }
  }
  while (tls_ready_ && !closing_ && !failing_ && !peer_eof_) {
    if (user_paused_ || backpressure_paused_) {
      tls_input_pending_ = true;
      break;
    }
    std::size_t got = 0;
    TlsSession::Step st = tls_->read(*tls_plain_, got);
    if (st == TlsSession::Step::Failed) {
      tls_failed();
      break;
    }
    if (!flush_tls_output().ok()) break;  // a post-handshake message may want an answer
    if (st == TlsSession::Step::Done) {
      tls_plain_seen_ = true;
      process({tls_plain_->data(), got});
      continue;
    }
    tls_input_pending_ = false;
    if (st == TlsSession::Step::Closed) on_eof();  // close_notify: a clean end of stream
    break;
  }
  pumping_ = false;
  update_reading();
  rearm();
}

void Connection::Impl::tls_handshake_done() {
  tls_ready_ = true;
  // Frames queued meanwhile go first, so a send() from the handler below follows them.
  std::deque<std::vector<uint8_t>> pending = std::move(tls_pending_);
  tls_pending_.clear();
  for (std::size_t i = 0; i < pending.size(); ++i) {
    std::size_t wire = kFrameHeaderBytes + pending[i].size();
    if (!tls_write_frame(std::move(pending[i])).ok()) {  // closed: the rest is not queued any more
      queued_ -= wire;
      for (std::size_t j = i + 1; j < pending.size(); ++j) queued_ -= kFrameHeaderBytes + pending[j].size();
      return;
    }
  }
  if (shutdown_requested_) begin_shutdown();
  if (owner_alive_ && on_handshake_ && !closing_) on_handshake_();
}

Status Connection::Impl::tls_write_frame(std::vector<uint8_t> payload) {
  auto header = FrameEncoder::header(static_cast<uint32_t>(payload.size()));
  auto* w = new WriteReq;
  w->queued = kFrameHeaderBytes + payload.size();
  w->frames = 1;
  w->recycle = true;
  if (!tls_spare_.empty()) {
    w->payload = std::move(tls_spare_.back());
    tls_spare_.pop_back();
  }
  if (!tls_->encrypt(header, payload, w->payload)) {
    delete w;
    Status s = tls_failure();
    close(s);
    return s;
  }
  if (pool_) pool_->give(std::move(payload));
  payload = {};
  w->wire = w->payload.size();
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->payload.data()), static_cast<unsigned>(w->wire));
  return submit(w, &buf, 1);
}

// Sends the records the session produced outside a frame (handshake, alerts, close_notify).
Status Connection::Impl::flush_tls_output() {
  if (closing_) return Status::InvalidState("closed");
  if (!tls_->has_output()) return Status::OK();
  auto* w = new WriteReq;
  w->payload = tls_->take_output();
  w->wire = w->payload.size();
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->payload.data()), static_cast<unsigned>(w->wire));
  return submit(w, &buf, 1);
}

// The session's error as the connection's: a TLS 1.3 client learns that the server refused
// its certificate only after its own side of the handshake, so until the first record of
// data it is still a handshake failure.
Status Connection::Impl::tls_failure() const {
  const Status& e = tls_->error();
  std::string what = !tls_ready_ || !tls_plain_seen_ ? "TLS handshake with " + peer_ + " failed: "
                                                     : "TLS error on the connection with " + peer_ + ": ";
  return Status(e.code(), what + e.message());
}

void Connection::Impl::tls_failed() {
  Status reason = tls_failure();
  bool alert = tls_->has_output();
  if (!flush_tls_output().ok()) return;
  if (alert) fail_after_flush(std::move(reason));
  else close(std::move(reason));
}

// A TLS peer closes as soon as it reads the alert; anything else is not owed a long wait.
uint64_t Connection::Impl::failure_linger_ms() const { return std::min<uint64_t>(options_.shutdown_linger_ms, 2000); }

// Closing at once would lose the alert that tells the peer why (closing a socket with unread
// input resets it, and a reset discards what the peer has not read yet): send FIN after the
// alert and wait for the peer to close, dropping its input, for at most failure_linger_ms().
void Connection::Impl::fail_after_flush(Status reason) {
  if (closing_ || failing_) return;
  failing_ = true;
  failure_ = std::move(reason);
  failing_since_ms_ = uv_now(loop_);
  for (const auto& p : tls_pending_) queued_ -= kFrameHeaderBytes + p.size();
  tls_pending_.clear();
  stash_ = {};
  if (!shutdown_requested_ || !tls_ready_) {  // no uv_shutdown issued yet
    int r = uv_shutdown(&shutdown_req_, stream(), &Impl::on_shutdown);
    if (r != 0) {
      close(failure_);
      return;
    }
  }
  update_reading();
  rearm();
}

// ---- Connection ------------------------------------------------------------------------

Connection::Connection(Impl* impl) : impl_(impl) {}
Connection::~Connection() { impl_->release(); }
void Connection::on_frame(FrameHandler h) { impl_->set_frame_handler(std::move(h)); }
void Connection::on_close(CloseHandler h) { impl_->set_close_handler(std::move(h)); }
void Connection::on_drain(DrainHandler h) { impl_->set_drain_handler(std::move(h)); }
void Connection::on_handshake(HandshakeHandler h) { impl_->set_handshake_handler(std::move(h)); }
void Connection::set_buffer_pool(BufferPool* pool) { impl_->set_buffer_pool(pool); }
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
std::optional<uint32_t> Connection::peer_uid() const { return impl_->peer_uid(); }
bool Connection::is_tls() const { return impl_->is_tls(); }
bool Connection::secure() const { return impl_->secure(); }
std::string Connection::peer_certificate_thumbprint(std::string_view algo) const {
  return impl_->peer_certificate_thumbprint(algo);
}
bool Connection::peer_certificate_names(std::string_view host) const { return impl_->peer_certificate_names(host); }
ConnectionStats Connection::stats() const { return impl_->stats(); }
const ConnectionOptions& Connection::options() const { return impl_->options(); }

}  // namespace vmrepl
