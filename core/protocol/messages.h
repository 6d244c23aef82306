// The messages between services (DESIGN.md, core/protocol), version kProtocolVersion.
//
// Every message is one frame (core/net) whose payload is a msgpack MAP: {"t": <type>, fields}.
//   hello, hello_reply                      handshake: identity, version, capabilities
//   error                                   a refusal: vmrepl status code + text
//   ack                                     the answer to a seq-numbered message
//   relationship_create/_modify/_remove     replication relationship set-up on the replica
//   cycle_begin, block_batch, cycle_end     one replication cycle of a VM
//   request, response                       control calls by method name with JSON bodies,
//                                           so new operations need no new message types
// Field names on the wire are the member names below; Guids travel as their canonical string,
// BlockHashes as 32-byte bins. Optional fields are omitted when absent.
//
// Decoding is strict about what it knows and lenient about what it does not:
//   unknown fields are skipped (later versions may add them);
//   an unknown "t" is InvalidParameter "unknown message type 'x'";
//   a missing field or one of the wrong msgpack type or out of range is IncorrectDataType
//   naming the message and the field ("ack: field 'seq' must be an unsigned integer, not a
//   string"); strings must be UTF-8 without NUL;
//   sizes are bounded (limits.h): a string, array or nesting over its limit is
//   InvalidParameter, checked before anything is allocated; bytes that are not one msgpack
//   map (garbage, truncation, trailing bytes, duplicate or non-string keys) are
//   IncorrectDataType.
// Decoding costs O(payload size) time and at most a few MiB beyond the decoded message.
//
// Thread-safety: values and pure functions; safe on any thread (the engine decodes and
// encodes batches on the libuv thread pool).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/blocks/hash.h"
#include "core/model/guid.h"
#include "core/model/status.h"
#include "core/net/connection.h"
#include "core/protocol/protocol_limits.h"

