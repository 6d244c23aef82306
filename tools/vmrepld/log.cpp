#include "tools/vmrepld/log.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace vmrepld {

namespace {

std::string now_utc() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];  // sized for any int the compiler can imagine
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

// Control characters would break the one-record-one-line rule (a job's ErrorDescription may
// hold a newline): they are written as escapes.
void append_escaped(std::string& out, std::string_view s) {
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
}

}  // namespace

std::string_view log_level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Error: return "error";
    case LogLevel::Warn: return "warn";
    case LogLevel::Info: return "info";
    case LogLevel::Debug: return "debug";
  }
  return "info";
}

std::optional<LogLevel> parse_log_level(std::string_view name) {
  for (LogLevel l : {LogLevel::Error, LogLevel::Warn, LogLevel::Info, LogLevel::Debug})
    if (name == log_level_name(l)) return l;
  return std::nullopt;
}

std::string Logger::format(std::string_view time, LogLevel l, std::string_view component, std::string_view message) {
  std::string out;
  out.reserve(time.size() + component.size() + message.size() + 16);
  out += time;
  out += ' ';
  std::string_view name = log_level_name(l);
  out += name;
  out.append(5 - name.size() + 1, ' ');
  append_escaped(out, component);
  out += ": ";
  append_escaped(out, message);
  out += '\n';
  return out;
}

void Logger::log(LogLevel l, std::string_view component, std::string_view message) {
  if (!enabled(l)) return;
  const std::string rec = format(now_utc(), l, component, message);
  std::lock_guard<std::mutex> lk(mu_);
  size_t off = 0;
  while (off < rec.size()) {
    ssize_t n = ::write(fd_, rec.data() + off, rec.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // stderr gone: nothing better to do than carry on
    }
    off += static_cast<size_t>(n);
  }
}

}  // namespace vmrepld
