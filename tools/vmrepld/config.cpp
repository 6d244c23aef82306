#include "tools/vmrepld/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <string_view>
#include <toml++/toml.h>
#include <utility>
#include <vector>

#include "core/net/tcp.h"

namespace vmrepld {

namespace {

using vmrepl::Status;


constexpr size_t kMaxConfigBytes = 1 << 20;

// The keys of each table; anything else is refused.
constexpr std::string_view kTopKeys[] = {"host_name", "host_root", "log_level", "replication", "management", "tls",
                                         "limits"};
constexpr std::string_view kReplicationKeys[] = {"listen",           "tls_listen", "hosts",      "connect_timeout_ms",
                                                 "io_timeout_ms",    "zstd_level", "cycle_interval_override_s",
                                                 "job_retention_s"};
constexpr std::string_view kManagementKeys[] = {"socket", "listen"};
constexpr std::string_view kTlsKeys[] = {"certificate", "key", "ca", "pinned_thumbprints"};
constexpr std::string_view kLimitsKeys[] = {"bandwidth_bytes_per_s"};

// "value" with escapes, cut at `max` characters: user text in a one-line message.
std::string quote(std::string_view s, size_t max = 64) {
  std::string out = "\"";
  size_t n = 0;
  for (unsigned char c : s) {
    if (n++ == max) {
      out += "...";
      break;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

Status bad(std::string_view key, std::string_view rule) {
  return Status::InvalidParameter(std::string(key) + ": " + std::string(rule));
}

std::string_view type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

Status wrong_type(std::string_view key, std::string_view want, const toml::node& n) {
  return bad(key, "must be " + std::string(want) + " (got " + std::string(type_name(n)) + ")");
}

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// A table of the file with the dotted prefix of its keys ("" or "replication.").
struct Section {
  const toml::table* t = nullptr;  // null when the file has no such table
  std::string prefix;

  const toml::node* get(std::string_view k) const { return t ? t->get(k) : nullptr; }
  std::string key(std::string_view k) const { return prefix + std::string(k); }

  template <size_t N>
  Status only(const std::string_view (&known)[N]) const {
    if (!t) return Status::OK();
    for (const auto& [k, v] : *t) {
      std::string_view name = k.str();
      if (std::find(std::begin(known), std::end(known), name) != std::end(known)) continue;
      std::string rule = "unknown key";
      for (std::string_view cand : known)
        if (edit_distance(name, cand) <= 2) {
          rule += " (did you mean " + std::string(cand) + "?)";
          break;
        }
      return bad(key(name), rule);
    }
    return Status::OK();
  }
};

Status section(const toml::table& top, std::string_view name, Section& out) {
  out.prefix = std::string(name) + ".";
  const toml::node* n = top.get(name);
  if (!n) return Status::OK();
  if (!n->is_table()) return wrong_type(name, "a table", *n);
  out.t = n->as_table();
  return Status::OK();
}

// Leaves `out` unchanged when the key is absent.
Status read_string(const Section& s, std::string_view k, std::string& out) {
  const toml::node* n = s.get(k);
  if (!n) return Status::OK();
  if (!n->is_string()) return wrong_type(s.key(k), "a string", *n);
  const std::string& v = n->as_string()->get();
  if (has_control(v)) return bad(s.key(k), "must not contain control characters (got " + quote(v) + ")");
  out = v;
  return Status::OK();
}

template <class Int>
Status read_int(const Section& s, std::string_view k, int64_t lo, int64_t hi, std::string_view unit, Int& out) {
  const toml::node* n = s.get(k);
  if (!n) return Status::OK();
  if (!n->is_integer()) return wrong_type(s.key(k), "an integer" + std::string(unit), *n);
  const int64_t v = n->as_integer()->get();
  if (v < lo || v > hi)
    return bad(s.key(k), "must be " + std::to_string(lo) + ".." + std::to_string(hi) + " (got " + std::to_string(v) + ")");
  out = static_cast<Int>(v);
  return Status::OK();
}

// host:port, the host a name, an IPv4 address or a bracketed IPv6 address; port 0-65535.
bool valid_host_port(std::string_view s) {
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = s.substr(0, colon), port = s.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) return false;
  if (std::stoul(std::string(port)) > 65535) return false;
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    host = host.substr(1, host.size() - 2);
    return host.find_first_not_of("0123456789abcdefABCDEF:.") == std::string_view::npos;
  }
  return host.find_first_of(":[] \t/\\\"'") == std::string_view::npos && !has_control(host);
}

Status read_listen(const Section& s, std::string_view k, std::string& out) {
  VMREPL_RETURN_IF_ERROR(read_string(s, k, out));
  if (!out.empty() && !valid_host_port(out)) return bad(s.key(k), "must be host:port (got " + quote(out) + ")");
  return Status::OK();
}

Status check_absolute(std::string_view key, const std::string& path) {
  if (path.front() != '/') return bad(key, "must be an absolute path (got " + quote(path) + ")");
  return Status::OK();
}

// A file the daemon will read later (certificates, keys): there, a regular file, readable
// now, so a wrong path stops the start rather than the first connection.
Status check_readable_file(std::string_view key, const std::string& path) {
  VMREPL_RETURN_IF_ERROR(check_absolute(key, path));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return bad(key, "cannot read " + quote(path, 256) + ": " + std::strerror(errno));
  struct stat st {};
  std::string problem;
  char c;
  if (::fstat(fd, &st) != 0)
    problem = std::string("cannot read ") + quote(path, 256) + ": " + std::strerror(errno);
  else if (!S_ISREG(st.st_mode))
    problem = quote(path, 256) + " is not a regular file";
  else if (::read(fd, &c, 1) < 0)
    problem = std::string("cannot read ") + quote(path, 256) + ": " + std::strerror(errno);
  else if (st.st_size == 0)
    problem = quote(path, 256) + " is empty";
  ::close(fd);
  return problem.empty() ? Status::OK() : bad(key, problem);
}

Status read_file(const std::string& path, std::string& text) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return Status::FileNotFound(std::string("cannot read: ") + std::strerror(errno));
  struct stat st {};
  Status result;
  if (::fstat(fd, &st) != 0) {
    result = Status::Failed(std::string("cannot read: ") + std::strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    result = Status::InvalidParameter("not a regular file");
  } else {
    char buf[64 * 1024];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        result = Status::Failed(std::string("cannot read: ") + std::strerror(errno));
        break;
      }
      if (n == 0) break;
      text.append(buf, static_cast<size_t>(n));
      if (text.size() > kMaxConfigBytes) {
        result = Status::InvalidParameter("larger than 1 MiB");
        break;
      }
    }
  }
  ::close(fd);
  return result;
}

bool valid_host_name(std::string_view h) {
  return !h.empty() && h.size() <= 255 && h.find_first_of(" \t/\\\"'") == std::string_view::npos && !has_control(h);
}

Status parse(const toml::table& top, Config& c) {
  const Section root{&top, ""};
  VMREPL_RETURN_IF_ERROR(root.only(kTopKeys));
  Section repl, mgmt, tls, limits;
  VMREPL_RETURN_IF_ERROR(section(top, "replication", repl));
  VMREPL_RETURN_IF_ERROR(section(top, "management", mgmt));
  VMREPL_RETURN_IF_ERROR(section(top, "tls", tls));
  VMREPL_RETURN_IF_ERROR(section(top, "limits", limits));
  VMREPL_RETURN_IF_ERROR(repl.only(kReplicationKeys));
  VMREPL_RETURN_IF_ERROR(mgmt.only(kManagementKeys));
  VMREPL_RETURN_IF_ERROR(tls.only(kTlsKeys));
  VMREPL_RETURN_IF_ERROR(limits.only(kLimitsKeys));

  // Top level.
  VMREPL_RETURN_IF_ERROR(read_string(root, "host_name", c.service.host_name));
  if (!valid_host_name(c.service.host_name))
    return bad("host_name", "must be a host name: 1-255 characters, no spaces, slashes or quotes (got " +
                                quote(c.service.host_name) + ")");
  if (!root.get("host_root")) return bad("host_root", "is required");
  VMREPL_RETURN_IF_ERROR(read_string(root, "host_root", c.host_root));
  if (c.host_root.empty()) return bad("host_root", "must be an absolute path (got \"\")");
  VMREPL_RETURN_IF_ERROR(check_absolute("host_root", c.host_root));
  c.host_root = std::filesystem::path(c.host_root).lexically_normal().string();
  if (c.host_root.size() > 1 && c.host_root.back() == '/') c.host_root.pop_back();
  if (c.host_root == "/") return bad("host_root", "must not be / itself");
  std::string level = std::string(log_level_name(c.log_level));
  VMREPL_RETURN_IF_ERROR(read_string(root, "log_level", level));
  auto parsed_level = parse_log_level(level);
  if (!parsed_level) return bad("log_level", "must be one of error, warn, info, debug (got " + quote(level) + ")");
  c.log_level = *parsed_level;

  // [replication]: ServiceOptions, with the ranges of ServiceOptions::from_json.
  vmrepl::ServiceOptions& o = c.service;
  VMREPL_RETURN_IF_ERROR(read_listen(repl, "listen", o.listen));
  if (!o.listen.empty() && !vmrepl::is_loopback_address(o.listen.substr(0, o.listen.rfind(':'))))
    return bad("replication.listen", "is plaintext and listens on a loopback address only (got " + quote(o.listen) +
                                         "); between hosts use replication.tls_listen with [tls]");
  VMREPL_RETURN_IF_ERROR(read_listen(repl, "tls_listen", o.tls_listen));
  if (const toml::node* n = repl.get("hosts")) {
    if (!n->is_table()) return wrong_type("replication.hosts", "a table of name = \"address\"", *n);
    for (const auto& [k, v] : *n->as_table()) {
      const std::string name(k.str());
      const std::string key = "replication.hosts." + name;
      if (!valid_host_name(name)) return bad("replication.hosts", quote(name) + " is not a host name");
      if (!v.is_string()) return wrong_type(key, "a string address", v);
      const std::string& addr = v.as_string()->get();
      if (addr.empty() || addr.find_first_of(" \t/\\\"'") != std::string::npos || has_control(addr))
        return bad(key, "must be a host name or an IP address (got " + quote(addr) + ")");
      o.hosts[name] = addr;
    }
  }
  VMREPL_RETURN_IF_ERROR(read_int(repl, "connect_timeout_ms", 10, 3600000, " of milliseconds", o.connect_timeout_ms));
  VMREPL_RETURN_IF_ERROR(read_int(repl, "io_timeout_ms", 10, 3600000, " of milliseconds", o.io_timeout_ms));
  VMREPL_RETURN_IF_ERROR(read_int(repl, "zstd_level", -7, 19, "", o.zstd_level));
  VMREPL_RETURN_IF_ERROR(
      read_int(repl, "cycle_interval_override_s", 0, 86400, " of seconds", o.cycle_interval_override_s));
  VMREPL_RETURN_IF_ERROR(read_int(repl, "job_retention_s", 1, 7 * 86400, " of seconds", o.job_retention_s));

  // [management]
  VMREPL_RETURN_IF_ERROR(read_string(mgmt, "socket", c.management_socket));
  if (!c.management_socket.empty()) {
    VMREPL_RETURN_IF_ERROR(check_absolute("management.socket", c.management_socket));
    if (c.management_socket.size() >= sizeof(sockaddr_un{}.sun_path))
      return bad("management.socket", "must be at most " + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                                           " bytes long, the limit of a unix socket path");
  }
  VMREPL_RETURN_IF_ERROR(read_listen(mgmt, "listen", c.management_listen));

  // [tls]
  for (auto [k, field] : {std::pair{"certificate", &c.tls.certificate}, std::pair{"key", &c.tls.key},
                          std::pair{"ca", &c.tls.ca}}) {
    VMREPL_RETURN_IF_ERROR(read_string(tls, k, *field));
    if (!field->empty()) VMREPL_RETURN_IF_ERROR(check_readable_file(tls.key(k), *field));
  }
  if (const toml::node* n = tls.get("pinned_thumbprints")) {
    if (!n->is_array()) return wrong_type("tls.pinned_thumbprints", "an array of strings", *n);
    const toml::array& a = *n->as_array();
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string key = "tls.pinned_thumbprints[" + std::to_string(i) + "]";
      if (!a[i].is_string()) return wrong_type(key, "a string", a[i]);
      std::string t = a[i].as_string()->get();
      if ((t.size() != 40 && t.size() != 64) || t.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        return bad(key, "must be 40 (SHA-1) or 64 (SHA-256) hex digits (got " + quote(t) + ")");
      std::transform(t.begin(), t.end(), t.begin(), [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
      c.tls.pinned_thumbprints.push_back(std::move(t));
    }
  }
  if (!c.tls.certificate.empty() && c.tls.key.empty()) return bad("tls.key", "is required with tls.certificate");
  if (!c.tls.key.empty() && c.tls.certificate.empty()) return bad("tls.certificate", "is required with tls.key");

  // [limits]: the replicator's rule, 0 or at least one block per second.
  const int64_t min_rate = o.block_size;
  if (const toml::node* n = limits.get("bandwidth_bytes_per_s")) {
    if (!n->is_integer()) return wrong_type("limits.bandwidth_bytes_per_s", "an integer of bytes per second", *n);
    const int64_t v = n->as_integer()->get();
    if (v != 0 && v < min_rate)
      return bad("limits.bandwidth_bytes_per_s", "must be 0 (unlimited) or at least " + std::to_string(min_rate) +
                                                     " (one block per second) (got " + std::to_string(v) + ")");
    c.bandwidth_bytes_per_s = static_cast<uint64_t>(v);
  }

  // [tls]: this host's certificate, for replication with AuthenticationType 2 (as a primary it
  // presents it; replication.tls_listen answers with it) and for management.listen (vmrepl://).
  const bool any_file = !c.tls.certificate.empty() || !c.tls.key.empty() || !c.tls.ca.empty();
  if (any_file && c.tls.ca.empty()) return bad("tls.ca", "is required with tls.certificate and tls.key");
  if (any_file && c.tls.certificate.empty()) return bad("tls.certificate", "is required with tls.ca");
  if (!o.tls_listen.empty() && !any_file)
    return bad("replication.tls_listen", "needs tls.certificate, tls.key and tls.ca (certificate authentication)");
  if (!c.management_listen.empty()) {
    if (!any_file)
      return bad("management.listen", "needs tls.certificate, tls.key and tls.ca (vmrepl:// is mutual TLS)");
    if (c.tls.pinned_thumbprints.empty())
      return bad("management.listen",
                 "needs at least one tls.pinned_thumbprints entry (the management clients' certificates)");
  } else if (!c.tls.pinned_thumbprints.empty()) {
    return bad("tls.pinned_thumbprints", "pins management clients, and management.listen is not set");
  }
  if (any_file) {
    o.tls_certificate = c.tls.certificate;
    o.tls_key = c.tls.key;
    o.tls_ca = c.tls.ca;
  }
  return Status::OK();
}

}  // namespace

vmrepl::Result<Config> load_config(const std::string& path) {
  std::string text;
  VMREPL_RETURN_IF_ERROR(read_file(path, text));
  toml::table top;
  try {
    top = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    std::string what(e.description());
    std::replace_if(what.begin(), what.end(), [](unsigned char ch) { return ch < 0x20; }, ' ');
    return Status::InvalidParameter("line " + std::to_string(where.line) + ", column " + std::to_string(where.column) +
                                    ": " + what);
  }
  auto defaults = vmrepl::ServiceOptions::from_json("");  // the machine's host name
  if (!defaults) return defaults.status();
  Config c;
  c.service = std::move(defaults).value();
  VMREPL_RETURN_IF_ERROR(parse(top, c));
  return c;
}

std::map<std::string, std::string> flatten(const Config& c) {
  const auto str = [](std::string_view s) { return quote(s, std::numeric_limits<size_t>::max()); };
  const vmrepl::ServiceOptions& o = c.service;
  std::map<std::string, std::string> m;
  m["host_name"] = str(o.host_name);
  m["host_root"] = str(c.host_root);
  m["log_level"] = str(log_level_name(c.log_level));
  m["replication.listen"] = str(o.listen);
  m["replication.tls_listen"] = str(o.tls_listen);
  for (const auto& [name, addr] : o.hosts) m["replication.hosts." + name] = str(addr);
  m["replication.connect_timeout_ms"] = std::to_string(o.connect_timeout_ms);
  m["replication.io_timeout_ms"] = std::to_string(o.io_timeout_ms);
  m["replication.zstd_level"] = std::to_string(o.zstd_level);
  m["replication.cycle_interval_override_s"] = std::to_string(o.cycle_interval_override_s);
  m["replication.job_retention_s"] = std::to_string(o.job_retention_s);
  m["management.socket"] = str(c.management_socket);
  m["management.listen"] = str(c.management_listen);
  m["tls.certificate"] = str(c.tls.certificate);
  m["tls.key"] = str(c.tls.key);
  m["tls.ca"] = str(c.tls.ca);
  std::string pins = "[";
  for (const auto& t : c.tls.pinned_thumbprints) pins += (pins.size() > 1 ? ", " : "") + str(t);
  m["tls.pinned_thumbprints"] = pins + "]";
  m["limits.bandwidth_bytes_per_s"] = std::to_string(c.bandwidth_bytes_per_s);
  return m;
}

bool reloadable(const std::string& key) { return key == "log_level" || key == "limits.bandwidth_bytes_per_s"; }

}  // namespace vmrepld
