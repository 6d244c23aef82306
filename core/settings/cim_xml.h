// CIM-XML embedded instances, the text GetText(1) produces and the WMI string parameters carry
// (spec §11).
//
// Canonical layout (what encode_cim_xml writes, byte for byte, and the layout of the spec's
// §11 example): no XML declaration; `<INSTANCE CLASSNAME="C">`, a newline, then one line per
// property in the instance's order, each ending in a newline, then `</INSTANCE>` with no
// trailing newline. A property line is
//   `<PROPERTY NAME="P" TYPE="t"><VALUE>v</VALUE></PROPERTY>`, or for arrays
//   `<PROPERTY.ARRAY NAME="P" TYPE="t"><VALUE.ARRAY><VALUE>a</VALUE>...</VALUE.ARRAY></PROPERTY.ARRAY>`;
// null is the element with no VALUE / VALUE.ARRAY (`<PROPERTY ...></PROPERTY>`). Booleans are
// TRUE/FALSE, integers decimal, reals the shortest text that reads back exactly, references
// `TYPE="reference"` with the object path as VALUE text. In text `&`, `<`, `>` are escaped, CR
// and other control characters are written as `&#N;`; `"` and backslashes stay literal.
//
// Decoding accepts more: a leading `<?xml ...?>`, a UTF-8 BOM, comments, any whitespace between
// elements, CDATA, CLASSORIGIN / PROPAGATED and other unknown attributes, QUALIFIER elements
// (ignored), `__*` system properties (ignored), TRUE/FALSE in any case, whitespace around
// numbers, booleans and datetimes (strings keep theirs exactly), PROPERTY.REFERENCE with
// VALUE.REFERENCE (text, or an INSTANCEPATH / LOCALINSTANCEPATH / INSTANCENAME turned into a
// WMI object path string) and VALUE.REFARRAY. TYPE, when present, must match the schema;
// string and reference count as one type (object paths travel as either) and the value keeps
// the schema's type.
//
// Bounds: the text_limits.h constants (size, kMaxXmlDepth, kMaxArrayElements); the parser is
// pugixml (non-recursive, no entity expansion).
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "core/model/instance.h"
#include "core/model/status.h"

namespace vmrepl {

// Schema-free: writes any instance, including classes without a schema (jobs, errors).
std::string encode_cim_xml(const Instance& instance);

// Decodes an instance of a known class. With expected_class, an instance of another class is
// InvalidParameter naming both. Malformed XML, unknown class or property, duplicates, limits ->
// InvalidParameter (32773); a value or TYPE that does not fit the schema -> IncorrectDataType
// (32776). Errors name the property when there is one.
Result<Instance> decode_cim_xml(std::string_view text, std::string_view expected_class = {});

}  // namespace vmrepl
