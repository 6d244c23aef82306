// CIM datetime strings (spec §11): points in time `yyyymmddHHMMSS.mmmmmmsUUU` (sUUU = +/- minutes
// from UTC) and intervals `ddddddddHHMMSS.mmmmmm:000`.
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/model/status.h"

namespace vmrepl {

struct CimDateTime {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  int microsecond = 0;
  int utc_offset_minutes = 0;  // -999..999

  // REQUIRES: a value inside the ranges parse() accepts.
  std::string format() const;
  // Microseconds since the Unix epoch, UTC.
  int64_t to_unix_us() const;
  static CimDateTime from_unix_us(int64_t us);  // UTC, offset +000
  static CimDateTime now();
  bool operator==(const CimDateTime&) const = default;
};

struct CimInterval {
  uint32_t days = 0;  // 0..99999999
  int hours = 0, minutes = 0, seconds = 0, microseconds = 0;

  std::string format() const;
  int64_t total_us() const;
  static CimInterval from_us(int64_t us);  // REQUIRES: us >= 0
  bool operator==(const CimInterval&) const = default;
};

// Exactly 25 characters, digits in range, calendar-valid date. Errors are IncorrectDataType.
Result<CimDateTime> parse_cim_datetime(std::string_view s);
Result<CimInterval> parse_cim_interval(std::string_view s);
inline bool is_cim_datetime(std::string_view s) { return parse_cim_datetime(s).ok(); }
inline bool is_cim_interval(std::string_view s) { return parse_cim_interval(s).ok(); }

}  // namespace vmrepl
