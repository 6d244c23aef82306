#include "core/settings/value_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/settings/text_limits.h"

namespace vmrepl::settings_internal {

namespace {

std::string type_label(const PropertySchema& p) { return std::string(cim_type_name(p.type)); }

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

}  // namespace

std::string preview(std::string_view text) {
  constexpr std::size_t kShown = 40;
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < kShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kShown) out += "...";
  out += "'";
  return out;
}

Status property_error(Code code, const PropertySchema& p, std::string_view detail) {
  std::string m = p.name;
  m += ": ";
  m += detail;
  return Status(code, std::move(m));
}

Status check_text(std::string_view text, std::string_view format) {
  if (text.size() > kMaxSettingTextBytes)
    return Status::InvalidParameter(std::string(format) + " setting data is " +
                                    std::to_string(text.size()) + " bytes; the limit is " +
                                    std::to_string(kMaxSettingTextBytes) + " bytes");
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return Status::InvalidParameter(std::string(format) + " setting data is empty");
  const std::size_t nul = text.find('\0');
  if (nul != std::string_view::npos)
    return Status::InvalidParameter(std::string(format) + " setting data contains a NUL byte at offset " +
                                    std::to_string(nul));
  return Status::OK();
}

std::string_view strip_bom(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  return text;
}

std::size_t utf8_length(std::string_view s) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < s.size(); ++count) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 4;
      cp = c & 0x07;
    } else {
      return std::string::npos;
    }
    if (i + n > s.size()) return std::string::npos;
    for (std::size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return std::string::npos;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::string::npos;
    i += n;
  }
  return count;
}

Result<const ClassSchema*> resolve_class(std::string_view named, std::string_view expected,
                                         std::string_view format) {
  if (named.empty()) {
    if (expected.empty())
      return Status::InvalidParameter(std::string(format) +
                                      " setting data names no class and none is expected");
    named = expected;
  } else if (!expected.empty() && !names_equal(named, expected)) {
    return Status::InvalidParameter("setting data is an instance of " + preview(named) +
                                    ", expected " + preview(expected));
  }
  return find_class_schema(named);
}

Result<Scalar> parse_integer(const PropertySchema& p, std::string_view text, bool allow_hex) {
  const std::string want = type_label(p);
  if (text.size() > kMaxNumberChars)
    return bad_type(p, "a number of " + std::to_string(text.size()) + " characters is out of range for " +
                           want);
  std::string_view t = text;
  bool negative = false;
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
    negative = t[0] == '-';
    t.remove_prefix(1);
  }
  int base = 10;
  if (allow_hex && t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
    base = 16;
    t.remove_prefix(2);
  }
  const bool digits_only = !t.empty() && std::all_of(t.begin(), t.end(), [&](char c) {
    return base == 16 ? is_hex(c) : is_digit(c);
  });
  if (!digits_only) return bad_type(p, preview(text) + " is not a " + want + " integer");
  uint64_t magnitude = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), magnitude, base);
  const bool overflow = ec == std::errc::result_out_of_range;
  if (!overflow && (ec != std::errc() || end != t.data() + t.size()))
    return bad_type(p, preview(text) + " is not a " + want + " integer");

  if (cim_type_is_unsigned(p.type)) {
    if (negative) return bad_type(p, preview(text) + " is negative; " + want + " is unsigned");
    if (overflow || magnitude > cim_type_max_unsigned(p.type))
      return bad_type(p, preview(text) + " is out of range for " + want + " (0.." +
                             std::to_string(cim_type_max_unsigned(p.type)) + ")");
    return Scalar{magnitude};
  }
  if (cim_type_is_signed(p.type)) {
    const std::string range = " (" + std::to_string(cim_type_min_signed(p.type)) + ".." +
                              std::to_string(cim_type_max_signed(p.type)) + ")";
    if (overflow) return bad_type(p, preview(text) + " is out of range for " + want + range);
    if (negative) {
      const uint64_t limit = uint64_t{0} - static_cast<uint64_t>(cim_type_min_signed(p.type));
      if (magnitude > limit) return bad_type(p, preview(text) + " is out of range for " + want + range);
      // Two's complement negation of a magnitude <= 2^63 is exact.
      return Scalar{static_cast<int64_t>(uint64_t{0} - magnitude)};
    }
    if (magnitude > static_cast<uint64_t>(cim_type_max_signed(p.type)))
      return bad_type(p, preview(text) + " is out of range for " + want + range);
    return Scalar{static_cast<int64_t>(magnitude)};
  }
  return bad_type(p, "an integer is not a " + want);
}

Result<Scalar> parse_real(const PropertySchema& p, std::string_view text) {
  if (text.size() > kMaxNumberChars)
    return bad_type(p, "a number of " + std::to_string(text.size()) + " characters is not a real64");
  std::string_view t = text;
  if (!t.empty() && t[0] == '+') t.remove_prefix(1);
  // from_chars would also take "inf" and "nan"; CIM reals are finite decimal literals.
  const bool plausible = !t.empty() && std::all_of(t.begin(), t.end(), [](char c) {
    return is_digit(c) || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+';
  });
  double v = 0;
  auto [end, ec] = plausible ? std::from_chars(t.data(), t.data() + t.size(), v)
                             : std::from_chars_result{t.data(), std::errc::invalid_argument};
  if (ec == std::errc::result_out_of_range)
    return bad_type(p, preview(text) + " is out of range for real64");
  if (ec != std::errc() || end != t.data() + t.size() || !std::isfinite(v))
    return bad_type(p, preview(text) + " is not a real64");
  return Scalar{v};
}

Result<Scalar> parse_boolean(const PropertySchema& p, std::string_view text) {
  if (names_equal(text, "TRUE")) return Scalar{true};
  if (names_equal(text, "FALSE")) return Scalar{false};
  return bad_type(p, preview(text) + " is not a boolean (TRUE or FALSE)");
}

Result<Scalar> scalar_from_text(const PropertySchema& p, std::string_view text, bool allow_hex) {
  Result<Scalar> v = Status::Unknown();
  if (p.type == CimType::Boolean) {
    v = parse_boolean(p, text);
  } else if (cim_type_is_unsigned(p.type) || cim_type_is_signed(p.type)) {
    v = parse_integer(p, text, allow_hex);
  } else if (p.type == CimType::Real64) {
    v = parse_real(p, text);
  } else {
    v = Scalar{std::string(text)};
  }
  if (!v) return v;
  VMREPL_RETURN_IF_ERROR(check_value(p, *v));
  return v;
}

std::string scalar_to_text(const Scalar& v) {
  char buf[64];
  switch (v.index()) {
    case 0: return std::get<bool>(v) ? "TRUE" : "FALSE";
    case 1: {
      auto r = std::to_chars(buf, buf + sizeof buf, std::get<uint64_t>(v));
      return std::string(buf, r.ptr);
    }
    case 2: {
      auto r = std::to_chars(buf, buf + sizeof buf, std::get<int64_t>(v));
      return std::string(buf, r.ptr);
    }
    case 3: {
      auto r = std::to_chars(buf, buf + sizeof buf, std::get<double>(v));  // shortest round trip
      return std::string(buf, r.ptr);
    }
    default: return std::get<std::string>(v);
  }
}

Property make_property(const PropertySchema& p, std::optional<std::vector<Scalar>> values) {
  return Property{p.name, p.type, p.is_array, std::move(values)};
}

}  // namespace vmrepl::settings_internal
