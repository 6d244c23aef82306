// Setting data from and to text in any of the three formats the model's string parameters
// accept: CIM-XML embedded instances (cim_xml.h), MOF instance text (mof.h) and JSON (json.h).
// Each format's header documents its canonical layout; for every format f and every instance x
// that passes check_instance, decode_instance(encode_instance(x, f)) == x (same class, same
// properties in the same order, same types and values), and encode_instance(decode(t), f) == t
// for canonical text t.
//
// Bounds (text_limits.h): input at most kMaxSettingTextBytes (1 MiB), no NUL bytes, arrays at
// most kMaxArrayElements (4096), string(N) per the schema, XML nesting at most kMaxXmlDepth,
// JSON nesting at most kMaxJsonDepth, numeric literals at most kMaxNumberChars (longer ones are
// IncorrectDataType, never an overflow).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/model/instance.h"
#include "core/model/status.h"

namespace vmrepl {

enum class Format : uint8_t { CimXml, Mof, Json };

// "CIM-XML", "MOF", "JSON".
std::string_view format_name(Format f);

// From the first character after leading whitespace (and a UTF-8 BOM): '<' CIM-XML, '{' JSON,
// the keyword `instance` MOF. Anything else -> InvalidParameter
// "setting data is not CIM-XML, MOF or JSON".
Result<Format> detect_format(std::string_view text);

// Detects the format and decodes. With expected_class, text naming another class is
// InvalidParameter naming both; JSON without __CLASS takes expected_class.
Result<Instance> decode_instance(std::string_view text, std::string_view expected_class = {});

// Schema-free: any instance, in the format's canonical layout.
std::string encode_instance(const Instance& instance, Format format);

}  // namespace vmrepl
