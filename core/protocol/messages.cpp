#include "core/protocol/messages.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "core/protocol/msgpack_api.h"

namespace vmrepl::protocol {

namespace {

// ---- encoding --------------------------------------------------------------------------

struct ByteSink {
  std::vector<uint8_t>* out;
  void write(const char* p, std::size_t n) {
    out->insert(out->end(), reinterpret_cast<const uint8_t*>(p), reinterpret_cast<const uint8_t*>(p) + n);
  }
};

// Writes {"t": type, fields...}. The map header is a fixmap (every message has at most 15
// fields) patched with the count at the end, so no field count is kept by hand.
class Writer {
 public:
  Writer(std::vector<uint8_t>& out, std::string_view type) : out_(out), pk_(sink_) {
    sink_.out = &out_;
    out_.push_back(0x80);
    key("t");
    str(type);
  }
  ~Writer() { out_[0] = static_cast<uint8_t>(0x80 | fields_); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  Writer& key(std::string_view k) {
    ++fields_;
    return str(k);
  }
  Writer& str(std::string_view s) {
    pk_.pack_str(static_cast<uint32_t>(s.size()));
    pk_.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  Writer& u(uint64_t v) {
    pk_.pack_uint64(v);
    return *this;
  }
  Writer& i(int64_t v) {
    pk_.pack_int64(v);
    return *this;
  }
  Writer& b(bool v) {
    if (v) pk_.pack_true();
    else pk_.pack_false();
    return *this;
  }
  Writer& guid(const Guid& g) { return str(g.to_string()); }
  Writer& bin(std::span<const uint8_t> data) {
    pk_.pack_bin(static_cast<uint32_t>(data.size()));
    pk_.pack_bin_body(reinterpret_cast<const char*>(data.data()), static_cast<uint32_t>(data.size()));
    return *this;
  }
  Writer& strs(const std::vector<std::string>& v) {
    pk_.pack_array(static_cast<uint32_t>(v.size()));
    for (const auto& s : v) str(s);
    return *this;
  }
  Writer& u64s(const std::vector<uint64_t>& v) {
    pk_.pack_array(static_cast<uint32_t>(v.size()));
    for (uint64_t x : v) u(x);
    return *this;
  }
  Writer& hashes(const std::vector<BlockHash>& v) {
    pk_.pack_array(static_cast<uint32_t>(v.size()));
    for (const auto& h : v) bin(h.bytes);
    return *this;
  }

 private:
  std::vector<uint8_t>& out_;
  ByteSink sink_{};
  msgpack::packer<ByteSink> pk_;
  uint8_t fields_ = 0;
};

void put(std::vector<uint8_t>& out, const Hello& m) {
  Writer w(out, "hello");
  w.key("protocol_version").u(m.protocol_version);
  w.key("service_id").guid(m.service_id);
  w.key("host_name").str(m.host_name);
  w.key("capabilities").strs(m.capabilities);
  if (m.auth_token) w.key("auth_token").str(*m.auth_token);
}

void put(std::vector<uint8_t>& out, const HelloReply& m) {
  Writer w(out, "hello_reply");
  w.key("accepted").b(m.accepted);
  w.key("protocol_version").u(m.protocol_version);
  w.key("service_id").guid(m.service_id);
  w.key("host_name").str(m.host_name);
  w.key("capabilities").strs(m.capabilities);
  w.key("error_code").u(m.error_code);
  w.key("error_text").str(m.error_text);
}

void put(std::vector<uint8_t>& out, const Error& m) {
  Writer w(out, "error");
  w.key("code").u(m.code);
  w.key("text").str(m.text);
  if (m.in_reply_to) w.key("in_reply_to").u(*m.in_reply_to);
}

void put(std::vector<uint8_t>& out, const Ack& m) {
  Writer w(out, "ack");
  w.key("seq").u(m.seq);
  w.key("code").u(m.code);
  w.key("text").str(m.text);
  if (!m.data.empty()) w.key("data").str(m.data);
}

void put(std::vector<uint8_t>& out, const RelationshipCreate& m) {
  Writer w(out, "relationship_create");
  w.key("seq").u(m.seq);
  w.key("vm_id").guid(m.vm_id);
  w.key("vm_name").str(m.vm_name);
  w.key("disk_sizes").u64s(m.disk_sizes);
  w.key("block_size").u(m.block_size);
  w.key("hash_algorithm").u(static_cast<uint8_t>(m.hash_algorithm));
  w.key("settings_json").str(m.settings_json);
}

void put(std::vector<uint8_t>& out, const RelationshipModify& m) {
  Writer w(out, "relationship_modify");
  w.key("seq").u(m.seq);
  w.key("vm_id").guid(m.vm_id);
  w.key("settings_json").str(m.settings_json);
}

void put(std::vector<uint8_t>& out, const RelationshipRemove& m) {
  Writer w(out, "relationship_remove");
  w.key("seq").u(m.seq);
  w.key("vm_id").guid(m.vm_id);
}

void put(std::vector<uint8_t>& out, const CycleBegin& m) {
  Writer w(out, "cycle_begin");
  w.key("seq").u(m.seq);
  w.key("vm_id").guid(m.vm_id);
  w.key("cycle_id").u(m.cycle_id);
  w.key("point_type").u(m.point_type);
  w.key("full").b(m.full);
  w.key("disk_sizes").u64s(m.disk_sizes);
  w.key("block_size").u(m.block_size);
  w.key("compression").b(m.compression);
  w.key("zstd_level").i(m.zstd_level);
}

void put(std::vector<uint8_t>& out, const BlockBatch& m) {
  out.reserve(encoded_batch_bytes(m));
  Writer w(out, "block_batch");
  w.key("seq").u(m.seq);
  w.key("vm_id").guid(m.vm_id);
  w.key("cycle_id").u(m.cycle_id);
  w.key("disk").u(m.disk);
  w.key("zero_blocks").u64s(m.zero_blocks);
  w.key("data_blocks").u64s(m.data_blocks);
  if (!m.ranges.empty()) {
    std::vector<uint64_t> flat;
    flat.reserve(3 * m.ranges.size());
    for (const auto& r : m.ranges) flat.insert(flat.end(), {r.block, r.offset, r.length});
    w.key("ranges").u64s(flat);
  }
  w.key("codec").u(static_cast<uint8_t>(m.codec));
  w.key("raw_size").u(m.raw_size);
  w.key("payload").bin(m.payload);
}

void put(std::vector<uint8_t>& out, const CycleEnd& m) {
  Writer w(out, "cycle_end");
  w.key("seq").u(m.seq);
  w.key("vm_id").guid(m.vm_id);
  w.key("cycle_id").u(m.cycle_id);
  w.key("disk_roots").hashes(m.disk_roots);
  w.key("blocks_sent").u(m.blocks_sent);
  w.key("bytes_sent").u(m.bytes_sent);
}

void put(std::vector<uint8_t>& out, const Request& m) {
  Writer w(out, "request");
  w.key("seq").u(m.seq);
  w.key("method").str(m.method);
  w.key("body_json").str(m.body_json);
}

void put(std::vector<uint8_t>& out, const Response& m) {
  Writer w(out, "response");
  w.key("seq").u(m.seq);
  w.key("code").u(m.code);
  w.key("text").str(m.text);
  w.key("body_json").str(m.body_json);
}

// ---- shape check -----------------------------------------------------------------------

std::string n2s(uint64_t v) { return std::to_string(v); }

// A first pass over the bytes with msgpack's visitor parser: syntax, truncation, nesting and
// sizes are checked before msgpack::unpack allocates its object tree (which allocates an
// array's elements when it meets the array's header, before they are read).
struct ShapeCheck : msgpack::null_visitor {
  std::size_t depth = 0;
  std::size_t elements = 0;
  Status error;

  bool fail(Status s) {
    if (error.ok()) error = std::move(s);
    return false;
  }
  bool enter(uint32_t n, bool is_map) {
    if (++depth > kMaxNesting) {
      return fail(Status::InvalidParameter("message nests containers deeper than " + n2s(kMaxNesting) + " levels"));
    }
    if (is_map && n > kMaxFields) {
      return fail(Status::InvalidParameter("map of " + n2s(n) + " entries exceeds the " + n2s(kMaxFields) + "-entry limit"));
    }
    if (!is_map && n > kMaxBatchBlocks) {
      return fail(Status::InvalidParameter("array of " + n2s(n) + " elements exceeds the " + n2s(kMaxBatchBlocks) +
                                           "-element limit"));
    }
    elements += n;
    if (elements > kMaxElements) {
      return fail(Status::InvalidParameter("message has more than " + n2s(kMaxElements) + " array elements and map entries"));
    }
    return true;
  }
  bool start_array(uint32_t n) { return enter(n, false); }
  bool end_array() {
    --depth;
    return true;
  }
  bool start_map(uint32_t n) { return enter(n, true); }
  bool end_map() {
    --depth;
    return true;
  }
  bool visit_str(const char*, uint32_t n) {
    if (n > kMaxJsonBytes) {
      return fail(Status::InvalidParameter("string of " + n2s(n) + " bytes exceeds the " + n2s(kMaxJsonBytes) + "-byte limit"));
    }
    return true;
  }
  bool visit_bin(const char*, uint32_t n) {
    if (n > kMaxBatchRawBytes) {
      return fail(Status::InvalidParameter("binary of " + n2s(n) + " bytes exceeds the " + n2s(kMaxBatchRawBytes) +
                                           "-byte limit"));
    }
    return true;
  }
  bool visit_ext(const char*, uint32_t n) {  // n counts the type byte too
    if (n > kMaxTextBytes + 1) {
      return fail(Status::InvalidParameter("extension value of " + n2s(n - 1) + " bytes exceeds the " +
                                           n2s(kMaxTextBytes) + "-byte limit"));
    }
    return true;
  }
  void parse_error(std::size_t, std::size_t at) {
    fail(Status::IncorrectDataType("malformed msgpack at byte " + n2s(at)));
  }
  void insufficient_bytes(std::size_t, std::size_t at) {
    fail(Status::IncorrectDataType("truncated msgpack: a value is incomplete at byte " + n2s(at)));
  }
};

// ---- field reading ---------------------------------------------------------------------

std::string_view kind(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL: return "nil";
    case msgpack::type::BOOLEAN: return "a boolean";
    case msgpack::type::POSITIVE_INTEGER: return "an unsigned integer";
    case msgpack::type::NEGATIVE_INTEGER: return "a negative integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return "a float";
    case msgpack::type::STR: return "a string";
    case msgpack::type::BIN: return "a binary";
    case msgpack::type::ARRAY: return "an array";
    case msgpack::type::MAP: return "a map";
    case msgpack::type::EXT: return "an extension value";
  }
  return "an unknown value";
}

// UTF-8 without overlong forms, surrogates or NUL (strings reach JSON, the catalog and C).
bool valid_text(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      if (c == 0) return false;
      ++i;
      continue;
    }
    int extra;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) extra = 1, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) extra = 2, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) extra = 3, cp = c & 0x07, min = 0x10000;
    else return false;
    if (s.size() - i <= static_cast<std::size_t>(extra)) return false;
    for (int k = 1; k <= extra; ++k) {
      auto d = static_cast<uint8_t>(s[i + static_cast<std::size_t>(k)]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += static_cast<std::size_t>(extra) + 1;
  }
  return true;
}

