// AuthorizationSettingData: the typed form of Msvm_ReplicationAuthorizationSettingData (spec §4),
// one entry of a recovery server's list of primaries it accepts, and where their replicas go.
// host_matches() is the rule an entry's AllowedPrimaryHostSystem applies to a connecting host.
//
// The spec gives no defaults: the three entry properties are std::optional and validate()
// requires them.
//
// Thread-safety: a value type; not synchronized. host_matches is a pure function.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/model/instance.h"
#include "core/model/status.h"
#include "core/settings/schema.h"

namespace vmrepl {

struct AuthorizationSettingData {
  static constexpr std::string_view kClassName = kReplicationAuthorizationSettingDataClass;

  std::optional<std::string> InstanceID;  // documented as always null
  std::optional<std::string> ElementName;
  // A host name (FQDN), "*" (any host) or "*.domain" (any host under domain); the entry's key.
  std::optional<std::string> AllowedPrimaryHostSystem;
  std::optional<std::string> TrustGroup;  // entries of one group admit each other's primaries
  std::optional<std::string> ReplicaStorageLocation;  // absolute folder for the replicas

  // The instance must be of this class and pass check_instance.
  static Result<AuthorizationSettingData> from_instance(const Instance& instance);
  // Every field, in the schema's order, nullopt as null.
  Instance to_instance() const;
  // InvalidParameter (32773) naming the first property that breaks a rule: the host pattern is
  // a valid host name, "*" or "*.domain"; TrustGroup is not empty; ReplicaStorageLocation is an
  // absolute path without a ".." component or NUL.
  Status validate() const;
  // decode_instance(text, kClassName) + from_instance + validate.
  static Result<AuthorizationSettingData> parse(std::string_view text);

  bool operator==(const AuthorizationSettingData&) const = default;
};

// Whether `host` is admitted by an AllowedPrimaryHostSystem `pattern`, ASCII case-insensitively
// and ignoring one trailing dot on either: "*" admits any non-empty host; "*.contoso.com" admits
// a.contoso.com and a.b.contoso.com but not contoso.com; anything else must equal the host.
bool host_matches(std::string_view pattern, std::string_view host);

// A DNS host name: labels of 1-63 letters, digits or hyphens (not at a label's ends), at most
// 253 characters, one trailing dot allowed. Single-label names count.
bool is_valid_host_name(std::string_view name);

}  // namespace vmrepl
