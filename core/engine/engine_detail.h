// What both sides of the engine share: control calls between services (Request -> Response
// with a JSON body), the hex form of block-index entries and the JSON form of block sets they
// carry, and small helpers for messages and files.
//
// Thread-safety: free functions; a Channel is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/blocks/block_index.h"
#include "core/engine/channel.h"
#include "core/model/enums.h"
#include "core/store/change_block_set.h"

namespace vmrepl::engine_detail {

int64_t now_us();
// "3 (Replicating)", "1 (Primary)": numbers first, as the spec gives them.
std::string state_text(ReplicationState s);
std::string mode_text(ReplicationMode m);
// mkdir -p with mode 0700.
Status mkdirs(const std::string& path);
bool file_exists(const std::string& path);  // lstat: a symlink counts
Status fsync_dir(const std::string& dir);
// Replaces a disk file by a hole of `size` bytes (temp + rename): a replica VM's disks hold
// nothing until a failover puts a point in them.
Status make_placeholder(const std::string& path, uint64_t size);
// Deletes `path` and what is under it (no symlink is followed); a missing path is OK.
Status remove_tree(const std::string& path);

// Sends Request{seq, method, body}; answers the Response's body, or its code and text as the
// error. Failed when the body is not JSON.
Result<nlohmann::json> call(Channel& ch, uint64_t seq, std::string method, const nlohmann::json& body,
                            std::chrono::milliseconds timeout);

// A send to the peer failed (`failure`): when the peer had refused what we were sending (an
// Error message it sent before closing), that refusal is the real answer; else `failure`.
// Waits briefly for the refusal to arrive.
Status peer_refusal(Channel& ch, const Status& failure);

// A whole block index fetched in chunks with `method` ("index", "reverse_index"): `body`
// names the VM and disk; "first" and "count" are added, and a "rescan" flag is kept for the
// first chunk only.
Result<BlockIndex> fetch_index(Channel& ch, uint64_t& seq, const std::string& method, nlohmann::json body,
                               HashAlgorithm alg, uint32_t block_size, uint64_t disk_size,
                               std::chrono::milliseconds timeout);

// Entries [first, first + count) of `idx`: per entry, the flags byte then the hash, in hex.
std::string hex_entries(const BlockIndex& idx, uint64_t first, uint64_t count);
// The inverse, into entries [first, first + count) of `idx`. Failed for a wrong length or a
// character that is not lowercase hex.
Status parse_hex_entries(std::string_view hex, BlockIndex& idx, uint64_t first, uint64_t count);

// Block sets as JSON: one array per disk of [first, count] runs; and back, each run checked
// against the disk's block count (InvalidParameter) so a peer cannot make us allocate or
// index outside a disk.
nlohmann::json block_sets_to_json(const DiskBlockSets& sets);
Result<DiskBlockSets> block_sets_from_json(const nlohmann::json& j, const std::vector<uint64_t>& block_counts);

}  // namespace vmrepl::engine_detail
