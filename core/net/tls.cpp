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

// TLS 1.3 AEAD suites backed by AES-NI; ChaCha20 is left out on purpose. AES-128 first: its
// 10 rounds against 14 make bulk replication cheaper, at a strength far above the session's.
constexpr const char* kSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384";
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

namespace {

// The write side of a session: records go straight to the vector the session points it at
// (the frame's output while encrypt() runs, else the session's pending output). A memory BIO
// would copy every byte once more and zero-fill the buffer it is drained into.
int sink_write(BIO* b, const char* data, size_t n, size_t* written) {
  auto* out = static_cast<std::vector<uint8_t>*>(BIO_get_data(b));
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + n);
  *written = n;
  return 1;
}

long sink_ctrl(BIO*, int cmd, long, void*) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;  // nothing is held back
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

// The read side: records are read where the socket's bytes already are (the connection's read
// buffer, for the length of its callback), then from what the session kept of them.
int source_read(BIO* b, char* data, size_t n, size_t* got) {
  auto* in = static_cast<TlsSession::Input*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  std::span<const uint8_t> from = in->kept_offset < in->kept.size()
                                      ? std::span<const uint8_t>(in->kept).subspan(in->kept_offset)
                                      : in->view;
  if (from.empty()) {
    BIO_set_retry_read(b);  // wait for the next read from the socket
    *got = 0;
    return 0;
  }
  const std::size_t k = std::min(n, from.size());
  std::memcpy(data, from.data(), k);
  if (in->kept_offset < in->kept.size()) {
    in->kept_offset += k;
    if (in->kept_offset == in->kept.size()) {
      in->kept.clear();
      in->kept_offset = 0;
    }
  } else {
    in->view = in->view.subspan(k);
  }
  *got = k;
  return 1;
}

long source_ctrl(BIO* b, int cmd, long, void*) {
  auto* in = static_cast<TlsSession::Input*>(BIO_get_data(b));
  switch (cmd) {
    case BIO_CTRL_PENDING:
      return static_cast<long>(in->kept.size() - in->kept_offset + in->view.size());
    case BIO_CTRL_FLUSH:
      return 1;
    default:
      return 0;
  }
}

// A BIO type with these callbacks (read or write may be null), made once per process.
BIO_METHOD* new_method(const char* name, int (*read)(BIO*, char*, size_t, size_t*),
                       int (*write)(BIO*, const char*, size_t, size_t*), long (*ctrl)(BIO*, int, long, void*)) {
  BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, name);
  if (m == nullptr) return nullptr;
  if (read) BIO_meth_set_read_ex(m, read);
  if (write) BIO_meth_set_write_ex(m, write);
  BIO_meth_set_ctrl(m, ctrl);
  BIO_meth_set_create(m, bio_create);
  return m;
}

BIO_METHOD* source_method() {
  static BIO_METHOD* method = new_method("vmrepl TLS input", source_read, nullptr, source_ctrl);
  return method;
}

BIO_METHOD* sink_method() {
  static BIO_METHOD* method = new_method("vmrepl TLS output", nullptr, sink_write, sink_ctrl);
  return method;
}

}  // namespace

TlsSession::TlsSession(ssl_st* ssl)
    : ssl_(ssl),
      rbio_(source_method() ? BIO_new(source_method()) : nullptr),
      wbio_(sink_method() ? BIO_new(sink_method()) : nullptr) {
  if (rbio_ == nullptr || wbio_ == nullptr) {
    BIO_free(rbio_);
    BIO_free(wbio_);
    rbio_ = wbio_ = nullptr;
    return;
  }
  BIO_set_data(rbio_, &input_);
  BIO_set_data(wbio_, &pending_);
  SSL_set_bio(ssl_, rbio_, wbio_);  // the SSL owns both from here
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

void TlsSession::feed(std::span<const uint8_t> ciphertext) {
  if (ciphertext.empty()) return;
  keep_unread();  // an earlier view not read yet goes first
  if (input_.kept_offset < input_.kept.size())
    input_.kept.insert(input_.kept.end(), ciphertext.begin(), ciphertext.end());
  else
    input_.view = ciphertext;
}

void TlsSession::keep_unread() {
  if (input_.view.empty()) return;
  // The caller bounds what it reads while it does not take records out.
  input_.kept.insert(input_.kept.end(), input_.view.begin(), input_.view.end());
  input_.view = {};
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
  if (pending_.empty()) return;
  if (out.empty()) {
    out.swap(pending_);
  } else {
    out.insert(out.end(), pending_.begin(), pending_.end());
    pending_.clear();
  }
}

bool TlsSession::encrypt(std::span<const uint8_t> first, std::span<const uint8_t> second, std::vector<uint8_t>& out) {
  std::size_t total = first.size() + second.size();
  // 22 bytes per TLS 1.3 record: 5 header, 1 content type, 16 tag.
  out.reserve(out.size() + pending_.size() + total + (total / kMaxRecord + 2) * 22);
  drain(out);
  ERR_clear_error();
  // Records land in `out` as they are sealed, for the length of this call.
  BIO_set_data(wbio_, &out);
  struct Restore {
    bio_st* b;
    std::vector<uint8_t>* pending;
    ~Restore() { BIO_set_data(b, pending); }
  } restore{wbio_, &pending_};
  auto write = [&](const uint8_t* p, std::size_t n) {
    std::size_t done = 0;
    int r = SSL_write_ex(ssl_, p, n, &done);
    if (r != 1) {
      fail(r);
      return false;
    }
    return true;
  };
  // The first record carries `first` and as much of `second` as fits.
  std::size_t lead = std::min(second.size(), kMaxRecord - std::min(first.size(), kMaxRecord));
  scratch_.assign(first.begin(), first.end());
  scratch_.insert(scratch_.end(), second.begin(), second.begin() + static_cast<std::ptrdiff_t>(lead));
  if (!scratch_.empty() && !write(scratch_.data(), scratch_.size())) return false;
  if (lead < second.size() && !write(second.data() + lead, second.size() - lead)) return false;
  return true;
}

void TlsSession::close_notify() {
  ERR_clear_error();
  if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
  ERR_clear_error();
}

bool TlsSession::has_output() const { return !pending_.empty(); }

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
