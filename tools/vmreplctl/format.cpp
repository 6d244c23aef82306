#include "format.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <utility>

namespace vmreplctl {

namespace {

struct Named {
  uint64_t value;
  const char* name;
};

constexpr Named kReplicationMode[] = {
    {0, "None"}, {1, "Primary"}, {2, "Replica"}, {3, "TestReplica"}, {4, "ExtendedReplica"}};

constexpr Named kReplicationState[] = {
    {0, "Disabled"},
    {1, "ReadyForReplication"},
    {2, "WaitingToCompleteInitialReplication"},
    {3, "Replicating"},
    {4, "SyncedReplicationComplete"},
    {5, "Recovered"},
    {6, "Committed"},
    {7, "Suspended"},
    {8, "Critical"},
    {9, "WaitingToStartResynchronization"},
    {10, "Resynchronizing"},
    {11, "ResynchronizationSuspended"},
    {12, "FailoverInProgress"},
    {13, "FailbackInProgress"},
    {14, "FailbackComplete"},
    {15, "DiskUpdateInProgress"},
    {16, "DiskUpdateCritical"},
    {17, "Unknown"},
    {18, "RepurposeReplicationInProgress"},
    {19, "PreparedForSyncReplication"},
    {20, "PreparedForGroupReverseReplication"},
    {21, "FiredrillInProgress"},
};

constexpr Named kReplicationHealth[] = {{0, "NotApplicable"}, {1, "Ok"}, {2, "Warning"}, {3, "Critical"}};

// Hyper-V Manager's words for a VM's EnabledState.
constexpr Named kEnabledState[] = {{0, "Unknown"}, {2, "Running"}, {3, "Off"},
                                   {6, "Saved"},   {9, "Paused"},  {10, "Starting"}};

constexpr Named kJobState[] = {{2, "New"},        {3, "Starting"},   {4, "Running"},  {5, "Suspended"},
                               {6, "ShuttingDown"}, {7, "Completed"}, {8, "Terminated"}, {9, "Killed"},
                               {10, "Exception"},  {11, "Service"},   {12, "QueryPending"}};

constexpr Named kJobType[] = {
    {90, "ModifyReplicationServerSettings"},
    {91, "CreateReplicationRelationship"},
    {92, "ModifyReplicationRelationshipSettings"},
    {93, "RemoveReplicationRelationship"},
    {94, "StartInbandInitialReplication"},
    {95, "ImportReplication"},
    {96, "ReplicateStateChange"},
    {97, "InitiateFailover"},
    {98, "RevertFailover"},
    {99, "CommitFailover"},
    {100, "InitiateSyncedReplication"},
    {101, "CancelSyncedReplication"},
    {102, "InitiateTestReplica"},
    {103, "RemoveTestReplica"},
    {104, "ReverseReplication"},
    {105, "ReplicationSendingDelta"},
    {106, "ReplicationReceivingDelta"},
    {107, "Resynchronizing"},
    {108, "ApplyChangeLog"},
    {109, "StopInitialReplication"},
    {110, "StopResynchronizing"},
    {111, "GetReplicaStatistics"},
    {112, "ConsistencyCheckerPrepare"},
    {113, "ConsistencyCheckerRun"},
    {114, "ConsistencyCheckerStop"},
    {115, "TestReplicationConnection"},
    {116, "SendingInitialReplica"},
    {117, "StartResyncInitialReplication"},
    {118, "StartExportInitialReplication"},
    {119, "ResetReplicaStatistics"},
    {120, "ApplyRegisteredDeltas"},
    {121, "ResynchronizingExtendedReplication"},
    {122, "ReadingTestReplicaConfiguration"},
    {123, "ChangeReplicationModeToPrimary"},
    {124, "InitiateFailback"},
    {125, "UpdateDiskSet"},
};

constexpr Named kReplicationType[] = {{0, "None"}, {1, "Regular"}, {2, "ApplicationConsistent"}, {3, "Planned"}};

template <size_t N>
std::string find(const Named (&table)[N], uint64_t v) {
  for (const Named& n : table)
    if (n.value == v) return n.name;
  return {};
}

// Properties that count bytes get a binary unit beside the number.
bool is_byte_count(std::string_view p) {
  return p.find("Bytes") != std::string_view::npos || p.ends_with("Size") || p.ends_with("Sizes");
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string enum_name(std::string_view p, uint64_t v) {
  if (p == "ReplicationMode") return find(kReplicationMode, v);
  if (p == "ReplicationState" || p == "RequestedReplicationState") return find(kReplicationState, v);
  if (p == "ReplicationHealth") return find(kReplicationHealth, v);
  if (p == "EnabledState") return find(kEnabledState, v);
  if (p == "JobState") return find(kJobState, v);
  if (p == "JobType") return find(kJobType, v);
  if (p == "FailedOverReplicationType" || p == "LastReplicationType") return find(kReplicationType, v);
  if (p == "ErrorCode" && v != 0) return vmr_status_name(static_cast<vmr_status>(v));
  return {};
}

std::string numbered(std::string_view p, uint64_t v) {
  std::string name = enum_name(p, v);
  return name.empty() ? std::to_string(v) : std::to_string(v) + " " + name;
}

std::string human_bytes(uint64_t n) {
  if (n < 1024) return std::to_string(n) + " B";
  static constexpr std::array<const char*, 6> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double x = static_cast<double>(n) / 1024.0;
  size_t u = 0;
  while (x >= 1024.0 && u + 1 < kUnits.size()) {
    x /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", x, kUnits[u]);
  return buf;
}

std::optional<std::string> human_datetime(std::string_view s) {
  // yyyymmddHHMMSS.mmmmmm followed by sUUU (point) or :000 (interval).
  if (s.size() != 25 || s[14] != '.' || !all_digits(s.substr(0, 14)) || !all_digits(s.substr(15, 6)) ||
      !all_digits(s.substr(22, 3)))
    return std::nullopt;
  const char sep = s[21];
  if (sep == ':') {
    // Interval: dddddddd HH MM SS . micro
    uint64_t days = 0, h = 0, m = 0, sec = 0, us = 0;
    std::from_chars(s.data(), s.data() + 8, days);
    std::from_chars(s.data() + 8, s.data() + 10, h);
    std::from_chars(s.data() + 10, s.data() + 12, m);
    std::from_chars(s.data() + 12, s.data() + 14, sec);
    std::from_chars(s.data() + 15, s.data() + 21, us);
    const uint64_t total = ((days * 24 + h) * 60 + m) * 60 + sec;
    char buf[64];
    if (total < 60)
      std::snprintf(buf, sizeof buf, "%llu.%03llu s", static_cast<unsigned long long>(total),
                    static_cast<unsigned long long>(us / 1000));
    else if (days == 0)
      std::snprintf(buf, sizeof buf, "%02llu:%02llu:%02llu", static_cast<unsigned long long>(h),
                    static_cast<unsigned long long>(m), static_cast<unsigned long long>(sec));
    else
      std::snprintf(buf, sizeof buf, "%llu d %02llu:%02llu:%02llu", static_cast<unsigned long long>(days),
                    static_cast<unsigned long long>(h), static_cast<unsigned long long>(m),
                    static_cast<unsigned long long>(sec));
    return buf;
  }
  if (sep != '+' && sep != '-') return std::nullopt;
  if (s.substr(0, 14) == "00000000000000") return "never";
  std::string out;
  out.reserve(40);
  // Zero date fields: a time of day (MonitoringStartTime).
  if (s.substr(0, 8) != "00000000")
    out.append(s.substr(0, 4)).append("-").append(s.substr(4, 2)).append("-").append(s.substr(6, 2)).append(" ");
  out.append(s.substr(8, 2)).append(":").append(s.substr(10, 2)).append(":").append(s.substr(12, 2));
  out.append(".").append(s.substr(15, 3));
  if (s.substr(21) == "+000")
    out.append(" UTC");
  else
    out.append(" UTC").append(s.substr(21));  // offset in minutes, as CIM writes it
  return out;
}

std::string render_value(std::string_view p, const Json& v) {
  if (v.is_null()) return "-";
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) {
    const uint64_t n = v.get<uint64_t>();
    std::string name = enum_name(p, n);
    if (!name.empty()) return std::to_string(n) + " " + name;
    if (is_byte_count(p) && n >= 1024) return std::to_string(n) + " (" + human_bytes(n) + ")";
    return std::to_string(n);
  }
  if (v.is_number()) return v.dump();
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (auto t = human_datetime(s)) return *t;
    return s.empty() ? "-" : s;
  }
  if (v.is_array()) {
    if (v.empty()) return "(none)";
    std::string out;
    for (const auto& e : v) {
      if (!out.empty()) out += ", ";
      if (e.is_number_unsigned() && is_byte_count(p))
        out += human_bytes(e.get<uint64_t>());
      else
        out += render_value(p, e);
    }
    return out;
  }
  return v.dump();
}

std::optional<uint64_t> parse_size(std::string_view t) {
  size_t i = 0;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
  if (i == 0) return std::nullopt;
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + i, n);
  if (ec != std::errc() || ptr != t.data() + i) return std::nullopt;
  std::string unit;
  for (char c : t.substr(i)) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  unsigned shift = 0;
  if (!unit.empty()) {
    switch (unit[0]) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      case 'B': shift = 0; break;
      default: return std::nullopt;
    }
    std::string_view rest = std::string_view(unit).substr(1);
    if (unit[0] == 'B' ? !rest.empty() : !(rest.empty() || rest == "B" || rest == "IB")) return std::nullopt;
  }
  if (n == 0 || (shift && n > (UINT64_MAX >> shift))) return std::nullopt;
  return n << shift;
}

Table::Table(std::vector<std::string> headers) { rows_.push_back(std::move(headers)); }

void Table::add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

void Table::print(std::ostream& out) const {
  std::vector<size_t> width;
  for (const auto& r : rows_)
    for (size_t c = 0; c < r.size(); ++c) {
      if (width.size() <= c) width.resize(c + 1, 0);
      width[c] = std::max(width[c], r[c].size());
    }
  for (const auto& r : rows_) {
    std::string line;
    for (size_t c = 0; c < r.size(); ++c) {
      line += r[c];
      if (c + 1 < r.size()) line.append(width[c] - r[c].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  }
}

void print_properties(std::ostream& out, const Json& instance, const std::vector<std::string>& skip,
                      std::string_view indent) {
  auto skipped = [&](const std::string& k) {
    return k == "__CLASS" || std::find(skip.begin(), skip.end(), k) != skip.end();
  };
  size_t w = 0;
  for (const auto& [k, v] : instance.items())
    if (!skipped(k)) w = std::max(w, k.size());
  for (const auto& [k, v] : instance.items()) {
    if (skipped(k)) continue;
    out << indent << k << std::string(w - k.size() + 2, ' ') << render_value(k, v) << '\n';
  }
}

}  // namespace vmreplctl
