// Channel: a blocking, thread-safe facade over one protocol connection, so a replication
// job or a server session reads as sequential code on its own thread while every byte still
// moves through the service's libuv loop (core/net).
//
// Backpressure both ways: send() blocks while the connection's send queue is above its high
// watermark (the peer is behind), and the connection stops reading when more than a few
// received messages wait for recv() (we are behind), so TCP slows the peer down.
//
// Thread-safety: every method may be called from any thread except the loop's (they block).
// One thread sends and one receives at a time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "core/jobs/event_loop.h"
#include "core/net/connection.h"
#include "core/protocol/messages.h"

namespace vmrepl {

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  // Connects to host:port (SystemNotAvailable 32777 when refused or unreachable, Timeout
  // 32772 after timeout). A peer that stops reading for `stall_timeout` closes the channel
  // (SystemNotAvailable): a cut network does not block a sender for ever.
  static Result<std::shared_ptr<Channel>> connect(EventLoop& loop, const std::string& host, uint16_t port,
                                                  std::chrono::milliseconds timeout,
                                                  std::chrono::milliseconds stall_timeout = std::chrono::seconds(60));
  // Wraps an accepted connection. REQUIRES: loop thread.
  static std::shared_ptr<Channel> adopt(EventLoop& loop, std::unique_ptr<Connection> conn);

  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // SystemNotAvailable with the close reason once the connection is gone.
  Status send(const protocol::Message& m);
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
  // Wire bytes so far (frames and prefixes), both directions.
  uint64_t bytes_sent() const;
  uint64_t bytes_received() const;
  // Wire bytes of the messages recv() has returned so far (received ones may wait in a queue).
  uint64_t bytes_consumed() const;
  const std::string& peer() const { return peer_; }

 private:
  Channel(EventLoop& loop, std::unique_ptr<Connection> conn);
  void attach();  // loop thread

  static constexpr size_t kPauseAt = 8;   // queued received messages before reads stop
  static constexpr size_t kResumeAt = 2;

  EventLoop& loop_;
  std::unique_ptr<Connection> conn_;  // touched on the loop thread only
  std::string peer_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<uint8_t>> inbox_;
  bool paused_ = false;
  bool writable_ = true;
  size_t sends_in_flight_ = 0;  // posted to the loop, not yet queued on the connection
  bool closed_ = false;
  Status close_reason_;
  uint64_t bytes_sent_ = 0, bytes_received_ = 0, bytes_consumed_ = 0;
};

}  // namespace vmrepl
