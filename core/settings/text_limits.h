// Bounds every settings decoder enforces, so that hostile text costs a bounded amount of time and
// memory and fails with a precise status instead of a crash.
//
// Thread-safety: constants.
#pragma once

#include <cstddef>

namespace vmrepl {

// Whole input text (any format). Larger -> InvalidParameter (32773).
inline constexpr std::size_t kMaxSettingTextBytes = 1u << 20;  // 1 MiB
// Elements of one array property. More -> InvalidParameter naming the property.
inline constexpr std::size_t kMaxArrayElements = 4096;
// CIM-XML node nesting (elements and text). The deepest legitimate shape, a structured
// VALUE.REFERENCE inside PROPERTY.ARRAY, needs 9. Deeper -> InvalidParameter.
inline constexpr std::size_t kMaxXmlDepth = 16;
// JSON container nesting, counting the top-level object. Only `__*` keys may nest at all.
inline constexpr std::size_t kMaxJsonDepth = 32;
// MOF identifiers (class and property names).
inline constexpr std::size_t kMaxIdentifierBytes = 256;
// Characters of one numeric literal. Longer -> IncorrectDataType (32776), never an overflow.
inline constexpr std::size_t kMaxNumberChars = 64;

}  // namespace vmrepl
