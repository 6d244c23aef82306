// Connection: one TCP connection carrying frames (frame.h) between two services, with
// backpressure and timeouts so that neither a hostile nor a stalled peer can make this side
// hang or hold unbounded memory (DESIGN.md, core/net; performance: bounded queues).
//
// Receiving: start() begins reading; every complete frame goes to on_frame, in order.
// pause_reading() stops delivery at once (frames already read but not delivered wait) and
// stops reading the socket, so the peer's writes back up through TCP; resume_reading()
// delivers the waiting frames (from a later loop iteration, never from inside the call) and
// reads again.
//
// Sending: send() queues a frame and returns at once. Above send_high_watermark queued bytes
// writable() turns false (send still queues) and, with pause_reading_when_unwritable, reading
// pauses too, so a peer that sends requests but reads no replies is slowed down instead of
// growing this side's queue; on_drain fires when the queue falls to send_low_watermark. A
// send that would take the queue past send_queue_cap is refused with Failed "send queue
// full", and the connection stays open. Turn pause_reading_when_unwritable off for a flow
// that is bulk in both directions at once: each side would stop reading the other and both
// would end in the write-stall timeout.
//
// Timeouts (0 disables one), all closing with Timeout (32772):
//   idle:        no byte received for idle_timeout_ms while reading;
//   frame:       a frame begun but not complete within frame_timeout_ms while reading;
//   write stall: queued bytes of which none reached the kernel for write_stall_timeout_ms;
//                this is how a peer that stops reading is detected (detection takes between
//                1x and 2x the timeout).
// Paused reading suspends the idle and frame timeouts: the silence is this side's choice.
//
// Closing: close(reason) drops whatever is queued and closes; on_close(reason) then runs
// exactly once, from a later loop iteration. shutdown() is the graceful way: no new sends,
// queued frames are flushed, FIN is sent, frames keep being delivered until the peer closes
// (on_close(OK)), or shutdown_linger_ms passes (also on_close(OK): everything was flushed).
// The peer closing at a frame boundary gives on_close(OK) once this side's queue is flushed;
// closing in the middle of a frame gives IncorrectDataType ("truncated frame ..."); a bad
// length prefix gives the FrameDecoder's error; a socket error gives SystemNotAvailable.
//
// Memory per connection: at most max_frame_size + 4 bytes of partial frame, a 64 KiB read
// buffer plus up to 64 KiB of read-but-undelivered bytes while paused, and at most
// send_queue_cap bytes queued for sending.
//
// Thread-safety: loop thread only, for every member including the destructor. Handlers run on
// the loop thread. Destroying a Connection closes it without calling on_close; it may be
// destroyed from inside any of its own handlers. Destroy every Connection before its loop
// (EventLoop closes leftover handles without their callbacks, which leaks their state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/model/status.h"
#include "core/net/frame.h"

namespace vmrepl {

struct ConnectionOptions {
  uint32_t max_frame_size = kDefaultMaxFrameSize;
  std::size_t send_high_watermark = 16u << 20;
  std::size_t send_low_watermark = 4u << 20;
  std::size_t send_queue_cap = 64u << 20;
  bool pause_reading_when_unwritable = true;
  uint64_t idle_timeout_ms = 0;
  uint64_t frame_timeout_ms = 60'000;
  uint64_t write_stall_timeout_ms = 60'000;
  uint64_t shutdown_linger_ms = 5'000;
};

// Wire counters. bytes_* count frame headers too; a frame counts as sent once the kernel took
// all of it, as received once it was delivered to on_frame.
struct ConnectionStats {
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t frames_sent = 0;
  uint64_t frames_received = 0;
};

class Connection {
 public:
  using FrameHandler = std::function<void(std::vector<uint8_t> payload)>;
  using CloseHandler = std::function<void(const Status& reason)>;
  using DrainHandler = std::function<void()>;

  class Impl;
  // Made by TcpListener and tcp_connect (tcp.h), which own the construction of Impl.
  explicit Connection(Impl* impl);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void on_frame(FrameHandler handler);
  void on_close(CloseHandler handler);
  void on_drain(DrainHandler handler);

  // Begins reading and arms the timeouts. REQUIRES: on_frame and on_close set. Idempotent.
  void start();

  // Queues one frame. InvalidState once closing or shutting down; InvalidParameter for an
  // empty payload or one above max_frame_size; Failed "send queue full" above send_queue_cap
  // (an empty queue always takes one frame).
  Status send(std::vector<uint8_t> payload);
  bool writable() const;
  // Bytes (headers included) handed to send() and not yet fully written to the kernel.
  std::size_t queued_bytes() const;

  void pause_reading();
  void resume_reading();
  bool reading_paused() const;

  void shutdown();
  void close(Status reason = Status::OK());
  // False once close() or shutdown() was called or the connection failed.
  bool is_open() const;

  // "127.0.0.1:51234" / "[::1]:51234".
  const std::string& peer() const;
  const std::string& local() const;
  ConnectionStats stats() const;
  const ConnectionOptions& options() const;

 private:
  Impl* impl_;  // owned; freed once its libuv handles are closed
};

}  // namespace vmrepl