// Printable, bounded rendering of untrusted text for error messages.
std::string printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < 64; ++i) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

class Reader {
 public:
  Reader(std::string_view type, std::vector<std::pair<std::string_view, const msgpack::object*>> fields)
      : type_(type), fields_(std::move(fields)) {}

  // Present and not nil (nil stands for an absent optional field).
  bool has(std::string_view name) const {
    const msgpack::object* o = find(name);
    return o != nullptr && o->type != msgpack::type::NIL;
  }

  Status u64(std::string_view name, uint64_t& out, uint64_t max = std::numeric_limits<uint64_t>::max()) {
    const msgpack::object* o;
    VMREPL_RETURN_IF_ERROR(get(name, o));
    VMREPL_RETURN_IF_ERROR(as_u64(name, *o, out));
    if (out > max) return bad(name, "is " + n2s(out) + ", above the maximum " + n2s(max));
    return Status::OK();
  }
  template <class T>
  Status uint(std::string_view name, T& out) {
    uint64_t v = 0;
    VMREPL_RETURN_IF_ERROR(u64(name, v, std::numeric_limits<T>::max()));
    out = static_cast<T>(v);
    return Status::OK();
  }
  Status i32(std::string_view name, int32_t& out) {
    const msgpack::object* o;
    VMREPL_RETURN_IF_ERROR(get(name, o));
    if (o->type == msgpack::type::POSITIVE_INTEGER) {
      if (o->via.u64 > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
        return bad(name, "is " + n2s(o->via.u64) + ", above the maximum 2147483647");
      }
      out = static_cast<int32_t>(o->via.u64);
      return Status::OK();
    }
    if (o->type == msgpack::type::NEGATIVE_INTEGER) {
      if (o->via.i64 < std::numeric_limits<int32_t>::min()) {
        return bad(name, "is " + std::to_string(o->via.i64) + ", below the minimum -2147483648");
      }
      out = static_cast<int32_t>(o->via.i64);
      return Status::OK();
    }
    return wrong(name, "an integer", *o);
  }
  Status boolean(std::string_view name, bool& out) {
    const msgpack::object* o;
    VMREPL_RETURN_IF_ERROR(get(name, o));
    if (o->type != msgpack::type::BOOLEAN) return wrong(name, "a boolean", *o);
    out = o->via.boolean;
    return Status::OK();
  }
  Status str(std::string_view name, std::string& out, std::size_t max_bytes) {
    const msgpack::object* o;
    VMREPL_RETURN_IF_ERROR(get(name, o));
    return as_str(name, *o, out, max_bytes);
  }
  Status opt_str(std::string_view name, std::optional<std::string>& out, std::size_t max_bytes) {
    if (!has(name)) return Status::OK();
    std::string s;
    VMREPL_RETURN_IF_ERROR(str(name, s, max_bytes));
    out = std::move(s);
    return Status::OK();
  }
  Status guid(std::string_view name, Guid& out) {
    std::string s;
    VMREPL_RETURN_IF_ERROR(str(name, s, 64));
    Result<Guid> g = Guid::parse(s);
    if (!g.ok()) return bad(name, "is not a GUID: '" + printable(s) + "'");
    out = *g;
    return Status::OK();
  }
  Status bin(std::string_view name, std::vector<uint8_t>& out, std::size_t max_bytes) {
    const msgpack::object* o;
    VMREPL_RETURN_IF_ERROR(get(name, o));
    if (o->type != msgpack::type::BIN) return wrong(name, "a binary", *o);
    if (o->via.bin.size > max_bytes) return too_long(name, o->via.bin.size, max_bytes);
    const auto* p = reinterpret_cast<const uint8_t*>(o->via.bin.ptr);
    out.assign(p, p + o->via.bin.size);
    return Status::OK();
  }
  // bin() as the last read of a message: when the binary ends the frame decode_owned() was
  // given, the frame's buffer becomes `out` (every view into the frame is dead afterwards).
  Status last_bin(std::string_view name, std::vector<uint8_t>& out, std::size_t max_bytes) {
    const msgpack::object* o;
    VMREPL_RETURN_IF_ERROR(get(name, o));
    if (o->type != msgpack::type::BIN || o->via.bin.size > max_bytes || frame_ == nullptr)
      return bin(name, out, max_bytes);
    const auto* p = reinterpret_cast<const uint8_t*>(o->via.bin.ptr);
    const uint8_t* frame_begin = frame_->data();
    const uint8_t* frame_end = frame_begin + frame_->size();
    if (p < frame_begin || p + o->via.bin.size != frame_end) return bin(name, out, max_bytes);
    const auto at = static_cast<std::ptrdiff_t>(p - frame_begin);
    out = std::move(*frame_);
    frame_->clear();
    out.erase(out.begin(), out.begin() + at);
    return Status::OK();
  }
  void own_frame(std::vector<uint8_t>* frame) { frame_ = frame; }
  Status strs(std::string_view name, std::vector<std::string>& out, std::size_t max_count, std::size_t max_bytes) {
    const msgpack::object_array* a;
    VMREPL_RETURN_IF_ERROR(array(name, a, max_count));
    out.resize(a->size);
    for (uint32_t k = 0; k < a->size; ++k) {
      VMREPL_RETURN_IF_ERROR(as_str(element(name, k), a->ptr[k], out[k], max_bytes));
    }
    return Status::OK();
  }
  Status u64s(std::string_view name, std::vector<uint64_t>& out, std::size_t max_count) {
    const msgpack::object_array* a;
    VMREPL_RETURN_IF_ERROR(array(name, a, max_count));
    out.resize(a->size);
    for (uint32_t k = 0; k < a->size; ++k) VMREPL_RETURN_IF_ERROR(as_u64(element(name, k), a->ptr[k], out[k]));
    return Status::OK();
  }
  Status hashes(std::string_view name, std::vector<BlockHash>& out, std::size_t max_count) {
    const msgpack::object_array* a;
    VMREPL_RETURN_IF_ERROR(array(name, a, max_count));
    out.resize(a->size);
    for (uint32_t k = 0; k < a->size; ++k) {
      const msgpack::object& e = a->ptr[k];
      if (e.type != msgpack::type::BIN) return wrong(element(name, k), "a 32-byte binary", e);
      if (e.via.bin.size != out[k].bytes.size()) {
        return bad(element(name, k), "is " + n2s(e.via.bin.size) + " bytes; a digest is 32");
      }
      std::copy_n(reinterpret_cast<const uint8_t*>(e.via.bin.ptr), out[k].bytes.size(), out[k].bytes.begin());
    }
    return Status::OK();
  }

