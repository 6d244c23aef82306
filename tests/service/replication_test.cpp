// Two services on 127.0.0.1 replicate a VM: initial replication, cycles, recovery points,
// zero blocks as markers, sparse replicas, seeded initial replication, resynchronization and
// authorization. Bytes are compared on disk; wire bytes come from the jobs' counters.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <thread>

#include "core/blocks/disk_scanner.h"
#include "core/engine/channel.h"
#include "core/blocks/merkle.h"
#include "core/service/replication_service.h"
#include "core/store/undo_log.h"
#include "tests/service/two_hosts.h"

using namespace vmrepl;
using namespace vmrepl::test;
namespace sfs = std::filesystem;
using namespace std::chrono_literals;

namespace {

uint64_t nonzero_blocks(const std::string& path) {
  auto idx = scan_file(path);
  BOOST_REQUIRE(idx.ok());
  uint64_t n = 0;
  for (const auto& e : idx->entries()) n += e.is_zero() ? 0 : 1;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(replication_tests)

BOOST_AUTO_TEST_CASE(initial_replication_cycles_and_recovery_points) {
  Hosts h;
  gen("mixed " + h.dir + "/src.img 256 7");
  std::string id = h.define("web01", h.dir + "/src.img");
  wait_ok(h.a->create_replication_relationship("web01", h.settings(3)));
  auto vmb = h.b->get_system(id);
  BOOST_REQUIRE(vmb.ok());
  BOOST_TEST(*vmb->get_u64("ReplicationMode") == 2u);
  BOOST_TEST(*vmb->get_u64("ReplicationState") == 2u);
  // The replica lives under the entry's storage location.
  BOOST_TEST(vmb->get_string("Folder")->rfind(h.dir + "/b-replicas/", 0) == 0u);
  auto vma = h.a->get_system("web01");
  BOOST_TEST(*vma->get_u64("ReplicationMode") == 1u);
  BOOST_TEST(*vma->get_u64("ReplicationState") == 1u);

  Instance ir = wait_ok(h.a->start_replication("web01", 1, "", ""));
  BOOST_TEST(read_file(h.primary_disk("web01")) == read_file(h.replica_image("web01")));
  // Zero blocks are not data: an initial replication sends only the non-zero blocks.
  const uint64_t nz = nonzero_blocks(h.primary_disk("web01"));
  BOOST_TEST(*ir.get_u64("BlocksSent") == nz);
  BOOST_TEST(*ir.get_u64("DataBytesSent") == nz * 65536);
  BOOST_TEST(*h.a->get_system("web01")->get_u64("ReplicationState") == 3u);
  BOOST_TEST(*h.b->get_system(id)->get_u64("ReplicationState") == 3u);

  std::vector<std::string> copies{read_file(h.primary_disk("web01"))};
  for (int c = 1; c <= 5; ++c) {
    gen("modify " + h.primary_disk("web01") + " 1 " + std::to_string(100 + c));
    Instance cyc = wait_ok(h.a->replicate_now("web01"));
    copies.push_back(read_file(h.primary_disk("web01")));
    BOOST_TEST_REQUIRE((copies.back() == read_file(h.replica_image("web01"))));
    // 1% of 256 MiB in 64 KiB writes at 4 KiB offsets touches at most 2 blocks per write.
    BOOST_TEST(*cyc.get_u64("BlocksSent") <= 2 * 41u);
    BOOST_TEST(*cyc.get_u64("WireBytesSent") <= *cyc.get_u64("BlocksSent") * 65536 * 105 / 100 + 4096);
  }
  // RecoveryHistory 3: the latest point and 3 older ones.
  auto points = h.b->list_recovery_points(id);
  BOOST_REQUIRE(points.ok());
  BOOST_REQUIRE_EQUAL(points->size(), 4u);
  auto ref = h.b->replicator().find_vm(id);
  auto rs = h.b->replicator().replica_store(*ref);
  BOOST_REQUIRE(rs.ok());
  for (const auto& p : *points) {
    uint64_t seq = *p.get_u64("RecoveryPointSequence");
    std::string dest = h.dir + "/point.img";
    sfs::remove(dest);
    auto m = (*rs)->materialize(seq, {dest});
    BOOST_REQUIRE_MESSAGE(m.ok(), m.status().ToString());
    // Point seq was made by cycle seq-1 (the initial replication is point 1).
    BOOST_TEST_REQUIRE((read_file(dest) == copies[seq - 1]), "point " << seq);
  }
  // Exactly 3 points to roll back to, one undo log each (each takes the image one point
  // back); points 1 and 2 were merged away.
  auto kept = (*rs)->points();
  BOOST_REQUIRE(kept.ok());
  std::vector<uint64_t> with_log;
  for (const auto& p : *kept)
    if (p.has_undo) with_log.push_back(p.seq);
  BOOST_TEST((with_log == std::vector<uint64_t>{4, 5, 6}));
  BOOST_TEST(kept->front().seq == 3u);
  std::vector<std::string> logs;
  for (const auto& e : sfs::directory_iterator(Replicator::replica_folder(ref->vm) + "/undo"))
    logs.push_back(e.path().filename().string());
  std::sort(logs.begin(), logs.end());
  BOOST_TEST((logs == std::vector<std::string>{UndoLog::file_name(4), UndoLog::file_name(5), UndoLog::file_name(6)}));
  auto stats = h.a->get_replication_statistics("web01");
  BOOST_REQUIRE(stats.ok());
  BOOST_TEST(*stats->get_u64("ReplicationSuccessCount") == 6u);
}

BOOST_AUTO_TEST_CASE(zero_blocks_travel_as_markers_and_sparse_stays_sparse) {
  Hosts h;
  gen("sparse " + h.dir + "/src.img 256 16 3");
  std::string id = h.define("sparse01", h.dir + "/src.img");
  wait_ok(h.a->create_replication_relationship("sparse01", h.settings(0, false)));
  wait_ok(h.a->start_replication("sparse01", 1, "", ""));
  const std::string rimg = h.replica_image("sparse01");
  BOOST_TEST(read_file(h.primary_disk("sparse01")) == read_file(rimg));
  BOOST_TEST(allocated(rimg) <= (17u << 20));
  // Zero 32 data blocks on the primary: they cross as markers, no data.
  auto idx = scan_file(h.primary_disk("sparse01"));
  std::vector<uint64_t> data_blocks;
  for (uint64_t i = 0; i < idx->block_count() && data_blocks.size() < 32; ++i)
    if (!idx->entry(i).is_zero()) data_blocks.push_back(i);
  {
    std::string zeros(65536, '\0');
    std::fstream f(h.primary_disk("sparse01"), std::ios::in | std::ios::out | std::ios::binary);
    for (uint64_t b : data_blocks) {
      f.seekp(static_cast<std::streamoff>(b * 65536));
      f.write(zeros.data(), 65536);
    }
  }
  Instance cyc = wait_ok(h.a->replicate_now("sparse01"));
  BOOST_TEST(*cyc.get_u64("BlocksSent") == 32u);
  BOOST_TEST(*cyc.get_u64("DataBytesSent") == 0u);
  BOOST_TEST(*cyc.get_u64("WireBytesSent") < 4096u);
  BOOST_TEST(read_file(h.primary_disk("sparse01")) == read_file(rimg));
  BOOST_TEST(allocated(rimg) <= (17u << 20) - 32 * 65536 + 65536);
}

BOOST_AUTO_TEST_CASE(seeded_initial_replication_and_resync_send_only_differences) {
  Hosts h;
  gen("mixed " + h.dir + "/src.img 64 11");
  std::string id = h.define("seed01", h.dir + "/src.img");
  wait_ok(h.a->create_replication_relationship("seed01", h.settings(2)));
  // The operator puts a copy on the recovery server, then the primary moves on by 2%.
  sh("cp --sparse=always " + h.primary_disk("seed01") + " " + *h.b->disk_path(id, 0));
  gen("modify " + h.primary_disk("seed01") + " 2 21");
  auto before = scan_file(*h.b->disk_path(id, 0));
  auto after = scan_file(h.primary_disk("seed01"));
  const uint64_t differing = diff(*before, *after)->size();
  Instance ir = wait_ok(h.a->start_replication("seed01", 3, "", ""));
  BOOST_TEST(*ir.get_u64("BlocksSent") == differing);
  BOOST_TEST(*ir.get_u64("DataBytesSent") <= differing * 65536);
  BOOST_TEST(read_file(h.primary_disk("seed01")) == read_file(h.replica_image("seed01")));

  // Lose the primary's index of the acknowledged point: the next cycle asks for a resync.
  auto ref = h.a->replicator().find_vm("seed01");
  sfs::remove(Replicator::primary_folder(ref->vm) + "/acked-disk0.idx");
  gen("modify " + h.primary_disk("seed01") + " 1 31");
  Status st = wait_fail(h.a->replicate_now("seed01"));
  BOOST_TEST(st.number() == 32775u);
  BOOST_TEST(*h.a->get_system("seed01")->get_u64("ReplicationState") == 9u);
  auto r1 = scan_file(h.replica_image("seed01"));
  auto p1 = scan_file(h.primary_disk("seed01"));
  const uint64_t diff2 = diff(*r1, *p1)->size();
  Instance rs = wait_ok(h.a->resynchronize("seed01", ""));
  BOOST_TEST(*rs.get_u64("BlocksSent") == diff2);
  BOOST_TEST(read_file(h.primary_disk("seed01")) == read_file(h.replica_image("seed01")));
  BOOST_TEST(*h.a->get_system("seed01")->get_u64("ReplicationState") == 3u);
  // A resynchronization starts the recovery history again.
  BOOST_TEST(h.b->list_recovery_points(id)->size() == 1u);

  // Something wrote to the replica image behind the engine's back: a resync compares the disks
  // as they are, so it repairs that block too.
  {
    std::fstream f(h.replica_image("seed01"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5 * 65536 + 100);
    f.write("damage", 6);
  }
  BOOST_TEST(read_file(h.primary_disk("seed01")) != read_file(h.replica_image("seed01")));
  wait_ok(h.a->request_replication_state_change("seed01", 7));
  Instance repair = wait_ok(h.a->resynchronize("seed01", ""));
  BOOST_TEST(*repair.get_u64("BlocksSent") == 1u);
  BOOST_TEST(read_file(h.primary_disk("seed01")) == read_file(h.replica_image("seed01")));
}

BOOST_AUTO_TEST_CASE(an_acknowledged_index_of_another_geometry_asks_for_a_resync) {
  Hosts h;
  h.replicated_mixed("geo01", 16, 29, 2);
  auto ref = h.a->replicator().find_vm("geo01");
  BOOST_REQUIRE(ref.ok());
  const std::string acked = Replicator::primary_folder(ref->vm) + "/acked-disk0.idx";
  auto mine = BlockIndex::load(acked);
  BOOST_REQUIRE(mine.ok());
  struct Geometry {
    uint32_t block_size;
    uint64_t disk_size;
    std::string said;
  };
  // Well-formed indexes that cannot describe this disk: half its size; blocks of 32 KiB.
  const std::vector<Geometry> wrong = {{65536, 8u << 20, "describes 8388608 bytes in blocks of 65536"},
                                       {32768, 16u << 20, "describes 16777216 bytes in blocks of 32768"}};
  uint32_t seed = 41;
  for (const auto& g : wrong) {
    auto other = BlockIndex::create(mine->algorithm(), g.block_size, g.disk_size);
    BOOST_REQUIRE(other.ok());
    BOOST_REQUIRE(other->save(acked).ok());
    gen("modify " + h.primary_disk("geo01") + " 1 " + std::to_string(seed++));
    const std::string replica_before = read_file(h.replica_image("geo01"));
    Status st = wait_fail(h.a->replicate_now("geo01"));
    BOOST_TEST(st.number() == 32775u);
    BOOST_TEST(st.message().find(g.said) != std::string::npos, st.message());
    BOOST_TEST(*h.a->get_system("geo01")->get_u64("ReplicationState") == 9u);
    // Nothing was sent on the strength of that index.
    BOOST_TEST(read_file(h.replica_image("geo01")) == replica_before);
    wait_ok(h.a->resynchronize("geo01", ""));
    BOOST_TEST(*h.a->get_system("geo01")->get_u64("ReplicationState") == 3u);
    BOOST_TEST(read_file(h.primary_disk("geo01")) == read_file(h.replica_image("geo01")));
    // The resync saved an index of this disk again: the next cycle is an ordinary one.
    gen("modify " + h.primary_disk("geo01") + " 1 " + std::to_string(seed++));
    wait_ok(h.a->replicate_now("geo01"));
    BOOST_TEST(read_file(h.primary_disk("geo01")) == read_file(h.replica_image("geo01")));
  }
}

BOOST_AUTO_TEST_CASE(change_feed_cycles_send_the_reported_blocks_without_scanning) {
  Hosts h;
  h.replicated_mixed("feed01", 64, 13, 2);
  const std::string disk = h.primary_disk("feed01");
  // A writer that reports its writes: 8 blocks of fresh bytes, each marked before the cycle.
  auto write_marked = [&](uint32_t seed) {
    std::fstream f(disk, std::ios::in | std::ios::out | std::ios::binary);
    std::string buf(65536, '\0');
    for (int k = 0; k < 8; ++k) {
      for (auto& c : buf) c = static_cast<char>(seed = seed * 1664525u + 1013904223u);
      uint64_t off = (uint64_t{seed % 1000} * 65536) + 4096;
      f.seekp(static_cast<std::streamoff>(off));
      f.write(buf.data(), 65536);
      f.flush();
      BOOST_REQUIRE(h.a->disk_mark_dirty("feed01", 0, off, 65536).ok());
    }
  };
  write_marked(1);
  // The first cycle after attaching the feed establishes it by a scan; later ones use it.
  Instance first = wait_ok(h.a->replicate_now("feed01"));
  BOOST_TEST(*first.get_string("ChangeSource") == "scan");
  BOOST_TEST(read_file(disk) == read_file(h.replica_image("feed01")));
  for (uint32_t c = 2; c <= 4; ++c) {
    write_marked(c * 7919);
    Instance cyc = wait_ok(h.a->replicate_now("feed01"));
    BOOST_TEST(*cyc.get_string("ChangeSource") == "change-feed");
    BOOST_TEST(*cyc.get_u64("BlocksSent") <= 16u);  // 8 writes at 4 KiB offsets: at most 2 blocks each
    BOOST_TEST(read_file(disk) == read_file(h.replica_image("feed01")));
  }
  // Bad ranges are refused, naming what is wrong.
  Status bad = h.a->disk_mark_dirty("feed01", 3, 0, 1);
  BOOST_TEST(bad.number() == 32773u);
  BOOST_TEST(h.a->disk_mark_dirty("feed01", 0, 64u << 20, 1).number() == 32773u);
}

BOOST_AUTO_TEST_CASE(a_change_feed_cycle_sends_only_the_written_bytes_of_each_block) {
  Hosts h;
  const std::string id = h.replicated_mixed("feed02", 64, 17, 6);
  const std::string disk = h.primary_disk("feed02");
  uint32_t seed = 5;
  auto write_marked = [&](uint64_t off, uint64_t len) {
    std::fstream f(disk, std::ios::in | std::ios::out | std::ios::binary);
    std::string buf(len, '\0');
    for (auto& c : buf) c = static_cast<char>((seed = seed * 1664525u + 1013904223u) >> 24);
    f.seekp(static_cast<std::streamoff>(off));
    f.write(buf.data(), static_cast<std::streamsize>(len));
    f.flush();
    BOOST_REQUIRE(h.a->disk_mark_dirty("feed02", 0, off, len).ok());
  };
  write_marked(0, 4096);
  BOOST_TEST(*wait_ok(h.a->replicate_now("feed02")).get_string("ChangeSource") == "scan");
  auto ref = h.b->replicator().find_vm(id);
  BOOST_REQUIRE(ref.ok());
  std::vector<std::string> points{read_file(disk)};
  BOOST_TEST_REQUIRE((points.back() == read_file(h.replica_image("feed02"))));

  // Block 10: 4 KiB at 8 KiB. Blocks 20-21: 64 KiB from 20 x 64 KiB + 12 KiB (a part of each).
  // Block 30: two 4 KiB writes, at 4 KiB and 40 KiB (their hull, 40 KiB, goes). Block 40: a
  // whole block. Block 50: 100 bytes, which mark their 4 KiB unit.
  write_marked(10 * 65536 + 8192, 4096);
  write_marked(20 * 65536 + 12288, 65536);
  write_marked(30 * 65536 + 4096, 4096);
  write_marked(30 * 65536 + 40960, 4096);
  write_marked(40 * 65536, 65536);
  write_marked(50 * 65536 + 5000, 100);
  Instance cyc = wait_ok(h.a->replicate_now("feed02"));
  BOOST_TEST(*cyc.get_string("ChangeSource") == "change-feed");
  BOOST_TEST(*cyc.get_u64("BlocksSent") == 6u);
  BOOST_TEST(*cyc.get_u64("DataBytesSent") == 4096u + 65536u + 40960u + 65536u + 4096u);
  points.push_back(read_file(disk));
  BOOST_TEST_REQUIRE((points.back() == read_file(h.replica_image("feed02"))));

  // Another part of block 10: a range stands on the point the last range made.
  write_marked(10 * 65536 + 60 * 1024, 4096);
  BOOST_TEST(*wait_ok(h.a->replicate_now("feed02")).get_u64("DataBytesSent") == 4096u);
  points.push_back(read_file(disk));
  BOOST_TEST_REQUIRE((points.back() == read_file(h.replica_image("feed02"))));

  // A write outside a range that was not reported by the time the block was read (here: never
  // reported) makes the replica's root disagree: the cycle is rolled back, and the next one
  // sends whole blocks, so the replica ends equal to what was read.
  write_marked(60 * 65536 + 4096, 4096);
  {
    std::fstream f(disk, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(60 * 65536 + 32768);
    f.write("unreported", 10);
  }
  Status disagreed = wait_fail(h.a->replicate_now("feed02"));
  BOOST_TEST(disagreed.message().find("disagrees") != std::string::npos, disagreed.ToString());
  BOOST_TEST((read_file(h.replica_image("feed02")) == points.back()));  // rolled back
  Instance whole = wait_ok(h.a->replicate_now("feed02"));
  BOOST_TEST(*whole.get_string("ChangeSource") == "change-feed");
  BOOST_TEST(*whole.get_u64("DataBytesSent") == 65536u);
  points.push_back(read_file(disk));
  BOOST_TEST_REQUIRE((points.back() == read_file(h.replica_image("feed02"))));
  write_marked(10 * 65536, 4096);  // and ranges again after it
  BOOST_TEST(*wait_ok(h.a->replicate_now("feed02")).get_u64("DataBytesSent") == 4096u);
  points.push_back(read_file(disk));
  BOOST_TEST_REQUIRE((points.back() == read_file(h.replica_image("feed02"))));

  // Every point, made of ranges, is restored exactly from the undo logs.
  auto rs = h.b->replicator().replica_store(*ref);
  BOOST_REQUIRE(rs.ok());
  auto kept = (*rs)->points();
  BOOST_REQUIRE(kept.ok());
  BOOST_REQUIRE(kept->size() >= points.size());
  for (size_t k = 0; k < points.size(); ++k) {
    const uint64_t seq = (*kept)[kept->size() - points.size() + k].seq;
    const std::string dest = h.dir + "/point.img";
    sfs::remove(dest);
    auto m = (*rs)->materialize(seq, {dest});
    BOOST_REQUIRE_MESSAGE(m.ok(), m.status().ToString());
    BOOST_TEST_REQUIRE((read_file(dest) == points[k]), "point " << seq);
  }
}

BOOST_AUTO_TEST_CASE(an_unadmitted_primary_gets_access_denied) {
  Hosts h;
  auto c = Hosts::open("hv-c", h.dir + "/c", "{\"hosts\": {\"hv-b\": \"127.0.0.1\"}}");
  auto vm = c->define_system(VmDefinition{"intruder", std::nullopt, {1 << 20}});
  BOOST_REQUIRE(vm.ok());
  Status st = wait_fail(c->create_replication_relationship("intruder", h.settings()));
  BOOST_TEST(st.number() == 32769u);
  BOOST_TEST(st.message().find("hv-c") != std::string::npos);
  BOOST_TEST(!sfs::exists(h.dir + "/b-replicas/vms/" + *vm->get_string("Name")));
  // Validation errors come at once, naming the property or the state.
  auto bad = c->create_replication_relationship("intruder", R"({"RecoveryConnectionPoint": "hv-b", "RecoveryServerPortNumber": 0, "AuthenticationType": 1})");
  BOOST_TEST(bad.status().number() == 32773u);
  BOOST_TEST(bad.status().message().find("RecoveryServerPortNumber") != std::string::npos);
  auto wrong = c->start_replication("intruder", 1, "", "");
  BOOST_TEST(wrong.status().number() == 32775u);
  BOOST_TEST(c->replicate_now("nope").status().number() == 32779u);
}

BOOST_AUTO_TEST_CASE(interval_cycles_run_on_their_own) {
  Hosts h;
  h.a.reset();
  h.a = Hosts::open("hv-a", h.dir + "/a", R"({"hosts": {"hv-b": "127.0.0.1"}, "cycle_interval_override_s": 1})");
  gen("mixed " + h.dir + "/src.img 16 17");
  h.define("tick01", h.dir + "/src.img");
  wait_ok(h.a->create_replication_relationship("tick01", h.settings(1, false)));
  wait_ok(h.a->start_replication("tick01", 1, "", ""));
  gen("modify " + h.primary_disk("tick01") + " 5 51");
  const std::string want = read_file(h.primary_disk("tick01"));
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (read_file(h.replica_image("tick01")) != want && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  BOOST_TEST(read_file(h.replica_image("tick01")) == want);
  BOOST_TEST(*h.a->get_replication_statistics("tick01")->get_u64("ReplicationSuccessCount") >= 2u);
}

BOOST_AUTO_TEST_CASE(a_long_scan_with_nothing_to_send_keeps_the_replica_waiting) {
  // A short io_timeout on the primary makes its keepalive short (io_timeout / 25 = 10 ms):
  // while the scan of 256 MiB finds nothing to send (the only change is in the last block),
  // empty batches reach the replica mid-cycle; it takes them and applies exactly the change.
  Hosts h;
  h.replicated_mixed("ka01", 256, 23, 1);
  h.a.reset();
  h.a = Hosts::open("hv-a", h.dir + "/a", R"({"hosts": {"hv-b": "127.0.0.1"}, "io_timeout_ms": 250})");
  {
    std::fstream f(h.primary_disk("ka01"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp((256 << 20) - 100);
    f << "the last block changed";
  }
  Instance j = wait_ok(h.a->replicate_now("ka01"));
  BOOST_TEST(*j.get_u64("BlocksSent") == 1u);
  BOOST_TEST(read_file(h.replica_image("ka01")) == read_file(h.primary_disk("ka01")));
}

BOOST_AUTO_TEST_CASE(a_primary_cannot_escape_the_storage_location) {
  Hosts h;
  // A hostile primary speaks the protocol directly: names that try to leave the location.
  auto ch = Channel::connect(h.a->loop(), "127.0.0.1", h.port, 5s);
  BOOST_REQUIRE(ch.ok());
  BOOST_REQUIRE((*ch)->send(protocol::Hello{protocol::kProtocolVersion, Guid::generate(), "hv-a", {}, {}}).ok());
  auto reply = (*ch)->expect<protocol::HelloReply>(5s);
  BOOST_REQUIRE(reply.ok() && reply->accepted);
  uint64_t seq = 0;
  const std::vector<std::string> names{"../../escape", "a/../../b", "..", "/etc/evil", std::string("nul\0x", 5)};
  for (const std::string& name : names) {
    protocol::RelationshipCreate m;
    m.seq = ++seq;
    m.vm_id = Guid::generate();
    m.vm_name = name;
    m.disk_sizes = {1 << 20};
    m.block_size = 65536;
    m.settings_json = h.settings();
    BOOST_REQUIRE((*ch)->send(m).ok());
    auto ack = (*ch)->expect<protocol::Ack>(5s);
    if (!ack) {  // the decoder itself refuses some names (NUL)
      BOOST_TEST(ack.status().number() != 0u);
      break;
    }
    BOOST_TEST(ack->code == 32773u, "name " << name);
    BOOST_TEST(ack->text.find("ElementName") != std::string::npos);
  }
  // Nothing was created outside the storage location (nor inside it).
  BOOST_TEST(!sfs::exists(h.dir + "/escape"));
  BOOST_TEST(!sfs::exists("/etc/evil"));
  if (sfs::exists(h.dir + "/b-replicas/vms"))
    BOOST_TEST(sfs::is_empty(h.dir + "/b-replicas/vms"));
}

BOOST_AUTO_TEST_CASE(a_disk_file_of_another_size_is_refused_not_replicated) {
  Hosts h;
  gen("mixed " + h.dir + "/grow.img 16 23");
  std::string id = h.define("grow01", h.dir + "/grow.img");
  wait_ok(h.a->create_replication_relationship("grow01", h.settings(2)));
  wait_ok(h.a->start_replication("grow01", 1, "", ""));
  const std::string disk = h.primary_disk("grow01");
  sfs::resize_file(disk, (16u << 20) + 65536);  // something appended to the image
  Status st = wait_fail(h.a->replicate_now("grow01"));
  BOOST_TEST(st.number() == 32768u);
  BOOST_TEST(st.message().find("the catalog says 16777216") != std::string::npos);
  sfs::resize_file(disk, 16u << 20);
  wait_ok(h.a->replicate_now("grow01"));
  BOOST_TEST(read_file(disk) == read_file(h.replica_image("grow01")));
}

BOOST_AUTO_TEST_SUITE_END()
