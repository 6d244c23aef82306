// JSON setting data, the form scripts and the bindings write most easily:
//   {"__CLASS":"Msvm_ReplicationSettingData","ReplicationInterval":300,"IncludedDisks":["a"],...}
//
// Canonical layout (what encode_json writes): one compact line (no spaces, no trailing newline),
// `__CLASS` first when the instance has a class name, then the properties in the instance's
// order. Booleans are true/false, integers JSON integers, reals the shortest text that reads
// back exactly, strings/datetimes/references JSON strings (non-ASCII as UTF-8), null is null,
// arrays are JSON arrays. Non-finite reals are written as null and invalid UTF-8 as U+FFFD, so
// such instances do not round-trip (no decoder accepts them anyway).
//
// Decoding: the top level must be an object. `__CLASS` names the class; when it is absent the
// caller's expected class is used. Other `__*` keys are ignored whatever their value. Integers
// must be JSON integers inside the property type's range (1.0 is not a uint16); reals accept any
// JSON number; a property value is a scalar or an array of scalars, never an object.
//
// Bounds: the text_limits.h constants (size, kMaxJsonDepth, kMaxArrayElements). nlohmann's SAX
// parser feeds a handler that keeps only what the instance needs, so nesting and ignored values
// cost no memory.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "core/model/instance.h"
#include "core/model/status.h"

namespace vmrepl {

// Schema-free: writes any instance. Never throws for bad bytes.
std::string encode_json(const Instance& instance);

// Decodes an instance of a known class; errors as decode_cim_xml.
Result<Instance> decode_json(std::string_view text, std::string_view expected_class = {});

}  // namespace vmrepl