 private:
  const msgpack::object* find(std::string_view name) const {
    for (const auto& [k, v] : fields_) {
      if (k == name) return v;
    }
    return nullptr;
  }
  Status get(std::string_view name, const msgpack::object*& o) const {
    o = find(name);
    if (o == nullptr) return Status::IncorrectDataType(std::string(type_) + ": missing required field '" + std::string(name) + "'");
    return Status::OK();
  }
  Status bad(std::string_view name, const std::string& what) const {
    return Status::IncorrectDataType(std::string(type_) + ": field '" + std::string(name) + "' " + what);
  }
  Status wrong(std::string_view name, std::string_view expected, const msgpack::object& o) const {
    return bad(name, "must be " + std::string(expected) + ", not " + std::string(kind(o)));
  }
  Status too_long(std::string_view name, std::size_t n, std::size_t max) const {
    return Status::InvalidParameter(std::string(type_) + ": field '" + std::string(name) + "' is " + n2s(n) +
                                    " bytes, above the " + n2s(max) + "-byte limit");
  }
  // "disk_sizes[3]", for errors in list elements.
  std::string element(std::string_view name, uint32_t k) { return std::string(name) + "[" + n2s(k) + "]"; }

  Status as_u64(std::string_view name, const msgpack::object& o, uint64_t& out) const {
    if (o.type != msgpack::type::POSITIVE_INTEGER) return wrong(name, "an unsigned integer", o);
    out = o.via.u64;
    return Status::OK();
  }
  Status as_str(std::string_view name, const msgpack::object& o, std::string& out, std::size_t max_bytes) const {
    if (o.type != msgpack::type::STR) return wrong(name, "a string", o);
    if (o.via.str.size > max_bytes) return too_long(name, o.via.str.size, max_bytes);
    std::string_view s(o.via.str.ptr, o.via.str.size);
    if (!valid_text(s)) return bad(name, "is not UTF-8 text without NUL");
    out.assign(s);
    return Status::OK();
  }
  Status array(std::string_view name, const msgpack::object_array*& a, std::size_t max_count) const {
    const msgpack::object* o;
    VMREPL_RETURN_IF_ERROR(get(name, o));
    if (o->type != msgpack::type::ARRAY) return wrong(name, "an array", *o);
    if (o->via.array.size > max_count) {
      return Status::InvalidParameter(std::string(type_) + ": field '" + std::string(name) + "' has " +
                                      n2s(o->via.array.size) + " entries, above the " + n2s(max_count) +
                                      "-entry limit");
    }
    a = &o->via.array;
    return Status::OK();
  }

