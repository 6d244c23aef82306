// ServerConfig: this host's recovery-server settings (Msvm_ReplicationServiceSettingData) and
// its authorization entries (Msvm_ReplicationAuthorizationSettingData), kept in the catalog.
//
// admit() is the recovery server's gate (spec §4, §9 precondition 5): a primary host is
// accepted when RecoveryServerEnabled is TRUE and an entry's AllowedPrimaryHostSystem matches
// it (an FQDN, `*.domain` or `*`; the most specific match wins); the entry names where its
// replicas are stored. admit_in_group() is the check for a VM already replicated here: any
// entry of the VM's TrustGroup may admit its (possibly moved) primary.
//
// Thread-safety: every method may be called from any thread (one internal mutex).
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/settings/authorization_setting_data.h"
#include "core/settings/service_setting_data.h"
#include "core/store/catalog.h"

namespace vmrepl {

class ServerConfig {
 public:
  // Loads what the catalog holds (defaults on a new host).
  static Result<std::unique_ptr<ServerConfig>> load(Catalog& catalog);

  ReplicationServiceSettingData settings() const;
  Status set_settings(const ReplicationServiceSettingData& s);

  std::vector<AuthorizationSettingData> entries() const;
  // InvalidParameter when an entry for the same AllowedPrimaryHostSystem exists (add) or
  // does not (modify); the entry must validate.
  Status add_entry(const AuthorizationSettingData& e);
  Status modify_entry(const AuthorizationSettingData& e);
  // FileNotFound when no entry has this AllowedPrimaryHostSystem.
  Status remove_entry(std::string_view allowed_primary);

  // The entry admitting `primary_host`, or AccessDenied (32769) saying why.
  Result<AuthorizationSettingData> admit(std::string_view primary_host) const;
  // Same, restricted to the entries of `trust_group`.
  Result<AuthorizationSettingData> admit_in_group(std::string_view primary_host, std::string_view trust_group) const;

 private:
  explicit ServerConfig(Catalog& c) : catalog_(c) {}
  Status save_locked();

  Catalog& catalog_;
  mutable std::mutex mu_;
  ReplicationServiceSettingData settings_;
  std::vector<AuthorizationSettingData> entries_;
};

}  // namespace vmrepl
