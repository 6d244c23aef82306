#include "core/protocol/block_batch.h"

#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <bit>
#include <memory>
#include <string>

namespace vmrepl::protocol {

namespace {

std::string n2s(uint64_t v) { return std::to_string(v); }

struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// One context of each kind per thread: creating them costs more than a small batch's work.
ZSTD_CCtx* thread_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxFree> c(ZSTD_createCCtx());
  return c.get();
}
ZSTD_DCtx* thread_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxFree> d(ZSTD_createDCtx());
  return d.get();
}

// A batch is at most 16 MiB, so its frame never needs a larger window; refusing larger ones
// bounds what a hostile frame header can ask the decoder for.
constexpr int kMaxWindowLog = 25;

Status check_geometry(const BatchGeometry& g) {
  if (g.block_size < BlockIndex::kMinBlockSize || g.block_size > BlockIndex::kMaxBlockSize ||
      !std::has_single_bit(g.block_size)) {
    return Status::InvalidParameter("block size " + n2s(g.block_size) + " is not a power of two from " +
                                    n2s(BlockIndex::kMinBlockSize) + " to " + n2s(BlockIndex::kMaxBlockSize));
  }
  if (g.disk_size > BlockIndex::kMaxDiskSize) {
    return Status::InvalidParameter("disk size " + n2s(g.disk_size) + " exceeds the " +
                                    n2s(BlockIndex::kMaxDiskSize) + "-byte limit");
  }
  return Status::OK();
}

Status check_list(std::string_view name, const std::vector<uint64_t>& list, uint64_t block_count) {
  if (list.size() > kMaxBatchBlocks) {
    return Status::InvalidParameter("block_batch: " + std::string(name) + " has " + n2s(list.size()) +
                                    " entries, above the " + n2s(kMaxBatchBlocks) + "-entry limit");
  }
  for (std::size_t k = 0; k < list.size(); ++k) {
    if (k > 0 && list[k] <= list[k - 1]) {
      return Status::IncorrectDataType("block_batch: " + std::string(name) + " is not strictly ascending at entry " +
                                       n2s(k) + " (" + n2s(list[k - 1]) + " then " + n2s(list[k]) + ")");
    }
  }
  if (!list.empty() && list.back() >= block_count) {
    return Status::IncorrectDataType("block_batch: " + std::string(name) + " names block " + n2s(list.back()) +
                                     " of a disk with " + n2s(block_count) + " blocks");
  }
  return Status::OK();
}

// "3 data blocks", "3 data blocks and 2 ranges": what a batch's data is made of.
std::string contents(const BlockBatch& b) {
  std::string s = n2s(b.data_blocks.size()) + " data blocks";
  if (!b.ranges.empty()) s += " and " + n2s(b.ranges.size()) + " ranges";
  return s;
}

uint64_t block_length(uint64_t block, uint64_t block_count, const BatchGeometry& g) {
  return block + 1 == block_count ? g.disk_size - block * g.block_size : g.block_size;
}

// The ranges' own rules; their data bytes through `bytes`.
Status check_ranges(const BlockBatch& b, uint64_t block_count, const BatchGeometry& g, uint64_t& bytes) {
  bytes = 0;
  if (b.ranges.size() > kMaxBatchRanges) {
    return Status::InvalidParameter("block_batch: ranges has " + n2s(b.ranges.size()) + " entries, above the " +
                                    n2s(kMaxBatchRanges) + "-entry limit");
  }
  for (std::size_t k = 0; k < b.ranges.size(); ++k) {
    const BlockRange& r = b.ranges[k];
    const std::string which = "block_batch: range " + n2s(k) + " (block " + n2s(r.block) + ")";
    if (k > 0 && r.block <= b.ranges[k - 1].block)
      return Status::IncorrectDataType(which + " is not in strictly ascending block order");
    if (r.block >= block_count)
      return Status::IncorrectDataType(which + " is past the disk's " + n2s(block_count) + " blocks");
    const uint64_t len = block_length(r.block, block_count, g);
    if (r.length == 0 || uint64_t{r.offset} + r.length > len)
      return Status::IncorrectDataType(which + ": " + n2s(r.length) + " bytes at offset " + n2s(r.offset) +
                                       " do not fit a block of " + n2s(len) + " bytes");
    if (r.offset == 0 && r.length == len)
      return Status::IncorrectDataType(which + " is the whole block: a data block, not a range");
    if (std::binary_search(b.zero_blocks.begin(), b.zero_blocks.end(), r.block) ||
        std::binary_search(b.data_blocks.begin(), b.data_blocks.end(), r.block))
      return Status::IncorrectDataType(which + " is also a zero or data block of the batch");
    bytes += r.length;
  }
  return Status::OK();
}

}  // namespace