  std::string_view type_;
  std::vector<std::pair<std::string_view, const msgpack::object*>> fields_;
  std::vector<uint8_t>* frame_ = nullptr;  // decode_owned(): the frame, which a batch may take
};

// ---- per-message decoders --------------------------------------------------------------

Result<Message> read_hello(Reader& r) {
  Hello m;
  VMREPL_RETURN_IF_ERROR(r.uint("protocol_version", m.protocol_version));
  VMREPL_RETURN_IF_ERROR(r.guid("service_id", m.service_id));
  VMREPL_RETURN_IF_ERROR(r.str("host_name", m.host_name, kMaxNameBytes));
  VMREPL_RETURN_IF_ERROR(r.strs("capabilities", m.capabilities, kMaxCapabilities, kMaxNameBytes));
  VMREPL_RETURN_IF_ERROR(r.opt_str("auth_token", m.auth_token, kMaxTokenBytes));
  return Message(std::move(m));
}

Result<Message> read_hello_reply(Reader& r) {
  HelloReply m;
  VMREPL_RETURN_IF_ERROR(r.boolean("accepted", m.accepted));
  VMREPL_RETURN_IF_ERROR(r.uint("protocol_version", m.protocol_version));
  VMREPL_RETURN_IF_ERROR(r.guid("service_id", m.service_id));
  VMREPL_RETURN_IF_ERROR(r.str("host_name", m.host_name, kMaxNameBytes));
  VMREPL_RETURN_IF_ERROR(r.strs("capabilities", m.capabilities, kMaxCapabilities, kMaxNameBytes));
  VMREPL_RETURN_IF_ERROR(r.uint("error_code", m.error_code));
  VMREPL_RETURN_IF_ERROR(r.str("error_text", m.error_text, kMaxTextBytes));
  return Message(std::move(m));
}

