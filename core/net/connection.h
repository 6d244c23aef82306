// Connection: one TCP or unix-domain stream connection carrying frames (frame.h) between two services, with
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
// TLS (ConnectionOptions::tls, see tls.h): after start() the handshake runs first (the client
// sends its hello; both sides read during the handshake even while paused, since pausing is
// about frames); frames sent meanwhile are queued and go out, in order, once it finished;
// no frame is delivered before. Then frames travel as TLS records; shutdown() sends a
// close_notify before FIN, and the peer's close_notify ends the stream like FIN. A failed
// handshake closes with AccessDenied (32769) when a certificate was refused (unknown CA,
// expired, none presented; by either side) and SystemNotAvailable otherwise, the text naming
// OpenSSL's reason: "TLS handshake with 127.0.0.1:1234 failed: certificate verify failed
// (unable to get local issuer certificate)". The side that refused sends its alert and
// waits up to shutdown_linger_ms (at most 2 s) for the peer to close before reporting, so
// the peer learns why. A handshake not finished within tls_handshake_timeout_ms closes with Timeout.
// Plaintext at a TLS endpoint fails the handshake (no frame is delivered); TLS at a
// plaintext endpoint fails its frame decoder (a bounded error). Watermarks, the queue cap
// and queued_bytes() count frame bytes as without TLS; the write-stall and idle timeouts
// watch the socket; stats bytes_* count the bytes on the wire (TLS records, handshake
// included), frames_* count frames. TLS adds a 16 KiB plaintext buffer, and while paused up
// to one 64 KiB read of undecrypted records.
//
// Thread-safety: loop thread only, for every member including the destructor. Handlers run on
// the loop thread. Destroying a Connection closes it without calling on_close; it may be
// destroyed from inside any of its own handlers. Destroy every Connection before its loop
// (EventLoop closes leftover handles without their callbacks, which leaks their state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/status.h"
#include "core/net/frame.h"

namespace vmrepl {

class TlsContext;

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
  // TLS (tls.h) when set; the connection's role (client or server) is the context's.
  std::shared_ptr<TlsContext> tls;
  uint64_t tls_handshake_timeout_ms = 30'000;
  // Client: the name (DNS or IP) the server's certificate must be issued to; empty = any
  // certificate of the CA.
  std::string tls_peer_name;
};

// Wire counters. bytes_* count frame headers too (with TLS: the TLS records instead); a frame
// counts as sent once the kernel took all of it, as received once it was delivered to on_frame.
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
  using HandshakeHandler = std::function<void()>;

  class Impl;
  // Made by TcpListener and tcp_connect (tcp.h) or UnixListener and unix_connect (unix.h),
  // which own the construction of Impl.
  explicit Connection(Impl* impl);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void on_frame(FrameHandler handler);
  void on_close(CloseHandler handler);
  void on_drain(DrainHandler handler);
  // TLS only: runs once when the handshake finished (the peer's certificate was verified),
  // before the first frame is delivered.
  void on_handshake(HandshakeHandler handler);

  // Large frame buffers come from `pool` and go back to it (it must outlive the connection):
  // a received frame starts in a kept buffer (whoever takes the frame may give it back), and
  // a sent payload returns to the pool once written. REQUIRES: before start().
  void set_buffer_pool(BufferPool* pool);

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

  // TCP: "127.0.0.1:51234" / "[::1]:51234". Unix: local() is "unix:<socket path>" on both
  // ends; peer() is "unix:<socket path>" on the connecting end and "unix:peer pid N uid U"
  // on the accepting end.
  const std::string& peer() const;
  const std::string& local() const;
  // The peer process's uid (SO_PEERCRED) for a unix connection; nullopt for TCP.
  std::optional<uint32_t> peer_uid() const;
  // Whether ConnectionOptions::tls is set, and whether its handshake has finished.
  bool is_tls() const;
  bool secure() const;
  // After the handshake: the peer certificate's "sha1" or "sha256" digest as uppercase hex
  // without separators (Hyper-V's CertificateThumbPrint is the SHA-1 one). Empty for
  // plaintext, before the handshake, or for another algo.
  std::string peer_certificate_thumbprint(std::string_view algo) const;
  // After the handshake: whether the peer's certificate is issued to `host` (a DNS name or
  // an IP address in its subjectAltName). False for plaintext.
  bool peer_certificate_names(std::string_view host) const;
  ConnectionStats stats() const;
  const ConnectionOptions& options() const;

 private:
  Impl* impl_;  // owned; freed once its libuv handles are closed
};

}  // namespace vmrepl
