#include "core/net/tcp.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>

#include "core/net/connection_impl.h"

namespace vmrepl {

namespace {

std::string endpoint(const std::string& host, uint16_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

// ---- TcpListener -----------------------------------------------------------------------

class TcpListener::Impl {
 public:
  Impl(uv_loop_t* loop, std::string host, ConnectionHandler handler, const ConnectionOptions& options)
      : host_(std::move(host)), loop_(loop), handler_(std::move(handler)), options_(options) {
    uv_tcp_init(loop_, &server_);
    server_.data = this;
  }

  Status bind_and_listen(uint16_t port) {
    sockaddr_storage addr{};
    std::string where = endpoint(host_, port);
    if (uv_ip4_addr(host_.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
        uv_ip6_addr(host_.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
      return Status::InvalidParameter("listen address '" + host_ +
                                      "' is not a numeric IPv4 or IPv6 address");
    }
    int r = uv_tcp_bind(&server_, reinterpret_cast<const sockaddr*>(&addr), 0);
    if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), SOMAXCONN, &Impl::on_connection);
    if (r != 0) {
      std::string m = "cannot listen on " + where + ": " + uv_error_text(r);
      return r == UV_EADDRINUSE ? Status::SystemInUse(m) : Status::SystemNotAvailable(m);
    }
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&server_, reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    return Status::OK();
  }

  // The handler is kept until the handle is closed: release() may run inside it.
  void release() {
    released_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&server_),
             [](uv_handle_t* h) { delete static_cast<Impl*>(h->data); });
  }

  uint16_t port_ = 0;
  std::string host_;
  uint64_t accepted_ = 0;

 private:
  bool released_ = false;
  static void on_connection(uv_stream_t* server, int status) {
    auto* self = static_cast<Impl*>(server->data);
    if (status < 0 || self->released_) return;  // EMFILE...: the next one may work
    ++self->accepted_;
    Connection::Impl* c = Connection::Impl::create(self->loop_, self->options_);
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(c->tcp())) != 0) {
      c->release();
      return;
    }
    c->established(true);
    auto conn = std::make_unique<Connection>(c);
    if (self->handler_ && !self->released_) self->handler_(std::move(conn));
  }

  uv_loop_t* loop_;
  uv_tcp_t server_{};
  ConnectionHandler handler_;
  ConnectionOptions options_;
};

Result<std::unique_ptr<TcpListener>> TcpListener::listen(uv_loop_t* loop, const std::string& host,
                                                         uint16_t port, ConnectionHandler on_connection,
                                                         const ConnectionOptions& options) {
  auto* impl = new Impl(loop, host, std::move(on_connection), options);
  Status s = impl->bind_and_listen(port);
  if (!s.ok()) {
    impl->release();
    return s;
  }
  return std::unique_ptr<TcpListener>(new TcpListener(impl));
}

TcpListener::~TcpListener() { impl_->release(); }
uint16_t TcpListener::port() const { return impl_->port_; }
const std::string& TcpListener::host() const { return impl_->host_; }
uint64_t TcpListener::accepted() const { return impl_->accepted_; }

// ---- tcp_connect -----------------------------------------------------------------------

namespace {

// One connect: resolution, then each address in turn, under one deadline. It frees itself
// when the result was delivered and no libuv request or handle refers to it any more.
class ConnectAttempt {
 public:
  ConnectAttempt(uv_loop_t* loop, const std::string& host, uint16_t port, uint64_t timeout_ms,
                 ConnectHandler done, const ConnectionOptions& options)
      : loop_(loop), host_(host), port_(port), timeout_ms_(timeout_ms), done_(std::move(done)),
        options_(options), where_(endpoint(host, port)) {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    gai_.data = this;
    connect_.data = this;
  }

  void begin() {
    if (timeout_ms_ > 0) uv_timer_start(&timer_, &ConnectAttempt::on_timer, timeout_ms_, 0);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    std::string service = std::to_string(port_);
    int r = uv_getaddrinfo(loop_, &gai_, &ConnectAttempt::on_resolved, host_.c_str(), service.c_str(), &hints);
    if (r != 0) {
      deferred_ = Status::SystemNotAvailable("cannot resolve " + host_ + ": " + uv_error_text(r));
      uv_timer_start(&timer_, &ConnectAttempt::on_timer, 0, 0);  // report from the loop
      return;
    }
    gai_pending_ = true;
  }

