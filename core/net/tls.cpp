#include "core/net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "core/net/tls_session.h"

namespace vmrepl {

namespace {

// TLS 1.3 AEAD suites backed by AES-NI; ChaCha20 is left out on purpose.
constexpr const char* kSuites = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256";
constexpr std::size_t kMaxRecord = 16384;  // TLS plaintext record limit

std::string reason_text(unsigned long e) {
  if (ERR_SYSTEM_ERROR(e)) return std::strerror(ERR_GET_REASON(e));
  if (const char* r = ERR_reason_error_string(e)) return r;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// The first (root-cause) error of this thread's OpenSSL queue, which is then emptied.
std::string take_error() {
  unsigned long e = ERR_peek_error();
  std::string r = e != 0 ? reason_text(e) : "unknown OpenSSL error";
  ERR_clear_error();
  return r;
}

// Reasons that mean a certificate was refused, by this side or (as an alert) by the peer.
bool about_certificates(unsigned long e) {
  if (ERR_GET_LIB(e) != ERR_LIB_SSL) return false;
  switch (ERR_GET_REASON(e)) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_NO_CERTIFICATES_RETURNED:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
      return true;
    default:
      return false;
  }
}

const EVP_MD* digest_named(std::string_view algo) {
  std::string a;
  for (char c : algo) {
    if (c != '-') a += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (a == "sha1") return EVP_sha1();
  if (a == "sha256") return EVP_sha256();
  return nullptr;
}

}  // namespace

std::string certificate_thumbprint(x509_st* cert, std::string_view algo) {
  const EVP_MD* md = digest_named(algo);
  if (cert == nullptr || md == nullptr) return {};
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, md, d, &n) != 1) {
    ERR_clear_error();
    return {};
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += kHex[d[i] >> 4];
    out += kHex[d[i] & 15];
  }
  return out;
}

bool same_thumbprint(std::string_view a, std::string_view b) {
  auto norm = [](std::string_view x) {
    std::string out;
    for (char c : x) {
      if (c == ' ' || c == ':' || c == '\t') continue;
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return out;
  };
  std::string na = norm(a);
  return !na.empty() && na == norm(b);
}

std::string_view thumbprint_algorithm(std::string_view thumbprint) {
  std::size_t digits = 0;
  for (char c : thumbprint) digits += std::isxdigit(static_cast<unsigned char>(c)) ? 1 : 0;
  return digits == 64 ? "sha256" : "sha1";
}

// ---- TlsContext ------------------------------------------------------------------------

Result<std::shared_ptr<TlsContext>> TlsContext::create(const TlsConfig& config, bool server) {
  if (config.ca_file.empty()) return Status::InvalidParameter("TLS needs a CA file (ca_file) to verify peers");
  if (server && (config.certificate_file.empty() || config.key_file.empty()))
    return Status::InvalidParameter("a TLS server needs a certificate file and a key file");
  if (config.certificate_file.empty() != config.key_file.empty())
    return Status::InvalidParameter("a TLS certificate file and key file go together");

  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()),
                                                        &SSL_CTX_free);
  if (!ctx) return Status::OutOfMemory("cannot create a TLS context: " + take_error());
  SSL_CTX* c = ctx.get();
  if (SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 || SSL_CTX_set_ciphersuites(c, kSuites) != 1)
    return Status::NotSupported("this OpenSSL cannot do TLS 1.3 with AES-GCM: " + take_error());
  SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_num_tickets(c, 0);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);

  if (!config.certificate_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(c, config.certificate_file.c_str()) != 1)
      return Status::InvalidParameter("cannot load TLS certificate file '" + config.certificate_file + "': " + take_error());
    if (SSL_CTX_use_PrivateKey_file(c, config.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      return Status::InvalidParameter("cannot load TLS key file '" + config.key_file + "': " + take_error());
    if (SSL_CTX_check_private_key(c) != 1)
      return Status::InvalidParameter("TLS key file '" + config.key_file + "' does not match certificate file '" +
                                      config.certificate_file + "': " + take_error());
  }
  if (SSL_CTX_load_verify_locations(c, config.ca_file.c_str(), nullptr) != 1)
    return Status::InvalidParameter("cannot load TLS CA file '" + config.ca_file + "': " + take_error());
  if (server) {
    // Tells clients which CAs we accept, so one holding several certificates picks right.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.ca_file.c_str())) SSL_CTX_set_client_CA_list(c, names);
    ERR_clear_error();
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return std::shared_ptr<TlsContext>(new TlsContext(ctx.release(), config, server));
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::string TlsContext::certificate_thumbprint(std::string_view algo) const {
  return vmrepl::certificate_thumbprint(SSL_CTX_get0_certificate(ctx_), algo);
}

// ---- TlsSession ------------------------------------------------------------------------

Result<std::unique_ptr<TlsSession>> TlsSession::create(const std::shared_ptr<TlsContext>& ctx,
                                                       const std::string& peer_name) {
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx->native());
  if (ssl == nullptr) return Status::OutOfMemory("cannot create a TLS session: " + take_error());
  std::unique_ptr<TlsSession> s(new TlsSession(ssl));
  if (s->rbio_ == nullptr || s->wbio_ == nullptr) return Status::OutOfMemory("cannot create TLS buffers");
  if (!ctx->server() && !peer_name.empty()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    int ok = X509_VERIFY_PARAM_set1_ip_asc(param, peer_name.c_str()) == 1 || SSL_set1_host(ssl, peer_name.c_str()) == 1;
    ERR_clear_error();
    if (!ok) return Status::InvalidParameter("'" + peer_name + "' is neither a host name nor an IP address");
  }
  if (ctx->server()) SSL_set_accept_state(ssl);
  else SSL_set_connect_state(ssl);
  return s;
}

TlsSession::TlsSession(ssl_st* ssl) : ssl_(ssl), rbio_(BIO_new(BIO_s_mem())), wbio_(BIO_new(BIO_s_mem())) {
  if (rbio_ == nullptr || wbio_ == nullptr) {
    BIO_free(rbio_);
    BIO_free(wbio_);
    rbio_ = wbio_ = nullptr;
    return;
  }
  // An empty input buffer means "wait for more", not end of stream.
  BIO_set_mem_eof_return(rbio_, -1);
  SSL_set_bio(ssl_, rbio_, wbio_);  // the SSL owns both from here
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

void TlsSession::feed(std::span<const uint8_t> ciphertext) {
  // A memory BIO takes everything (it grows); the caller bounds what it reads.
  if (!ciphertext.empty()) BIO_write(rbio_, ciphertext.data(), static_cast<int>(ciphertext.size()));
}

void TlsSession::fail(int ret) {
  int err = SSL_get_error(ssl_, ret);
  unsigned long e = ERR_peek_error();
  if (e == 0) {
    error_ = Status::SystemNotAvailable("TLS failure (SSL_get_error " + std::to_string(err) + ")");
    return;
  }
  Code code = about_certificates(e) ? Code::AccessDenied : Code::SystemNotAvailable;
  std::string reason = reason_text(e);
  if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    long v = SSL_get_verify_result(ssl_);
    if (v != X509_V_OK) reason += std::string(" (") + X509_verify_cert_error_string(v) + ")";
  }
  ERR_clear_error();
  error_ = Status(code, reason);
}

TlsSession::Step TlsSession::handshake() {
  if (SSL_is_init_finished(ssl_)) return Step::Done;
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r == 1) return Step::Done;
  if (SSL_get_error(ssl_, r) == SSL_ERROR_WANT_READ) return Step::NeedInput;
  fail(r);
  return Step::Failed;
}

