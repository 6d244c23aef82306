// The ServiceApi of a vmrepld, reached over the management protocol (management_protocol.h):
//   unix:/path/to/vmrepld.sock     the daemon's local admin socket
//   vmrepl://host:port             a remote daemon over mutual TLS
// Calls block until the daemon answers (call_timeout_ms: Timeout 32772 after it); job handles
// follow the daemon's pushed events, so wait() needs no polling; a lost connection fails every
// pending call and every unfinished job's wait with SystemNotAvailable (32777).
//
// Options (JSON object, unknown keys refused): connect_timeout_ms, call_timeout_ms.
//
// Thread-safety: every method may be called from any thread (calls are pipelined on the one
// connection).
#pragma once

#include <memory>
#include <string_view>

#include "core/service/service_api.h"

namespace vmrepl {

// NotSupported is never returned for a scheme this function knows; InvalidParameter for a
// malformed URI or options; SystemNotAvailable / Timeout when the daemon cannot be reached;
// the daemon's refusal otherwise.
Result<std::unique_ptr<ServiceApi>> connect_remote_api(std::string_view uri, std::string_view options_json);

}  // namespace vmrepl
