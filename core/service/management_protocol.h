// The management protocol: how a vmrepl client (vmr_open "unix:" / "vmrepl://") calls the
// ServiceApi of a vmrepld (ManagementServer). It rides on the service protocol's frames and
// messages (core/protocol): a Hello with the "management" capability and its HelloReply, then
// Request{seq, method, body} answered by Response{seq, code, text, body} in order, and, pushed
// by the server between answers, Request{seq 0, method "job_event", body: a job instance} for
// every change of a job the client holds.
//
// Method names are ServiceApi's (service_api.h) plus "job_cancel"; arguments travel as one
// JSON object (body_json), results as {"instance": I}, {"instances": [I...]}, {"text": s} or
// {"job": I}; I is an Instance with its CIM types kept ({"class", "properties": [{"name",
// "type", "array", "value"}]}), so a remote instance reads exactly like a local one.
//
// Decoding is bounded like the rest of the protocol: bodies are at most kMaxJsonBytes and at
// most kMaxBodyNesting deep, checked before parsing; wrong shapes are IncorrectDataType naming
// the field.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model/instance.h"
#include "core/model/status.h"

namespace vmrepl::management {

inline constexpr const char* kCapability = "management";
inline constexpr const char* kJobEvent = "job_event";
inline constexpr std::size_t kMaxBodyNesting = 16;

nlohmann::json instance_to_json(const Instance& inst);
Result<Instance> instance_from_json(const nlohmann::json& j);

// Parses a body (empty text = {}); InvalidParameter when over the size or nesting bound,
// IncorrectDataType when not a JSON object.
Result<nlohmann::json> parse_body(std::string_view text);

// Typed argument readers: IncorrectDataType "<method>: argument '<name>' must be ..." when
// absent or of another type.
Result<std::string> arg_string(const nlohmann::json& args, std::string_view method, const char* name);
Result<uint64_t> arg_uint(const nlohmann::json& args, std::string_view method, const char* name, uint64_t max);
Result<bool> arg_bool(const nlohmann::json& args, std::string_view method, const char* name);

}  // namespace vmrepl::management
