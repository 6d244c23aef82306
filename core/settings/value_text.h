// Shared pieces of the settings codecs: the CIM text spelling of scalar values (as CIM-XML
// VALUE elements and MOF literals write them), error builders that name the property, and the
// input checks every decoder runs first. Internal to core/settings.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/model/instance.h"
#include "core/model/status.h"
#include "core/settings/schema.h"

namespace vmrepl::settings_internal {

// 'text' in single quotes, cut to 40 bytes with "..." so that messages stay short whatever
// the input; control bytes are shown as \xHH.
std::string preview(std::string_view text);

// "<Property>: <detail>" with the given code.
Status property_error(Code code, const PropertySchema& p, std::string_view detail);
inline Status bad_type(const PropertySchema& p, std::string_view detail) {
  return property_error(Code::IncorrectDataType, p, detail);
}
inline Status bad_value(const PropertySchema& p, std::string_view detail) {
  return property_error(Code::InvalidParameter, p, detail);
}

// Size (kMaxSettingTextBytes), emptiness and NUL bytes of a whole input text.
Status check_text(std::string_view text, std::string_view format);
// Drops a leading UTF-8 byte order mark.
std::string_view strip_bom(std::string_view text);

// Number of code points, or npos when `s` is not valid UTF-8 (overlong forms, surrogates and
// values above U+10FFFF are invalid).
std::size_t utf8_length(std::string_view s);

// The class named by a text checked against the class the caller expects (either may be empty,
// not both), then looked up in the registry.
Result<const ClassSchema*> resolve_class(std::string_view named, std::string_view expected,
                                         std::string_view format);

// Parses an integer literal for an integer property: optional sign, decimal digits, or with
// allow_hex also 0x-prefixed hex digits. Range is the property's type.
Result<Scalar> parse_integer(const PropertySchema& p, std::string_view text, bool allow_hex);
// Parses a real literal (finite only) for a Real64 property.
Result<Scalar> parse_real(const PropertySchema& p, std::string_view text);
// TRUE / FALSE in any case.
Result<Scalar> parse_boolean(const PropertySchema& p, std::string_view text);

// A value from its CIM text spelling for the property's type, checked with check_value.
Result<Scalar> scalar_from_text(const PropertySchema& p, std::string_view text, bool allow_hex);
// The CIM text spelling: TRUE/FALSE, decimal integers, shortest round-trip reals, strings as is.
std::string scalar_to_text(const Scalar& v);

// A property of the schema's name, type and array-ness.
Property make_property(const PropertySchema& p, std::optional<std::vector<Scalar>> values);

}  // namespace vmrepl::settings_internal
