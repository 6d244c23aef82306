// Channel: a blocking, thread-safe facade over one protocol connection, so a replication
// job or a server session reads as sequential code on its own thread while every byte still
// moves through the service's libuv loop (core/net).
//
// Backpressure both ways: send() blocks while the connection's send queue is above its high
// watermark (the peer is behind), and the connection stops reading when more than a few
// received messages wait for recv() (we are behind), so TCP slows the peer down.
//
// TLS: with a TlsContext, connect() returns once the handshake finished (its failure is the
// connect's: AccessDenied 32769 for a refused certificate). A TLS 1.3 client finishes before
// the server has checked the client's certificate, so a server's refusal reaches the client
// as the first recv()'s AccessDenied. The peer's certificate thumbprint is kept for the
// caller's own check (peer_thumbprint).
//
// Thread-safety: every method may be called from any thread except the loop's (they block).
// One thread sends and one receives at a time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/jobs/event_loop.h"
#include "core/net/connection.h"
#include "core/net/tcp.h"
#include "core/protocol/messages.h"

namespace vmrepl {

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  // Connects to host:port (SystemNotAvailable 32777 when refused or unreachable, Timeout
  // 32772 after timeout), over TLS when `tls` (a client context) is given; then the server's
  // certificate must also be issued to `tls_peer_name` unless it is empty. A peer that stops
  // reading for `stall_timeout` closes the channel (SystemNotAvailable): a cut network does
  // not block a sender for ever.
  static Result<std::shared_ptr<Channel>> connect(EventLoop& loop, const std::string& host, uint16_t port,
                                                  std::chrono::milliseconds timeout,
                                                  std::chrono::milliseconds stall_timeout = std::chrono::seconds(60),
                                                  std::shared_ptr<TlsContext> tls = nullptr,
                                                  const std::string& tls_peer_name = {});
  // Connects to the unix socket file `path`, otherwise as connect() (SystemNotAvailable when
  // the file is missing or nobody listens, InvalidParameter for a path too long).
  static Result<std::shared_ptr<Channel>> connect_unix(EventLoop& loop, const std::string& path,
                                                       std::chrono::milliseconds timeout,
                                                       std::chrono::milliseconds stall_timeout = std::chrono::seconds(60),
                                                       std::shared_ptr<TlsContext> tls = nullptr);
  // Wraps an accepted connection. REQUIRES: loop thread.
  static std::shared_ptr<Channel> adopt(EventLoop& loop, std::unique_ptr<Connection> conn);

  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // SystemNotAvailable with the close reason once the connection is gone.
  Status send(const protocol::Message& m);
  // send() that gives a block batch's payload buffer back to the loop's pool once encoded.
  Status send(protocol::Message&& m);
  // Large buffers of the loop's pool (EventLoop::buffers): the sender's batch data is read
  // into one, a received batch's payload goes back to it once applied.
  std::vector<uint8_t> take_buffer(std::size_t min_capacity) { return loop_.buffers().take(min_capacity); }
  void give_buffer(std::vector<uint8_t>&& b) { loop_.buffers().give(std::move(b)); }
  // The next message; Timeout when none arrived within `timeout`; SystemNotAvailable with
  // the reason when the connection closed.
  Result<protocol::Message> recv(std::chrono::milliseconds timeout);
  // recv() that turns a peer's Error message into its Status and checks the message type.
  template <class T>
  Result<T> expect(std::chrono::milliseconds timeout) {
    auto m = recv(timeout);
    if (!m) return m.status();
    if (auto* e = std::get_if<protocol::Error>(&*m)) return protocol::status_from(*e);
    if (auto* t = std::get_if<T>(&*m)) return std::move(*t);
    return Status::Failed("protocol: expected another message than '" + std::string(protocol::message_type(*m)) + "'");
  }

  // Closes at once; pending and future calls fail with `reason`.
  void close(Status reason);
  bool is_open() const;
  // Whether a received message waits for recv() (recv() would not block).
  bool has_pending() const;
  // Wire bytes so far (frames and prefixes), both directions.
  uint64_t bytes_sent() const;
  uint64_t bytes_received() const;
  // Wire bytes of the messages recv() has returned so far (received ones may wait in a queue).
  uint64_t bytes_consumed() const;
  const std::string& peer() const { return peer_; }
  bool is_tls() const { return tls_; }
  // The peer certificate's thumbprint (Connection::peer_certificate_thumbprint: "sha1" or
  // "sha256", uppercase hex); empty for plaintext or before the handshake (an accepted
  // channel's handshake has finished once its first message arrived).
  std::string peer_thumbprint(std::string_view algo) const;
  // Whether the peer's certificate is issued to `host` (Connection::peer_certificate_names).
  bool peer_certificate_names(const std::string& host);
  // The capabilities the peer announced in its hello (set by whoever read it).
  void set_peer_capabilities(std::vector<std::string> caps) { peer_caps_ = std::move(caps); }
  bool peer_has(std::string_view capability) const;

 private:
  Channel(EventLoop& loop, std::unique_ptr<Connection> conn);
  // Starts a connect on the loop thread with the channel's connection options.
  using Connector = std::function<void(uv_loop_t*, ConnectHandler, const ConnectionOptions&)>;
  static Result<std::shared_ptr<Channel>> connect_with(EventLoop& loop, std::chrono::milliseconds timeout,
                                                       std::chrono::milliseconds stall_timeout,
                                                       std::shared_ptr<TlsContext> tls, const std::string& tls_peer_name,
                                                       const Connector& start);
  void attach();  // loop thread

  static constexpr size_t kPauseAt = 3;   // queued received messages before reads stop
  static constexpr size_t kResumeAt = 1;

  EventLoop& loop_;
  std::unique_ptr<Connection> conn_;  // touched on the loop thread only
  std::vector<std::string> peer_caps_;
  std::string peer_;
  bool tls_ = false;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<uint8_t>> inbox_;
  bool paused_ = false;
  bool writable_ = true;
  size_t sends_in_flight_ = 0;  // posted to the loop, not yet queued on the connection
  bool closed_ = false;
  Status close_reason_;
  bool secure_ = false;  // TLS handshake finished
  std::string peer_sha1_, peer_sha256_;
  uint64_t bytes_sent_ = 0, bytes_received_ = 0, bytes_consumed_ = 0;
};

}  // namespace vmrepl
