#include <boost/test/unit_test.hpp>

#include <functional>

#include "core/protocol/msgpack_api.h"
#include "net/test_loop.h"
#include "protocol/samples.h"

using namespace vmrepl;
using namespace vmrepl::protocol;
using namespace vmrepl::test;

namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

// A msgpack map written by hand, for shapes encode() never produces.
std::vector<uint8_t> craft(uint32_t entries, const std::function<void(Packer&)>& body) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(entries);
  body(pk);
  return {reinterpret_cast<const uint8_t*>(buf.data()), reinterpret_cast<const uint8_t*>(buf.data()) + buf.size()};
}

void kv(Packer& pk, const std::string& k, const std::string& v) {
  pk.pack(k);
  pk.pack(v);
}
template <class T>
void kvn(Packer& pk, const std::string& k, T v) {
  pk.pack(k);
  pk.pack(v);
}

// {"t":"ack","seq":<seq field>,"code":0,"text":"ok"} with the seq value written by `seq`.
std::vector<uint8_t> ack_with_seq(const std::function<void(Packer&)>& seq) {
  return craft(4, [&](Packer& pk) {
    kv(pk, "t", "ack");
    pk.pack(std::string("seq"));
    seq(pk);
    kvn(pk, "code", 0);
    kv(pk, "text", "ok");
  });
}

Status decode_status(const std::vector<uint8_t>& bytes) {
  auto r = decode(bytes);
  return r.ok() ? Status::OK() : r.status();
}

std::vector<uint8_t> raw(std::initializer_list<int> v) {
  std::vector<uint8_t> out;
  for (int b : v) out.push_back(static_cast<uint8_t>(b));
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(messages_tests)

BOOST_AUTO_TEST_CASE(every_message_round_trips_exactly) {
  const char* names[] = {"hello", "hello_reply", "error", "ack", "relationship_create", "relationship_modify",
                         "relationship_remove", "cycle_begin", "block_batch", "cycle_end", "request", "response"};
  auto samples = sample_messages();
  BOOST_TEST_REQUIRE(samples.size() == std::variant_size_v<Message>);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    BOOST_TEST_CONTEXT(names[i]) {
      BOOST_TEST(samples[i].index() == i);
      BOOST_TEST(message_type(samples[i]) == names[i]);
      std::vector<uint8_t> bytes = encode(samples[i]);
      auto back = decode(bytes);
      BOOST_TEST_REQUIRE(back.ok(), back.status().ToString());
      BOOST_TEST((*back == samples[i]));
      BOOST_TEST((encode(*back) == bytes));
    }
  }
}

BOOST_AUTO_TEST_CASE(absent_optional_fields_stay_absent) {
  std::vector<Message> v = {Hello{1, sample_guid(1), "h", {}, std::nullopt}, Error{32768, "x", std::nullopt},
                            Ack{1, 0, "", ""}};
  for (const auto& m : v) {
    auto back = decode(encode(m));
    BOOST_TEST_REQUIRE(back.ok());
    BOOST_TEST((*back == m));
  }
  // nil stands for absent too.
  auto bytes = craft(4, [](Packer& pk) {
    kv(pk, "t", "error");
    kvn(pk, "code", 32768);
    kv(pk, "text", "x");
    pk.pack(std::string("in_reply_to"));
    pk.pack_nil();
  });
  auto e = decode(bytes);
  BOOST_TEST_REQUIRE(e.ok());
  BOOST_TEST(!std::get<Error>(*e).in_reply_to.has_value());
}

BOOST_AUTO_TEST_CASE(encoding_is_compact) {
  std::vector<uint8_t> b = encode(Ack{1, 0, "", ""});
  BOOST_TEST(b[0] == 0x84);  // fixmap of 4: t, seq, code, text
  BOOST_TEST(b.size() == 24u);  // 1 + "t" 2 + "ack" 4 + "seq" 4 + 1 + "code" 5 + 1 + "text" 5 + "" 1
  BOOST_TEST(encode(sample_messages()[8]).size() < 8192u + 160u);
}

