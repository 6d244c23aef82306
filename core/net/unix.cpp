#include "core/net/unix.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "core/net/connection_impl.h"

namespace vmrepl {

std::size_t unix_path_max() { return sizeof(sockaddr_un{}.sun_path) - 1; }

namespace {

std::string where(const std::string& path) { return "unix:" + path; }

Status check_path(const std::string& path) {
  if (path.empty()) return Status::InvalidParameter("unix socket path is empty");
  if (path.size() > unix_path_max()) {
    return Status::InvalidParameter("unix socket path '" + path + "' is " + std::to_string(path.size()) +
                                    " bytes; it exceeds the " + std::to_string(unix_path_max()) +
                                    "-byte limit of sockaddr_un");
  }
  return Status::OK();
}

sockaddr_un address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  path.copy(a.sun_path, path.size());
  return a;
}

// Whether a process accepts connections on the socket file `path`: a non-blocking connect
// that is refused means the file is left over from a listener that is gone.
bool someone_listens(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return true;  // cannot tell: leave the file alone
  sockaddr_un a = address(path);
  int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  int err = r == 0 ? 0 : errno;
  ::close(fd);
  return err != ECONNREFUSED;  // EAGAIN: a full backlog, so someone listens
}

}  // namespace

// ---- UnixListener ----------------------------------------------------------------------

class UnixListener::Impl {
 public:
  Impl(uv_loop_t* loop, std::string path, ConnectionHandler handler, const ConnectionOptions& options)
      : path_(std::move(path)), loop_(loop), handler_(std::move(handler)), options_(options) {
    uv_pipe_init(loop_, &server_, 0);
    server_.data = this;
  }

  Status bind_and_listen(unsigned mode) {
    VMREPL_RETURN_IF_ERROR(check_path(path_));
    if ((mode & ~0777u) != 0) {
      char text[16];
      std::snprintf(text, sizeof text, "%o", mode);
      return Status::InvalidParameter("unix socket mode " + std::string(text) + " has bits outside 0777");
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(errno);
    // Linux creates the socket file with the socket inode's mode less the umask: set on the
    // socket first, the file is never wider than `mode`.
    if (::fchmod(fd, mode) != 0) {
      int e = errno;
      ::close(fd);
      return fail(e);
    }
    sockaddr_un a = address(path_);
    int r = ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    if (r != 0 && errno == EADDRINUSE) {
      struct stat st {};
      if (::lstat(path_.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
        ::close(fd);
        return Status::SystemInUse("cannot listen on " + where(path_) + ": the path exists and is not a socket");
      }
      if (someone_listens(path_)) {
        ::close(fd);
        return Status::SystemInUse("cannot listen on " + where(path_) + ": another process listens on it");
      }
      ::unlink(path_.c_str());  // stale
      r = ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    }
    if (r != 0) {
      int e = errno;
      ::close(fd);
      return e == EADDRINUSE ? Status::SystemInUse("cannot listen on " + where(path_) + ": " + uv_error_text(-e))
                             : fail(e);
    }
    bound_ = true;
    struct stat st {};
    // The umask may have narrowed the mode at bind: make it exactly `mode`.
    if (::chmod(path_.c_str(), mode) != 0 || ::stat(path_.c_str(), &st) != 0) {
      int e = errno;
      ::close(fd);
      return fail(e);
    }
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    int u = uv_pipe_open(&server_, fd);
    if (u != 0) {
      ::close(fd);
      return fail(-u);
    }
    u = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), SOMAXCONN, &Impl::on_connection);
    if (u != 0) return fail(-u);
    return Status::OK();
  }

  // The handler is kept until the handle is closed: release() may run inside it.
  void release() {
    released_ = true;
    if (bound_) unlink_if_ours();
    uv_close(reinterpret_cast<uv_handle_t*>(&server_), [](uv_handle_t* h) { delete static_cast<Impl*>(h->data); });
  }

  std::string path_;
  uint64_t accepted_ = 0;

 private:
  Status fail(int err) {
    return Status::SystemNotAvailable("cannot listen on " + where(path_) + ": " + uv_error_text(-err));
  }

  // Another listener may have replaced a file we left (or an operator removed it): remove
  // only the very socket file we created.
  void unlink_if_ours() {
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
  }

  static void on_connection(uv_stream_t* server, int status) {
    auto* self = static_cast<Impl*>(server->data);
    if (status < 0 || self->released_) return;  // EMFILE...: the next one may work
    ++self->accepted_;
    Connection::Impl* c = Connection::Impl::create(self->loop_, self->options_, Connection::Impl::Transport::Unix);
    if (uv_accept(server, c->stream()) != 0) {
      c->release();
      return;
    }
    c->established(true, self->path_);
    auto conn = std::make_unique<Connection>(c);
    if (self->handler_ && !self->released_) self->handler_(std::move(conn));
  }

