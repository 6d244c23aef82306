// Undo log format: round trip of batches and the seal; torn tails (cut at every byte of the
// last batch, or zero-filled) are ignored; a flipped byte anywhere a commit record vouches for
// is refused with Failed naming the file and the batch's offset; headers of another VM, seq
// or geometry are refused; hand-made batches with valid checksums but out-of-bounds records
// are refused (bounded reader); the writer refuses records outside the disks. Version 2 range
// records (data and zero ranges) round trip, malformed ones are refused by writer and reader,
// and version 1 logs are still read (without range records).
#include "core/store/undo_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "store/temp_dir.h"

namespace vmrepl {
namespace {

constexpr uint32_t kBs = 4096;
const std::vector<uint64_t> kDisks = {10 * 4096, 3 * 4096 + 100};  // disk 1 ends in 100 bytes

std::vector<std::byte> bytes_of(uint64_t seed, std::size_t n) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng() | 1);  // never all zero
  return v;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_all(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

bool contains(const std::string& hay, std::string_view needle) {
  return hay.find(needle) != std::string::npos;
}

// A record as read back, with its data copied.
struct Got {
  uint32_t disk;
  uint64_t block;
  bool zero;
  std::vector<std::byte> data;
  uint32_t offset = 0;
  uint32_t range_length = 0;
  bool operator==(const Got&) const = default;
};

struct Fixture {
  test::TempDir dir;
  fs::Fd dir_fd;
  Guid vm = Guid::generate();
  uint64_t seq = 7;
  // Batch start offsets, in file order, as the writer laid them out.
  std::vector<uint64_t> batch_offsets;
  std::vector<std::vector<Got>> written;  // records per batch

  Fixture() {
    auto d = fs::open_dir(dir.path());
    BOOST_REQUIRE(d.ok());
    dir_fd = std::move(d).value();
  }
  std::string path() const { return dir / UndoLog::file_name(seq); }

  UndoLogWriter create() {
    auto w = UndoLogWriter::create(dir_fd.get(), path(), {vm, seq, 2, kBs});
    BOOST_REQUIRE_MESSAGE(w.ok(), w.status().ToString());
    return std::move(w).value();
  }

  // Writes `n` batches of a few records each (data, zero, the short last block of disk 1).
  void write_batches(UndoLogWriter& w, int n, bool seal, bool sync = true) {
    for (int b = 0; b < n; ++b) {
      std::vector<std::vector<std::byte>> keep;
      std::vector<UndoRecord> recs;
      std::vector<Got> got;
      for (uint64_t i = 0; i < 3; ++i) {
        const uint64_t block = static_cast<uint64_t>(b) * 3 + i;
        keep.push_back(bytes_of(block, kBs));
        recs.push_back({0, block, false, keep.back()});
        got.push_back({0, block, false, keep.back()});
      }
      recs.push_back({1, static_cast<uint64_t>(b % 3), true, {}});
      got.push_back({1, static_cast<uint64_t>(b % 3), true, {}});
      if (b == 0) {
        keep.push_back(bytes_of(99, 100));
        recs.push_back({1, 3, false, keep.back()});
        got.push_back({1, 3, false, keep.back()});
      }
      batch_offsets.push_back(w.size());
      BOOST_REQUIRE(w.append_batch(recs, kDisks, sync).ok());
      written.push_back(std::move(got));
    }
    if (seal) {
      batch_offsets.push_back(w.size());
      BOOST_REQUIRE(w.seal().ok());
    }
  }

  Result<UndoLogReader> reader() {
    return UndoLogReader::open(dir_fd.get(), path(), vm, seq, kDisks);
  }
  // Reads the whole log; `out` gets the batches delivered.
  Result<UndoLogScan> scan(std::vector<std::vector<Got>>* out, bool require_seal) {
    auto r = reader();
    if (!r.ok()) return r.status();
    return r->read(
        [&](std::span<const UndoRecord> recs) {
          std::vector<Got> batch;
          for (const auto& x : recs)
            batch.push_back({x.disk, x.block, x.zero, {x.data.begin(), x.data.end()}, x.offset,
                             x.range_length});
          out->push_back(std::move(batch));
          return Status::OK();
        },
        require_seal);
  }
};

void put_u32(std::string& s, std::size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}
void put_u64(std::string& s, std::size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

// Builds one batch exactly as undo_log.h documents it, with valid checksums, so the tests
// reach the bound checks behind them.
std::string make_batch(uint64_t seq, uint64_t batch_no, uint32_t flags,
                       const std::vector<std::string>& records, uint32_t count) {
  std::string payload;
  for (const auto& r : records) payload += r;
  std::string b(40, '\0');
  put_u32(b, 0, UndoLog::kBatchTag);
  put_u32(b, 4, flags);
  put_u64(b, 8, batch_no);
  put_u64(b, 16, payload.size());
  put_u32(b, 24, count);
  put_u64(b, 32, XXH3_64bits_withSeed(b.data(), 32, seq));
  b += payload;
  std::string c(24, '\0');
  put_u32(c, 0, UndoLog::kCommitTag);
  put_u64(c, 8, batch_no);
  b += c;
  const std::size_t end = b.size() - 8;
  put_u64(b, end, XXH3_64bits_withSeed(b.data(), end, seq));
  return b;
}
std::string make_record(uint32_t disk, uint32_t flags, uint64_t block, uint32_t length,
                        std::size_t data_bytes, uint32_t offset = 0) {
  std::string r(24, '\0');
  put_u32(r, 0, disk);
  put_u32(r, 4, flags);
  put_u64(r, 8, block);
  put_u32(r, 16, length);
  put_u32(r, 20, offset);
  r += std::string(data_bytes, 'x');
  return r;
}

// The header rewritten to format `version`, its checksum recomputed.
std::string with_version(std::string log, uint32_t version) {
  put_u32(log, 8, version);
  put_u64(log, 56, XXH3_64bits_withSeed(log.data(), 56, 0));
  return log;
}

BOOST_FIXTURE_TEST_SUITE(undo_log_tests, Fixture)

BOOST_AUTO_TEST_CASE(batches_and_seal_round_trip_in_order) {
  auto w = create();
  BOOST_TEST(w.size() == UndoLog::kHeaderSize);
  write_batches(w, 3, true);
  BOOST_TEST(w.batches() == 4u);
  struct stat st {};
  BOOST_REQUIRE(::stat(path().c_str(), &st) == 0);
  BOOST_TEST(static_cast<uint64_t>(st.st_size) == w.size());
  BOOST_TEST(!std::filesystem::exists(dir / UndoLog::temp_file_name(seq)));

  std::vector<std::vector<Got>> got;
  auto s = scan(&got, true);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(s->sealed);
  BOOST_TEST(s->batches == 4u);
  BOOST_TEST(s->records == 13u);
  BOOST_TEST(s->torn_bytes == 0u);
  BOOST_TEST((got == written));
  auto r = reader();
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->header().block_size == kBs);
  BOOST_TEST(r->header().disk_count == 2u);
  BOOST_TEST((r->header().vm_id == vm));

  BOOST_TEST(w.append_batch({}, kDisks).IsInvalidState());  // nothing after the seal
}

BOOST_AUTO_TEST_CASE(batches_appended_without_sync_are_the_same_bytes_and_sync_later) {
  std::string synced;
  {
    auto w = create();
    write_batches(w, 3, true);
    synced = read_all(path());
  }
  std::filesystem::remove(path());
  written.clear();
  batch_offsets.clear();
  auto w = create();
  write_batches(w, 3, false, false);
  BOOST_REQUIRE(w.sync().ok());
  BOOST_REQUIRE(w.seal().ok());
  BOOST_TEST(read_all(path()) == synced);
  std::vector<std::vector<Got>> got;
  auto s = scan(&got, true);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(s->batches == 4u);
  BOOST_TEST((got == written));
  BOOST_TEST(UndoLogWriter().sync().IsInvalidState());
}

BOOST_AUTO_TEST_CASE(file_names_are_strict) {
  uint64_t s = 0;
  BOOST_TEST(UndoLog::file_name(17) == "17.undo");
  BOOST_TEST((UndoLog::parse_file_name("17.undo", &s) && s == 17));
  BOOST_TEST((UndoLog::parse_temp_file_name("17.undo.tmp", &s) && s == 17));
  BOOST_TEST(UndoLog::parse_file_name("9223372036854775807.undo", &s));
  for (const char* bad : {"017.undo", "0.undo", "x.undo", ".undo", "17.undo.tmp", "-1.undo",
                          "9223372036854775808.undo", "17.UNDO", "17"})
    BOOST_TEST(!UndoLog::parse_file_name(bad, &s), bad);
  BOOST_TEST(!UndoLog::parse_temp_file_name("17.undo", &s));
}

BOOST_AUTO_TEST_CASE(a_torn_tail_is_ignored_at_every_cut) {
  {
    auto w = create();
    write_batches(w, 3, false);
  }
  const std::string full = read_all(path());
  const uint64_t last = batch_offsets.back();
  std::vector<uint64_t> cuts;  // every byte of the framing, a stride through the data
  for (uint64_t cut = last; cut < full.size(); ++cut)
    if (cut < last + 64 || cut + 32 > full.size() || (cut - last) % 97 == 0) cuts.push_back(cut);
  for (uint64_t cut : cuts) {
    write_all(path(), full.substr(0, cut));
    std::vector<std::vector<Got>> got;
    auto s = scan(&got, false);
    BOOST_REQUIRE_MESSAGE(s.ok(), "cut at " << cut << ": " << s.status().ToString());
    BOOST_TEST(s->batches == 2u);
    BOOST_TEST(s->torn_bytes == cut - last);
    BOOST_TEST(!s->sealed);
    BOOST_TEST(got.size() == 2u);
    // A committed point's log must be sealed: the same file is damage there.
    std::vector<std::vector<Got>> again;
    auto sealed = scan(&again, true);
    BOOST_TEST(sealed.status().number() == 32768u);
    BOOST_TEST(contains(sealed.status().message(), "not sealed"));
  }
  write_all(path(), full);
  std::vector<std::vector<Got>> got;
  auto s = scan(&got, false);
  BOOST_REQUIRE(s.ok());
  BOOST_TEST(s->batches == 3u);
  BOOST_TEST((got == written));
}

BOOST_AUTO_TEST_CASE(a_zero_filled_tail_is_ignored) {
  {
    auto w = create();
    write_batches(w, 2, false);
  }
  std::string bytes = read_all(path());
  // What a filesystem can show after a crash: the size grew, the data never landed.
  write_all(path(), bytes + std::string(9000, '\0'));
  std::vector<std::vector<Got>> got;
  auto s = scan(&got, false);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(s->batches == 2u);
  BOOST_TEST(s->torn_bytes == 9000u);
  // The last batch zeroed in place (header, data and commit record).
  std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(batch_offsets[1]), bytes.end(), '\0');
  write_all(path(), bytes);
  got.clear();
  s = scan(&got, false);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(s->batches == 1u);
}

BOOST_AUTO_TEST_CASE(a_flipped_byte_in_a_committed_batch_is_refused_naming_file_and_offset) {
  {
    auto w = create();
    write_batches(w, 3, true);
  }
  const std::string good = read_all(path());
  struct Flip {
    const char* what;
    uint64_t at;
  };
  const uint64_t b1 = batch_offsets[1], b2 = batch_offsets[2];
  const Flip flips[] = {
      {"record data of batch 1", b1 + 40 + 24 + 1000},
      {"record header of batch 1", b1 + 40 + 3},
      {"commit checksum of batch 1", b2 - 1},
      {"batch header of batch 1", b1 + 17},
      {"commit tag of batch 1", b2 - 24},
      {"record data of the last data batch", b2 + 40 + 24 + 5},
  };
  for (const auto& f : flips) {
    std::string bad = good;
    bad[f.at] = static_cast<char>(bad[f.at] ^ 0x20);
    write_all(path(), bad);
    std::vector<std::vector<Got>> got;
    auto s = scan(&got, false);
    BOOST_TEST_CONTEXT(f.what) {
      BOOST_TEST(s.status().number() == 32768u);
      BOOST_TEST(contains(s.status().message(), path()), s.status().message());
      const uint64_t batch_at = f.at >= b2 ? b2 : b1;
      BOOST_TEST(contains(s.status().message(), "at offset " + std::to_string(batch_at)),
                 s.status().message());
      // Nothing of the damaged batch or after it was handed out.
      BOOST_TEST(got.size() <= (f.at >= b2 ? 2u : 1u));
    }
  }
}

BOOST_AUTO_TEST_CASE(headers_of_another_log_are_refused) {
  {
    auto w = create();
    write_batches(w, 1, true);
  }
  auto other_vm = UndoLogReader::open(dir_fd.get(), path(), Guid::generate(), seq, kDisks);
  BOOST_TEST(other_vm.status().number() == 32768u);
  BOOST_TEST(contains(other_vm.status().message(), "belongs to VM"));
  auto other_seq = UndoLogReader::open(dir_fd.get(), path(), vm, seq + 1, kDisks);
  BOOST_TEST(other_seq.status().number() == 32779u);  // 8.undo does not exist
  auto disks = UndoLogReader::open(dir_fd.get(), path(), vm, seq, {kDisks[0]});
  BOOST_TEST(contains(disks.status().message(), "2 disks; the replica has 1"));

  const std::string good = read_all(path());
  std::string bad = good;
  bad[33] ^= 1;  // seq byte: the header checksum catches it
  write_all(path(), bad);
  BOOST_TEST(contains(reader().status().message(), "checksum mismatch at offset 0"));
  bad = good;
  bad[0] = 'X';
  write_all(path(), bad);
  BOOST_TEST(contains(reader().status().message(), "bad magic"));
  write_all(path(), with_version(good, 3));  // a newer format
  BOOST_TEST(reader().status().number() == 32770u);
  write_all(path(), with_version(good, 0));
  BOOST_TEST(reader().status().number() == 32770u);
  write_all(path(), good.substr(0, 30));
  BOOST_TEST(contains(reader().status().message(), "shorter than the header"));
}

BOOST_AUTO_TEST_CASE(out_of_bounds_records_are_refused_even_with_valid_checksums) {
  {
    auto w = create();
    write_batches(w, 1, false);
  }
  const std::string good = read_all(path());
  const uint64_t at = good.size();
  struct Case {
    const char* what;
    std::string batch;
    const char* message;
  };
  const Case cases[] = {
      {"length above the block size",
       make_batch(seq, 1, 0, {make_record(0, 0, 0, kBs + 1, kBs + 1)}, 1), "needs 4096"},
      {"short data for a full block", make_batch(seq, 1, 0, {make_record(0, 0, 0, 100, 100)}, 1),
       "needs 4096"},
      {"disk that does not exist", make_batch(seq, 1, 0, {make_record(2, 0, 0, kBs, kBs)}, 1),
       "disk 2 does not exist"},
      {"block past the end", make_batch(seq, 1, 0, {make_record(1, 0, 4, 100, 100)}, 1),
       "past the end"},
      {"zero record with data", make_batch(seq, 1, 0, {make_record(0, 1, 0, kBs, kBs)}, 1),
       "needs 0"},
      {"unknown record flags", make_batch(seq, 1, 0, {make_record(0, 4, 0, 0, 0)}, 1),
       "unknown flags"},
      {"record runs past the batch", make_batch(seq, 1, 0, {make_record(0, 0, 0, kBs, 10)}, 1),
       "runs past the batch"},
      {"more records than the payload holds",
       make_batch(seq, 1, 0, {make_record(0, 1, 0, 0, 0)}, 2), "invalid batch header"},
      {"seal with records", make_batch(seq, 1, 1, {make_record(0, 1, 0, 0, 0)}, 1),
       "invalid batch header"},
  };
  for (const auto& c : cases) {
    write_all(path(), good + c.batch);
    std::vector<std::vector<Got>> got;
    auto s = scan(&got, false);
    BOOST_TEST_CONTEXT(c.what) {
      BOOST_TEST(s.status().number() == 32768u);
      BOOST_TEST(contains(s.status().message(), c.message), s.status().message());
      BOOST_TEST(contains(s.status().message(), path()));
      BOOST_TEST(contains(s.status().message(), "offset " + std::to_string(at)),
                 s.status().message());
      BOOST_TEST(got.size() == 1u);
    }
  }
  // A payload length above the limit is never allocated: the header says so, and is refused.
  std::string huge(40, '\0');
  put_u32(huge, 0, UndoLog::kBatchTag);
  put_u64(huge, 8, 1);
  put_u64(huge, 16, UndoLog::kMaxBatchPayload + 1);
  put_u64(huge, 32, XXH3_64bits_withSeed(huge.data(), 32, seq));
  write_all(path(), good + huge + std::string(24, '\0'));
  std::vector<std::vector<Got>> got;
  BOOST_TEST(contains(scan(&got, false).status().message(), "invalid batch header"));
  // A batch whose length runs past the end of the file is a torn tail.
  put_u64(huge, 16, 1 << 20);
  put_u64(huge, 32, XXH3_64bits_withSeed(huge.data(), 32, seq));
  write_all(path(), good + huge + std::string(24, '\0'));
  got.clear();
  auto torn = scan(&got, false);
  BOOST_REQUIRE(torn.ok());
  BOOST_TEST(torn->torn_bytes == 64u);
}

BOOST_AUTO_TEST_CASE(bytes_after_the_seal_are_refused) {
  {
    auto w = create();
    write_batches(w, 1, true);
  }
  const std::string good = read_all(path());
  write_all(path(), good + make_batch(seq, 2, 0, {make_record(0, 1, 0, 0, 0)}, 1));
  std::vector<std::vector<Got>> got;
  auto s = scan(&got, false);
  BOOST_TEST(contains(s.status().message(), "after the seal"), s.status().message());
}

BOOST_AUTO_TEST_CASE(the_writer_refuses_records_outside_the_disks) {
  auto w = create();
  const auto data = bytes_of(1, kBs);
  const UndoRecord bad_disk[] = {{5, 0, false, data}};
  BOOST_TEST(w.append_batch(bad_disk, kDisks).IsInvalidParameter());
  const UndoRecord bad_len[] = {{1, 3, false, data}};  // the last block of disk 1 is 100 bytes
  BOOST_TEST(w.append_batch(bad_len, kDisks).IsInvalidParameter());
  BOOST_TEST(w.size() == UndoLog::kHeaderSize);  // nothing was written
  const UndoRecord ok[] = {{0, 9, false, data}};
  BOOST_TEST(w.append_batch(ok, kDisks).ok());

  // The name is taken now; a leftover temp file of an interrupted create is replaced.
  auto again = UndoLogWriter::create(dir_fd.get(), path(), {vm, seq, 2, kBs});
  BOOST_TEST(contains(again.status().message(), "already exists"));
  write_all(dir / UndoLog::temp_file_name(8), "junk");
  auto fresh = UndoLogWriter::create(dir_fd.get(), dir / "8.undo", {vm, 8, 2, kBs});
  BOOST_REQUIRE(fresh.ok());
  BOOST_TEST(!std::filesystem::exists(dir / UndoLog::temp_file_name(8)));
  auto bad_bs = UndoLogWriter::create(dir_fd.get(), dir / "9.undo", {vm, 9, 2, 1000});
  BOOST_TEST(bad_bs.status().IsInvalidParameter());
}

BOOST_AUTO_TEST_CASE(range_records_round_trip_with_whole_and_zero_records) {
  auto w = create();
  const auto whole = bytes_of(1, kBs);
  const auto part = bytes_of(2, 1000);
  const auto end_part = bytes_of(3, 96);
  const auto tail_part = bytes_of(4, 50);
  const UndoRecord recs[] = {
      {0, 0, false, whole},                // a whole block
      {0, 1, true, {}},                    // a whole zero block
      {0, 2, false, part, 100, 1000},      // a range
      {0, 2, true, {}, 2000, 500},         // a zero range of the same block
      {0, 3, false, end_part, 4000, 96},   // a range ending at the block's end
      {0, 4, true, {}, 0, kBs - 1},        // a zero range of all but the last byte
      {1, 3, false, tail_part, 50, 50},    // a range ending at a short last block's end
  };
  BOOST_REQUIRE(w.append_batch(recs, kDisks).ok());
  BOOST_REQUIRE(w.seal().ok());
  // Zero ranges store no data: headers plus the data bytes, nothing more.
  const uint64_t payload = 7 * UndoLog::kRecordHeaderSize + kBs + 1000 + 96 + 50;
  BOOST_TEST(w.size() == UndoLog::kHeaderSize + 2 * (UndoLog::kBatchHeaderSize +
                                                     UndoLog::kCommitSize) + payload);

  std::vector<std::vector<Got>> got;
  auto s = scan(&got, true);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  const std::vector<std::vector<Got>> want = {{
      {0, 0, false, whole},
      {0, 1, true, {}},
      {0, 2, false, part, 100, 1000},
      {0, 2, true, {}, 2000, 500},
      {0, 3, false, end_part, 4000, 96},
      {0, 4, true, {}, 0, kBs - 1},
      {1, 3, false, tail_part, 50, 50},
  }};
  BOOST_TEST((got == want));
  auto r = reader();
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->version() == 2u);
  const std::string bytes = read_all(path());
  BOOST_TEST(bytes[8] == 2);  // the writer writes version 2
}