Result<Message> read_error(Reader& r) {
  Error m;
  VMREPL_RETURN_IF_ERROR(r.uint("code", m.code));
  VMREPL_RETURN_IF_ERROR(r.str("text", m.text, kMaxTextBytes));
  if (r.has("in_reply_to")) {
    uint64_t v = 0;
    VMREPL_RETURN_IF_ERROR(r.u64("in_reply_to", v));
    m.in_reply_to = v;
  }
  return Message(std::move(m));
}

Result<Message> read_ack(Reader& r) {
  Ack m;
  VMREPL_RETURN_IF_ERROR(r.u64("seq", m.seq));
  VMREPL_RETURN_IF_ERROR(r.uint("code", m.code));
  VMREPL_RETURN_IF_ERROR(r.str("text", m.text, kMaxTextBytes));
  if (r.has("data")) VMREPL_RETURN_IF_ERROR(r.str("data", m.data, kMaxJsonBytes));
  return Message(std::move(m));
}

Result<Message> read_relationship_create(Reader& r) {
  RelationshipCreate m;
  VMREPL_RETURN_IF_ERROR(r.u64("seq", m.seq));
  VMREPL_RETURN_IF_ERROR(r.guid("vm_id", m.vm_id));
  VMREPL_RETURN_IF_ERROR(r.str("vm_name", m.vm_name, kMaxNameBytes));
  VMREPL_RETURN_IF_ERROR(r.u64s("disk_sizes", m.disk_sizes, kMaxDisks));
  VMREPL_RETURN_IF_ERROR(r.uint("block_size", m.block_size));
  uint8_t algorithm = 0;
  VMREPL_RETURN_IF_ERROR(r.uint("hash_algorithm", algorithm));
  if (!is_known_hash_algorithm(algorithm)) {
    return Status::InvalidParameter("relationship_create: field 'hash_algorithm' is " + n2s(algorithm) +
                                    ", not a known algorithm (1 xxh3-128, 2 sha256)");
  }
  m.hash_algorithm = static_cast<HashAlgorithm>(algorithm);
  VMREPL_RETURN_IF_ERROR(r.str("settings_json", m.settings_json, kMaxJsonBytes));
  return Message(std::move(m));
}

