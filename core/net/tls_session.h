// TlsSession: one connection's TLS state machine over memory buffers, private to core/net
// (used by Connection::Impl). Ciphertext from the socket goes in through feed(); ciphertext
// to send comes out through take_output() after every call that may produce some
// (handshake, read, encrypt, close_notify). No socket is touched here, so the connection
// keeps its own backpressure, timeouts and accounting.
//
// Thread-safety: one thread at a time (the connection's loop thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/status.h"
#include "core/net/tls.h"

// OpenSSL's SSL, BIO, X509.
struct ssl_st;
struct bio_st;
struct x509_st;

namespace vmrepl {

class TlsSession {
 public:
  // A session in the role of `ctx` (server: waits for the ClientHello; client: sends it on
  // the first handshake()). A client given `peer_name` (a DNS name or an IP address) also
  // requires the server's certificate to be issued to it.
  static Result<std::unique_ptr<TlsSession>> create(const std::shared_ptr<TlsContext>& ctx,
                                                    const std::string& peer_name = {});
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  enum class Step { Done, NeedInput, Closed, Failed };

  // Ciphertext from the socket. It is read in place: before `ciphertext` goes away, the
  // caller calls keep_unread(), which copies what records did not take yet.
  void feed(std::span<const uint8_t> ciphertext);
  void keep_unread();
  // Done once the handshake finished; NeedInput while it waits for the peer; Failed with
  // error() set.
  Step handshake();
  // Decrypts into `buf`: Done with `got` > 0 bytes, NeedInput when no whole record is
  // buffered, Closed after the peer's close_notify, Failed with error() set.
  Step read(std::span<uint8_t> buf, std::size_t& got);
  // Encrypts `first` then `second` as one stream (a frame header and its payload share a
  // record) and appends the records to `out`. False with error() set on failure.
  bool encrypt(std::span<const uint8_t> first, std::span<const uint8_t> second, std::vector<uint8_t>& out);
  // Queues a close_notify alert.
  void close_notify();

  bool has_output() const;

  // What the input BIO reads: `kept` (from kept_offset) first, then `view`.
  struct Input {
    std::vector<uint8_t> kept;
    std::size_t kept_offset = 0;
    std::span<const uint8_t> view;
  };
  std::vector<uint8_t> take_output();

  // AccessDenied when the failure is about a certificate (this side rejected the peer's,
  // or the peer's alert says it rejected ours), else SystemNotAvailable; the message is
  // OpenSSL's reason, e.g. "certificate verify failed (certificate has expired)".
  const Status& error() const { return error_; }

  // The peer certificate's digest as uppercase hex without separators; algo "sha1" or
  // "sha256" (case and a '-' ignored). Empty before the handshake or for another algo.
  std::string peer_thumbprint(std::string_view algo) const;
  // Whether the peer's certificate is issued to `host` (subjectAltName DNS or IP entry).
  bool peer_matches(std::string_view host) const;

 private:
  explicit TlsSession(ssl_st* ssl);
  void fail(int ret);
  void drain(std::vector<uint8_t>& out);

  ssl_st* ssl_;
  bio_st* rbio_;  // owned by ssl_
  bio_st* wbio_;  // owned by ssl_; writes into pending_, or into encrypt()'s output
  std::vector<uint8_t> pending_;  // ciphertext not taken yet (handshake, alerts, tickets)
  Input input_;
  Status error_;
  std::vector<uint8_t> scratch_;  // a frame header and the start of its payload
};

// The digest of a DER certificate as above; used by TlsContext and TlsSession.
std::string certificate_thumbprint(x509_st* cert, std::string_view algo);

}  // namespace vmrepl
