// Unix-domain endpoints of the service wire (DESIGN.md, core/net): the same framed
// Connections as tcp.h, for a peer on the same host (a local management client, a test host
// process), where the socket file's mode and the peer's uid (Connection::peer_uid) decide who
// may talk to the service.
//
// UnixListener creates the socket file with exactly the requested mode: the mode is set on
// the socket before bind(), so the file never exists with wider permissions, then set once
// more on the file so the process umask cannot narrow it. A stale file (a socket nobody
// listens on: connecting gives ECONNREFUSED) is replaced; a live one is left alone.
//
// Thread-safety: loop thread only (the thread running `loop`), destructor included. Callbacks
// run on the loop thread. Destroy listeners before their loop (see connection.h).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/model/status.h"
#include "core/net/connection.h"
#include "core/net/tcp.h"

namespace vmrepl {

class UnixListener {
 public:
  using ConnectionHandler = std::function<void(std::unique_ptr<Connection>)>;

  // Creates the socket file `path` with permission bits `mode` (e.g. 0600) and listens. Every
  // accepted connection goes to `on_connection`, not yet started. Errors:
  //   InvalidParameter   the path does not fit sockaddr_un (the text names the limit), or
  //                      mode has bits outside 0777;
  //   SystemInUse        a process listens on `path`, or `path` exists and is not a socket;
  //   SystemNotAvailable other socket errors, naming the path and the system's reason.
  static Result<std::unique_ptr<UnixListener>> listen(uv_loop_t* loop, const std::string& path, unsigned mode,
                                                      ConnectionHandler on_connection,
                                                      const ConnectionOptions& options = {});
  // Stops listening and removes the socket file (unless another socket replaced it since).
  // Connections already handed out are unaffected.
  ~UnixListener();
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  const std::string& path() const;
  // Connections accepted since listen() (including those that failed during set-up).
  uint64_t accepted() const;

  class Impl;

 private:
  explicit UnixListener(Impl* impl) : impl_(impl) {}
  Impl* impl_;  // owned; freed once its handle is closed
};

// The longest socket path sockaddr_un holds (107 on Linux: sun_path less its terminator).
std::size_t unix_path_max();

// Connects to the socket file `path`. `done` runs exactly once, always from a later loop
// iteration, with the connection (not yet started) or:
//   InvalidParameter   "unix socket path ... exceeds the 107-byte limit";
//   SystemNotAvailable "cannot connect to unix:<path>: no such file or directory (ENOENT)"
//                      (or connection refused (ECONNREFUSED), permission denied (EACCES)...);
//   Timeout            "connect to unix:<path> timed out after N ms" (timeout_ms 0: none).
void unix_connect(uv_loop_t* loop, const std::string& path, uint64_t timeout_ms, ConnectHandler done,
                  const ConnectionOptions& options = {});

}  // namespace vmrepl
