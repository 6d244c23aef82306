// Logger: vmrepld's log, single-line records on stderr (journald adds nothing to parse):
//
//   2026-12-04T13:45:01.123Z info  vmrepld: listening on unix:/run/vmrepl/vmrepld.sock
//
// UTC time with milliseconds, the level padded to five characters, the component, the
// message. Control characters in a message are escaped, so one record is always one line.
//
// Thread-safety: every method may be called from any thread (the service's loop logs job
// outcomes while main logs signals); a record is written with one write(2) under a mutex,
// so records of different threads never interleave.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace vmrepld {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };

// "error", "warn", "info", "debug".
std::string_view log_level_name(LogLevel l);
std::optional<LogLevel> parse_log_level(std::string_view name);

class Logger {
 public:
  explicit Logger(LogLevel level = LogLevel::Info, int fd = 2) : level_(level), fd_(fd) {}
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  void set_level(LogLevel l) { level_.store(l); }
  LogLevel level() const { return level_.load(); }
  bool enabled(LogLevel l) const { return l <= level_.load(); }

  void log(LogLevel l, std::string_view component, std::string_view message);
  void error(std::string_view component, std::string_view m) { log(LogLevel::Error, component, m); }
  void warn(std::string_view component, std::string_view m) { log(LogLevel::Warn, component, m); }
  void info(std::string_view component, std::string_view m) { log(LogLevel::Info, component, m); }
  void debug(std::string_view component, std::string_view m) { log(LogLevel::Debug, component, m); }

 private:
  // One record as written, newline included.
  static std::string format(std::string_view time, LogLevel l, std::string_view component, std::string_view message);

  std::atomic<LogLevel> level_;
  const int fd_;
  std::mutex mu_;
};

}  // namespace vmrepld