 private:
  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
    auto* self = static_cast<ConnectAttempt*>(req->data);
    self->gai_pending_ = false;
    self->addrs_ = res;
    self->next_ = res;
    if (self->done_called_) return self->maybe_free();
    if (status < 0) {
      return self->finish(Status::SystemNotAvailable("cannot resolve " + self->host_ + ": " +
                                                     uv_error_text(status)));
    }
    self->try_next();
  }

  void try_next() {
    while (next_ != nullptr) {
      addrinfo* ai = next_;
      next_ = next_->ai_next;
      conn_ = Connection::Impl::create(loop_, options_);
      int r = uv_tcp_connect(&connect_, conn_->tcp(), ai->ai_addr, &ConnectAttempt::on_connected);
      if (r == 0) {
        connect_pending_ = true;
        return;
      }
      last_error_ = r;
      conn_->release();
      conn_ = nullptr;
    }
    finish(Status::SystemNotAvailable("cannot connect to " + where_ + ": " + uv_error_text(last_error_)));
  }

  static void on_connected(uv_connect_t* req, int status) {
    auto* self = static_cast<ConnectAttempt*>(req->data);
    self->connect_pending_ = false;
    if (self->done_called_) return self->maybe_free();
    if (status < 0) {
      self->last_error_ = status;
      self->conn_->release();
      self->conn_ = nullptr;
      return self->try_next();
    }
    Connection::Impl* c = self->conn_;
    self->conn_ = nullptr;
    c->established(false);
    self->finish(std::make_unique<Connection>(c));
  }

  static void on_timer(uv_timer_t* t) {
    auto* self = static_cast<ConnectAttempt*>(t->data);
    if (self->done_called_) return;
    if (!self->deferred_.ok()) return self->finish(self->deferred_);
    if (self->gai_pending_) uv_cancel(reinterpret_cast<uv_req_t*>(&self->gai_));
    if (self->conn_ != nullptr) {
      self->conn_->release();  // cancels the pending connect
      self->conn_ = nullptr;
    }
    self->finish(Status::Timeout("connect to " + self->where_ + " timed out after " +
                                 std::to_string(self->timeout_ms_) + " ms"));
  }

  void finish(Result<std::unique_ptr<Connection>> result) {
    done_called_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
      auto* self = static_cast<ConnectAttempt*>(h->data);
      self->timer_open_ = false;
      self->maybe_free();
    });
    ConnectHandler done = std::move(done_);
    done(std::move(result));
  }

  void maybe_free() {
    if (!done_called_ || gai_pending_ || connect_pending_ || timer_open_) return;
    if (addrs_ != nullptr) uv_freeaddrinfo(addrs_);
    delete this;
  }

  uv_loop_t* loop_;
  std::string host_;
  uint16_t port_;
  uint64_t timeout_ms_;
  ConnectHandler done_;
  ConnectionOptions options_;
  std::string where_;
  uv_timer_t timer_{};
  uv_getaddrinfo_t gai_{};
  uv_connect_t connect_{};
  addrinfo* addrs_ = nullptr;
  addrinfo* next_ = nullptr;
  Connection::Impl* conn_ = nullptr;
  int last_error_ = UV_EAI_NONAME;
  Status deferred_;
  bool gai_pending_ = false;
  bool connect_pending_ = false;
  bool timer_open_ = true;
  bool done_called_ = false;
};

}  // namespace

void tcp_connect(uv_loop_t* loop, const std::string& host, uint16_t port, uint64_t timeout_ms,
                 ConnectHandler done, const ConnectionOptions& options) {
  (new ConnectAttempt(loop, host, port, timeout_ms, std::move(done), options))->begin();
}

bool is_loopback_address(std::string_view address) {
  std::string host(address);
  if (!host.empty() && host.front() == '[') {
    const auto end = host.find(']');
    if (end == std::string::npos) return false;
    host = host.substr(1, end - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host.resize(host.find(':'));  // IPv4 with its port
  }
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) != 1) return false;
  return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
}

}  // namespace vmrepl