BOOST_AUTO_TEST_CASE(malformed_range_records_are_refused_by_writer_and_reader) {
  auto w = create();
  const auto d100 = bytes_of(1, 100);
  const auto d10 = bytes_of(2, 10);
  const auto whole = bytes_of(3, kBs);
  struct WriterCase {
    const char* what;
    UndoRecord rec;
  };
  const WriterCase writer_cases[] = {
      {"range past the block's end", {0, 0, false, d100, kBs - 50, 100}},
      {"range past a short last block's end", {1, 3, false, d10, 95, 10}},
      {"offset without a range (length 0)", {0, 0, true, {}, 5, 0}},
      {"range that is the whole block", {0, 0, false, whole, 0, kBs}},
      {"zero range that is the whole block", {0, 0, true, {}, 0, kBs}},
      {"zero range with data", {0, 0, true, d10, 0, 10}},
      {"range whose data is shorter", {0, 0, false, d10, 0, 20}},
  };
  for (const auto& c : writer_cases) {
    const UndoRecord one[] = {c.rec};
    BOOST_TEST(w.append_batch(one, kDisks).IsInvalidParameter(), c.what);
  }
  BOOST_TEST(w.size() == UndoLog::kHeaderSize);  // nothing was written
  BOOST_REQUIRE(w.append_batch({}, kDisks).ok());  // the writer is still usable
  w = UndoLogWriter();

  const std::string good = read_all(path());
  const uint64_t at = good.size();
  struct ReaderCase {
    const char* what;
    std::string record;
    const char* message;
  };
  const ReaderCase reader_cases[] = {
      {"range past the block's end", make_record(0, 2, 0, 100, 100, kBs - 50),
       "runs past the block"},
      {"range past a short last block's end", make_record(1, 2, 3, 10, 10, 95),
       "runs past the block"},
      {"empty range", make_record(0, 2, 0, 0, 0, 5), "empty range"},
      {"empty zero range", make_record(0, 3, 0, 0, 0, 5), "empty range"},
      {"range that is the whole block", make_record(0, 2, 0, kBs, kBs), "is the whole block"},
      {"zero range that is the whole block", make_record(0, 3, 0, kBs, 0), "is the whole block"},
      {"offset without the range flag", make_record(0, 0, 0, kBs, kBs, 8),
       "without the range flag"},
      {"offset on a zero record", make_record(0, 1, 0, 0, 0, 8), "without the range flag"},
  };
  for (const auto& c : reader_cases) {
    write_all(path(), good + make_batch(seq, 1, 0, {c.record}, 1));
    std::vector<std::vector<Got>> got;
    auto s = scan(&got, false);
    BOOST_TEST_CONTEXT(c.what) {
      BOOST_TEST(s.status().number() == 32768u);
      BOOST_TEST(contains(s.status().message(), c.message), s.status().message());
      BOOST_TEST(contains(s.status().message(), "record 0 at offset " + std::to_string(at + 40)),
                 s.status().message());
      BOOST_TEST(got.empty());  // the batch before it is empty, and is not handed out
    }
  }
  // A zero range carrying data: the bytes are not its, so they are left over in the batch.
  write_all(path(), good + make_batch(seq, 1, 0, {make_record(0, 3, 0, 10, 10, 0)}, 1));
  std::vector<std::vector<Got>> got;
  auto s = scan(&got, false);
  BOOST_TEST(s.status().number() == 32768u);
  BOOST_TEST(contains(s.status().message(), "10 payload bytes follow the last record"),
             s.status().message());
  BOOST_TEST(contains(s.status().message(), "offset " + std::to_string(at)));
}

