#include "core/engine/engine_detail.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/blocks/sparse_io.h"
#include "core/protocol/messages.h"

namespace vmrepl::engine_detail {

using json = nlohmann::json;

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string state_text(ReplicationState s) {
  return std::to_string(to_number(s)) + " (" + std::string(to_string(s)) + ")";
}

std::string mode_text(ReplicationMode m) {
  return std::to_string(to_number(m)) + " (" + std::string(to_string(m)) + ")";
}

Status mkdirs(const std::string& path) {
  std::string cur;
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      cur = path.substr(0, i);
      if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST)
        return Status::Failed("cannot create " + cur + ": " + std::strerror(errno));
    }
  }
  return Status::OK();
}

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Failed("cannot open " + dir + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::Failed("cannot fsync " + dir + ": " + std::strerror(errno));
  return Status::OK();
}

Status make_placeholder(const std::string& path, uint64_t size) {
  std::string tmp = path + ".tmp";
  std::remove(tmp.c_str());
  VMREPL_RETURN_IF_ERROR(create_sparse_file(tmp, size));
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return Status::Failed("cannot replace " + path + ": " + std::strerror(errno));
  return Status::OK();
}

Status remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);  // removes symlinks themselves, never their targets
  if (ec) return Status::Failed("cannot delete " + path + ": " + ec.message());
  return Status::OK();
}

Result<json> call(Channel& ch, uint64_t seq, std::string method, const json& body, std::chrono::milliseconds timeout) {
  VMREPL_RETURN_IF_ERROR(ch.send(protocol::Request{seq, method, body.dump()}));
  auto resp = ch.expect<protocol::Response>(timeout);
  if (!resp) return resp.status();
  if (resp->code != 0) return Status(static_cast<Code>(resp->code), resp->text);
  if (resp->body_json.empty()) return json::object();
  json j = json::parse(resp->body_json, nullptr, false);
  if (j.is_discarded()) return Status::Failed("protocol: response to " + method + " is not JSON");
  return j;
}

Status peer_refusal(Channel& ch, const Status& failure) {
  if (failure.code() != Code::SystemNotAvailable) return failure;
  auto m = ch.recv(std::chrono::milliseconds(500));
  if (m)
    if (auto* e = std::get_if<protocol::Error>(&*m)) return Status(static_cast<Code>(e->code), e->text);
  return failure;
}

Result<BlockIndex> fetch_index(Channel& ch, uint64_t& seq, const std::string& method, json body, HashAlgorithm alg,
                               uint32_t block_size, uint64_t disk_size, std::chrono::milliseconds timeout) {
  auto idx = BlockIndex::create(alg, block_size, disk_size);
  if (!idx) return idx.status();
  const uint64_t n = idx->block_count();
  for (uint64_t first = 0; first < n;) {
    const uint64_t count = std::min<uint64_t>(n - first, 100000);
    body["first"] = first;
    body["count"] = count;
    auto r = call(ch, ++seq, method, body, timeout);
    if (!r) return r.status();
    VMREPL_RETURN_IF_ERROR(parse_hex_entries(r->value("entries", ""), *idx, first, count));
    if (body.contains("rescan")) body["rescan"] = false;
    first += count;
  }
  return idx;
}

std::string hex_entries(const BlockIndex& idx, uint64_t first, uint64_t count) {
  static const char* kHex = "0123456789abcdef";
  const size_t hs = digest_size(idx.algorithm());
  std::string out;
  out.reserve(count * (1 + hs) * 2);
  for (uint64_t i = first; i < first + count; ++i) {
    const BlockEntry& e = idx.entry(i);
    out += kHex[e.flags >> 4];
    out += kHex[e.flags & 15];
    for (size_t b = 0; b < hs; ++b) {
      out += kHex[e.hash.bytes[b] >> 4];
      out += kHex[e.hash.bytes[b] & 15];
    }
  }
  return out;
}

Status parse_hex_entries(std::string_view hex, BlockIndex& idx, uint64_t first, uint64_t count) {
  const size_t hs = digest_size(idx.algorithm());
  if (first > idx.block_count() || count > idx.block_count() - first || hex.size() != count * (1 + hs) * 2)
    return Status::Failed("protocol: index reply of the wrong size");
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  auto byte = [&](const char* p, uint8_t& out) {
    int hi = nib(p[0]), lo = nib(p[1]);
    if (hi < 0 || lo < 0) return false;
    out = static_cast<uint8_t>(hi << 4 | lo);
    return true;
  };
  for (uint64_t k = 0; k < count; ++k) {
    const char* p = hex.data() + k * (1 + hs) * 2;
    uint8_t flags = 0;
    BlockHash h;
    bool ok = byte(p, flags);
    for (size_t b = 0; ok && b < hs; ++b) ok = byte(p + 2 + 2 * b, h.bytes[b]);
    if (!ok) return Status::Failed("protocol: index reply is not hex");
    if (flags & BlockEntry::kZero)
      idx.set_zero(first + k);
    else
      idx.set_data(first + k, h);
  }
  return Status::OK();
}

json block_sets_to_json(const DiskBlockSets& sets) {
  json out = json::array();
  for (const auto& s : sets) {
    json runs = json::array();
    s.for_each_run([&](const BlockRun& r) { runs.push_back({r.first, r.count}); });
    out.push_back(std::move(runs));
  }
  return out;
}

Result<DiskBlockSets> block_sets_from_json(const json& j, const std::vector<uint64_t>& block_counts) {
  if (!j.is_array() || j.size() != block_counts.size())
    return Status::InvalidParameter("block sets: one array per disk expected");
  DiskBlockSets out(block_counts.size());
  for (size_t d = 0; d < block_counts.size(); ++d) {
    if (!j[d].is_array()) return Status::InvalidParameter("block sets: disk " + std::to_string(d) + " is not an array");
    for (const auto& r : j[d]) {
      if (!r.is_array() || r.size() != 2 || !r[0].is_number_unsigned() || !r[1].is_number_unsigned())
        return Status::InvalidParameter("block sets: a run must be [first, count]");
      uint64_t first = r[0].get<uint64_t>(), count = r[1].get<uint64_t>();
      if (count == 0 || first >= block_counts[d] || count > block_counts[d] - first)
        return Status::InvalidParameter("block sets: run [" + std::to_string(first) + ", " + std::to_string(count) +
                                        "] is outside disk " + std::to_string(d));
      out[d].insert(first, count);
    }
  }
  return out;
}

}  // namespace vmrepl::engine_detail
