#include "core/model/cim_datetime.h"

#include <cstdio>

namespace vmrepl {

namespace {

bool digits(std::string_view s, size_t pos, size_t n, int64_t& out) {
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int64_t y, int64_t m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

// Days since 1970-01-01 for a civil date (Howard Hinnant's algorithm).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void civil_from_days(int64_t z, int& y, int& m, int& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = static_cast<int>(yoe + era * 400 + (m <= 2));
}

Status bad(std::string_view what, std::string_view s, std::string_view why) {
  std::string shown(s.substr(0, 40));
  return Status::IncorrectDataType("'" + shown + (s.size() > 40 ? "...'" : "'") + " is not a CIM " +
                                   std::string(what) + ": " + std::string(why));
}

}  // namespace

Result<CimDateTime> parse_cim_datetime(std::string_view s) {
  if (s.size() != 25) return bad("datetime", s, "expected 25 characters yyyymmddHHMMSS.mmmmmmsUUU");
  if (s[14] != '.') return bad("datetime", s, "expected '.' at position 15");
  if (s[21] == ':') return bad("datetime", s, "this is an interval (ends in :000), not a point in time");
  if (s[21] != '+' && s[21] != '-') return bad("datetime", s, "expected '+' or '-' at position 22");
  int64_t y, mo, d, h, mi, se, us, off;
  if (!digits(s, 0, 4, y) || !digits(s, 4, 2, mo) || !digits(s, 6, 2, d) || !digits(s, 8, 2, h) ||
      !digits(s, 10, 2, mi) || !digits(s, 12, 2, se) || !digits(s, 15, 6, us) || !digits(s, 22, 3, off))
    return bad("datetime", s, "non-digit in a numeric field");
  if (mo < 1 || mo > 12) return bad("datetime", s, "month out of range");
  if (d < 1 || d > days_in_month(y, mo)) return bad("datetime", s, "day out of range");
  if (h > 23 || mi > 59 || se > 60) return bad("datetime", s, "time of day out of range");
  CimDateTime t;
  t.year = static_cast<int>(y);
  t.month = static_cast<int>(mo);
  t.day = static_cast<int>(d);
  t.hour = static_cast<int>(h);
  t.minute = static_cast<int>(mi);
  t.second = static_cast<int>(se);
  t.microsecond = static_cast<int>(us);
  t.utc_offset_minutes = static_cast<int>(s[21] == '-' ? -off : off);
  return t;
}

std::string CimDateTime::format() const {
  char buf[96];
  int off = utc_offset_minutes < 0 ? -utc_offset_minutes : utc_offset_minutes;
  std::snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02d.%06d%c%03d", year, month, day, hour,
                minute, second, microsecond, utc_offset_minutes < 0 ? '-' : '+', off);
  return buf;
}

int64_t CimDateTime::to_unix_us() const {
  int64_t days = days_from_civil(year, month, day);
  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - int64_t(utc_offset_minutes) * 60;
  return secs * 1000000 + microsecond;
}

CimDateTime CimDateTime::from_unix_us(int64_t us) {
  int64_t secs = us >= 0 ? us / 1000000 : (us - 999999) / 1000000;
  int64_t rem_us = us - secs * 1000000;
  int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  int64_t sod = secs - days * 86400;
  CimDateTime t;
  civil_from_days(days, t.year, t.month, t.day);
  t.hour = static_cast<int>(sod / 3600);
  t.minute = static_cast<int>(sod / 60 % 60);
  t.second = static_cast<int>(sod % 60);
  t.microsecond = static_cast<int>(rem_us);
  return t;
}

CimDateTime CimDateTime::now() {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  return from_unix_us(us);
}

Result<CimInterval> parse_cim_interval(std::string_view s) {
  if (s.size() != 25) return bad("interval", s, "expected 25 characters ddddddddHHMMSS.mmmmmm:000");
  if (s[14] != '.') return bad("interval", s, "expected '.' at position 15");
  if (s.substr(21) != ":000") return bad("interval", s, "an interval ends in ':000'");
  int64_t d, h, mi, se, us;
  if (!digits(s, 0, 8, d) || !digits(s, 8, 2, h) || !digits(s, 10, 2, mi) || !digits(s, 12, 2, se) ||
      !digits(s, 15, 6, us))
    return bad("interval", s, "non-digit in a numeric field");
  if (h > 23 || mi > 59 || se > 59) return bad("interval", s, "hours, minutes or seconds out of range");
  CimInterval iv;
  iv.days = static_cast<uint32_t>(d);
  iv.hours = static_cast<int>(h);
  iv.minutes = static_cast<int>(mi);
  iv.seconds = static_cast<int>(se);
  iv.microseconds = static_cast<int>(us);
  return iv;
}

std::string CimInterval::format() const {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%08u%02d%02d%02d.%06d:000", days, hours, minutes, seconds,
                microseconds);
  return buf;
}

int64_t CimInterval::total_us() const {
  return ((int64_t(days) * 86400 + hours * 3600 + minutes * 60 + seconds) * 1000000) + microseconds;
}

CimInterval CimInterval::from_us(int64_t us) {
  CimInterval iv;
  iv.microseconds = static_cast<int>(us % 1000000);
  int64_t s = us / 1000000;
  iv.seconds = static_cast<int>(s % 60);
  iv.minutes = static_cast<int>(s / 60 % 60);
  iv.hours = static_cast<int>(s / 3600 % 24);
  int64_t d = s / 86400;
  iv.days = static_cast<uint32_t>(d > 99999999 ? 99999999 : d);
  return iv;
}

}  // namespace vmrepl
