// Small POSIX file helpers for the stores: descriptors that close themselves, directory-relative
// operations that never follow symbolic links, and the durable-write steps (fsync of files and
// directories, temp + fsync + rename) that the crash-safety of the stores rests on.
//
// Everything works relative to an open directory descriptor with single, checked path
// components, so a name can never climb out of the directory it is meant for, and a symlink
// planted inside a store is removed, never followed.
//
// Thread-safety: free functions over descriptors; safe from any thread as long as two threads
// do not change the same directory at once (callers serialize that).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/status.h"

namespace vmrepl::fs {

// An owned file descriptor, closed on destruction. Move-only.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// Failed: "<what>: <strerror(err)>".
Status errno_status(std::string_view what, int err);

// OK when `name` is one usable path component: non-empty, not "." or "..", no '/' and no NUL.
Status check_component(std::string_view name);

// True when `path`, lexically normalized, is `root` itself or lies below it. Both absolute.
bool is_inside(std::string_view root, std::string_view path);

// mkdir -p: creates `path` and any missing parents with `mode`. An existing directory is fine.
Status make_dirs(const std::string& path, mode_t mode);

// Opens the directory `path` (symlinks in it are followed: this is how a root is entered).
Result<Fd> open_dir(const std::string& path);
// Opens the directory `name` inside `dir_fd`; fails when `name` is a symlink or not a directory.
Result<Fd> open_dir_at(int dir_fd, std::string_view name);
// Creates the directory `name` inside `dir_fd`. `exist_ok`: an existing directory is fine.
Status make_dir_at(int dir_fd, std::string_view name, mode_t mode, bool exist_ok);

// The names in a directory, without "." and "..".
Result<std::vector<std::string>> list_dir(int dir_fd);

// Removes `name` inside `dir_fd` and, if it is a directory, everything below it. Symlinks are
// unlinked, never followed; a missing `name` is fine. Refuses trees deeper than 16 levels
// (nothing the stores make is deeper) rather than recursing without bound.
Status remove_tree_at(int dir_fd, std::string_view name);

Status fsync_fd(int fd, std::string_view what);

// Writes `content` to `name` inside `dir_fd` durably and atomically: `name`.tmp, fsync, rename
// over `name`, fsync the directory. A crash leaves the old file or the new one, never a mix
// (plus possibly a stale `name`.tmp, which readers ignore).
Status write_file_atomic(int dir_fd, std::string_view name, std::string_view content, mode_t mode);
// write_file_atomic() in two steps, for a caller that does the slow part early. The first
// writes `content` to `name` and fsyncs the file, not the directory (`replace`: an existing
// `name` is truncated; otherwise it is an error, so a name can be reserved), and removes the
// file if the write or the fsync fails. The second renames `from` over `to` and fsyncs the
// directory, which is what makes the rename survive a crash.
Status write_synced_file_at(int dir_fd, std::string_view name, std::string_view content, mode_t mode,
                            bool replace);
Status rename_durably_at(int dir_fd, std::string_view from, std::string_view to);

// Creates the new file `name` inside `dir_fd` with length `size` and no allocated blocks
// (ftruncate; nothing is written), then fsyncs it. Fails if `name` exists.
Status create_sparse_file_at(int dir_fd, std::string_view name, uint64_t size, mode_t mode);

}  // namespace vmrepl::fs