BOOST_AUTO_TEST_CASE(unknown_fields_are_ignored) {
  Hello base{1, sample_guid(4), "h", {"a"}, std::nullopt};
  auto bytes = craft(9, [&](Packer& pk) {
    kvn(pk, "future_number", 1.5);
    kvn(pk, "protocol_version", 1);
    kv(pk, "t", "hello");
    pk.pack(std::string("future_struct"));
    pk.pack_map(2);
    kv(pk, "a", "b");
    pk.pack(std::string("list"));
    pk.pack_array(3);
    pk.pack(1);
    pk.pack_nil();
    pk.pack_map(1);
    kvn(pk, "deep", true);
    kv(pk, "service_id", base.service_id.to_string());
    kv(pk, "host_name", "h");
    pk.pack(std::string("capabilities"));
    pk.pack_array(1);
    pk.pack(std::string("a"));
    pk.pack(std::string("future_bin"));
    pk.pack_bin(3);
    pk.pack_bin_body("xyz", 3);
    pk.pack(std::string("future_ext"));
    pk.pack_ext(2, 7);
    pk.pack_ext_body("ab", 2);
  });
  auto m = decode(bytes);
  BOOST_TEST_REQUIRE(m.ok(), m.status().ToString());
  BOOST_TEST((std::get<Hello>(*m) == base));
}

BOOST_AUTO_TEST_CASE(unknown_message_type_is_refused_cleanly) {
  auto s = decode_status(craft(2, [](Packer& pk) {
    kv(pk, "t", "teleport");
    kvn(pk, "seq", 1);
  }));
  BOOST_TEST(s.number() == 32773u);
  BOOST_TEST(s.message() == "unknown message type 'teleport'");
  s = decode_status(craft(1, [](Packer& pk) { kv(pk, "t", std::string("\x01it's", 5) + std::string(100, 'x')); }));
  BOOST_TEST(s.message() == "unknown message type '\\x01it\\x27s" + std::string(59, 'x') + "...'");
}

BOOST_AUTO_TEST_CASE(missing_and_mistyped_fields_are_named) {
  auto s = decode_status(craft(3, [](Packer& pk) {
    kv(pk, "t", "ack");
    kvn(pk, "code", 0);
    kv(pk, "text", "");
  }));
  BOOST_TEST(s.number() == 32776u);
  BOOST_TEST(s.message() == "ack: missing required field 'seq'");

  s = decode_status(ack_with_seq([](Packer& pk) { pk.pack(std::string("1")); }));
  BOOST_TEST(s.number() == 32776u);
  BOOST_TEST(s.message() == "ack: field 'seq' must be an unsigned integer, not a string");
  s = decode_status(ack_with_seq([](Packer& pk) { pk.pack(-1); }));
  BOOST_TEST(s.message() == "ack: field 'seq' must be an unsigned integer, not a negative integer");
  s = decode_status(ack_with_seq([](Packer& pk) { pk.pack_nil(); }));
  BOOST_TEST(s.message() == "ack: field 'seq' must be an unsigned integer, not nil");
  s = decode_status(ack_with_seq([](Packer& pk) { pk.pack(2.5); }));  // 2.0 would be packed as 2
  BOOST_TEST(s.message() == "ack: field 'seq' must be an unsigned integer, not a float");
}

BOOST_AUTO_TEST_CASE(integers_out_of_their_range_are_refused) {
  Hello h{1, sample_guid(1), "h", {}, std::nullopt};
  auto bytes = craft(5, [&](Packer& pk) {
    kv(pk, "t", "hello");
    kvn(pk, "protocol_version", uint64_t{1} << 32);
    kv(pk, "service_id", h.service_id.to_string());
    kv(pk, "host_name", "h");
    pk.pack(std::string("capabilities"));
    pk.pack_array(0);
  });
  auto s = decode_status(bytes);
  BOOST_TEST(s.number() == 32776u);
  BOOST_TEST(s.message() == "hello: field 'protocol_version' is 4294967296, above the maximum 4294967295");

  CycleBegin cb = std::get<CycleBegin>(sample_messages()[7]);
  struct Case {
    uint64_t point_type;
    int64_t level;
    std::string message;
  };
  for (const Case& c : {Case{70000, 0, "cycle_begin: field 'point_type' is 70000, above the maximum 65535"},
                        Case{1, int64_t{1} << 31, "cycle_begin: field 'zstd_level' is 2147483648, above the maximum 2147483647"},
                        Case{1, -(int64_t{1} << 31) - 1,
                             "cycle_begin: field 'zstd_level' is -2147483649, below the minimum -2147483648"}}) {
    auto b = craft(10, [&](Packer& pk) {
      kv(pk, "t", "cycle_begin");
      kvn(pk, "seq", cb.seq);
      kv(pk, "vm_id", cb.vm_id.to_string());
      kvn(pk, "cycle_id", cb.cycle_id);
      kvn(pk, "point_type", c.point_type);
      kvn(pk, "full", false);
      pk.pack(std::string("disk_sizes"));
      pk.pack_array(0);
      kvn(pk, "block_size", 4096);
      kvn(pk, "compression", true);
      kvn(pk, "zstd_level", c.level);
    });
    s = decode_status(b);
    BOOST_TEST(s.number() == 32776u);
    BOOST_TEST(s.message() == c.message);
  }
}

