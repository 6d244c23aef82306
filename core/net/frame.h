// Frames: the unit of the service-to-service wire (DESIGN.md, core/net). A frame is a 4-byte
// big-endian payload length followed by that many payload bytes (one msgpack message, see
// core/protocol). A length of 0 is invalid, so every frame carries at least one byte.
//
// FrameDecoder turns a byte stream cut at arbitrary points into whole frames. It trusts no
// length: a prefix above the limit is refused before anything is allocated, and the memory it
// holds never exceeds max_frame_size + 4 bytes (capacity grows with the bytes actually
// received, at most 4x or 64 KiB ahead of them, and never past the declared length). After
// an error it refuses all further input with the same Status. With a BufferPool, a large
// frame starts in a kept buffer when one is big enough (memory already held, warm pages).
//
// Thread-safety: values without internal synchronization; one decoder per stream.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/blocks/buffer_pool.h"
#include "core/model/status.h"

namespace vmrepl {

inline constexpr std::size_t kFrameHeaderBytes = 4;
// The default limit of one frame's payload: 8 MiB. Protocol peers raise it to
// protocol::kMaxFrameBytes so a batch of the largest blocks fits.
inline constexpr uint32_t kDefaultMaxFrameSize = 8u << 20;

class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_frame_size = kDefaultMaxFrameSize);
  // Where large payload buffers come from; the caller gives them back after use. May be null.
  void set_pool(BufferPool* pool) { pool_ = pool; }

  // Consumes bytes from the front of `in`, stopping right after the end of a frame or when
  // `in` is used up, and returns how many bytes it took. When a frame completed,
  // frame_ready() is true until take_frame(); while one is ready, consume() takes nothing.
  // Errors (also returned by every later call):
  //   IncorrectDataType "empty frame (length prefix 0)"
  //   InvalidParameter  "frame of 4294967295 bytes exceeds the 8388608-byte limit"
  Result<std::size_t> consume(std::span<const uint8_t> in);
  bool frame_ready() const { return ready_; }
  // REQUIRES: frame_ready(). Hands over the payload and starts the next frame.
  std::vector<uint8_t> take_frame();

  // Consumes all of `in`, appending every completed frame to `frames`. Frames completed
  // before an error are still appended.
  Status feed(std::span<const uint8_t> in, std::vector<std::vector<uint8_t>>& frames);

  // True while part of a frame (some header or payload bytes) is held.
  bool mid_frame() const { return !ready_ && (header_have_ > 0); }
  // Payload length announced by the current frame's header (0 until the header is complete).
  uint32_t expected_size() const { return header_have_ == kFrameHeaderBytes ? length_ : 0; }
  // Payload bytes of the current frame received so far.
  std::size_t payload_received() const { return payload_.size(); }
  // Bytes of memory held: header bytes plus the payload buffer's capacity.
  std::size_t held_bytes() const { return kFrameHeaderBytes + payload_.capacity(); }

  bool failed() const { return !error_.ok(); }
  const Status& error() const { return error_; }
  uint32_t max_frame_size() const { return max_; }

 private:
  uint32_t max_;
  std::array<uint8_t, kFrameHeaderBytes> header_{};
  std::size_t header_have_ = 0;
  uint32_t length_ = 0;
  std::vector<uint8_t> payload_;
  BufferPool* pool_ = nullptr;
  bool ready_ = false;
  Status error_;
};

// Frame building for senders.
struct FrameEncoder {
  // The 4-byte big-endian prefix for a payload of `payload_size` bytes.
  static std::array<uint8_t, kFrameHeaderBytes> header(uint32_t payload_size);
  // OK when a payload of this size may be sent under `max_frame_size`; else InvalidParameter
  // ("empty frame" / "frame of N bytes exceeds the M-byte limit").
  static Status check(std::size_t payload_size, uint32_t max_frame_size = kDefaultMaxFrameSize);
  // Prefix + payload in one buffer.
  static Result<std::vector<uint8_t>> encode(std::span<const uint8_t> payload,
                                             uint32_t max_frame_size = kDefaultMaxFrameSize);
};

}  // namespace vmrepl