Status check_zstd_level(int level) {
  if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()) {
    return Status::InvalidParameter("zstd level " + std::to_string(level) + " is outside " +
                                    std::to_string(ZSTD_minCLevel()) + ".." + std::to_string(ZSTD_maxCLevel()));
  }
  return Status::OK();
}

uint64_t batch_raw_size(std::span<const uint64_t> data_blocks, const BatchGeometry& g) {
  uint64_t block_count = BlockIndex::block_count_for(g.disk_size, g.block_size);
  uint64_t total = 0;
  for (uint64_t i : data_blocks) {
    total += (i + 1 == block_count) ? g.disk_size - i * g.block_size : g.block_size;
  }
  return total;
}

Status check_batch(const BlockBatch& b, const BatchGeometry& g) {
  VMREPL_RETURN_IF_ERROR(check_geometry(g));
  uint64_t block_count = BlockIndex::block_count_for(g.disk_size, g.block_size);
  VMREPL_RETURN_IF_ERROR(check_list("zero_blocks", b.zero_blocks, block_count));
  VMREPL_RETURN_IF_ERROR(check_list("data_blocks", b.data_blocks, block_count));
  // Both lists ascend, so one merge finds any block in both.
  for (std::size_t z = 0, d = 0; z < b.zero_blocks.size() && d < b.data_blocks.size();) {
    if (b.zero_blocks[z] == b.data_blocks[d]) {
      return Status::IncorrectDataType("block_batch: block " + n2s(b.zero_blocks[z]) +
                                       " is both a zero block and a data block");
    }
    if (b.zero_blocks[z] < b.data_blocks[d]) ++z;
    else ++d;
  }
  uint64_t range_bytes = 0;
  VMREPL_RETURN_IF_ERROR(check_ranges(b, block_count, g, range_bytes));
  uint64_t expected = batch_raw_size(b.data_blocks, g) + range_bytes;
  if (expected > kMaxBatchRawBytes) {
    return Status::InvalidParameter("block_batch: " + contents(b) + " hold " + n2s(expected) +
                                    " bytes, above the " + n2s(kMaxBatchRawBytes) + "-byte batch limit");
  }
  if (b.raw_size != expected) {
    return Status::IncorrectDataType("block_batch: raw_size is " + n2s(b.raw_size) + " but its " + contents(b) +
                                     " hold " + n2s(expected) + " bytes");
  }
  if (b.codec == Codec::Raw) {
    if (b.payload.size() != b.raw_size) {
      return Status::IncorrectDataType("block_batch: raw payload is " + n2s(b.payload.size()) + " bytes; raw_size is " +
                                       n2s(b.raw_size));
    }
    return Status::OK();
  }
  if (b.codec != Codec::Zstd) {
    return Status::InvalidParameter("block_batch: codec " + n2s(static_cast<uint8_t>(b.codec)) + " is unknown");
  }
  unsigned long long declared = ZSTD_getFrameContentSize(b.payload.data(), b.payload.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) {
    return Status::IncorrectDataType("block_batch: payload is not a zstd frame");
  }
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN) {
    return Status::IncorrectDataType("block_batch: zstd frame does not declare its content size");
  }
  if (declared != b.raw_size) {
    return Status::IncorrectDataType("block_batch: zstd frame declares " + n2s(declared) + " bytes; raw_size is " +
                                     n2s(b.raw_size));
  }
  std::size_t frame = ZSTD_findFrameCompressedSize(b.payload.data(), b.payload.size());
  if (ZSTD_isError(frame)) {
    return Status::IncorrectDataType(std::string("block_batch: zstd frame is damaged or truncated: ") +
                                     ZSTD_getErrorName(frame));
  }
  if (frame != b.payload.size()) {
    return Status::IncorrectDataType("block_batch: " + n2s(b.payload.size() - frame) + " bytes follow the zstd frame");
  }
  return Status::OK();
}

