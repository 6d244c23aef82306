#include "core/engine/server_config.h"

#include <strings.h>

#include <nlohmann/json.hpp>

#include "core/settings/json.h"

namespace vmrepl {

namespace {
constexpr std::string_view kSettingsKey = "replication_service_settings";
constexpr std::string_view kEntriesKey = "replication_authorization_entries";

bool same_host(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}
}  // namespace

Result<std::unique_ptr<ServerConfig>> ServerConfig::load(Catalog& catalog) {
  std::unique_ptr<ServerConfig> c(new ServerConfig(catalog));
  auto s = catalog.get_meta(kSettingsKey);
  if (!s) return s.status();
  if (*s) {
    auto inst = decode_json(**s, ReplicationServiceSettingData::kClassName);
    if (!inst) return inst.status().Annotate("stored service settings");
    auto v = ReplicationServiceSettingData::from_instance(*inst);
    if (!v) return v.status().Annotate("stored service settings");
    c->settings_ = std::move(v).value();
  }
  auto e = catalog.get_meta(kEntriesKey);
  if (!e) return e.status();
  if (*e) {
    auto arr = nlohmann::json::parse(**e, nullptr, false);
    if (arr.is_discarded() || !arr.is_array()) return Status::Failed("stored authorization entries are damaged");
    for (const auto& item : arr) {
      if (!item.is_string()) return Status::Failed("stored authorization entries are damaged");
      auto inst = decode_json(item.get<std::string>(), AuthorizationSettingData::kClassName);
      if (!inst) return inst.status().Annotate("stored authorization entry");
      auto v = AuthorizationSettingData::from_instance(*inst);
      if (!v) return v.status().Annotate("stored authorization entry");
      c->entries_.push_back(std::move(v).value());
    }
  }
  return c;
}

ReplicationServiceSettingData ServerConfig::settings() const {
  std::lock_guard<std::mutex> lk(mu_);
  return settings_;
}

Status ServerConfig::set_settings(const ReplicationServiceSettingData& s) {
  VMREPL_RETURN_IF_ERROR(s.validate());
  std::lock_guard<std::mutex> lk(mu_);
  auto old = settings_;
  settings_ = s;
  Status st = save_locked();
  if (!st.ok()) settings_ = old;
  return st;
}

std::vector<AuthorizationSettingData> ServerConfig::entries() const {
  std::lock_guard<std::mutex> lk(mu_);
  return entries_;
}

Status ServerConfig::add_entry(const AuthorizationSettingData& e) {
  VMREPL_RETURN_IF_ERROR(e.validate());
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& x : entries_)
    if (same_host(*x.AllowedPrimaryHostSystem, *e.AllowedPrimaryHostSystem))
      return Status::InvalidParameter("AllowedPrimaryHostSystem: an entry for '" + *e.AllowedPrimaryHostSystem +
                                      "' already exists (use ModifyAuthorizationEntry)");
  entries_.push_back(e);
  Status st = save_locked();
  if (!st.ok()) entries_.pop_back();
  return st;
}

Status ServerConfig::modify_entry(const AuthorizationSettingData& e) {
  VMREPL_RETURN_IF_ERROR(e.validate());
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& x : entries_) {
    if (same_host(*x.AllowedPrimaryHostSystem, *e.AllowedPrimaryHostSystem)) {
      auto old = x;
      x = e;
      Status st = save_locked();
      if (!st.ok()) x = old;
      return st;
    }
  }
  return Status::InvalidParameter("AllowedPrimaryHostSystem: no entry for '" + *e.AllowedPrimaryHostSystem + "'");
}

Status ServerConfig::remove_entry(std::string_view allowed_primary) {
  std::lock_guard<std::mutex> lk(mu_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (same_host(*it->AllowedPrimaryHostSystem, allowed_primary)) {
      auto old = *it;
      auto pos = it - entries_.begin();
      entries_.erase(it);
      Status st = save_locked();
      if (!st.ok()) entries_.insert(entries_.begin() + pos, old);
      return st;
    }
  }
  return Status::FileNotFound("no authorization entry for AllowedPrimaryHostSystem '" + std::string(allowed_primary) + "'");
}

Result<AuthorizationSettingData> ServerConfig::admit(std::string_view primary_host) const {
  return admit_in_group(primary_host, {});
}

Result<AuthorizationSettingData> ServerConfig::admit_in_group(std::string_view primary_host,
                                                             std::string_view trust_group) const {
  std::lock_guard<std::mutex> lk(mu_);
  if (!settings_.RecoveryServerEnabled)
    return Status::AccessDenied("this host is not a recovery server (RecoveryServerEnabled is FALSE)");
  // The most specific pattern wins: an exact name, then the longest *.domain, then *.
  const AuthorizationSettingData* best = nullptr;
  size_t best_len = 0;
  for (const auto& e : entries_) {
    const std::string& pat = *e.AllowedPrimaryHostSystem;
    if (!trust_group.empty() && !same_host(e.TrustGroup.value_or(""), trust_group)) continue;
    if (!host_matches(pat, primary_host)) continue;
    size_t weight = pat == "*" ? 1 : pat.size() + 1;
    if (!best || weight > best_len) {
      best = &e;
      best_len = weight;
    }
  }
  if (!best)
    return Status::AccessDenied("no authorization entry" +
                                (trust_group.empty() ? std::string() : " of TrustGroup '" + std::string(trust_group) + "'") +
                                " admits primary host '" + std::string(primary_host) + "'");
  return *best;
}

Status ServerConfig::save_locked() {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& e : entries_) arr.push_back(encode_json(e.to_instance()));
  VMREPL_RETURN_IF_ERROR(catalog_.put_meta(kEntriesKey, arr.dump()));
  return catalog_.put_meta(kSettingsKey, encode_json(settings_.to_instance()));
}

}  // namespace vmrepl
