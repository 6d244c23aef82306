// libFuzzer target: bytes as they arrive from a peer, through the frame decoder, and every
// frame through the message decoder (and a block batch through open_batch). Besides "no crash,
// no sanitizer report, bounded memory", it checks properties that would reveal decoder bugs:
//   - feeding the bytes whole or in 1..7-byte pieces gives the same frames and the same error;
//   - the decoder never holds more than max_frame_size + 4 bytes;
//   - the shape check before msgpack::unpack catches everything unpack would refuse;
//   - a decoded message re-encodes to bytes that decode to the same message;
//   - an opened batch has exactly raw_size bytes.
// Built only in the clang tree (tests/fuzz/CMakeLists.txt); seeds are in tests/fuzz/corpus.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "core/net/frame.h"
#include "core/protocol/block_batch.h"
#include "core/protocol/messages.h"

using namespace vmrepl;

namespace {

[[noreturn]] void violated(const char* property) {
  std::fprintf(stderr, "frame_decoder_fuzz: property violated: %s\n", property);
  std::abort();
}

void check_message(std::span<const uint8_t> payload) {
  Result<protocol::Message> m = protocol::decode(payload);
  if (!m.ok()) {
    if (m.status().message().rfind("malformed msgpack: ", 0) == 0) violated("msgpack::unpack refused what the shape check let through");
    return;
  }
  Result<protocol::Message> again = protocol::decode(protocol::encode(*m));
  if (!again.ok() || !(*again == *m)) violated("encode(decode(x)) does not decode to the same message");
  if (const auto* b = std::get_if<protocol::BlockBatch>(&*m)) {
    for (protocol::BatchGeometry g : {protocol::BatchGeometry{64ull << 20, 4096},
                                      protocol::BatchGeometry{(1ull << 20) + 100, 65536}}) {
      Result<std::vector<uint8_t>> data = protocol::open_batch(*b, g);
      if (data.ok() && data->size() != b->raw_size) violated("open_batch returned other than raw_size bytes");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint32_t max = protocol::kMaxFrameBytes;
  std::span<const uint8_t> in(data, size);

  FrameDecoder whole(max);
  std::vector<std::vector<uint8_t>> frames;
  Status whole_status = whole.feed(in, frames);
  if (whole.held_bytes() > max + kFrameHeaderBytes) violated("decoder holds more than the limit");

  FrameDecoder pieces(max);
  std::vector<std::vector<uint8_t>> piece_frames;
  Status piece_status;
  for (std::size_t off = 0, k = 0; off < size && piece_status.ok(); ++k) {
    std::size_t n = std::min<std::size_t>(size - off, 1 + k % 7);
    piece_status = pieces.feed(in.subspan(off, n), piece_frames);
    off += n;
    if (pieces.held_bytes() > max + kFrameHeaderBytes) violated("decoder holds more than the limit");
  }
  if (piece_frames != frames || piece_status.ToString() != whole_status.ToString()) {
    violated("feeding in pieces differs from feeding whole");
  }

  for (const auto& f : frames) check_message(f);
  return 0;
}
