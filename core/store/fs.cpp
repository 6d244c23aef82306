#include "core/store/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace vmrepl::fs {

namespace {

constexpr int kMaxTreeDepth = 16;

std::string str(std::string_view s) { return std::string(s); }

Status remove_tree_depth(int dir_fd, std::string_view name, int depth) {
  VMREPL_RETURN_IF_ERROR(check_component(name));
  const std::string n = str(name);
  struct stat st {};
  if (fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::OK();
    return errno_status("stat " + n, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(dir_fd, n.c_str(), 0) != 0 && errno != ENOENT)
      return errno_status("unlink " + n, errno);
    return Status::OK();
  }
  if (depth >= kMaxTreeDepth) return Status::Failed("remove " + n + ": directory tree too deep");
  {
    auto sub = open_dir_at(dir_fd, name);
    if (!sub.ok()) return sub.status();
    // Collect first, then delete: removing entries while a readdir stream is open is
    // unspecified by POSIX.
    auto names = list_dir(sub->get());
    if (!names.ok()) return names.status().Annotate(n);
    for (const auto& child : *names)
      VMREPL_RETURN_IF_ERROR(remove_tree_depth(sub->get(), child, depth + 1).Annotate(n));
  }
  if (unlinkat(dir_fd, n.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return errno_status("rmdir " + n, errno);
  return Status::OK();
}

Status write_all(int fd, std::string_view data, std::string_view what) {
  while (!data.empty()) {
    ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno_status(what, errno);
    }
    data.remove_prefix(static_cast<size_t>(w));
  }
  return Status::OK();
}

}  // namespace

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Status errno_status(std::string_view what, int err) {
  std::string m(what);
  m += ": ";
  m += std::strerror(err);
  return Status::Failed(std::move(m));
}

Status check_component(std::string_view name) {
  if (name.empty()) return Status::Failed("empty path component");
  if (name == "." || name == "..")
    return Status::Failed("path component '" + str(name) + "' is not allowed");
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos)
    return Status::Failed("path component contains '/' or NUL");
  return Status::OK();
}

bool is_inside(std::string_view root, std::string_view path) {
  namespace stdfs = std::filesystem;
  if (root.empty() || path.empty() || root.front() != '/' || path.front() != '/') return false;
  if (root.find('\0') != std::string_view::npos || path.find('\0') != std::string_view::npos)
    return false;
  std::string r = stdfs::path(root).lexically_normal().string();
  std::string p = stdfs::path(path).lexically_normal().string();
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (p == r) return true;
  if (r == "/") return true;  // every absolute path is below "/"
  return p.size() > r.size() && p.compare(0, r.size(), r) == 0 && p[r.size()] == '/';
}

Status make_dirs(const std::string& path, mode_t mode) {
  if (path.empty() || path.front() != '/')
    return Status::Failed("mkdir " + path + ": not an absolute path");
  std::string cur;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    cur = path.substr(0, next);
    if (next > pos && ::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST)
      return errno_status("mkdir " + cur, errno);
    pos = next + 1;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_status("stat " + path, errno);
  if (!S_ISDIR(st.st_mode)) return Status::Failed(path + " is not a directory");
  return Status::OK();
}

Result<Fd> open_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status("open " + path, errno);
  return Fd(fd);
}

Result<Fd> open_dir_at(int dir_fd, std::string_view name) {
  VMREPL_RETURN_IF_ERROR(check_component(name));
  const std::string n = str(name);
  int fd = ::openat(dir_fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    // ELOOP from O_NOFOLLOW: the name is a symlink; ENOTDIR: something else.
    if (errno == ELOOP) return Status::Failed("open " + n + ": is a symbolic link");
    return errno_status("open " + n, errno);
  }
  return Fd(fd);
}

Status make_dir_at(int dir_fd, std::string_view name, mode_t mode, bool exist_ok) {
  VMREPL_RETURN_IF_ERROR(check_component(name));
  const std::string n = str(name);
  if (::mkdirat(dir_fd, n.c_str(), mode) == 0) return Status::OK();
  if (errno == EEXIST && exist_ok) {
    struct stat st {};
    if (fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
      return Status::OK();
    return Status::Failed("mkdir " + n + ": exists and is not a directory");
  }
  return errno_status("mkdir " + n, errno);
}

Result<std::vector<std::string>> list_dir(int dir_fd) {
  // fdopendir takes ownership of its descriptor, so give it a duplicate.
  int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return errno_status("dup", errno);
  DIR* d = ::fdopendir(dup_fd);
  if (d == nullptr) {
    int err = errno;
    ::close(dup_fd);
    return errno_status("opendir", err);
  }
  ::rewinddir(d);  // the duplicate shares the original's offset
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    dirent* e = ::readdir(d);
    if (e == nullptr) {
      int err = errno;
      ::closedir(d);
      if (err != 0) return errno_status("readdir", err);
      break;
    }
    std::string_view n(e->d_name);
    if (n != "." && n != "..") names.emplace_back(n);
  }
  return names;
}

Status remove_tree_at(int dir_fd, std::string_view name) {
  return remove_tree_depth(dir_fd, name, 0);
}

Status fsync_fd(int fd, std::string_view what) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return errno_status("fsync " + str(what), errno);
  }
  return Status::OK();
}

Status write_file_atomic(int dir_fd, std::string_view name, std::string_view content, mode_t mode) {
  VMREPL_RETURN_IF_ERROR(check_component(name));
  const std::string tmp_name = str(name) + ".tmp";
  VMREPL_RETURN_IF_ERROR(write_synced_file_at(dir_fd, tmp_name, content, mode, /*replace=*/true));
  return rename_durably_at(dir_fd, tmp_name, name);
}

Status write_synced_file_at(int dir_fd, std::string_view name, std::string_view content, mode_t mode,
                            bool replace) {
  VMREPL_RETURN_IF_ERROR(check_component(name));
  const std::string n = str(name);
  Fd fd(::openat(dir_fd, n.c_str(),
                 O_WRONLY | O_CREAT | (replace ? O_TRUNC : O_EXCL) | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd) return errno_status("create " + n, errno);
  Status st = write_all(fd.get(), content, "write " + n);
  if (st.ok()) st = fsync_fd(fd.get(), n);
  if (!st.ok()) (void)::unlinkat(dir_fd, n.c_str(), 0);
  return st;
}

Status rename_durably_at(int dir_fd, std::string_view from, std::string_view to) {
  VMREPL_RETURN_IF_ERROR(check_component(from));
  VMREPL_RETURN_IF_ERROR(check_component(to));
  const std::string f = str(from), t = str(to);
  if (::renameat(dir_fd, f.c_str(), dir_fd, t.c_str()) != 0)
    return errno_status("rename " + f + " to " + t, errno);
  return fsync_fd(dir_fd, "directory of " + t);
}

Status create_sparse_file_at(int dir_fd, std::string_view name, uint64_t size, mode_t mode) {
  VMREPL_RETURN_IF_ERROR(check_component(name));
  const std::string n = str(name);
  if (size > static_cast<uint64_t>(INT64_MAX))
    return Status::Failed("create " + n + ": size too large");
  Fd fd(::openat(dir_fd, n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd) return errno_status("create " + n, errno);
  // ftruncate extends with a hole: the file reads as zeros and allocates no blocks.
  while (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    if (errno != EINTR) return errno_status("ftruncate " + n, errno);
  }
  return fsync_fd(fd.get(), n);
}

}  // namespace vmrepl::fs