BOOST_AUTO_TEST_CASE(a_version_1_log_is_read_and_range_flags_in_it_are_refused) {
  {
    auto w = create();
    write_batches(w, 2, false);  // whole and zero records only, as version 1 wrote them
  }
  const std::string v1 = with_version(read_all(path()), 1);
  write_all(path(), v1);
  auto r = reader();
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_TEST(r->version() == 1u);
  std::vector<std::vector<Got>> got;
  auto s = scan(&got, false);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(s->batches == 2u);
  BOOST_TEST((got == written));

  const uint64_t at = v1.size();
  const std::string ranges[] = {make_record(0, 2, 0, 100, 100, 8), make_record(0, 3, 0, 100, 0, 8)};
  for (const auto& rec : ranges) {
    write_all(path(), v1 + make_batch(seq, 2, 0, {rec}, 1));
    got.clear();
    s = scan(&got, false);
    BOOST_TEST(s.status().number() == 32768u);
    BOOST_TEST(contains(s.status().message(), "record 0 at offset " + std::to_string(at + 40)),
               s.status().message());
    BOOST_TEST(contains(s.status().message(), "unknown flags"), s.status().message());
    BOOST_TEST(got.size() == 2u);
  }
  // The same range record in a version 2 log is fine.
  write_all(path(), with_version(v1, 2) + make_batch(seq, 2, 0, {ranges[0]}, 1));
  got.clear();
  s = scan(&got, false);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(s->batches == 3u);
  BOOST_REQUIRE(got.size() == 3u);
  BOOST_TEST(got[2][0].offset == 8u);
  BOOST_TEST(got[2][0].range_length == 100u);
  BOOST_TEST(got[2][0].data.size() == 100u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vmrepl
