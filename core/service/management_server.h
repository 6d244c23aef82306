// ManagementServer: the remote face of one ReplicationService (vmrepld). Clients opened with
// vmr_open("unix:/path") or vmr_open("vmrepl://host:port") call the same methods as a local:
// service, over the management protocol (management_protocol.h) on core/net connections.
//
// Each accepted connection is one session on a thread of its own: a hello, then requests
// answered in order; job events for the jobs the client watches are pushed between answers.
// The unix socket is created with mode 0600 and a client must be root or the daemon's user
// (checked by uid); a stale socket file left by a killed daemon is replaced, a live one is
// refused (SystemInUse). The TCP listener (vmrepl://) speaks mutual TLS only: the client's
// certificate must chain to the CA and its SHA-1 or SHA-256 thumbprint must be pinned in
// allowed_clients, else its hello is refused with AccessDenied (32769) and nothing can be
// called.
//
// Thread-safety: start() and the destructor from any thread except the service's loop.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/model/status.h"
#include "core/net/tls.h"
#include "core/service/replication_service.h"

namespace vmrepl {

struct ManagementServerOptions {
  std::string unix_path;   // "" = no admin socket
  std::string tcp_listen;  // "host:port" for vmrepl:// clients; "" = none
  std::shared_ptr<TlsContext> tls;           // a server context; required with tcp_listen
  std::vector<std::string> allowed_clients;  // pinned client thumbprints (hex, SHA-1 or SHA-256)
};

class ManagementServer {
 public:
  static Result<std::unique_ptr<ManagementServer>> start(ReplicationService& svc, ManagementServerOptions opts);
  // Stops listening, closes every session (their calls in progress finish first), removes
  // the socket file.
  ~ManagementServer();
  ManagementServer(const ManagementServer&) = delete;
  ManagementServer& operator=(const ManagementServer&) = delete;

  const std::string& unix_path() const;
  uint16_t tcp_port() const;  // 0 when not listening on TCP
  size_t sessions() const;    // open management sessions

  class Impl;

 private:
  explicit ManagementServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmrepl
