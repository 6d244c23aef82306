// Connection::Impl: the state behind a Connection, private to core/net (connection.cpp and
// tcp.cpp). It owns the uv_tcp_t and one uv_timer_t; it is heap-allocated and frees itself
// once both handles are closed and its Connection is gone, so that libuv callbacks arriving
// after the owner dropped the Connection (write completions, close) still find it alive.
//
// Thread-safety: loop thread only.
#pragma once

#include <uv.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/net/connection.h"

namespace vmrepl {

// "connection refused (ECONNREFUSED)" for a libuv error number.
std::string uv_error_text(int err);

class Connection::Impl {
 public:
  // An Impl with initialised, unconnected handles on `loop`.
  static Impl* create(uv_loop_t* loop, const ConnectionOptions& options);
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  uv_tcp_t* tcp() { return &tcp_; }
  // The socket is connected or accepted: sets TCP_NODELAY and records the addresses.
  void established();
  // The owner is gone: close without handlers and free once the handles are closed.
  void release();

  void set_frame_handler(FrameHandler h) { on_frame_ = std::move(h); }
  void set_close_handler(CloseHandler h) { on_close_ = std::move(h); }
  void set_drain_handler(DrainHandler h) { on_drain_ = std::move(h); }
  void start();
  Status send(std::vector<uint8_t> payload);
  bool writable() const { return !closing_ && !shutdown_requested_ && !above_high_; }
  std::size_t queued_bytes() const { return queued_; }
  void pause_reading();
  void resume_reading();
  bool reading_paused() const { return user_paused_; }
  void shutdown();
  void close(Status reason);
  bool is_open() const { return !closing_ && !shutdown_requested_; }
  const std::string& peer() const { return peer_; }
  const std::string& local() const { return local_; }
  ConnectionStats stats() const { return stats_; }
  const ConnectionOptions& options() const { return options_; }

 private:
  struct WriteReq;

  Impl(uv_loop_t* loop, const ConnectionOptions& options);
  ~Impl() = default;

  static void on_alloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_timer(uv_timer_t* t);
  static void on_handle_closed(uv_handle_t* h);

  void process(std::span<const uint8_t> data);
  void on_eof();
  void write_done(std::size_t wire_bytes, int status);
  void update_reading();
  void rearm();
  void timer_fired();
  uint64_t flushed_bytes() const;
  void finished();

  uv_loop_t* loop_;
  ConnectionOptions options_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_shutdown_t shutdown_req_{};
  int open_handles_ = 2;

  FrameHandler on_frame_;
  CloseHandler on_close_;
  DrainHandler on_drain_;
  bool owner_alive_ = true;
  bool in_close_handler_ = false;

  std::string peer_ = "unconnected";
  std::string local_ = "unconnected";
  ConnectionStats stats_;

  // Receiving.
  FrameDecoder decoder_;
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

  // The single timer serves every deadline; armed_due_ is when it is set to fire.
  bool armed_ = false;
  uint64_t armed_due_ = 0;

  bool closing_ = false;
  bool closed_ = false;
  Status reason_;
};

}  // namespace vmrepl