Result<Message> read_relationship_modify(Reader& r) {
  RelationshipModify m;
  VMREPL_RETURN_IF_ERROR(r.u64("seq", m.seq));
  VMREPL_RETURN_IF_ERROR(r.guid("vm_id", m.vm_id));
  VMREPL_RETURN_IF_ERROR(r.str("settings_json", m.settings_json, kMaxJsonBytes));
  return Message(std::move(m));
}

Result<Message> read_relationship_remove(Reader& r) {
  RelationshipRemove m;
  VMREPL_RETURN_IF_ERROR(r.u64("seq", m.seq));
  VMREPL_RETURN_IF_ERROR(r.guid("vm_id", m.vm_id));
  return Message(std::move(m));
}

Result<Message> read_cycle_begin(Reader& r) {
  CycleBegin m;
  VMREPL_RETURN_IF_ERROR(r.u64("seq", m.seq));
  VMREPL_RETURN_IF_ERROR(r.guid("vm_id", m.vm_id));
  VMREPL_RETURN_IF_ERROR(r.u64("cycle_id", m.cycle_id));
  VMREPL_RETURN_IF_ERROR(r.uint("point_type", m.point_type));
  VMREPL_RETURN_IF_ERROR(r.boolean("full", m.full));
  VMREPL_RETURN_IF_ERROR(r.u64s("disk_sizes", m.disk_sizes, kMaxDisks));
  VMREPL_RETURN_IF_ERROR(r.uint("block_size", m.block_size));
  VMREPL_RETURN_IF_ERROR(r.boolean("compression", m.compression));
  VMREPL_RETURN_IF_ERROR(r.i32("zstd_level", m.zstd_level));
  return Message(std::move(m));
}

