#include "core/service/service_options.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/blocks/block_index.h"

namespace vmrepl {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxOptionsText = 64 * 1024;

Result<json> parse_object(std::string_view text, std::string_view what) {
  if (text.size() > kMaxOptionsText)
    return Status::InvalidParameter(std::string(what) + " is longer than 64 KiB");
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidParameter(std::string(what) + " is not valid JSON");
  if (!j.is_object()) return Status::InvalidParameter(std::string(what) + " must be a JSON object");
  return j;
}

Status wrong_type(std::string_view key, std::string_view want) {
  return Status::IncorrectDataType(std::string(key) + " must be " + std::string(want));
}

std::string machine_host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "localhost";
  return buf;
}

}  // namespace

Result<ServiceOptions> ServiceOptions::from_json(std::string_view text) {
  ServiceOptions o;
  o.host_name = machine_host_name();
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return o;
  auto parsed = parse_object(text, "options");
  if (!parsed) return parsed.status();
  for (const auto& [key, v] : parsed->items()) {
    if (key == "host_name") {
      if (!v.is_string()) return wrong_type(key, "a string");
      std::string h = v.get<std::string>();
      if (h.empty() || h.size() > 255 || h.find_first_of(" \t\r\n/\\\"'") != std::string::npos)
        return Status::InvalidParameter("host_name '" + h.substr(0, 64) +
                                        "' is not a host name (1-255 characters, no spaces, slashes or quotes)");
      o.host_name = h;
    } else if (key == "job_retention_s") {
      if (!v.is_number_integer()) return wrong_type(key, "an integer number of seconds");
      int64_t s = v.get<int64_t>();
      if (s < 1 || s > 7 * 86400) return Status::InvalidParameter("job_retention_s must be 1..604800 (got " + std::to_string(s) + ")");
      o.job_retention_s = s;
    } else if (key == "block_size") {
      if (!v.is_number_unsigned()) return wrong_type(key, "a positive integer");
      uint64_t b = v.get<uint64_t>();
      if (b < BlockIndex::kMinBlockSize || b > BlockIndex::kMaxBlockSize || (b & (b - 1)))
        return Status::InvalidParameter("block_size must be a power of two from 4096 to 16777216 (got " +
                                        std::to_string(b) + ")");
      o.block_size = static_cast<uint32_t>(b);
    } else if (key == "hash") {
      if (!v.is_string()) return wrong_type(key, "a string");
      std::string h = v.get<std::string>();
      if (h == "xxh3-128")
        o.hash = HashAlgorithm::Xxh3_128;
      else if (h == "sha256")
        o.hash = HashAlgorithm::Sha256;
      else
        return Status::InvalidParameter("hash must be \"xxh3-128\" or \"sha256\" (got \"" + h.substr(0, 32) + "\")");
    } else if (key == "listen" || key == "tls_listen") {
      if (!v.is_string()) return wrong_type(key, "a string \"host:port\"");
      std::string l = v.get<std::string>();
      auto colon = l.rfind(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == l.size() ||
          l.find_first_not_of("0123456789", colon + 1) != std::string::npos || std::stoul(l.substr(colon + 1)) > 65535)
        return Status::InvalidParameter(key + " must be \"host:port\" with a port 0-65535 (got \"" + l.substr(0, 64) + "\")");
      (key == "listen" ? o.listen : o.tls_listen) = l;
    } else if (key == "tls_certificate" || key == "tls_key" || key == "tls_ca") {
      if (!v.is_string()) return wrong_type(key, "a string (a PEM file path)");
      std::string f = v.get<std::string>();
      if (f.empty() || f.size() > 4096 || f.find('\0') != std::string::npos)
        return Status::InvalidParameter(key + " must be a file path");
      (key == "tls_certificate" ? o.tls_certificate : key == "tls_key" ? o.tls_key : o.tls_ca) = f;
    } else if (key == "hosts") {
      if (!v.is_object()) return wrong_type(key, "an object {\"name\": \"address\"}");
      for (const auto& [name, addr] : v.items()) {
        if (!addr.is_string()) return wrong_type("hosts." + name, "a string address");
        o.hosts[name] = addr.get<std::string>();
      }
    } else if (key == "cycle_interval_override_s") {
      if (!v.is_number_integer()) return wrong_type(key, "an integer number of seconds");
      int64_t s = v.get<int64_t>();
      if (s < 0 || s > 86400) return Status::InvalidParameter("cycle_interval_override_s must be 0..86400");
      o.cycle_interval_override_s = s;
    } else if (key == "zstd_level") {
      if (!v.is_number_integer()) return wrong_type(key, "an integer");
      int64_t l = v.get<int64_t>();
      if (l < -7 || l > 19) return Status::InvalidParameter("zstd_level must be -7..19 (got " + std::to_string(l) + ")");
      o.zstd_level = static_cast<int>(l);
    } else if (key == "connect_timeout_ms" || key == "io_timeout_ms") {
      if (!v.is_number_integer()) return wrong_type(key, "an integer number of milliseconds");
      int64_t t = v.get<int64_t>();
      if (t < 10 || t > 3600000) return Status::InvalidParameter(key + " must be 10..3600000");
      (key == "connect_timeout_ms" ? o.connect_timeout_ms : o.io_timeout_ms) = t;
    } else {
      return Status::InvalidParameter("unknown option '" + key.substr(0, 64) + "'");
    }
  }
  bool any_tls = !o.tls_certificate.empty() || !o.tls_key.empty() || !o.tls_ca.empty();
  if (any_tls && (o.tls_certificate.empty() || o.tls_key.empty() || o.tls_ca.empty()))
    return Status::InvalidParameter("tls_certificate, tls_key and tls_ca go together (one is missing)");
  if (!o.tls_listen.empty() && !any_tls)
    return Status::InvalidParameter("tls_listen needs tls_certificate, tls_key and tls_ca");
  return o;
}

Result<VmDefinition> parse_vm_definition_json(std::string_view text) {
  auto parsed = parse_object(text, "VM definition");
  if (!parsed) return parsed.status();
  VmDefinition d;
  bool have_name = false, have_disks = false;
  for (const auto& [key, v] : parsed->items()) {
    if (key == "name") {
      if (!v.is_string()) return wrong_type("ElementName (name)", "a string");
      d.name = v.get<std::string>();
      have_name = true;
    } else if (key == "id") {
      if (v.is_null()) continue;
      if (!v.is_string()) return wrong_type("Name (id)", "a GUID string");
      auto g = Guid::parse(v.get<std::string>());
      if (!g) return g.status().Annotate("Name (id)");
      d.id = *g;
    } else if (key == "disks") {
      if (!v.is_array()) return wrong_type("disks", "an array of sizes in bytes");
      if (v.size() > 64) return Status::InvalidParameter("disks: more than 64 entries");
      for (size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_number_unsigned())
          return wrong_type("disks[" + std::to_string(i) + "]", "a positive integer number of bytes");
        d.disk_sizes.push_back(v[i].get<uint64_t>());
      }
      have_disks = true;
    } else {
      return Status::InvalidParameter("unknown VM definition key '" + key.substr(0, 64) + "'");
    }
  }
  if (!have_name) return Status::InvalidParameter("ElementName (name) is required");
  if (!have_disks) return Status::InvalidParameter("disks is required");
  return d;
}

}  // namespace vmrepl