Result<BlockBatch> build_batch(BlockBatch batch, std::vector<uint8_t> data, const BatchGeometry& g,
                               const BatchCompression& compression) {
  if (compression.enabled) VMREPL_RETURN_IF_ERROR(check_zstd_level(compression.level));
  VMREPL_RETURN_IF_ERROR(check_geometry(g));
  uint64_t block_count = BlockIndex::block_count_for(g.disk_size, g.block_size);
  // Index checks first: batch_raw_size() needs every index inside the disk.
  VMREPL_RETURN_IF_ERROR(check_list("data_blocks", batch.data_blocks, block_count));
  uint64_t range_bytes = 0;
  VMREPL_RETURN_IF_ERROR(check_ranges(batch, block_count, g, range_bytes));
  uint64_t need = batch_raw_size(batch.data_blocks, g) + range_bytes;
  if (data.size() != need) {
    return Status::InvalidParameter("block_batch: data is " + n2s(data.size()) + " bytes; its " + contents(batch) +
                                    " need " + n2s(need));
  }
  batch.raw_size = need;
  batch.codec = Codec::Raw;
  batch.payload = std::move(data);
  VMREPL_RETURN_IF_ERROR(check_batch(batch, g));
  if (!compression.enabled || batch.payload.empty()) return batch;

  ZSTD_CCtx* cctx = thread_cctx();
  if (cctx == nullptr) return Status::OutOfMemory("cannot create a zstd compression context");
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, compression.level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  // Only a result smaller than the data is worth sending, so that is all the room it gets:
  // zstd stops with dstSize_tooSmall instead of finishing a useless frame.
  std::size_t room = batch.payload.size() - 1;
  auto scratch = std::make_unique_for_overwrite<uint8_t[]>(room);
  std::size_t n = ZSTD_compress2(cctx, scratch.get(), room, batch.payload.data(), batch.payload.size());
  if (ZSTD_isError(n)) {
    if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) return batch;  // incompressible
    return Status::Failed(std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
  }
  batch.payload.assign(scratch.get(), scratch.get() + n);
  batch.codec = Codec::Zstd;
  return batch;
}

Result<std::vector<uint8_t>> open_batch(const BlockBatch& batch, const BatchGeometry& g) {
  VMREPL_RETURN_IF_ERROR(check_batch(batch, g));
  if (batch.codec == Codec::Raw) return batch.payload;
  ZSTD_DCtx* dctx = thread_dctx();
  if (dctx == nullptr) return Status::OutOfMemory("cannot create a zstd decompression context");
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_and_parameters);
  ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, kMaxWindowLog);
  // raw_size was checked against the frame header and the batch limit: the one allocation.
  std::vector<uint8_t> out(batch.raw_size);
  std::size_t n = ZSTD_decompressDCtx(dctx, out.data(), out.size(), batch.payload.data(), batch.payload.size());
  if (ZSTD_isError(n)) {
    return Status::IncorrectDataType(std::string("block_batch: zstd payload does not decompress to its ") +
                                     n2s(batch.raw_size) + " bytes: " + ZSTD_getErrorName(n));
  }
  if (n != batch.raw_size) {
    return Status::IncorrectDataType("block_batch: zstd payload decompressed to " + n2s(n) + " bytes; raw_size is " +
                                     n2s(batch.raw_size));
  }
  return out;
}

}  // namespace vmrepl::protocol