Result<Message> read_block_batch(Reader& r) {
  BlockBatch m;
  VMREPL_RETURN_IF_ERROR(r.u64("seq", m.seq));
  VMREPL_RETURN_IF_ERROR(r.guid("vm_id", m.vm_id));
  VMREPL_RETURN_IF_ERROR(r.u64("cycle_id", m.cycle_id));
  VMREPL_RETURN_IF_ERROR(r.uint("disk", m.disk));
  VMREPL_RETURN_IF_ERROR(r.u64s("zero_blocks", m.zero_blocks, kMaxBatchBlocks));
  VMREPL_RETURN_IF_ERROR(r.u64s("data_blocks", m.data_blocks, kMaxBatchBlocks));
  if (r.has("ranges")) {
    std::vector<uint64_t> flat;
    VMREPL_RETURN_IF_ERROR(r.u64s("ranges", flat, 3 * kMaxBatchRanges));
    if (flat.size() % 3 != 0)
      return Status::InvalidParameter("block_batch: field 'ranges' has " + n2s(flat.size()) +
                                      " integers, not (block, offset, length) triples");
    m.ranges.reserve(flat.size() / 3);
    for (std::size_t k = 0; k < flat.size(); k += 3) {
      if (flat[k + 1] > UINT32_MAX || flat[k + 2] > UINT32_MAX)
        return Status::InvalidParameter("block_batch: range " + n2s(k / 3) + " has an offset or length above 2^32");
      m.ranges.push_back(BlockRange{flat[k], static_cast<uint32_t>(flat[k + 1]), static_cast<uint32_t>(flat[k + 2])});
    }
  }
  uint8_t codec = 0;
  VMREPL_RETURN_IF_ERROR(r.uint("codec", codec));
  if (codec > static_cast<uint8_t>(Codec::Zstd)) {
    return Status::InvalidParameter("block_batch: field 'codec' is " + n2s(codec) + ", not a known codec (0 raw, 1 zstd)");
  }
  m.codec = static_cast<Codec>(codec);
  VMREPL_RETURN_IF_ERROR(r.u64("raw_size", m.raw_size));
  if (m.raw_size > kMaxBatchRawBytes) {
    return Status::InvalidParameter("block_batch: field 'raw_size' is " + n2s(m.raw_size) + ", above the " +
                                    n2s(kMaxBatchRawBytes) + "-byte batch limit");
  }
  VMREPL_RETURN_IF_ERROR(r.last_bin("payload", m.payload, kMaxBatchRawBytes));
  return Message(std::move(m));
}

Result<Message> read_cycle_end(Reader& r) {
  CycleEnd m;
  VMREPL_RETURN_IF_ERROR(r.u64("seq", m.seq));
  VMREPL_RETURN_IF_ERROR(r.guid("vm_id", m.vm_id));
  VMREPL_RETURN_IF_ERROR(r.u64("cycle_id", m.cycle_id));
  VMREPL_RETURN_IF_ERROR(r.hashes("disk_roots", m.disk_roots, kMaxDisks));
  VMREPL_RETURN_IF_ERROR(r.u64("blocks_sent", m.blocks_sent));
  VMREPL_RETURN_IF_ERROR(r.u64("bytes_sent", m.bytes_sent));
  return Message(std::move(m));
}

Result<Message> read_request(Reader& r) {
  Request m;
  VMREPL_RETURN_IF_ERROR(r.u64("seq", m.seq));
  VMREPL_RETURN_IF_ERROR(r.str("method", m.method, kMaxNameBytes));
  VMREPL_RETURN_IF_ERROR(r.str("body_json", m.body_json, kMaxJsonBytes));
  return Message(std::move(m));
}

Result<Message> read_response(Reader& r) {
  Response m;
  VMREPL_RETURN_IF_ERROR(r.u64("seq", m.seq));
  VMREPL_RETURN_IF_ERROR(r.uint("code", m.code));
  VMREPL_RETURN_IF_ERROR(r.str("text", m.text, kMaxTextBytes));
  VMREPL_RETURN_IF_ERROR(r.str("body_json", m.body_json, kMaxJsonBytes));
  return Message(std::move(m));
}

struct Kind {
  std::string_view name;
  Result<Message> (*read)(Reader&);
};

// In the order of the Message variant, so index() names the type.
constexpr Kind kKinds[] = {
    {"hello", read_hello},
    {"hello_reply", read_hello_reply},
    {"error", read_error},
    {"ack", read_ack},
    {"relationship_create", read_relationship_create},
    {"relationship_modify", read_relationship_modify},
    {"relationship_remove", read_relationship_remove},
    {"cycle_begin", read_cycle_begin},
    {"block_batch", read_block_batch},
    {"cycle_end", read_cycle_end},
    {"request", read_request},
    {"response", read_response},
};
static_assert(std::size(kKinds) == std::variant_size_v<Message>);

bool reference_everything(msgpack::type::object_type, std::size_t, void*) { return true; }

}  // namespace

std::string_view message_type(const Message& m) { return kKinds[m.index()].name; }

std::vector<uint8_t> encode(const Message& m) {
  std::vector<uint8_t> out;
  std::visit([&out](const auto& msg) { put(out, msg); }, m);
  return out;
}

void encode_into(const Message& m, std::vector<uint8_t>& out) {
  out.clear();
  std::visit([&out](const auto& msg) { put(out, msg); }, m);
}

namespace {
Result<Message> decode_frame(std::span<const uint8_t> payload, std::vector<uint8_t>* owned);
}  // namespace

Result<Message> decode(std::span<const uint8_t> payload) { return decode_frame(payload, nullptr); }

