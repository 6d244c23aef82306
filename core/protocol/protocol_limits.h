// Protocol constants: the version this build speaks and the bounds every decoder enforces, so
// that a hostile or broken peer costs a bounded amount of memory and time and gets a precise
// refusal (DESIGN.md, security model: "every decoder ... bounded cost").
//
// Thread-safety: constants.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/blocks/block_index.h"

namespace vmrepl::protocol {

// Version 1: the messages of messages.h.
inline constexpr uint32_t kProtocolVersion = 1;

// Uncompressed data of one BlockBatch: the largest block size, so any block fits one batch.
inline constexpr uint32_t kMaxBatchRawBytes = BlockIndex::kMaxBlockSize;
// Entries of a batch's zero_blocks, and separately of its data_blocks.
inline constexpr std::size_t kMaxBatchBlocks = 65536;
// Entries of a batch's ranges (a batch of small writes).
inline constexpr std::size_t kMaxBatchRanges = 4096;
// Disks of one VM (disk_sizes, disk_roots).
inline constexpr std::size_t kMaxDisks = 256;
// capabilities entries.
inline constexpr std::size_t kMaxCapabilities = 64;
// Names: host names, VM names, capabilities, methods, message types.
inline constexpr std::size_t kMaxNameBytes = 1024;
// Human-readable texts (error_text, text).
inline constexpr std::size_t kMaxTextBytes = 64u << 10;
// JSON documents (settings_json, body_json, data); the settings decoders' own input limit.
inline constexpr std::size_t kMaxJsonBytes = 1u << 20;
// auth_token.
inline constexpr std::size_t kMaxTokenBytes = 4096;
// Entries of the message map, known and unknown fields together.
inline constexpr std::size_t kMaxFields = 128;
// Container nesting, the message map included (the messages of version 1 need 2; the rest is
// room for the structured fields of later versions, which this version skips).
inline constexpr std::size_t kMaxNesting = 8;
// Array elements plus map entries of one message, so the decoded form never exceeds a few
// MiB however the bytes are arranged.
inline constexpr std::size_t kMaxElements = 2 * kMaxBatchBlocks + 3 * kMaxBatchRanges + 4096;

// The frame limit protocol peers use (ConnectionOptions::max_frame_size): the largest batch,
// its lists at 9 bytes an integer, and the other fields.
inline constexpr uint32_t kMaxFrameBytes = 18u << 20;
static_assert(kMaxBatchRawBytes + (2 * kMaxBatchBlocks + 3 * kMaxBatchRanges) * 9 + (64u << 10) < kMaxFrameBytes);
static_assert(kMaxJsonBytes + 4 * kMaxTextBytes < kMaxFrameBytes);

}  // namespace vmrepl::protocol
