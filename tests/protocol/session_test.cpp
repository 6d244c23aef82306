#include <boost/test/unit_test.hpp>

#include "core/protocol/block_batch.h"
#include "core/protocol/msgpack_api.h"
#include "net/test_loop.h"
#include "protocol/samples.h"

using namespace vmrepl;
using namespace vmrepl::protocol;
using namespace vmrepl::test;

namespace {

// A service side that answers like an engine would: hello -> hello_reply; a message it cannot
// decode -> error, then a graceful shutdown; cycle messages -> ack, collecting batch data.
struct Responder {
  std::vector<Message> received;
  std::vector<uint8_t> disk;  // the replica's image, written from batches
  BatchGeometry geometry;

  void attach(Endpoint& e) {
    e.on_frame_extra = [this](Endpoint& self, std::vector<uint8_t>& frame) {
      auto m = decode(frame);
      if (!m.ok()) {
        BOOST_TEST(send_message(*self.conn, error_from(m.status())).ok());
        self.conn->shutdown();
        return;
      }
      received.push_back(*m);
      if (auto* h = std::get_if<Hello>(&*m)) {
        Status v = check_protocol_version(h->protocol_version);
        HelloReply r{v.ok(), kProtocolVersion, sample_guid(9), "replica", {"zstd"}, v.number(), v.ok() ? "" : v.message()};
        BOOST_TEST(send_message(*self.conn, r).ok());
      } else if (auto* cb = std::get_if<CycleBegin>(&*m)) {
        geometry = {cb->disk_sizes.at(0), cb->block_size};
        disk.assign(cb->disk_sizes.at(0), 0xEE);
        BOOST_TEST(send_message(*self.conn, Ack{cb->seq, 0, "", ""}).ok());
      } else if (auto* b = std::get_if<BlockBatch>(&*m)) {
        auto data = open_batch(*b, geometry);
        BOOST_TEST_REQUIRE(data.ok(), data.status().ToString());
        std::size_t off = 0;
        for (uint64_t i : b->data_blocks) {
          std::size_t len = std::min<std::size_t>(geometry.block_size, disk.size() - i * geometry.block_size);
          std::copy_n(data->begin() + static_cast<std::ptrdiff_t>(off), len, disk.begin() + static_cast<std::ptrdiff_t>(i * geometry.block_size));
          off += len;
        }
        for (uint64_t i : b->zero_blocks) {
          std::size_t len = std::min<std::size_t>(geometry.block_size, disk.size() - i * geometry.block_size);
          std::fill_n(disk.begin() + static_cast<std::ptrdiff_t>(i * geometry.block_size), len, 0);
        }
        BOOST_TEST(send_message(*self.conn, Ack{b->seq, 0, "", ""}).ok());
      } else if (auto* ce = std::get_if<CycleEnd>(&*m)) {
        BOOST_TEST(send_message(*self.conn, Ack{ce->seq, 0, "committed", "{\"blocks\":" + std::to_string(ce->blocks_sent) + "}"}).ok());
      }
    };
  }
};

std::vector<Message> decoded(const Endpoint& e) {
  std::vector<Message> out;
  for (const auto& f : e.frames) {
    auto m = decode(f);
    BOOST_TEST_REQUIRE(m.ok(), m.status().ToString());
    out.push_back(*m);
  }
  return out;
}

struct Fixture {
  TestLoop loop;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(session_tests, Fixture)

BOOST_AUTO_TEST_CASE(hello_handshake_over_tcp) {
  Pair p = connect_pair(loop, connection_options(), connection_options());
  Responder r;
  r.attach(*p.server);
  BOOST_TEST(send_message(*p.client->conn, sample_messages()[0]).ok());
  BOOST_TEST(loop.run_until([&] { return p.client->frames.size() == 1; }));
  auto reply = std::get<HelloReply>(decoded(*p.client)[0]);
  BOOST_TEST(reply.accepted);
  BOOST_TEST(reply.service_id.to_string() == sample_guid(9).to_string());
  BOOST_TEST((r.received.at(0) == sample_messages()[0]));

  Hello future = std::get<Hello>(sample_messages()[0]);
  future.protocol_version = 2;
  BOOST_TEST(send_message(*p.client->conn, future).ok());
  BOOST_TEST(loop.run_until([&] { return p.client->frames.size() == 2; }));
  reply = std::get<HelloReply>(decoded(*p.client)[1]);
  BOOST_TEST(!reply.accepted);
  BOOST_TEST(reply.error_code == 32770u);
  BOOST_TEST(reply.error_text == "peer speaks protocol version 2; this service speaks 1");
}

BOOST_AUTO_TEST_CASE(unknown_message_gets_an_error_reply_and_a_clean_close) {
  Pair p = connect_pair(loop, connection_options(), connection_options());
  Responder r;
  r.attach(*p.server);
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(2);
  pk.pack(std::string("t"));
  pk.pack(std::string("teleport"));
  pk.pack(std::string("seq"));
  pk.pack(5);
  BOOST_TEST(p.client->conn->send(std::vector<uint8_t>(buf.data(), buf.data() + buf.size())).ok());
  BOOST_TEST(loop.run_until([&] { return p.client->closed.has_value() && p.server->closed.has_value(); }));
  BOOST_TEST_REQUIRE(p.client->frames.size() == 1u);
  auto err = std::get<Error>(decoded(*p.client)[0]);
  BOOST_TEST(err.code == 32773u);
  BOOST_TEST(err.text == "unknown message type 'teleport'");
  BOOST_TEST(status_from(err).IsInvalidParameter());
  BOOST_TEST(p.client->closed->ok());
  BOOST_TEST(p.server->closed->ok());
  BOOST_TEST(r.received.empty());
}

BOOST_AUTO_TEST_CASE(a_cycle_streams_batches_and_the_wire_bytes_add_up) {
  Pair p = connect_pair(loop, connection_options(), connection_options());
  Responder r;
  r.attach(*p.server);
  const uint32_t bs = 65536;
  const uint64_t disk_size = 40ull * bs + 1000;  // partial last block
  std::vector<uint8_t> image(disk_size, 0);
  for (uint64_t i = 0; i < 41; ++i) {
    if (i % 3 == 0) continue;  // every third block stays zero
    std::size_t len = std::min<uint64_t>(bs, disk_size - i * bs);
    auto bytes = i % 2 ? pattern(len, static_cast<uint8_t>(i)) : std::vector<uint8_t>(len, static_cast<uint8_t>(i));
    std::copy(bytes.begin(), bytes.end(), image.begin() + static_cast<std::ptrdiff_t>(i * bs));
  }
  BatchGeometry g{disk_size, bs};
  Guid vm = sample_guid(5);
  std::vector<Message> sent;
  sent.push_back(CycleBegin{1, vm, 1, 1, true, {disk_size}, bs, true, 3});
  // Three batches of up to 16 blocks: zero blocks as markers, the rest as (compressed) data.
  uint64_t seq = 2;
  for (uint64_t first = 0; first < 41; first += 16) {
    std::vector<uint64_t> zero, data_blocks;
    std::vector<uint8_t> data;
    for (uint64_t i = first; i < std::min<uint64_t>(first + 16, 41); ++i) {
      std::size_t len = std::min<uint64_t>(bs, disk_size - i * bs);
      auto begin = image.begin() + static_cast<std::ptrdiff_t>(i * bs);
      if (std::all_of(begin, begin + static_cast<std::ptrdiff_t>(len), [](uint8_t b) { return b == 0; })) {
        zero.push_back(i);
      } else {
        data_blocks.push_back(i);
        data.insert(data.end(), begin, begin + static_cast<std::ptrdiff_t>(len));
      }
    }
    BlockBatch h;
    h.seq = seq++;
    h.vm_id = vm;
    h.cycle_id = 1;
    h.zero_blocks = zero;
    h.data_blocks = data_blocks;
    auto b = build_batch(std::move(h), std::move(data), g, {true, 3});
    BOOST_TEST_REQUIRE(b.ok(), b.status().ToString());
    sent.push_back(std::move(*b));
  }
  sent.push_back(CycleEnd{seq, vm, 1, {sample_hash(3)}, 41, 0});

  uint64_t wire = 0;
  for (const auto& m : sent) {
    wire += 4 + encode(m).size();
    BOOST_TEST(send_message(*p.client->conn, m).ok());
  }
  BOOST_TEST(loop.run_until([&] { return p.client->frames.size() == sent.size(); }));
  BOOST_TEST(loop.run_until([&] { return p.client->conn->queued_bytes() == 0; }));
  BOOST_TEST(p.client->conn->stats().bytes_sent == wire);
  BOOST_TEST(p.server->conn->stats().bytes_received == wire);
  BOOST_TEST(p.server->conn->stats().frames_received == sent.size());
  // 13 blocks of noise cost their size; the 14 zero blocks and 14 constant ones almost nothing.
  BOOST_TEST(wire < 13 * bs + 4096);
  BOOST_TEST((r.disk == image));
  auto acks = decoded(*p.client);
  BOOST_TEST(std::get<Ack>(acks.back()).data == "{\"blocks\":41}");
  for (std::size_t i = 0; i < sent.size(); ++i) BOOST_TEST((r.received[i] == sent[i]));
}

BOOST_AUTO_TEST_SUITE_END()
