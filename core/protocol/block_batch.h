// Building and opening BlockBatch messages (messages.h): the data path of a replication cycle
// (DESIGN.md, data flows, step 3). Zero blocks travel as markers only; the data of the other
// blocks is concatenated in block order and, when compression is enabled, sent as one zstd
// frame if that makes it smaller (otherwise raw).
//
// The receiver never trusts a batch: check_batch() verifies the lists and sizes against the
// disk's geometry, and open_batch() decompresses into a buffer of exactly raw_size bytes
// (at most kMaxBatchRawBytes), after checking the size the zstd frame declares, so a
// "zstd bomb" (a tiny frame expanding past what it claims) is refused with no large
// allocation.
//
// Thread-safety: pure functions, safe on any thread concurrently (meant for the libuv thread
// pool); each thread keeps its own zstd contexts.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/model/status.h"
#include "core/protocol/messages.h"

namespace vmrepl::protocol {

// The disk a batch belongs to, as CycleBegin announced it.
struct BatchGeometry {
  uint64_t disk_size = 0;
  uint32_t block_size = 0;
};

struct BatchCompression {
  bool enabled = false;  // CompressionEnabled of the relationship
  int level = 3;         // zstd level, ZSTD_minCLevel()..ZSTD_maxCLevel() (0: zstd's default)
};

// OK when `level` is a zstd level; else InvalidParameter naming the valid range.
Status check_zstd_level(int level);

// Bytes of data the blocks `data_blocks` hold (the last block of the disk may be partial).
// REQUIRES: every index < block count of the disk.
uint64_t batch_raw_size(std::span<const uint64_t> data_blocks, const BatchGeometry& geometry);

// Everything about a batch that needs no decompression:
//   InvalidParameter: a geometry that is not a block size of 4 KiB..16 MiB (a power of two)
//     and a disk size within the model's limit; more than kMaxBatchBlocks entries in a list;
//     raw data above kMaxBatchRawBytes;
//   IncorrectDataType: a list not strictly ascending, an index past the disk's last block, a
//     block in two lists, a range that is empty, runs past its block or is the whole block,
//     raw_size not the size of the data blocks and ranges, a raw payload of another size, a
//     zstd payload that is not exactly one frame declaring raw_size bytes.
//   (more than kMaxBatchRanges ranges is InvalidParameter.)
Status check_batch(const BlockBatch& batch, const BatchGeometry& geometry);

// Completes `batch` (seq, vm_id, cycle_id, disk, zero_blocks, data_blocks and ranges set by
// the caller) with `data`, the data blocks' then the ranges' bytes in order: sets raw_size,
// codec and payload. `data` is moved into the payload when it is sent raw. InvalidParameter for a bad zstd level
// or `data` of another size than the blocks need; otherwise the errors of check_batch().
Result<BlockBatch> build_batch(BlockBatch batch, std::vector<uint8_t> data, const BatchGeometry& geometry,
                               const BatchCompression& compression);

// The data blocks' bytes (raw_size of them), after check_batch(). IncorrectDataType when a
// zstd payload does not decompress to exactly raw_size bytes (corrupt, checksum mismatch).
// A raw batch's data is its payload: callers that can use it in place call check_batch() and
// read batch.payload instead, saving a copy.
Result<std::vector<uint8_t>> open_batch(const BlockBatch& batch, const BatchGeometry& geometry);

}  // namespace vmrepl::protocol
