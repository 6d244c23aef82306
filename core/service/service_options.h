// ServiceOptions: the engine options of a `local:` service (API.md), parsed from the JSON
// object a caller passes to vmr_open. Unknown keys and wrong types are refused, so a typo never
// silently falls back to a default.
//
// Thread-safety: value type.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/blocks/hash.h"
#include "core/model/status.h"
#include "core/store/vm_definition.h"

namespace vmrepl {

struct ServiceOptions {
  std::string host_name;           // default: the machine's host name
  int64_t job_retention_s = 300;   // CIM TimeBeforeRemoval: 5 minutes
  uint32_t block_size = 64 * 1024; // power of two, 4 KiB..16 MiB
  HashAlgorithm hash = HashAlgorithm::Xxh3_128;
  // Plaintext replication listener "host:port" ("127.0.0.1:0" = any free port); empty = none.
  // A loopback address only: plaintext never leaves the host.
  std::string listen;
  // Certificate authentication (AuthenticationType 2, spec §3-4): this service's certificate
  // and key and the CA its peers' certificates must chain to (PEM file paths; all three or
  // none). A primary uses them for relationships of type 2; with tls_listen ("host:port", the
  // model's HttpsPort listener) the service also accepts primaries over TLS there, while
  // `listen` stays the plaintext listener of type 1 (the model's HttpPort).
  std::string tls_certificate;
  std::string tls_key;
  std::string tls_ca;
  std::string tls_listen;
  // Connection point -> address, consulted before DNS (like /etc/hosts).
  std::map<std::string, std::string> hosts;
  // Tests only: replaces ReplicationInterval (seconds); 0 = use the relationship's.
  int64_t cycle_interval_override_s = 0;
  int zstd_level = 1;
  int64_t connect_timeout_ms = 5000;
  int64_t io_timeout_ms = 30000;

  // NULL/empty text gives the defaults. Unknown key or bad value -> InvalidParameter naming
  // it; a value of the wrong JSON type -> IncorrectDataType naming it.
  static Result<ServiceOptions> from_json(std::string_view text);
};

// {"name": "web01", "id": "<GUID>" (optional), "disks": [bytes, ...]} -> VmDefinition.
// Only the shape is checked here; the rules of vm_definition.h are checked by the store.
Result<VmDefinition> parse_vm_definition_json(std::string_view text);

}  // namespace vmrepl