BOOST_AUTO_TEST_CASE(text_must_be_utf8_without_nul_and_ids_must_be_guids) {
  for (std::string bad : {std::string("a\0b", 3), std::string("\xC0\xAF"), std::string("\xED\xA0\x80"),
                          std::string("\xF4\x90\x80\x80"), std::string("\xE2\x82")}) {
    auto s = decode_status(craft(3, [&](Packer& pk) {
      kv(pk, "t", "error");
      kvn(pk, "code", 32768);
      kv(pk, "text", bad);
    }));
    BOOST_TEST(s.number() == 32776u);
    BOOST_TEST(s.message() == "error: field 'text' is not UTF-8 text without NUL");
  }
  auto s = decode_status(craft(3, [](Packer& pk) {
    kv(pk, "t", "relationship_remove");
    kvn(pk, "seq", 1);
    kv(pk, "vm_id", "../../etc");
  }));
  BOOST_TEST(s.number() == 32776u);
  BOOST_TEST(s.message() == "relationship_remove: field 'vm_id' is not a GUID: '../../etc'");
}

BOOST_AUTO_TEST_CASE(field_limits_are_invalid_parameter) {
  Hello h{1, sample_guid(1), std::string(2000, 'h'), {}, std::nullopt};
  auto s = decode_status(encode(h));
  BOOST_TEST(s.number() == 32773u);
  BOOST_TEST(s.message() == "hello: field 'host_name' is 2000 bytes, above the 1024-byte limit");

  h.host_name = "h";
  h.capabilities.assign(65, "c");
  s = decode_status(encode(h));
  BOOST_TEST(s.message() == "hello: field 'capabilities' has 65 entries, above the 64-entry limit");

  auto rc = std::get<RelationshipCreate>(sample_messages()[4]);
  rc.hash_algorithm = static_cast<HashAlgorithm>(9);
  s = decode_status(encode(rc));
  BOOST_TEST(s.number() == 32773u);
  BOOST_TEST(s.message() == "relationship_create: field 'hash_algorithm' is 9, not a known algorithm (1 xxh3-128, 2 sha256)");

  auto bb = std::get<BlockBatch>(sample_messages()[8]);
  bb.codec = static_cast<Codec>(7);
  s = decode_status(encode(bb));
  BOOST_TEST(s.message() == "block_batch: field 'codec' is 7, not a known codec (0 raw, 1 zstd)");
  bb.codec = Codec::Raw;
  bb.raw_size = (16u << 20) + 1;
  s = decode_status(encode(bb));
  BOOST_TEST(s.message() == "block_batch: field 'raw_size' is 16777217, above the 16777216-byte batch limit");
}