namespace vmrepl::protocol {

struct Hello {
  uint32_t protocol_version = kProtocolVersion;
  Guid service_id;
  std::string host_name;
  std::vector<std::string> capabilities;
  std::optional<std::string> auth_token;
  bool operator==(const Hello&) const = default;
};

struct HelloReply {
  bool accepted = false;
  uint32_t protocol_version = kProtocolVersion;
  Guid service_id;
  std::string host_name;
  std::vector<std::string> capabilities;
  uint32_t error_code = 0;  // a vmrepl status number when !accepted
  std::string error_text;
  bool operator==(const HelloReply&) const = default;
};

struct Error {
  uint32_t code = static_cast<uint32_t>(Code::Failed);  // a vmrepl status number
  std::string text;
  std::optional<uint64_t> in_reply_to;  // the seq of the message refused, when known
  bool operator==(const Error&) const = default;
};

struct Ack {
  uint64_t seq = 0;
  uint32_t code = 0;  // 0: done; else a vmrepl status number
  std::string text;
  std::string data;  // JSON text with results; empty: none (omitted on the wire)
  bool operator==(const Ack&) const = default;
};

struct RelationshipCreate {
  uint64_t seq = 0;
  Guid vm_id;
  std::string vm_name;
  std::vector<uint64_t> disk_sizes;
  uint32_t block_size = 0;
  HashAlgorithm hash_algorithm = HashAlgorithm::Xxh3_128;
  std::string settings_json;  // Msvm_ReplicationSettingData as JSON text
  bool operator==(const RelationshipCreate&) const = default;
};

struct RelationshipModify {
  uint64_t seq = 0;
  Guid vm_id;
  std::string settings_json;
  bool operator==(const RelationshipModify&) const = default;
};

struct RelationshipRemove {
  uint64_t seq = 0;
  Guid vm_id;
  bool operator==(const RelationshipRemove&) const = default;
};

struct CycleBegin {
  uint64_t seq = 0;
  Guid vm_id;
  uint64_t cycle_id = 0;
  uint16_t point_type = 0;  // recovery point kind, numbered by the engine
  bool full = false;        // initial replication / resync: every block follows
  std::vector<uint64_t> disk_sizes;
  uint32_t block_size = 0;
  bool compression = false;
  int32_t zstd_level = 0;
  bool operator==(const CycleBegin&) const = default;
};

// Wire numbers of BlockBatch::codec: never renumber.
enum class Codec : uint8_t { Raw = 0, Zstd = 1 };

// Part of a block: `length` bytes from byte `offset` of it; the rest of the block is what the
// receiver holds already. A change feed records 4 KiB units, so a small write need not ship
// its whole block.
struct BlockRange {
  uint64_t block = 0;
  uint32_t offset = 0;
  uint32_t length = 0;
  bool operator==(const BlockRange&) const = default;
};

// The capability (Hello, HelloReply) of a peer that takes BlockBatch::ranges. A peer without
// it is sent whole blocks only.
inline constexpr std::string_view kBlockRangesCapability = "block-ranges";

// Blocks of one disk (see block_batch.h for building and opening one). Zero blocks are
// markers only; the data of data_blocks is in `payload`, in order, each block_size bytes
// except a partial last block of the disk, then the bytes of each range in order, as one zstd
// frame when codec is Zstd. The three lists are strictly ascending by block and disjoint; a
// range is never a whole block (that is a data block). Encoded only when not empty ("ranges":
// block, offset, length, ... flat), so a batch of whole blocks is what version-1 peers read.
struct BlockBatch {
  uint64_t seq = 0;
  Guid vm_id;
  uint64_t cycle_id = 0;
  uint32_t disk = 0;
  std::vector<uint64_t> zero_blocks;
  std::vector<uint64_t> data_blocks;
  std::vector<BlockRange> ranges;
  Codec codec = Codec::Raw;
  uint64_t raw_size = 0;  // bytes of the data blocks' and ranges' data before compression
  std::vector<uint8_t> payload;
  bool operator==(const BlockBatch&) const = default;
};

// An upper bound of a batch's encoded size: its payload, at most 9 bytes per integer of the
// lists (msgpack uint64) and the fixed keys and header.
inline uint64_t encoded_batch_bytes(const BlockBatch& b) {
  return b.payload.size() + 9 * (b.zero_blocks.size() + b.data_blocks.size() + 3 * b.ranges.size()) + 256;
}

struct CycleEnd {
  uint64_t seq = 0;
  Guid vm_id;
  uint64_t cycle_id = 0;
  std::vector<BlockHash> disk_roots;  // Merkle root per disk after the cycle
  uint64_t blocks_sent = 0;
  uint64_t bytes_sent = 0;
  bool operator==(const CycleEnd&) const = default;
};

struct Request {
  uint64_t seq = 0;
  std::string method;
  std::string body_json;
  bool operator==(const Request&) const = default;
};

struct Response {
  uint64_t seq = 0;
  uint32_t code = 0;  // 0: done; else a vmrepl status number
  std::string text;
  std::string body_json;
  bool operator==(const Response&) const = default;
};

using Message = std::variant<Hello, HelloReply, Error, Ack, RelationshipCreate, RelationshipModify,
                             RelationshipRemove, CycleBegin, BlockBatch, CycleEnd, Request, Response>;

// The wire name of a message's type: "hello", "block_batch"...
std::string_view message_type(const Message& m);

// The payload of one frame. Encoding does not validate the values (decode() does).
std::vector<uint8_t> encode(const Message& m);
// encode() into `out` (cleared first; its capacity is reused: a pooled buffer stays warm).
void encode_into(const Message& m, std::vector<uint8_t>& out);
// Parses one frame's payload (see the rules above).
Result<Message> decode(std::span<const uint8_t> payload);
// decode() of a frame the caller owns: a block batch whose data ends the frame (as encode()
// puts it) takes the frame's buffer as its payload instead of copying it (`frame` is then
// empty; the data moves to the front of the buffer it already sits in). Other messages leave
// `frame` as it was.
Result<Message> decode_owned(std::vector<uint8_t>& frame);

// OK when a peer's protocol version can be spoken with; else NotSupported naming both.
Status check_protocol_version(uint32_t peer_version);
// An Error message carrying a Status (its number and message()).
Error error_from(const Status& status, std::optional<uint64_t> in_reply_to = std::nullopt);
// The Status an Error message describes (Failed for an unknown or zero code).
Status status_from(const Error& error);

// ConnectionOptions for a protocol peer: frames up to kMaxFrameBytes, a send queue of a few
// batches, and the default timeouts.
ConnectionOptions connection_options();
// encode() + Connection::send(). Loop thread only (as Connection).
Status send_message(Connection& connection, const Message& m);

}  // namespace vmrepl::protocol
