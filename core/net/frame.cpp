#include "core/net/frame.h"

#include <algorithm>
#include <string>

namespace vmrepl {

namespace {

// First allocation for a frame's payload; later growth quadruples, capped at the declared
// length, so a peer announcing a large frame costs memory only as it actually sends the bytes
// (at most 4x what arrived), and a 1 MiB frame is moved twice, not four times.
constexpr std::size_t kInitialPayloadReserve = 64u << 10;

Status oversized(uint64_t size, uint32_t max) {
  return Status::InvalidParameter("frame of " + std::to_string(size) + " bytes exceeds the " +
                                  std::to_string(max) + "-byte limit");
}

}  // namespace

FrameDecoder::FrameDecoder(uint32_t max_frame_size) : max_(max_frame_size) {}

Result<std::size_t> FrameDecoder::consume(std::span<const uint8_t> in) {
  if (!error_.ok()) return error_;
  if (ready_) return std::size_t{0};
  std::size_t used = 0;
  if (header_have_ < kFrameHeaderBytes) {
    std::size_t n = std::min(kFrameHeaderBytes - header_have_, in.size());
    std::copy_n(in.begin(), n, header_.begin() + static_cast<std::ptrdiff_t>(header_have_));
    header_have_ += n;
    used += n;
    if (header_have_ < kFrameHeaderBytes) return used;
    length_ = (uint32_t{header_[0]} << 24) | (uint32_t{header_[1]} << 16) |
              (uint32_t{header_[2]} << 8) | uint32_t{header_[3]};
    if (length_ == 0) {
      error_ = Status::IncorrectDataType("empty frame (length prefix 0)");
      return error_;
    }
    if (length_ > max_) {
      error_ = oversized(length_, max_);
      return error_;
    }
    if (pool_ && length_ >= BufferPool::kMinPooledCapacity && payload_.capacity() < length_)
      payload_ = pool_->try_take(length_);
    payload_.reserve(std::min<std::size_t>(length_, kInitialPayloadReserve));
  }
  std::size_t want = length_ - payload_.size();
  std::size_t n = std::min(want, in.size() - used);
  std::size_t needed = payload_.size() + n;
  if (needed > payload_.capacity()) {
    payload_.reserve(std::min<std::size_t>(length_, std::max(needed, 4 * payload_.capacity())));
  }
  payload_.insert(payload_.end(), in.begin() + static_cast<std::ptrdiff_t>(used),
                  in.begin() + static_cast<std::ptrdiff_t>(used + n));
  used += n;
  if (payload_.size() == length_) ready_ = true;
  return used;
}

std::vector<uint8_t> FrameDecoder::take_frame() {
  std::vector<uint8_t> out = std::move(payload_);
  payload_ = {};
  header_have_ = 0;
  length_ = 0;
  ready_ = false;
  return out;
}

Status FrameDecoder::feed(std::span<const uint8_t> in, std::vector<std::vector<uint8_t>>& frames) {
  while (true) {
    Result<std::size_t> r = consume(in);
    if (!r.ok()) return r.status();
    in = in.subspan(*r);
    if (ready_) {
      frames.push_back(take_frame());
      continue;
    }
    if (in.empty()) return Status::OK();
  }
}

std::array<uint8_t, kFrameHeaderBytes> FrameEncoder::header(uint32_t n) {
  return {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
          static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
}

Status FrameEncoder::check(std::size_t payload_size, uint32_t max_frame_size) {
  if (payload_size == 0) return Status::InvalidParameter("empty frame");
  if (payload_size > max_frame_size) return oversized(payload_size, max_frame_size);
  return Status::OK();
}

Result<std::vector<uint8_t>> FrameEncoder::encode(std::span<const uint8_t> payload,
                                                  uint32_t max_frame_size) {
  VMREPL_RETURN_IF_ERROR(check(payload.size(), max_frame_size));
  std::vector<uint8_t> out;
  out.reserve(kFrameHeaderBytes + payload.size());
  auto h = header(static_cast<uint32_t>(payload.size()));
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

}  // namespace vmrepl
