// sd_notify: the readiness protocol of systemd's Type=notify services, without libsystemd:
// one datagram of "KEY=value" lines to the unix socket named by $NOTIFY_SOCKET. Outside
// systemd (no NOTIFY_SOCKET) it does nothing.
//
// Thread-safety: may be called from any thread.
#pragma once

#include <string_view>

namespace vmrepld {

// Sends `state` (e.g. "READY=1\nSTATUS=listening"); false when NOTIFY_SOCKET is set but the
// message could not be sent.
bool sd_notify(std::string_view state);

}  // namespace vmrepld