  uv_loop_t* loop_;
  uv_pipe_t server_{};
  ConnectionHandler handler_;
  ConnectionOptions options_;
  bool released_ = false;
  bool bound_ = false;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

Result<std::unique_ptr<UnixListener>> UnixListener::listen(uv_loop_t* loop, const std::string& path, unsigned mode,
                                                           ConnectionHandler on_connection,
                                                           const ConnectionOptions& options) {
  auto* impl = new Impl(loop, path, std::move(on_connection), options);
  Status s = impl->bind_and_listen(mode);
  if (!s.ok()) {
    impl->release();
    return s;
  }
  return std::unique_ptr<UnixListener>(new UnixListener(impl));
}

UnixListener::~UnixListener() { impl_->release(); }
const std::string& UnixListener::path() const { return impl_->path_; }
uint64_t UnixListener::accepted() const { return impl_->accepted_; }

// ---- unix_connect ----------------------------------------------------------------------

namespace {

// One connect under one deadline. It frees itself when the result was delivered and no
// libuv request or handle refers to it any more.
class UnixConnectAttempt {
 public:
  UnixConnectAttempt(uv_loop_t* loop, const std::string& path, uint64_t timeout_ms, ConnectHandler done,
                     const ConnectionOptions& options)
      : loop_(loop), path_(path), timeout_ms_(timeout_ms), done_(std::move(done)), options_(options) {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    connect_.data = this;
  }

  void begin() {
    deferred_ = check_path(path_);
    if (!deferred_.ok()) {
      uv_timer_start(&timer_, &UnixConnectAttempt::on_timer, 0, 0);  // report from the loop
      return;
    }
    if (timeout_ms_ > 0) uv_timer_start(&timer_, &UnixConnectAttempt::on_timer, timeout_ms_, 0);
    conn_ = Connection::Impl::create(loop_, options_, Connection::Impl::Transport::Unix);
    // Reports every error through the callback, from a later loop iteration.
    uv_pipe_connect(&connect_, conn_->pipe(), path_.c_str(), &UnixConnectAttempt::on_connected);
    connect_pending_ = true;
  }

 private:
  static void on_connected(uv_connect_t* req, int status) {
    auto* self = static_cast<UnixConnectAttempt*>(req->data);
    self->connect_pending_ = false;
    if (self->done_called_) return self->maybe_free();
    Connection::Impl* c = self->conn_;
    self->conn_ = nullptr;
    if (status < 0) {
      c->release();
      return self->finish(Status::SystemNotAvailable("cannot connect to " + where(self->path_) + ": " +
                                                     uv_error_text(status)));
    }
    c->established(false, self->path_);
    self->finish(std::make_unique<Connection>(c));
  }

  static void on_timer(uv_timer_t* t) {
    auto* self = static_cast<UnixConnectAttempt*>(t->data);
    if (self->done_called_) return;
    if (!self->deferred_.ok()) return self->finish(self->deferred_);
    if (self->conn_ != nullptr) {
      self->conn_->release();  // cancels the pending connect
      self->conn_ = nullptr;
    }
    self->finish(Status::Timeout("connect to " + where(self->path_) + " timed out after " +
                                 std::to_string(self->timeout_ms_) + " ms"));
  }

  void finish(Result<std::unique_ptr<Connection>> result) {
    done_called_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
      auto* self = static_cast<UnixConnectAttempt*>(h->data);
      self->timer_open_ = false;
      self->maybe_free();
    });
    ConnectHandler done = std::move(done_);
    done(std::move(result));
  }

  void maybe_free() {
    if (!done_called_ || connect_pending_ || timer_open_) return;
    delete this;
  }

  uv_loop_t* loop_;
  std::string path_;
  uint64_t timeout_ms_;
  ConnectHandler done_;
  ConnectionOptions options_;
  uv_timer_t timer_{};
  uv_connect_t connect_{};
  Connection::Impl* conn_ = nullptr;
  Status deferred_;
  bool connect_pending_ = false;
  bool timer_open_ = true;
  bool done_called_ = false;
};

}  // namespace

void unix_connect(uv_loop_t* loop, const std::string& path, uint64_t timeout_ms, ConnectHandler done,
                  const ConnectionOptions& options) {
  (new UnixConnectAttempt(loop, path, timeout_ms, std::move(done), options))->begin();
}

}  // namespace vmrepl
