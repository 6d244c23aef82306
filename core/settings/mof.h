// MOF instance text, the other spelling GetText(0) produces and administrators write by hand.
//
// Canonical layout (what encode_mof writes):
//   instance of Msvm_ReplicationSettingData\n
//   {\n
//   \tReplicationInterval = 300;\n          one line per property, in the instance's order
//   \tIncludedDisks = {"a", "b"};\n         arrays: braces, ", " between elements, {} when empty
//   \tCertificateThumbPrint = NULL;\n       null
//   };\n                                    the text ends with a newline
// Booleans are TRUE/FALSE, integers decimal, reals the shortest text that reads back exactly;
// strings, datetimes and references are double-quoted with the escapes \\ \" \b \t \n \f \r and
// \xHHHH for other control characters; other bytes (UTF-8 included) are written as they are.
//
// Decoding follows the MOF grammar for one instance: keywords in any case, // and /* */
// comments, adjacent string literals concatenated, integers in decimal or 0x hex, \xH..HHHH
// escapes (not NUL), `__*` system properties ignored. Values are typed lexically: a quoted
// number is not a uint16, a bare number is not a string. Qualifiers, aliases and more than one
// instance are not supported.
//
// Bounds: the text_limits.h constants (size, identifier length, number length, array length);
// the tokenizer reads the text once and recursion depth is fixed by the grammar.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "core/model/instance.h"
#include "core/model/status.h"

namespace vmrepl {

// Schema-free: writes any instance.
std::string encode_mof(const Instance& instance);

// Decodes an instance of a known class; errors as decode_cim_xml (32773 for syntax, limits,
// unknown names; 32776 for values that do not fit the schema), with line and column.
Result<Instance> decode_mof(std::string_view text, std::string_view expected_class = {});

}  // namespace vmrepl
