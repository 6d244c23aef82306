// One filled-in value of every protocol message, shared by the round-trip tests, the session
// test and the seed-corpus test (which checks tests/fuzz/corpus against these).
//
// Thread-safety: pure functions.
#pragma once

#include <vector>

#include "core/protocol/messages.h"

namespace vmrepl::test {

inline Guid sample_guid(uint8_t seed) {
  std::array<uint8_t, 16> b{};
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(seed * 17 + i);
  return Guid(b);
}

inline BlockHash sample_hash(uint8_t seed) {
  BlockHash h;
  for (std::size_t i = 0; i < 16; ++i) h.bytes[i] = static_cast<uint8_t>(seed + i * 3);
  return h;
}

// In the order of the Message variant.
inline std::vector<protocol::Message> sample_messages() {
  using namespace protocol;
  std::vector<Message> v;
  v.push_back(Hello{1, sample_guid(1), "primary.example", {"zstd", "xxh3-128", "reverse"}, std::string("t0k3n")});
  v.push_back(HelloReply{true, 1, sample_guid(2), "replica.example", {"zstd"}, 0, ""});
  v.push_back(Error{32769, "host primary.example is not authorized", uint64_t{77}});
  v.push_back(Ack{78, 0, "applied", "{\"root\":\"00ff\"}"});
  v.push_back(RelationshipCreate{79, sample_guid(3), "web-01 (ünïcode)", {1ull << 30, 4096ull * 1000 + 512}, 65536,
                                 HashAlgorithm::Sha256, "{\"ReplicationInterval\":300}"});
  v.push_back(RelationshipModify{80, sample_guid(3), "{\"CompressionEnabled\":false}"});
  v.push_back(RelationshipRemove{81, sample_guid(3)});
  v.push_back(CycleBegin{82, sample_guid(3), 12, 2, false, {1ull << 30}, 65536, true, -5});
  v.push_back(BlockBatch{83, sample_guid(3), 12, 1, {0, 5, 6}, {1, 2}, {}, Codec::Raw, 8192, std::vector<uint8_t>(8192, 0xAB)});
  v.push_back(CycleEnd{84, sample_guid(3), 12, {sample_hash(1), sample_hash(2)}, 5, 8192});
  v.push_back(Request{85, "failover.prepare", "{\"vm\":\"web-01\"}"});
  v.push_back(Response{85, 32775, "ReplicationState is 3", "{}"});
  return v;
}

}  // namespace vmrepl::test