Result<Message> decode_owned(std::vector<uint8_t>& frame) { return decode_frame(frame, &frame); }

namespace {

Result<Message> decode_frame(std::span<const uint8_t> payload, std::vector<uint8_t>* owned) {
  if (payload.empty()) return Status::IncorrectDataType("empty message");
  if (payload.size() > kMaxFrameBytes) {
    return Status::InvalidParameter("message of " + n2s(payload.size()) + " bytes exceeds the " +
                                    n2s(kMaxFrameBytes) + "-byte limit");
  }
  const char* data = reinterpret_cast<const char*>(payload.data());
  ShapeCheck check;
  std::size_t off = 0;
  bool parsed = msgpack::parse(data, payload.size(), off, check);
  if (!check.error.ok()) return check.error;
  if (!parsed) return Status::IncorrectDataType("malformed msgpack");
  if (off != payload.size()) {
    return Status::IncorrectDataType(n2s(payload.size() - off) + " trailing bytes after the message");
  }

  msgpack::object_handle handle;
  try {
    // Strings and binaries point into `payload` (no copy); they are copied out below.
    msgpack::unpack_limit limit(kMaxBatchBlocks, kMaxFields, kMaxJsonBytes, kMaxBatchRawBytes, kMaxTextBytes + 1,
                                kMaxNesting);
    handle = msgpack::unpack(data, payload.size(), reference_everything, nullptr, limit);
  } catch (const std::bad_alloc&) {
    return Status::OutOfMemory("decoding a message of " + n2s(payload.size()) + " bytes");
  } catch (const std::exception& e) {
    return Status::IncorrectDataType(std::string("malformed msgpack: ") + e.what());
  }
  const msgpack::object& root = handle.get();
  if (root.type != msgpack::type::MAP) {
    return Status::IncorrectDataType("a message must be a msgpack map, not " + std::string(kind(root)));
  }

  std::vector<std::pair<std::string_view, const msgpack::object*>> fields;
  fields.reserve(root.via.map.size);
  for (uint32_t k = 0; k < root.via.map.size; ++k) {
    const msgpack::object_kv& kv = root.via.map.ptr[k];
    if (kv.key.type != msgpack::type::STR) {
      return Status::IncorrectDataType("message field names must be strings, not " + std::string(kind(kv.key)));
    }
    fields.emplace_back(std::string_view(kv.key.via.str.ptr, kv.key.via.str.size), &kv.val);
  }
  std::vector<std::string_view> names;
  names.reserve(fields.size());
  for (const auto& f : fields) names.push_back(f.first);
  std::sort(names.begin(), names.end());
  auto dup = std::adjacent_find(names.begin(), names.end());
  if (dup != names.end()) return Status::IncorrectDataType("message has field '" + printable(*dup) + "' twice");

  const msgpack::object* t = nullptr;
  for (const auto& f : fields) {
    if (f.first == "t") t = f.second;
  }
  if (t == nullptr) return Status::IncorrectDataType("message lacks its type field 't'");
  if (t->type != msgpack::type::STR) {
    return Status::IncorrectDataType("message type field 't' must be a string, not " + std::string(kind(*t)));
  }
  std::string_view type(t->via.str.ptr, t->via.str.size);
  for (const Kind& k : kKinds) {
    if (k.name == type) {
      Reader reader(k.name, std::move(fields));
      reader.own_frame(owned);
      return k.read(reader);
    }
  }
  return Status::InvalidParameter("unknown message type '" + printable(type) + "'");
}

}  // namespace

Status check_protocol_version(uint32_t peer_version) {
  if (peer_version == kProtocolVersion) return Status::OK();
  return Status::NotSupported("peer speaks protocol version " + n2s(peer_version) + "; this service speaks " +
                              n2s(kProtocolVersion));
}

Error error_from(const Status& status, std::optional<uint64_t> in_reply_to) {
  return Error{status.number(), status.message(), in_reply_to};
}

Status status_from(const Error& error) {
  if (error.code >= static_cast<uint32_t>(Code::Failed) && is_known_code(error.code)) {
    return Status(static_cast<Code>(error.code), error.text);
  }
  return Status::Failed(error.text + " (peer status " + n2s(error.code) + ")");
}

ConnectionOptions connection_options() {
  ConnectionOptions o;
  o.max_frame_size = kMaxFrameBytes;
  o.send_high_watermark = 8u << 20;
  o.send_low_watermark = 4u << 20;
  o.send_queue_cap = 64u << 20;
  return o;
}

Status send_message(Connection& connection, const Message& m) { return connection.send(encode(m)); }

}  // namespace vmrepl::protocol