BOOST_AUTO_TEST_CASE(list_elements_are_checked_one_by_one) {
  auto s = decode_status(craft(8, [](Packer& pk) {
    kv(pk, "t", "relationship_create");
    kvn(pk, "seq", 1);
    kv(pk, "vm_id", sample_guid(1).to_string());
    kv(pk, "vm_name", "v");
    pk.pack(std::string("disk_sizes"));
    pk.pack_array(2);
    pk.pack(1);
    pk.pack(std::string("x"));
    kvn(pk, "block_size", 4096);
    kvn(pk, "hash_algorithm", 1);
    kv(pk, "settings_json", "{}");
  }));
  BOOST_TEST(s.message() == "relationship_create: field 'disk_sizes[1]' must be an unsigned integer, not a string");

  CycleEnd ce = std::get<CycleEnd>(sample_messages()[9]);
  std::vector<uint8_t> short_digest(16, 1);
  s = decode_status(craft(7, [&](Packer& pk) {
    kv(pk, "t", "cycle_end");
    kvn(pk, "seq", 1);
    kv(pk, "vm_id", ce.vm_id.to_string());
    kvn(pk, "cycle_id", 1);
    pk.pack(std::string("disk_roots"));
    pk.pack_array(1);
    pk.pack_bin(16);
    pk.pack_bin_body(reinterpret_cast<const char*>(short_digest.data()), 16);
    kvn(pk, "blocks_sent", 0);
    kvn(pk, "bytes_sent", 0);
  }));
  BOOST_TEST(s.message() == "cycle_end: field 'disk_roots[0]' is 16 bytes; a digest is 32");
}

BOOST_AUTO_TEST_CASE(bytes_that_are_not_one_message_map_are_incorrect_data) {
  BOOST_TEST(decode_status({}).message() == "empty message");
  BOOST_TEST(decode_status(raw({0x93, 1, 2, 3})).message() == "a message must be a msgpack map, not an array");
  BOOST_TEST(decode_status(raw({0x05})).message() == "a message must be a msgpack map, not an unsigned integer");
  BOOST_TEST(decode_status(raw({0xC1})).message().rfind("malformed msgpack at byte", 0) == 0u);
  BOOST_TEST(decode_status(raw({0x80})).message() == "message lacks its type field 't'");
  BOOST_TEST(decode_status(raw({0x81, 0xA1, 't', 0x07})).message() ==
             "message type field 't' must be a string, not an unsigned integer");
  BOOST_TEST(decode_status(raw({0x81, 0x01, 0x02})).message() == "message field names must be strings, not an unsigned integer");

  std::vector<uint8_t> twice = craft(5, [](Packer& pk) {
    kv(pk, "t", "ack");
    kvn(pk, "seq", 1);
    kvn(pk, "code", 0);
    kv(pk, "text", "");
    kvn(pk, "seq", 2);
  });
  BOOST_TEST(decode_status(twice).message() == "message has field 'seq' twice");

  std::vector<uint8_t> trailing = encode(Ack{1, 0, "", ""});
  trailing.insert(trailing.end(), {1, 2, 3});
  BOOST_TEST(decode_status(trailing).message() == "3 trailing bytes after the message");
  for (const auto& s : {decode_status(twice), decode_status(trailing), decode_status(raw({0xC1}))})
    BOOST_TEST(s.number() == 32776u);
}