TlsSession::Step TlsSession::read(std::span<uint8_t> buf, std::size_t& got) {
  ERR_clear_error();
  got = 0;
  int r = SSL_read_ex(ssl_, buf.data(), buf.size(), &got);
  if (r == 1) return Step::Done;
  switch (SSL_get_error(ssl_, r)) {
    case SSL_ERROR_WANT_READ:
      return Step::NeedInput;
    case SSL_ERROR_ZERO_RETURN:
      return Step::Closed;
    default:
      fail(r);
      return Step::Failed;
  }
}

void TlsSession::drain(std::vector<uint8_t>& out) {
  std::size_t n = BIO_ctrl_pending(wbio_);
  if (n == 0) return;
  std::size_t old = out.size();
  out.resize(old + n);
  BIO_read(wbio_, out.data() + old, static_cast<int>(n));
}

bool TlsSession::encrypt(std::span<const uint8_t> first, std::span<const uint8_t> second, std::vector<uint8_t>& out) {
  std::size_t total = first.size() + second.size();
  // 22 bytes per TLS 1.3 record: 5 header, 1 content type, 16 tag.
  out.reserve(out.size() + BIO_ctrl_pending(wbio_) + total + (total / kMaxRecord + 2) * 22);
  drain(out);
  ERR_clear_error();
  auto write = [&](const uint8_t* p, std::size_t n) {
    std::size_t done = 0;
    int r = SSL_write_ex(ssl_, p, n, &done);
    if (r != 1) {
      fail(r);
      return false;
    }
    drain(out);
    return true;
  };
  // The first record carries `first` and as much of `second` as fits.
  std::size_t lead = std::min(second.size(), kMaxRecord - std::min(first.size(), kMaxRecord));
  scratch_.assign(first.begin(), first.end());
  scratch_.insert(scratch_.end(), second.begin(), second.begin() + static_cast<std::ptrdiff_t>(lead));
  if (!scratch_.empty() && !write(scratch_.data(), scratch_.size())) return false;
  // The rest in slices, so the memory BIO never holds more than one slice of ciphertext.
  constexpr std::size_t kSlice = 256u << 10;
  for (std::size_t off = lead; off < second.size(); off += kSlice) {
    if (!write(second.data() + off, std::min(kSlice, second.size() - off))) return false;
  }
  return true;
}

void TlsSession::close_notify() {
  ERR_clear_error();
  if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
  ERR_clear_error();
}

bool TlsSession::has_output() const { return BIO_ctrl_pending(wbio_) > 0; }

std::vector<uint8_t> TlsSession::take_output() {
  std::vector<uint8_t> out;
  drain(out);
  return out;
}

bool TlsSession::peer_matches(std::string_view host) const {
  X509* cert = SSL_is_init_finished(ssl_) ? SSL_get0_peer_certificate(ssl_) : nullptr;
  if (cert == nullptr || host.empty()) return false;
  std::string h(host);
  bool ok = X509_check_ip_asc(cert, h.c_str(), 0) == 1 || X509_check_host(cert, h.data(), h.size(), 0, nullptr) == 1;
  ERR_clear_error();
  return ok;
}

std::string TlsSession::peer_thumbprint(std::string_view algo) const {
  if (!SSL_is_init_finished(ssl_)) return {};
  return certificate_thumbprint(SSL_get0_peer_certificate(ssl_), algo);
}

}  // namespace vmrepl
