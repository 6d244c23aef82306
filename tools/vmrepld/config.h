// Config: vmrepld's configuration file (TOML, see vmrepld.toml.example and vmrepld(8)).
//
// The whole file is checked before anything starts: unknown keys, wrong types and bad values
// are refused with one message naming the key and the rule, so a typo never falls back to a
// default silently. Settings this build cannot honour yet (TLS management) are refused the
// same way rather than ignored.
//
// Thread-safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/model/status.h"
#include "core/service/service_options.h"
#include "tools/vmrepld/log.h"

namespace vmrepld {

struct TlsConfig {
  std::string certificate;  // PEM files, absolute paths; "" = none
  std::string key;
  std::string ca;
  std::vector<std::string> pinned_thumbprints;  // upper-case hex, 40 (SHA-1) or 64 (SHA-256) digits
};

struct Config {
  std::string host_root;  // absolute
  LogLevel log_level = LogLevel::Info;
  // host_name and [replication]; the rest of ServiceOptions keeps its defaults.
  vmrepl::ServiceOptions service;
  std::string management_socket = "/run/vmrepl/vmrepld.sock";  // "" = none
  std::string management_listen;                                // "host:port"; "" = none
  TlsConfig tls;
  uint64_t bandwidth_bytes_per_s = 0;  // 0 = unlimited
};

// Reads and checks the file. On failure the status's message is one line, "<key>: <rule>"
// (or "line L, column C: <what>" for TOML syntax), to print after "config <path>: ".
vmrepl::Result<Config> load_config(const std::string& path);

// The configuration as "key" -> value text (strings quoted), in a stable order: the debug log
// prints it, and a reload compares two of them key by key.
std::map<std::string, std::string> flatten(const Config& c);

// Keys a SIGHUP applies; a change of any other key needs a restart.
bool reloadable(const std::string& key);

}  // namespace vmrepld