BOOST_AUTO_TEST_CASE(every_truncation_is_refused) {
  for (const Message& m : sample_messages()) {
    std::vector<uint8_t> bytes = encode(m);
    std::size_t step = bytes.size() > 1000 ? 7 : 1;
    for (std::size_t n = 1; n < bytes.size(); n += step) {
      Status s = decode_status(std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
      BOOST_TEST_REQUIRE(s.number() == 32776u);
      BOOST_TEST_REQUIRE(s.message().rfind("truncated msgpack", 0) == 0u);
    }
  }
}

BOOST_AUTO_TEST_CASE(claimed_sizes_are_checked_before_allocation) {
  long before = rss_kib();
  // Containers are allocated when their header is met, so their counts are checked there.
  struct Case {
    std::vector<uint8_t> bytes;
    std::string message;
  };
  std::vector<Case> containers = {
      {raw({0x81, 0xA1, 'x', 0xDD, 0xFF, 0xFF, 0xFF, 0xFF}), "array of 4294967295 elements exceeds the 65536-element limit"},
      {raw({0xDF, 0xFF, 0xFF, 0xFF, 0xFF}), "map of 4294967295 entries exceeds the 128-entry limit"},
  };
  for (const auto& c : containers) {
    Status s = decode_status(c.bytes);
    BOOST_TEST(s.number() == 32773u);
    BOOST_TEST(s.message() == c.message);
  }
  // Within the limit but absent: truncation, found before the 65536 elements are allocated.
  Status s = decode_status(raw({0x81, 0xA1, 'x', 0xDD, 0x00, 0x01, 0x00, 0x00, 0x01}));
  BOOST_TEST(s.number() == 32776u);
  BOOST_TEST(s.message().rfind("truncated msgpack", 0) == 0u);
  // Strings, binaries and extensions are only looked at once all their bytes are there (and
  // then point into the frame), so a huge claim is just a truncated message.
  for (const auto& claim : {raw({0x81, 0xA1, 'x', 0xDB, 0x7F, 0xFF, 0xFF, 0xFF}), raw({0x81, 0xA1, 'x', 0xC6, 0x40, 0, 0, 0}),
                            raw({0x81, 0xA1, 'x', 0xC9, 0x01, 0x00, 0x00, 0x00, 0x01})}) {
    s = decode_status(claim);
    BOOST_TEST(s.number() == 32776u);
    BOOST_TEST(s.message().rfind("truncated msgpack", 0) == 0u);
  }
  BOOST_TEST(rss_kib() - before < 2048);
  // Present but too long.
  std::string big((1u << 20) + 1, 'j');
  s = decode_status(craft(2, [&](Packer& pk) {
    kv(pk, "t", "request");
    kv(pk, "body_json", big);
  }));
  BOOST_TEST(s.number() == 32773u);
  BOOST_TEST(s.message() == "string of 1048577 bytes exceeds the 1048576-byte limit");
  std::vector<uint8_t> ext = {0x81, 0xA1, 'x', 0xC9, 0x00, 0x01, 0x00, 0x01, 0x01};
  ext.resize(ext.size() + 65537, 0);
  BOOST_TEST(decode_status(ext).message() == "extension value of 65537 bytes exceeds the 65536-byte limit");
}

BOOST_AUTO_TEST_CASE(nesting_and_total_elements_are_bounded) {
  // 9 nested arrays inside the message map: 10 levels.
  std::vector<uint8_t> deep = {0x81, 0xA1, 'x'};
  for (int i = 0; i < 9; ++i) deep.push_back(0x91);
  deep.push_back(0x01);
  Status s = decode_status(deep);
  BOOST_TEST(s.number() == 32773u);
  BOOST_TEST(s.message() == "message nests containers deeper than 8 levels");

  // 8 levels (the map and 7 arrays) in an unknown field are fine.
  auto ok = craft(5, [](Packer& pk) {
    kv(pk, "t", "ack");
    kvn(pk, "seq", 1);
    kvn(pk, "code", 0);
    kv(pk, "text", "");
    pk.pack(std::string("x"));
    for (int i = 0; i < 7; ++i) pk.pack_array(1);
    pk.pack(1);
  });
  auto m = decode(ok);
  BOOST_TEST_REQUIRE(m.ok(), m.status().ToString());
  BOOST_TEST((std::get<Ack>(*m) == Ack{1, 0, "", ""}));

  // Three unknown fields of 65536 one-byte elements each: every array is within its limit,
  // the total is not.
  std::vector<uint8_t> wide = {0x83};
  for (char k : {'a', 'b', 'c'}) {
    wide.insert(wide.end(), {0xA1, static_cast<uint8_t>(k), 0xDD, 0x00, 0x01, 0x00, 0x00});
    wide.insert(wide.end(), 65536, 0x00);
  }
  s = decode_status(wide);
  BOOST_TEST(s.number() == 32773u);
  BOOST_TEST(s.message() == "message has more than " + std::to_string(kMaxElements) + " array elements and map entries");
}

BOOST_AUTO_TEST_CASE(version_check_and_error_conversions) {
  BOOST_TEST(check_protocol_version(1).ok());
  Status s = check_protocol_version(2);
  BOOST_TEST(s.number() == 32770u);
  BOOST_TEST(s.message() == "peer speaks protocol version 2; this service speaks 1");

  Error e = error_from(Status::AccessDenied("no entry for primary.example"), 9);
  BOOST_TEST(e.code == 32769u);
  BOOST_TEST(e.text == "no entry for primary.example");
  BOOST_TEST(*e.in_reply_to == 9u);
  Status back = status_from(e);
  BOOST_TEST(back.number() == 32769u);
  BOOST_TEST(back.message() == "no entry for primary.example");
  BOOST_TEST(status_from(Error{7, "odd", std::nullopt}).ToString() == "Failed: odd (peer status 7)");
  BOOST_TEST(connection_options().max_frame_size == kMaxFrameBytes);
}

BOOST_AUTO_TEST_CASE(encoded_batch_bytes_bounds_the_encoding_so_a_batch_is_encoded_without_growing) {
  // Largest fields: every index and number at its widest msgpack form.
  BlockBatch b;
  b.seq = UINT64_MAX;
  b.vm_id = Guid::generate();
  b.cycle_id = UINT64_MAX;
  b.disk = UINT32_MAX;
  for (uint64_t i = 0; i < 40; ++i) (i % 2 ? b.zero_blocks : b.data_blocks).push_back(UINT64_MAX - 40 + i);
  b.codec = Codec::Zstd;
  b.raw_size = UINT64_MAX;
  b.payload.assign(70000, 0x5A);
  BOOST_TEST(encode(b).size() <= encoded_batch_bytes(b));
  BlockBatch empty;
  BOOST_TEST(encode(empty).size() <= encoded_batch_bytes(empty));
  std::vector<uint8_t> out;
  out.reserve(encoded_batch_bytes(b));
  const uint8_t* mem = out.data();
  encode_into(b, out);
  BOOST_TEST(out.data() == mem);  // reserved enough: no reallocation
}

BOOST_AUTO_TEST_CASE(decode_owned_gives_a_batch_the_frames_buffer_and_leaves_others_alone) {
  for (const Message& m : sample_messages()) {
    std::vector<uint8_t> frame = encode(m);
    const std::vector<uint8_t> copy = frame;
    const uint8_t* mem = frame.data();
    auto r = decode_owned(frame);
    BOOST_TEST_REQUIRE(r.ok(), r.status().message());
    BOOST_TEST((*r == m));
    if (const auto* b = std::get_if<BlockBatch>(&*r)) {
      BOOST_TEST(frame.empty());
      BOOST_TEST(b->payload.data() == mem);  // no copy: the data moved to the buffer's front
    } else {
      BOOST_TEST((frame == copy));
    }
  }
}

BOOST_AUTO_TEST_CASE(decode_owned_copies_a_payload_that_does_not_end_the_frame) {
  // The data first, other fields after it: still decoded, by copy, the frame untouched.
  auto payload_first = [](bool with_raw_size) {
    return craft(with_raw_size ? 10 : 9, [with_raw_size](Packer& pk) {
      pk.pack(std::string("payload"));
      pk.pack_bin(3);
      pk.pack_bin_body("\x01\x02\x03", 3);
      kv(pk, "t", "block_batch");
      kvn(pk, "seq", 1);
      kv(pk, "vm_id", sample_guid(1).to_string());
      kvn(pk, "cycle_id", 2);
      kvn(pk, "disk", 0);
      pk.pack(std::string("zero_blocks"));
      pk.pack_array(0);
      pk.pack(std::string("data_blocks"));
      pk.pack_array(0);
      kvn(pk, "codec", 0);
      if (with_raw_size) kvn(pk, "raw_size", 3);
    });
  };
  auto frame = payload_first(false);
  const std::vector<uint8_t> copy = frame;
  auto r = decode_owned(frame);
  BOOST_TEST(!r.ok());  // raw_size is missing: a precise error, the frame untouched
  BOOST_TEST(r.status().message() == "block_batch: missing required field 'raw_size'");
  BOOST_TEST((frame == copy));
  auto frame2 = payload_first(true);
  const std::vector<uint8_t> copy2 = frame2;
  auto r2 = decode_owned(frame2);
  BOOST_TEST_REQUIRE(r2.ok(), r2.status().message());
  BOOST_TEST((std::get<BlockBatch>(*r2).payload == std::vector<uint8_t>{1, 2, 3}));
  BOOST_TEST((frame2 == copy2));
  // Garbage: an error, the frame as it was.
  std::vector<uint8_t> junk{0xc1, 0x00, 0x01};
  const auto junk_copy = junk;
  BOOST_TEST(!decode_owned(junk).ok());
  BOOST_TEST((junk == junk_copy));
}

BOOST_AUTO_TEST_SUITE_END()
