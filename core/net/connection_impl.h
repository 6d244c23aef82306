// Connection::Impl: the state behind a Connection, private to core/net (connection.cpp,
// tcp.cpp, unix.cpp). It owns one stream handle (a uv_tcp_t or a uv_pipe_t, by transport) and
// one uv_timer_t; it is heap-allocated and frees itself once both handles are closed and its
// Connection is gone, so that libuv callbacks arriving after the owner dropped the Connection
// (write completions, close) still find it alive. With ConnectionOptions::tls it also owns a
// TlsSession that sits between the socket and the frame codec.
//
// Thread-safety: loop thread only.
#pragma once

#include <uv.h>

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/net/connection.h"
#include "core/net/tls_session.h"

namespace vmrepl {

// "connection refused (ECONNREFUSED)" for a libuv error number.
std::string uv_error_text(int err);

class Connection::Impl {
 public:
  enum class Transport { Tcp, Unix };

  // An Impl with initialised, unconnected handles on `loop`.
  static Impl* create(uv_loop_t* loop, const ConnectionOptions& options, Transport transport = Transport::Tcp);
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // REQUIRES: the matching transport.
  uv_tcp_t* tcp() { return &handle_.tcp; }
  uv_pipe_t* pipe() { return &handle_.pipe; }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&handle_); }
  const uv_stream_t* stream() const { return reinterpret_cast<const uv_stream_t*>(&handle_); }
  // The socket is connected (accepted = false) or accepted: records the addresses (TCP) or
  // the socket path and the peer's credentials (unix; `unix_path` is the socket file), and
  // sets TCP_NODELAY for TCP.
  void established(bool accepted, const std::string& unix_path = {});
  // Creates the TLS session when options ask for one (a failure is reported by start()).
  void setup_tls();
  // The owner is gone: close without handlers and free once the handles are closed.
  void release();

  void set_frame_handler(FrameHandler h) { on_frame_ = std::move(h); }
  void set_close_handler(CloseHandler h) { on_close_ = std::move(h); }
  void set_drain_handler(DrainHandler h) { on_drain_ = std::move(h); }
  void set_buffer_pool(BufferPool* pool) {
    pool_ = pool;
    decoder_.set_pool(pool);
  }
  void set_handshake_handler(HandshakeHandler h) { on_handshake_ = std::move(h); }
  void start();
  Status send(std::vector<uint8_t> payload);
  bool writable() const { return is_open() && !above_high_; }
  std::size_t queued_bytes() const { return queued_; }
  void pause_reading();
  void resume_reading();
  bool reading_paused() const { return user_paused_; }
  void shutdown();
  void close(Status reason);
  bool is_open() const { return !closing_ && !shutdown_requested_ && !failing_; }
  bool is_tls() const { return options_.tls != nullptr; }
  bool secure() const { return tls_ready_; }
  std::string peer_certificate_thumbprint(std::string_view algo) const;
  bool peer_certificate_names(std::string_view host) const { return tls_ && tls_ready_ && tls_->peer_matches(host); }
  const std::string& peer() const { return peer_; }
  const std::string& local() const { return local_; }
  std::optional<uint32_t> peer_uid() const { return peer_uid_; }
  ConnectionStats stats() const { return stats_; }
  const ConnectionOptions& options() const { return options_; }

 private:
  struct WriteReq;

  Impl(uv_loop_t* loop, const ConnectionOptions& options, Transport transport);
  ~Impl() = default;

  static void on_alloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_timer(uv_timer_t* t);
  static void on_handle_closed(uv_handle_t* h);

  void process(std::span<const uint8_t> data);
  void on_eof();
  Status write_frame(std::vector<uint8_t> payload);
  Status submit(WriteReq* w, uv_buf_t* bufs, unsigned nbufs);
  void note_queued();
  void write_done(const WriteReq& w, int status);
  void begin_shutdown();
  void update_reading();
  void rearm();
  void timer_fired();
  uint64_t flushed_bytes() const;
  void finished();

  // TLS (tls_ set).
  void tls_pump();
  void tls_handshake_done();
  Status tls_write_frame(std::vector<uint8_t> payload);
  Status flush_tls_output();
  Status tls_failure() const;
  void tls_failed();
  void fail_after_flush(Status reason);
  uint64_t failure_linger_ms() const;
  uv_loop_t* loop_;
  ConnectionOptions options_;
  Transport transport_;
  union Handle {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } handle_{};
  uv_timer_t timer_{};
  uv_shutdown_t shutdown_req_{};
  int open_handles_ = 2;

  FrameHandler on_frame_;
  CloseHandler on_close_;
  DrainHandler on_drain_;
  HandshakeHandler on_handshake_;
  bool owner_alive_ = true;
  bool in_close_handler_ = false;

  std::string peer_ = "unconnected";
  std::string local_ = "unconnected";
  std::optional<uint32_t> peer_uid_;
  ConnectionStats stats_;

  // Receiving.
  FrameDecoder decoder_;
  BufferPool* pool_ = nullptr;  // large frame buffers (set_buffer_pool)
  std::array<uint8_t, 64u << 10> read_buf_{};
  std::vector<uint8_t> stash_;  // read but not yet delivered (reading paused mid-chunk)
  bool started_ = false;
  bool reading_ = false;
  bool delivering_ = false;
  bool user_paused_ = false;
  bool backpressure_paused_ = false;
  bool deliver_pending_ = false;
  uint64_t last_read_ms_ = 0;
  uint64_t frame_started_ms_ = 0;
  bool peer_eof_ = false;

  // Sending.
  std::size_t queued_ = 0;
  std::size_t outstanding_writes_ = 0;
  uint64_t submitted_ = 0;  // bytes ever handed to uv_write
  uint64_t last_flushed_ = 0;
  uint64_t last_write_progress_ms_ = 0;
  bool above_high_ = false;
  bool shutdown_requested_ = false;
  bool shutdown_done_ = false;
  uint64_t shutdown_done_ms_ = 0;

  // TLS. Frames sent before the handshake finished wait in tls_pending_ (counted in queued_).
  // tls_input_pending_: reading paused with records possibly left in the session.
  std::unique_ptr<TlsSession> tls_;
  std::unique_ptr<std::array<uint8_t, 16u << 10>> tls_plain_;  // one record's plaintext
  static constexpr std::size_t kSpareCiphertextBuffers = 32;
  std::vector<std::vector<uint8_t>> tls_spare_;  // emptied ciphertext buffers, kept for reuse
  std::deque<std::vector<uint8_t>> tls_pending_;
  bool tls_ready_ = false;
  bool tls_input_pending_ = false;
  bool tls_plain_seen_ = false;
  bool pumping_ = false;
  uint64_t handshake_started_ms_ = 0;
  Status setup_error_;  // reported by start()

  // Failing: a TLS alert explaining the failure is being flushed; input is discarded until
  // the peer closes or failure_linger_ms() passes, then the connection closes with failure_.
  bool failing_ = false;
  uint64_t failing_since_ms_ = 0;
  Status failure_;

  // The single timer serves every deadline; armed_due_ is when it is set to fire.
  bool armed_ = false;
  uint64_t armed_due_ = 0;

  bool closing_ = false;
  bool closed_ = false;
  Status reason_;
};

}  // namespace vmrepl
