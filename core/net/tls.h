// TLS for the service wire (DESIGN.md, core/net): a TlsContext holds the certificate, key
// and trusted CA of one side; a Connection whose ConnectionOptions::tls is set runs TLS
// between its socket and its frame codec (connection.h).
//
// Policy, not configurable: TLS 1.3 only, AES-GCM suites only (AES-NI); mutual
// authentication: each side must present a certificate that chains to its peer's ca_file and
// is within its validity dates, else the handshake fails with AccessDenied. Names in
// certificates are not checked: a peer is identified by the CA and, where the model says so,
// by its certificate's thumbprint (Connection::peer_certificate_thumbprint). No session
// resumption (no tickets, no cache): every connection authenticates in full.
//
// Thread-safety: a TlsContext is immutable after create() and may be shared by connections
// on any threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/model/status.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace vmrepl {

struct TlsConfig {
  std::string certificate_file;  // PEM: this side's certificate, then any intermediates
  std::string key_file;          // PEM: its private key (unencrypted)
  std::string ca_file;           // PEM: the CAs a peer's certificate must chain to
};

class TlsContext {
 public:
  // A context for the accepting (server) or connecting side. InvalidParameter naming the
  // file and OpenSSL's reason when a file cannot be loaded, when the key does not match the
  // certificate, or when a required file is not given: ca_file always, certificate_file and
  // key_file for a server (a client without them can connect to nothing, which tests use).
  static Result<std::shared_ptr<TlsContext>> create(const TlsConfig& config, bool server);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  bool server() const { return server_; }
  const TlsConfig& config() const { return config_; }
  // This side's own certificate thumbprint (see Connection::peer_certificate_thumbprint);
  // empty without a certificate.
  std::string certificate_thumbprint(std::string_view algo) const;

  ssl_ctx_st* native() const { return ctx_; }

 private:
  TlsContext(ssl_ctx_st* ctx, TlsConfig config, bool server) : ctx_(ctx), config_(std::move(config)), server_(server) {}
  ssl_ctx_st* ctx_;
  TlsConfig config_;
  bool server_;
};

// Whether two certificate thumbprints are the same hex digest, ignoring case and the spaces
// or colons people paste with them ("ab cd:EF" equals "ABCDEF"). Empty never matches.
bool same_thumbprint(std::string_view a, std::string_view b);
// The digest a thumbprint is written in: "sha256" for 64 hex digits, else "sha1".
std::string_view thumbprint_algorithm(std::string_view thumbprint);

}  // namespace vmrepl
