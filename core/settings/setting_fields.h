// Shared pieces of the typed setting classes: reading fields out of a schema-checked Instance,
// writing them back with the schema's types, and the validation rules more than one class uses.
// Internal to core/settings.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/instance.h"
#include "core/model/status.h"
#include "core/settings/schema.h"

namespace vmrepl::settings_internal {

// Reads `instance` for a typed class: the class must be `class_name` and the instance must pass
// check_instance. Field getters below then only look names up (case-insensitively).
Status check_typed_instance(const Instance& instance, std::string_view class_name);

// Null or absent -> nullopt. REQUIRES: check_typed_instance passed.
std::optional<uint64_t> field_uint(const Instance& instance, std::string_view name);
std::optional<bool> field_bool(const Instance& instance, std::string_view name);
std::optional<std::string> field_string(const Instance& instance, std::string_view name);
std::optional<std::vector<std::string>> field_strings(const Instance& instance, std::string_view name);

// Writers: the property with the class schema's name and type; nullopt writes null.
// REQUIRES: `name` is a property of `schema`.
void put_uint(Instance& out, const ClassSchema& schema, std::string_view name, std::optional<uint64_t> v);
void put_bool(Instance& out, const ClassSchema& schema, std::string_view name, std::optional<bool> v);
void put_string(Instance& out, const ClassSchema& schema, std::string_view name,
                const std::optional<std::string>& v);
void put_strings(Instance& out, const ClassSchema& schema, std::string_view name,
                 const std::optional<std::vector<std::string>>& v);

// The schema of a class the registry always holds.
const ClassSchema& schema_of(std::string_view class_name);

// 40 (SHA-1) or 64 (SHA-256) hexadecimal digits.
bool is_hex_thumbprint(std::string_view s);
// InvalidParameter "<name> must be 40 or 64 hexadecimal digits (got '...')" unless empty or valid.
Status check_thumbprint(std::string_view name, const std::optional<std::string>& v);
// A connection point: non-empty, at most 256 characters, no whitespace or control characters.
// `required` makes absence an error too.
Status check_connection_point(std::string_view name, const std::optional<std::string>& v, bool required);

}  // namespace vmrepl::settings_internal
