// TCP endpoints of the service-to-service wire (DESIGN.md, core/net): TcpListener accepts
// Connections on a numeric address, tcp_connect() resolves and connects with a deadline.
// Both hand out Connections with TCP_NODELAY set (frames are small and latency-bound:
// hello, acks, control calls) and with the given ConnectionOptions (with options.tls, TLS
// from the listener's or the connecting side's context: connection.h); the receiver sets its
// handlers and calls Connection::start().
//
// Thread-safety: loop thread only (the thread running `loop`), destructor included. Callbacks
// run on the loop thread. Destroy listeners before their loop (see connection.h).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/model/status.h"
#include "core/net/connection.h"

namespace vmrepl {

// True for a loopback address (127.0.0.0/8, ::1, ::ffff:127.x), given as numeric text with or
// without its port ("127.0.0.1", "127.0.0.1:6600", "::1", "[::1]:6600"). Plaintext replication
// is confined to these.
bool is_loopback_address(std::string_view address);

class TcpListener {
 public:
  using ConnectionHandler = std::function<void(std::unique_ptr<Connection>)>;

  // Binds `host` (a numeric IPv4 or IPv6 address: "127.0.0.1", "0.0.0.0", "::") and `port`
  // (0 picks a free port, see port()) and listens. Every accepted connection goes to
  // `on_connection`, not yet started. InvalidParameter for a non-numeric host; SystemInUse
  // when the address is taken; SystemNotAvailable for other socket errors, naming
  // host:port and the system's reason.
  static Result<std::unique_ptr<TcpListener>> listen(uv_loop_t* loop, const std::string& host,
                                                     uint16_t port, ConnectionHandler on_connection,
                                                     const ConnectionOptions& options = {});
  // Stops listening; connections already handed out are unaffected.
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  // The bound port (the chosen one when listen() was given 0).
  uint16_t port() const;
  const std::string& host() const;
  // Connections accepted since listen() (including those that failed during set-up).
  uint64_t accepted() const;

  class Impl;

 private:
  explicit TcpListener(Impl* impl) : impl_(impl) {}
  Impl* impl_;  // owned; freed once its handle is closed
};

using ConnectHandler = std::function<void(Result<std::unique_ptr<Connection>>)>;

// Resolves `host` (name or numeric address; every address is tried in order) and connects.
// `done` runs exactly once, always from a later loop iteration, with the connection (not yet
// started) or:
//   SystemNotAvailable "cannot connect to host:port: connection refused (ECONNREFUSED)"
//                      (or "cannot resolve host: ..." for a name that does not resolve);
//   Timeout "connect to host:port timed out after N ms" when nothing succeeded in time
//           (timeout_ms 0: no deadline besides the system's own).
void tcp_connect(uv_loop_t* loop, const std::string& host, uint16_t port, uint64_t timeout_ms,
                 ConnectHandler done, const ConnectionOptions& options = {});

}  // namespace vmrepl
