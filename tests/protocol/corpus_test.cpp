// The fuzz target's seed corpus (tests/fuzz/corpus) is made of the sample messages, framed.
// This suite keeps it honest: every seed must be exactly what the current encoder produces,
// and must decode. After a deliberate protocol change, regenerate the seeds with
//   VMREPL_WRITE_CORPUS=1 build/tests/test_protocol --run_test=corpus_tests
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/net/frame.h"
#include "core/protocol/block_batch.h"
#include "protocol/samples.h"

using namespace vmrepl;
using namespace vmrepl::protocol;
using namespace vmrepl::test;

namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> framed(const Message& m) { return *FrameEncoder::encode(encode(m), kMaxFrameBytes); }

// name -> bytes of every seed.
std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds() {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> out;
  std::vector<uint8_t> stream;
  auto samples = sample_messages();
  for (std::size_t i = 0; i < samples.size(); ++i) {
    std::string n = (i < 10 ? "0" : "") + std::to_string(i) + "_" + std::string(message_type(samples[i])) + ".bin";
    out.emplace_back(n, framed(samples[i]));
    stream.insert(stream.end(), out.back().second.begin(), out.back().second.end());
  }
  // A compressed batch with zero markers and a partial last block, to seed the zstd path.
  BatchGeometry g{8ull * 4096 + 100, 4096};
  std::vector<uint8_t> data(2 * 4096 + 100);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>("seed"[i % 4]);
  BlockBatch h;
  h.seq = 1;
  h.vm_id = sample_guid(3);
  h.zero_blocks = {0, 1, 2};
  h.data_blocks = {3, 4, 8};
  out.emplace_back("12_block_batch_zstd.bin", framed(*build_batch(h, data, g, {true, 3})));
  out.emplace_back("13_all_messages_stream.bin", stream);
  // A batch of ranges (parts of blocks) after a whole data block, to seed their decoding.
  BlockBatch r;
  r.seq = 2;
  r.vm_id = sample_guid(3);
  r.data_blocks = {1};
  r.ranges = {{2, 512, 1024}, {5, 0, 100}, {8, 20, 50}};  // block 8 is the 100-byte tail
  std::vector<uint8_t> rdata(4096 + 1024 + 100 + 50, 0x5A);
  out.emplace_back("14_block_batch_ranges.bin", framed(*build_batch(r, rdata, g, {false, 3})));
  return out;
}

fs::path corpus_dir() { return fs::path(VMREPL_SOURCE_DIR) / "tests" / "fuzz" / "corpus"; }

std::vector<uint8_t> read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(corpus_tests)

BOOST_AUTO_TEST_CASE(seed_corpus_matches_the_encoder_and_decodes) {
  auto expected = seeds();
  if (std::getenv("VMREPL_WRITE_CORPUS") != nullptr) {
    fs::create_directories(corpus_dir());
    for (const auto& [name, bytes] : expected) {
      std::ofstream f(corpus_dir() / name, std::ios::binary | std::ios::trunc);
      f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
  }
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(corpus_dir())) {
    (void)entry;
    ++files;
  }
  BOOST_TEST(files == expected.size());
  std::set<std::size_t> kinds;
  for (const auto& [name, bytes] : expected) {
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST_REQUIRE(fs::exists(corpus_dir() / name));
      BOOST_TEST((read_file(corpus_dir() / name) == bytes));
      FrameDecoder d(kMaxFrameBytes);
      std::vector<std::vector<uint8_t>> frames;
      BOOST_TEST_REQUIRE(d.feed(bytes, frames).ok());
      BOOST_TEST(!d.mid_frame());
      for (const auto& f : frames) {
        auto m = decode(f);
        BOOST_TEST_REQUIRE(m.ok(), m.status().ToString());
        kinds.insert(m->index());
      }
    }
  }
  BOOST_TEST(kinds.size() == std::variant_size_v<Message>);
}

BOOST_AUTO_TEST_SUITE_END()
