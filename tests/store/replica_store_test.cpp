// ReplicaStore against real files: cycles built with gen_image.py are applied and the image
// equals the source byte for byte after each commit; RecoveryHistory keeps the latest plus N
// points and every kept point materializes to exactly the source bytes of its cycle, without
// changing the store; sparse sources stay sparse; the reflink path on a loop-mounted XFS (when
// root with xfsprogs; otherwise reported as skipped); damaged undo logs are refused;
// rollback_to, drop_points_except, reset, abort, recovery of an interrupted apply at open,
// and the validation of every entry point. Partial block updates write and log only their
// bytes, and rollback, abort and materialize restore exactly the bytes they overwrote.
#include "core/store/replica_store.h"

#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "core/blocks/disk_scanner.h"
#include "core/blocks/merkle.h"
#include "core/blocks/sparse_io.h"
#include "core/blocks/unique_fd.h"
#include "core/blocks/zero.h"
#include "core/store/vm_store.h"
#include "store/temp_dir.h"

namespace vmrepl {
namespace {

namespace stdfs = std::filesystem;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint32_t kBs = 64 * 1024;

// XXH3-128 of a whole file, as hex.
std::string digest(const std::string& path) {
  auto fd = open_file(path, O_RDONLY);
  BOOST_REQUIRE_MESSAGE(fd.ok(), fd.status().ToString());
  XXH3_state_t* st = XXH3_createState();
  XXH3_128bits_reset(st);
  std::vector<char> buf(4 * kMiB);
  for (;;) {
    const ssize_t n = ::read(fd->get(), buf.data(), buf.size());
    BOOST_REQUIRE(n >= 0);
    if (n == 0) break;
    XXH3_128bits_update(st, buf.data(), static_cast<size_t>(n));
  }
  const XXH128_hash_t h = XXH3_128bits_digest(st);
  XXH3_freeState(st);
  char out[33];
  std::snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return out;
}

// "" when equal, else where they first differ (for a readable failure).
std::string first_difference(const std::string& a, const std::string& b) {
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  std::vector<char> ba(kMiB), bb(kMiB);
  for (uint64_t off = 0;; off += kMiB) {
    fa.read(ba.data(), static_cast<std::streamsize>(ba.size()));
    fb.read(bb.data(), static_cast<std::streamsize>(bb.size()));
    if (fa.gcount() != fb.gcount()) return "sizes differ";
    const auto n = static_cast<size_t>(fa.gcount());
    if (std::memcmp(ba.data(), bb.data(), n) != 0) {
      const auto at = std::mismatch(ba.begin(), ba.begin() + fa.gcount(), bb.begin()).first;
      return "first difference at byte " +
             std::to_string(off + static_cast<uint64_t>(at - ba.begin()));
    }
    if (fa.gcount() == 0) return "";
  }
}

void gen(const std::string& args) {
  const std::string cmd =
      std::string("/usr/bin/python3 ") + VMREPL_GEN_IMAGE + " " + args + " >/dev/null";
  BOOST_REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
}

// A small VM-like disk made in code (gen_image.py's "mixed" spends ~0.5 s on its text pool
// whatever the size): 64 KiB blocks, 40% zeros, the rest pseudo-random.
void make_source(const std::string& path, uint64_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> blk(kBs / 8);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  for (uint64_t off = 0; off < size; off += kBs) {
    const bool zero = rng() % 10 < 4;
    for (auto& w : blk) w = zero ? 0 : rng();
    f.write(reinterpret_cast<const char*>(blk.data()), kBs);
  }
  BOOST_REQUIRE(f.good());
}

uint64_t allocated(const std::string& path) {
  struct stat st {};
  BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

std::set<std::string> listing(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : stdfs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

bool contains(const std::string& hay, std::string_view needle) {
  return hay.find(needle) != std::string::npos;
}

std::vector<std::byte> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  const std::string c{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

// Pseudo-random bytes that are never zero.
std::vector<std::byte> random_bytes(uint64_t seed, std::size_t n) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng() | 1);
  return v;
}

// "" when equal, else where they first differ.
std::string byte_difference(const std::vector<std::byte>& a, const std::vector<std::byte>& b) {
  if (a.size() != b.size())
    return "sizes differ: " + std::to_string(a.size()) + " and " + std::to_string(b.size());
  const auto at = std::mismatch(a.begin(), a.end(), b.begin()).first;
  return at == a.end() ? "" : "first difference at byte " + std::to_string(at - a.begin());
}

// Applies `ups` to the image through `a` and to `model` (the expected bytes per disk) alike,
// and checks that each block updated in part is reported once, with its content after `ups`.
// Unless `wait` is false, the writes are in the image when it returns.
void apply_both(ReplicaStore::Apply& a, std::span<const BlockUpdate> ups,
                std::vector<std::vector<std::byte>>& model, bool wait = true) {
  using Key = std::pair<uint32_t, uint64_t>;
  std::map<Key, std::vector<std::byte>> reported;
  Status st = a.apply_batch(ups, [&](uint32_t d, uint64_t b, std::span<const std::byte> content) {
    BOOST_TEST(reported.count({d, b}) == 0u, "disk " << d << " block " << b << " reported twice");
    reported[{d, b}].assign(content.begin(), content.end());
  });
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  if (wait) BOOST_REQUIRE(a.wait_writes().ok());
  std::set<Key> partial;
  for (const auto& u : ups) {
    auto& m = model[u.disk];
    const uint64_t len = std::min<uint64_t>(kBs, m.size() - u.block * kBs);
    if (u.offset != 0 || (!u.data.empty() && u.data.size() != len)) partial.insert({u.disk, u.block});
    const uint64_t at = u.block * kBs + u.offset;
    if (u.data.empty())
      std::fill_n(m.begin() + static_cast<std::ptrdiff_t>(at), len, std::byte{0});
    else
      std::copy(u.data.begin(), u.data.end(), m.begin() + static_cast<std::ptrdiff_t>(at));
  }
  BOOST_TEST(reported.size() == partial.size());
  for (const auto& [key, content] : reported) {
    BOOST_TEST(partial.count(key) == 1u, "disk " << key.first << " block " << key.second);
    const auto& m = model[key.first];
    const auto from = m.begin() + static_cast<std::ptrdiff_t>(key.second * kBs);
    const std::vector<std::byte> want(from, from + static_cast<std::ptrdiff_t>(std::min<uint64_t>(
                                                        kBs, m.size() - key.second * kBs)));
    BOOST_TEST((content == want), "disk " << key.first << " block " << key.second);
  }
}

CommitInfo any_commit_info(std::size_t disks) {
  CommitInfo ci;
  ci.roots.resize(disks);
  return ci;
}

BlockHash merkle_root(const std::string& path) {
  ScanOptions o;
  o.block_size = kBs;
  auto idx = scan_file(path, o);
  BOOST_REQUIRE_MESSAGE(idx.ok(), idx.status().ToString());
  return MerkleTree::from_index(*idx).root();
}

// One replica VM in a VM store: the store, the replica, its sources and the expected digests.
struct Replica {
  std::string root;
  std::vector<uint64_t> sizes;
  std::unique_ptr<VmStore> vms;
  VmRecord vm;
  std::unique_ptr<ReplicaStore> store;
  std::vector<std::string> sources;                       // the primary's disks
  std::map<uint64_t, std::vector<std::string>> expected;  // seq -> digest per disk
  std::map<uint64_t, std::vector<BlockHash>> roots;       // seq -> Merkle root per disk

  Replica(std::string root_dir, std::vector<uint64_t> disk_sizes)
      : root(std::move(root_dir)), sizes(std::move(disk_sizes)) {
    open_vms();
    auto d = vms->define({"replica", std::nullopt, sizes});
    BOOST_REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    vm = std::move(d).value();
    open();
  }
  void open_vms() {
    auto s = VmStore::open(root);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    vms = std::move(s).value();
  }
  void open() {
    auto r = ReplicaStore::open(vms->catalog(), vm.id, vm.folder, sizes, kBs);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    store = std::move(r).value();
  }
  void close_all() {
    store.reset();
    vms.reset();
  }
  std::string image(uint32_t d) const { return vm.folder + "/disk" + std::to_string(d) + ".img"; }
  std::vector<std::string> image_digests() const {
    std::vector<std::string> out;
    for (uint32_t d = 0; d < sizes.size(); ++d) out.push_back(digest(image(d)));
    return out;
  }

  // Queues every block where the source differs from the image: disk 0 through
  // write()/write_zero(), the others through apply_batch(span). Returns the blocks sent.
  uint64_t send_changes(ReplicaStore::Apply& a) {
    uint64_t sent = 0;
    for (uint32_t d = 0; d < sizes.size(); ++d) {
      auto src = open_file(sources[d], O_RDONLY);
      auto img = open_file(image(d), O_RDONLY);
      BOOST_REQUIRE(src.ok() && img.ok());
      std::vector<std::byte> s(kBs), i(kBs);
      std::vector<std::vector<std::byte>> held;
      std::vector<BlockUpdate> batch;
      for (uint64_t b = 0; b * kBs < sizes[d]; ++b) {
        const uint64_t len = std::min<uint64_t>(kBs, sizes[d] - b * kBs);
        BOOST_REQUIRE(pread_full(src->get(), std::span(s).first(len), b * kBs).ok());
        BOOST_REQUIRE(pread_full(img->get(), std::span(i).first(len), b * kBs).ok());
        if (std::memcmp(s.data(), i.data(), len) == 0) continue;
        ++sent;
        const bool zero = is_all_zero(std::span(s).first(len));
        if (d == 0) {
          Status st = zero ? a.write_zero(d, b) : a.write(d, b, std::span(s).first(len));
          BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
        } else {
          held.emplace_back(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(len));
          batch.push_back({d, b, zero ? std::span<const std::byte>{} : held.back()});
        }
      }
      if (!batch.empty()) {
        Status st = a.apply_batch(batch);
        BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
      }
    }
    return sent;
  }

  // The point's commit data; the Merkle roots are computed from the sources (once per seq).
  CommitInfo info(uint64_t seq) {
    CommitInfo ci;
    ci.created_us = 1700000000000000 + static_cast<int64_t>(seq);
    if (roots.count(seq) == 0)
      for (const auto& s : sources) roots[seq].push_back(merkle_root(s));
    ci.roots = roots[seq];
    return ci;
  }

  // One full cycle: the source's changes become point `seq`; the image must equal the source.
  void cycle(uint64_t seq, RecoveryPointType type = RecoveryPointType::Standard) {
    auto a = store->begin_apply(seq, type);
    BOOST_REQUIRE_MESSAGE(a.ok(), a.status().ToString());
    send_changes(**a);
    Status st = (*a)->commit(info(seq));
    BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
    for (uint32_t d = 0; d < sizes.size(); ++d) {
      const std::string diff = first_difference(image(d), sources[d]);
      BOOST_REQUIRE_MESSAGE(diff.empty(), "point " << seq << " disk " << d << ": " << diff);
      expected[seq].push_back(digest(sources[d]));
    }
  }

  std::vector<uint64_t> seqs() const {
    auto p = store->points();
    BOOST_REQUIRE_MESSAGE(p.ok(), p.status().ToString());
    std::vector<uint64_t> out;
    for (const auto& x : *p) out.push_back(x.seq);
    return out;
  }

  std::map<std::string, std::string> undo_digests() const {
    std::map<std::string, std::string> out;
    for (const auto& n : listing(vm.folder + "/undo")) out[n] = digest(vm.folder + "/undo/" + n);
    return out;
  }

  // Materializes `seq` into `dir` and checks its bytes; returns the method.
  CopyMethod check_materialize(uint64_t seq, const std::string& dir) {
    std::vector<std::string> dests;
    for (uint32_t d = 0; d < sizes.size(); ++d)
      dests.push_back(dir + "/p" + std::to_string(seq) + "-disk" + std::to_string(d) + ".img");
    auto m = store->materialize(seq, dests);
    BOOST_REQUIRE_MESSAGE(m.ok(), m.status().ToString());
    for (uint32_t d = 0; d < sizes.size(); ++d) {
      BOOST_TEST(digest(dests[d]) == expected.at(seq)[d], "point " << seq << " disk " << d);
      BOOST_TEST(stdfs::file_size(dests[d]) == sizes[d]);
    }
    BOOST_TEST_MESSAGE("materialized point " << seq << " by " << copy_method_name(m->method())
                                             << ": " << m->undo_logs_applied << " undo logs, "
                                             << m->blocks_restored << " blocks restored, "
                                             << m->bytes_copied << " bytes copied");
    for (const auto& p : dests) stdfs::remove(p);
    return m->method();
  }
};

struct Fixture {
  test::TempDir dir;
};

// A loop-mounted XFS with reflink, when this process may make one.
struct XfsMount {
  std::string mnt;
  std::string why_not;
  bool mounted = false;

  explicit XfsMount(const std::string& base) {
    if (::geteuid() != 0) {
      why_not = "not running as root (mount needs it)";
      return;
    }
    std::string mkfs;
    for (const char* p : {"/usr/sbin/mkfs.xfs", "/sbin/mkfs.xfs"})
      if (::access(p, X_OK) == 0) mkfs = p;
    if (mkfs.empty()) {
      why_not = "mkfs.xfs not found (install xfsprogs)";
      return;
    }
    const std::string img = base + "/xfs.img";
    mnt = base + "/xfs";
    stdfs::create_directory(mnt);
    BOOST_REQUIRE(create_sparse_file(img, 320 * kMiB).ok());  // XFS needs >= 300 MB
    if (std::system((mkfs + " -q -m reflink=1 " + img + " >/dev/null 2>&1").c_str()) != 0) {
      why_not = "mkfs.xfs -m reflink=1 failed";
      return;
    }
    if (std::system(("mount -o loop " + img + " " + mnt + " >/dev/null 2>&1").c_str()) != 0) {
      why_not = "mount -o loop failed (no loop device or no privilege here)";
      return;
    }
    mounted = true;
  }
  ~XfsMount() {
    if (mounted && std::system(("umount " + mnt + " >/dev/null 2>&1").c_str()) != 0)
      (void)!std::system(("umount -l " + mnt + " >/dev/null 2>&1").c_str());
  }
};

BOOST_FIXTURE_TEST_SUITE(replica_store_tests, Fixture)

BOOST_AUTO_TEST_CASE(cycles_equal_the_source_and_kept_points_materialize_exactly) {
  // disk 0: 64 MiB mixed; disk 1: 32 MiB + 12 KiB sparse (its last block is short).
  const uint64_t d1 = 32 * kMiB + 12 * 1024;
  Replica r(dir / "root", {64 * kMiB, d1});
  r.sources = {dir / "src0.img", dir / "src1.img"};
  gen("mixed " + r.sources[0] + " 64 11");
  gen("sparse " + r.sources[1] + " 32 6 12");
  stdfs::resize_file(r.sources[1], d1);

  r.cycle(1);
  BOOST_TEST(r.seqs() == std::vector<uint64_t>{1});
  constexpr uint32_t kHistory = 3;
  for (uint64_t seq = 2; seq <= 7; ++seq) {
    gen("modify " + r.sources[0] + " 1 " + std::to_string(seq));
    gen("modify " + r.sources[1] + " 3 " + std::to_string(seq) + " --data-only");
    r.cycle(seq, seq == 5 ? RecoveryPointType::ApplicationConsistent : RecoveryPointType::Standard);
    auto pruned = r.store->prune(kHistory);
    BOOST_REQUIRE(pruned.ok());
    BOOST_TEST(*pruned == (seq > kHistory + 1 ? 1u : 0u));
  }

  // Exactly the latest plus RecoveryHistory older points remain; the oldest needs no log.
  auto pts = r.store->points();
  BOOST_REQUIRE(pts.ok());
  BOOST_TEST(r.seqs() == (std::vector<uint64_t>{4, 5, 6, 7}));
  for (const auto& p : *pts) {
    BOOST_TEST(p.has_undo == (p.seq != 4));
    BOOST_TEST(p.created_us == 1700000000000000 + static_cast<int64_t>(p.seq));
    BOOST_TEST((p.roots == r.roots.at(p.seq)));
    BOOST_TEST((p.replication_type == ReplicationType::Regular));
    BOOST_TEST(p.virtual_system_type() ==
               (p.seq == 5 ? "Microsoft:Hyper-V:Snapshot:Replica:ApplicationConsistent"
                           : "Microsoft:Hyper-V:Snapshot:Replica:Standard"));
  }
  BOOST_TEST(listing(r.vm.folder + "/undo") ==
             (std::set<std::string>{"5.undo", "6.undo", "7.undo"}));

  const auto images_before = r.image_digests();
  const auto undo_before = r.undo_digests();
  for (uint64_t seq = 4; seq <= 7; ++seq) r.check_materialize(seq, dir.path());
  BOOST_TEST((r.image_digests() == images_before));  // the store did not change
  BOOST_TEST((r.undo_digests() == undo_before));
  BOOST_TEST((r.seqs() == std::vector<uint64_t>{4, 5, 6, 7}));

  auto gone = r.store->materialize(3, {dir / "x0", dir / "x1"});
  BOOST_TEST(gone.status().IsInvalidParameter());

  // RecoveryHistory 0: only the latest point, and no undo log at all. The merged logs are
  // unlinked at once; kept open, their space waits for the caller to close them.
  std::vector<fs::Fd> dead;
  auto pruned = r.store->prune(0, &dead);
  BOOST_REQUIRE(pruned.ok());
  BOOST_TEST(*pruned == 3u);
  BOOST_TEST((r.seqs() == std::vector<uint64_t>{7}));
  BOOST_TEST(listing(r.vm.folder + "/undo").empty());
  BOOST_TEST((r.image_digests() == images_before));
  BOOST_REQUIRE(dead.size() == 3u);  // the logs of 5, 6 and 7
  for (const auto& fd : dead) {
    struct stat st {};
    BOOST_REQUIRE(::fstat(fd.get(), &st) == 0);
    BOOST_TEST(st.st_nlink == 0u);
    char magic[8] = {};
    BOOST_REQUIRE(::pread(fd.get(), magic, sizeof magic, 0) == 8);
    BOOST_TEST(std::memcmp(magic, UndoLog::kMagic, 8) == 0);
  }
}

BOOST_AUTO_TEST_CASE(a_sparse_source_stays_sparse_in_the_image_and_when_materialized) {
  Replica r(dir / "root", {256 * kMiB});
  r.sources = {dir / "src.img"};
  gen("sparse " + r.sources[0] + " 256 8 21");
  r.cycle(1);
  gen("modify " + r.sources[0] + " 5 22 --data-only");
  r.cycle(2);
  BOOST_TEST(allocated(r.image(0)) <= 9 * kMiB, "image allocates " << allocated(r.image(0)));

  const auto image_before = r.image_digests();
  const auto undo_before = r.undo_digests();
  const std::string dest = dir / "p1.img";
  auto m = r.store->materialize(1, {dest});
  BOOST_REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  BOOST_TEST(digest(dest) == r.expected[1][0]);
  BOOST_TEST(stdfs::file_size(dest) == 256 * kMiB);
  BOOST_TEST(allocated(dest) <= 9 * kMiB, "copy allocates " << allocated(dest));
  BOOST_TEST(m->undo_logs_applied == 1u);
  BOOST_TEST(m->blocks_restored > 0u);
  struct statfs sfs {};
  BOOST_REQUIRE(::statfs(dir.path().c_str(), &sfs) == 0);
  if (sfs.f_type == 0xEF53) {  // ext4: no reflink, so the sparse copy
    BOOST_TEST((m->method() == CopyMethod::SparseCopy));
    BOOST_TEST(m->bytes_copied <= 9 * kMiB);  // only the data extents were copied
  }
  BOOST_TEST_MESSAGE("sparse materialize: " << copy_method_name(m->method()) << ", "
                                            << m->bytes_copied << " bytes copied, "
                                            << allocated(dest) << " bytes allocated");
  BOOST_TEST((r.image_digests() == image_before));
  BOOST_TEST((r.undo_digests() == undo_before));
}

BOOST_AUTO_TEST_CASE(materialize_clones_with_reflink_on_xfs) {
  XfsMount xfs(dir.path());
  if (!xfs.mounted) {
    BOOST_TEST_MESSAGE("SKIPPED the reflink case: " << xfs.why_not);
    BOOST_WARN_MESSAGE(false, "replica_store_tests: reflink case skipped: " << xfs.why_not);
    return;
  }
  Replica r(xfs.mnt + "/root", {16 * kMiB, 8 * kMiB});
  r.sources = {dir / "src0.img", dir / "src1.img"};
  make_source(r.sources[0], 16 * kMiB, 31);
  make_source(r.sources[1], 8 * kMiB, 32);
  r.cycle(1);
  for (uint64_t seq = 2; seq <= 3; ++seq) {
    gen("modify " + r.sources[0] + " 5 " + std::to_string(seq));
    gen("modify " + r.sources[1] + " 5 " + std::to_string(seq + 10));
    r.cycle(seq);
  }
  const auto image_before = r.image_digests();
  const auto undo_before = r.undo_digests();
  for (uint64_t seq = 1; seq <= 3; ++seq)
    BOOST_TEST((r.check_materialize(seq, xfs.mnt) == CopyMethod::Reflink), "point " << seq);
  // Onto another filesystem the clone is impossible: the sparse copy takes over.
  BOOST_TEST((r.check_materialize(1, dir.path()) == CopyMethod::SparseCopy));
  BOOST_TEST((r.image_digests() == image_before));
  BOOST_TEST((r.undo_digests() == undo_before));
  r.close_all();
}

BOOST_AUTO_TEST_CASE(a_damaged_undo_log_is_refused_and_changes_nothing) {
  Replica r(dir / "root", {8 * kMiB});
  r.sources = {dir / "src.img"};
  make_source(r.sources[0], 8 * kMiB, 41);
  r.cycle(1);
  for (uint64_t seq = 2; seq <= 3; ++seq) {
    gen("modify " + r.sources[0] + " 10 " + std::to_string(seq));
    r.cycle(seq);
  }
  const std::string log = r.store->undo_path(3);
  const uint64_t size = stdfs::file_size(log);
  {
    std::fstream f(log, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size / 2));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x01);
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.write(&c, 1);
  }
  const auto image_before = r.image_digests();
  for (uint64_t seq : {1, 2}) {
    auto m = r.store->materialize(seq, {dir / "dest.img"});
    BOOST_TEST(m.status().number() == 32768u);
    BOOST_TEST(contains(m.status().message(), log), m.status().message());
    BOOST_TEST(contains(m.status().message(), "at offset "), m.status().message());
  }
  Status rb = r.store->rollback_to(1);
  BOOST_TEST(rb.number() == 32768u);
  BOOST_TEST(contains(rb.message(), log), rb.message());
  BOOST_TEST((r.image_digests() == image_before));
  BOOST_TEST((r.seqs() == std::vector<uint64_t>{1, 2, 3}));
  r.check_materialize(3, dir.path());  // the latest needs no undo log
}

BOOST_AUTO_TEST_CASE(rollback_to_makes_the_image_that_point_and_drops_later_ones) {
  Replica r(dir / "root", {8 * kMiB, 4 * kMiB});
  r.sources = {dir / "src0.img", dir / "src1.img"};
  make_source(r.sources[0], 8 * kMiB, 51);
  make_source(r.sources[1], 4 * kMiB, 52);
  std::map<uint64_t, std::string> copies;
  r.cycle(1);
  for (uint64_t seq = 2; seq <= 5; ++seq) {
    gen("modify " + r.sources[0] + " 5 " + std::to_string(seq));
    gen("modify " + r.sources[1] + " 5 " + std::to_string(seq + 20));
    r.cycle(seq);
  }
  BOOST_TEST(r.store->rollback_to(9).IsInvalidParameter());
  Status st = r.store->rollback_to(3);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST((r.image_digests() == r.expected[3]));
  BOOST_TEST((r.seqs() == std::vector<uint64_t>{1, 2, 3}));
  BOOST_TEST(r.store->image_seq() == 3u);
  BOOST_TEST(listing(r.vm.folder + "/undo") ==
             (std::set<std::string>{"1.undo", "2.undo", "3.undo"}));
  BOOST_TEST(r.store->rollback_to(3).ok());  // already there

  // Survives a reopen, and replication goes on from point 3 with new content.
  r.store.reset();
  r.open();
  BOOST_TEST(r.store->recovered().rolled_back.empty());
  BOOST_TEST((r.image_digests() == r.expected[3]));
  make_source(r.sources[0], 8 * kMiB, 53);
  r.expected.erase(4);
  r.roots.erase(4);
  r.cycle(4);
  r.check_materialize(2, dir.path());
  r.check_materialize(4, dir.path());
}

BOOST_AUTO_TEST_CASE(drop_points_except_and_reset) {
  Replica r(dir / "root", {4 * kMiB});
  r.sources = {dir / "src.img"};
  make_source(r.sources[0], 4 * kMiB, 61);
  r.cycle(1);
  gen("modify " + r.sources[0] + " 10 2");
  r.cycle(2);
  gen("modify " + r.sources[0] + " 10 3");
  r.cycle(3);

  Status not_latest = r.store->drop_points_except(2);
  BOOST_TEST(not_latest.number() == 32775u);
  BOOST_TEST(contains(not_latest.message(), "not the latest"));
  BOOST_TEST(r.store->drop_points_except(8).IsInvalidParameter());
  BOOST_REQUIRE(r.store->drop_points_except(3).ok());
  auto pts = r.store->points();
  BOOST_REQUIRE(pts.ok());
  BOOST_REQUIRE(pts->size() == 1u);
  BOOST_TEST(pts->front().seq == 3u);
  BOOST_TEST(!pts->front().has_undo);
  BOOST_TEST(listing(r.vm.folder + "/undo").empty());
  BOOST_TEST((r.image_digests() == r.expected[3]));
  r.check_materialize(3, dir.path());

  // Commit after a failover to an older point: roll back first, then drop.
  gen("modify " + r.sources[0] + " 10 4");
  r.cycle(4);
  gen("modify " + r.sources[0] + " 10 5");
  r.cycle(5);
  BOOST_REQUIRE(r.store->rollback_to(4).ok());
  BOOST_REQUIRE(r.store->drop_points_except(4).ok());
  BOOST_TEST((r.seqs() == std::vector<uint64_t>{4}));
  BOOST_TEST((r.image_digests() == r.expected[4]));

  BOOST_REQUIRE(r.store->reset().ok());
  BOOST_TEST(r.seqs().empty());
  BOOST_TEST(listing(r.vm.folder + "/undo").empty());
  BOOST_TEST((r.image_digests() == r.expected[4]));
  BOOST_TEST(r.store->image_seq() == 4u);
  BOOST_TEST(r.store->begin_apply(4, RecoveryPointType::Standard).status().IsInvalidParameter());
  r.store.reset();
  r.open();  // nothing to recover after a reset
  BOOST_TEST(r.store->recovered().rolled_back.empty());
  BOOST_TEST((r.image_digests() == r.expected[4]));
  gen("modify " + r.sources[0] + " 10 6");
  r.cycle(6);
  BOOST_TEST((r.seqs() == std::vector<uint64_t>{6}));
}

BOOST_AUTO_TEST_CASE(a_commit_prunes_and_writes_the_callers_changes_in_its_own_transaction) {
  Replica r(dir / "root", {2 * kMiB});
  r.sources = {dir / "src.img"};
  make_source(r.sources[0], 2 * kMiB, 73);
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    if (seq > 1) gen("modify " + r.sources[0] + " 10 " + std::to_string(seq));
    r.cycle(seq);
  }
  BOOST_TEST(listing(r.vm.folder + "/undo") ==
             (std::set<std::string>{"1.undo", "2.undo", "3.undo"}));
  Catalog& cat = r.vms->catalog();

  // Point 4 with RecoveryHistory 1 and a row of the caller's, all in the commit.
  gen("modify " + r.sources[0] + " 10 4");
  std::vector<fs::Fd> dead;
  {
    auto ap = r.store->begin_apply(4, RecoveryPointType::Standard);
    BOOST_REQUIRE(ap.ok());
    r.send_changes(**ap);
    CommitInfo ci = r.info(4);
    ci.keep_history = 1;
    ci.dead = &dead;
    ci.also = [](sqlite::Db& db) { return db.exec("INSERT INTO meta(key, value) VALUES('t', '4')"); };
    Status st = (*ap)->commit(ci);
    BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  }
  BOOST_TEST((r.seqs() == std::vector<uint64_t>{3, 4}));
  BOOST_TEST(listing(r.vm.folder + "/undo") == (std::set<std::string>{"4.undo"}));
  BOOST_TEST(dead.size() == 3u);  // the logs of 1, 2 and 3, unlinked and still open
  for (const auto& fd : dead) {
    struct stat st {};
    BOOST_REQUIRE(::fstat(fd.get(), &st) == 0);
    BOOST_TEST(st.st_nlink == 0u);
  }
  auto row = cat.get_meta("t");
  BOOST_REQUIRE(row.ok() && row->has_value());
  BOOST_TEST(**row == "4");
  const auto at4 = r.image_digests();
  BOOST_TEST(first_difference(r.image(0), r.sources[0]).empty());

  // The caller's change fails: no point 5, no prune (RecoveryHistory 0 would drop 3), no row
  // of its, and the image is back at point 4.
  gen("modify " + r.sources[0] + " 10 5");
  {
    auto ap = r.store->begin_apply(5, RecoveryPointType::Standard);
    BOOST_REQUIRE(ap.ok());
    r.send_changes(**ap);
    CommitInfo ci = r.info(5);
    ci.keep_history = 0;
    ci.also = [](sqlite::Db& db) {
      Status in = db.exec("INSERT INTO meta(key, value) VALUES('u', '5')");
      return in.ok() ? Status::Failed("the caller refuses") : in;
    };
    Status st = (*ap)->commit(ci);
    BOOST_TEST((st.code() == Code::Failed));
    BOOST_TEST(st.message().find("the caller refuses") != std::string::npos, st.message());
  }
  BOOST_TEST((r.seqs() == std::vector<uint64_t>{3, 4}));
  BOOST_TEST(listing(r.vm.folder + "/undo") == (std::set<std::string>{"4.undo"}));
  auto none = cat.get_meta("u");
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(!none->has_value());
  BOOST_TEST((r.image_digests() == at4));
  BOOST_TEST(r.store->image_seq() == 4u);
  r.check_materialize(3, dir.path());
}

BOOST_AUTO_TEST_CASE(abort_and_destruction_roll_the_image_back) {
  Replica r(dir / "root", {2 * kMiB});
  r.sources = {dir / "src.img"};
  make_source(r.sources[0], 2 * kMiB, 71);
  r.cycle(1);
  const auto before = r.image_digests();
  // Block 4 is zeroed below: it needs a pre-image only if it holds data now.
  std::vector<std::byte> old4(kBs);
  {
    auto fd = open_file(r.image(0), O_RDONLY);
    BOOST_REQUIRE(fd.ok() && pread_full(fd->get(), old4, 4 * kBs).ok());
  }
  const uint64_t zeroed_needs_preimage = is_all_zero(old4) ? 0 : 1;

  std::vector<std::byte> a(kBs, std::byte{0xAA}), b(kBs, std::byte{0xBB});
  {
    auto ap = r.store->begin_apply(2, RecoveryPointType::Standard);
    BOOST_REQUIRE(ap.ok());
    // The same block twice, in two batches: only its first pre-image is logged.
    BOOST_REQUIRE((*ap)->write(0, 3, a).ok());
    BOOST_REQUIRE((*ap)->write_zero(0, 4).ok());
    BOOST_REQUIRE((*ap)->apply_batch().ok());
    BOOST_REQUIRE((*ap)->write(0, 3, b).ok());
    BOOST_REQUIRE((*ap)->write(0, 5, b).ok());
    BOOST_REQUIRE((*ap)->apply_batch().ok());
    BOOST_TEST((*ap)->stats().preimages == 2 + zeroed_needs_preimage);
    BOOST_TEST((*ap)->stats().batches == 2u);
    BOOST_REQUIRE((*ap)->wait_writes().ok());
    BOOST_TEST((r.image_digests() != before));
    BOOST_TEST(r.store->prune(1).status().IsInvalidState());  // an apply is open
    BOOST_TEST(r.store->begin_apply(3, RecoveryPointType::Standard).status().IsInvalidState());
    BOOST_REQUIRE((*ap)->abort().ok());
    BOOST_TEST((r.image_digests() == before));
    BOOST_TEST(listing(r.vm.folder + "/undo").count("2.undo") == 0u);
    BOOST_TEST((*ap)->write(0, 1, a).IsInvalidState());
  }
  {
    auto ap = r.store->begin_apply(2, RecoveryPointType::Standard);
    BOOST_REQUIRE(ap.ok());
    const BlockUpdate ups[] = {{0, 0, a}, {0, 1, {}}, {0, 31, b}};
    BOOST_REQUIRE((*ap)->apply_batch(ups).ok());
    BOOST_REQUIRE((*ap)->wait_writes().ok());
    BOOST_TEST((r.image_digests() != before));
  }  // dropped without commit
  BOOST_TEST((r.image_digests() == before));
  BOOST_TEST((r.seqs() == std::vector<uint64_t>{1}));
  BOOST_TEST(r.store->image_seq() == 1u);
  r.check_materialize(1, dir.path());
}

BOOST_AUTO_TEST_CASE(zero_over_zero_logs_and_writes_nothing) {
  Replica r(dir / "root", {1 * kMiB});
  auto ap = r.store->begin_apply(1, RecoveryPointType::Standard);
  BOOST_REQUIRE(ap.ok());
  for (uint64_t b = 0; b < 16; ++b) BOOST_REQUIRE((*ap)->write_zero(0, b).ok());
  std::vector<std::byte> zeros(kBs);
  BOOST_REQUIRE((*ap)->write(0, 3, zeros).ok());  // written zeros are a zero block too
  BOOST_REQUIRE((*ap)->apply_batch().ok());
  BOOST_TEST((*ap)->stats().blocks_skipped == 17u);
  BOOST_TEST((*ap)->stats().preimages == 0u);
  BOOST_TEST((*ap)->stats().batches == 0u);
  CommitInfo ci;
  ci.roots.resize(1);
  BOOST_REQUIRE((*ap)->commit(ci).ok());
  BOOST_TEST(allocated(r.image(0)) == 0u);
}

BOOST_AUTO_TEST_CASE(an_apply_interrupted_by_a_crash_is_rolled_back_at_open) {
  Replica r(dir / "root", {4 * kMiB, 2 * kMiB});
  r.sources = {dir / "src0.img", dir / "src1.img"};
  make_source(r.sources[0], 4 * kMiB, 81);
  make_source(r.sources[1], 2 * kMiB, 82);
  r.cycle(1);
  BOOST_REQUIRE(r.store->prune(0).ok());  // point 1 keeps no undo log
  const auto before = r.image_digests();
  gen("modify " + r.sources[0] + " 20 2");
  gen("modify " + r.sources[1] + " 20 3");
  r.close_all();

  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    // Child: apply part of the cycle and die without committing or cleaning up. It never
    // returns into the test framework, whatever happens.
    try {
      auto vms = VmStore::open(r.root);
      if (!vms.ok()) ::_exit(2);
      auto rs = ReplicaStore::open((*vms)->catalog(), r.vm.id, r.vm.folder, r.sizes, kBs);
      if (!rs.ok()) ::_exit(3);
      r.store = std::move(rs).value();
      auto ap = r.store->begin_apply(2, RecoveryPointType::Standard);
      if (!ap.ok()) ::_exit(4);
      r.send_changes(**ap);
      // The writes reach the image (page cache) before the crash.
      if (!(*ap)->wait_writes().ok()) ::_exit(6);
      ::_exit(0);  // before `ap` goes out of scope, which would abort the apply
    } catch (...) {
      ::_exit(5);
    }
  }
  int status = 0;
  BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
  BOOST_REQUIRE(WIFEXITED(status));
  BOOST_REQUIRE(WEXITSTATUS(status) == 0);
  r.open_vms();
  BOOST_TEST(stdfs::exists(r.vm.folder + "/undo/2.undo"));
  BOOST_TEST((r.image_digests() != before));

  // Leftovers open() also cleans: a temp log and an orphan log of a merged point.
  std::ofstream(r.vm.folder + "/undo/9.undo.tmp") << "x";
  std::filesystem::copy_file(r.vm.folder + "/undo/2.undo", r.vm.folder + "/undo/1.undo");
  r.open();
  const auto& rec = r.store->recovered();
  BOOST_TEST(rec.rolled_back == std::vector<uint64_t>{2});
  BOOST_TEST((std::set<std::string>(rec.removed.begin(), rec.removed.end()) ==
              std::set<std::string>{"9.undo.tmp", "1.undo"}));
  BOOST_TEST(rec.integrity.ok());
  BOOST_TEST((r.image_digests() == before));
  BOOST_TEST(listing(r.vm.folder + "/undo").empty());
  BOOST_TEST((r.seqs() == std::vector<uint64_t>{1}));
  r.cycle(2);  // the same cycle again, completely this time
}

BOOST_AUTO_TEST_CASE(every_entry_point_validates_its_input) {
  Replica r(dir / "root", {1 * kMiB, 1 * kMiB + 4096});
  // A second store for the same VM, another VM, bad geometry.
  auto twice = ReplicaStore::open(r.vms->catalog(), r.vm.id, r.vm.folder, r.sizes, kBs);
  BOOST_TEST(twice.status().number() == 32774u);
  stdfs::create_directory(dir / "y");
  auto unknown_vm = ReplicaStore::open(r.vms->catalog(), Guid::generate(), dir / "y", r.sizes, kBs);
  BOOST_TEST(unknown_vm.status().number() == 32779u);
  BOOST_TEST(contains(unknown_vm.status().message(), "not defined"));
  BOOST_TEST(listing(dir / "y").empty());  // nothing was created for it
  BOOST_TEST(ReplicaStore::open(r.vms->catalog(), r.vm.id, "rel", r.sizes, kBs)
                 .status()
                 .IsInvalidParameter());
  BOOST_TEST(ReplicaStore::open(r.vms->catalog(), r.vm.id, r.vm.folder, r.sizes, 5000)
                 .status()
                 .IsInvalidParameter());
  r.store.reset();
  auto wrong_size =
      ReplicaStore::open(r.vms->catalog(), r.vm.id, r.vm.folder, {2 * kMiB, 1 * kMiB + 4096}, kBs);
  BOOST_TEST(wrong_size.status().IsInvalidParameter());
  BOOST_TEST(contains(wrong_size.status().message(), "disk 0 is 2097152 bytes"));
  r.open();

  std::vector<std::byte> full(kBs, std::byte{1}), tail(4096, std::byte{2});
  BOOST_TEST(r.store->begin_apply(0, RecoveryPointType::Standard).status().IsInvalidParameter());
  BOOST_TEST(
      r.store->begin_apply(1, static_cast<RecoveryPointType>(9)).status().IsInvalidParameter());
  auto ap = r.store->begin_apply(1, RecoveryPointType::PlannedFailover);
  BOOST_REQUIRE(ap.ok());
  auto& a = **ap;
  BOOST_TEST(a.write(2, 0, full).IsInvalidParameter());
  BOOST_TEST(a.write(0, 16, full).IsInvalidParameter());  // 1 MiB = 16 blocks
  BOOST_TEST(a.write(1, 16, full).IsInvalidParameter());  // the 4 KiB tail block
  BOOST_TEST(a.write(1, 16, tail).ok());
  BOOST_TEST(a.write(0, 0, tail).IsInvalidParameter());
  BOOST_TEST(a.write(0, 0, {}).IsInvalidParameter());
  BOOST_TEST(a.write_zero(1, 17).IsInvalidParameter());
  const BlockUpdate bad[] = {{0, 1, full}, {5, 0, full}};
  BOOST_TEST(a.apply_batch(bad).IsInvalidParameter());
  CommitInfo ci;
  BOOST_TEST(a.commit(ci).IsInvalidParameter());  // no roots
  ci.roots.resize(2);
  ci.replication_type = ReplicationType::None;
  BOOST_TEST(a.commit(ci).IsInvalidParameter());
  ci.replication_type = ReplicationType::Planned;
  BOOST_REQUIRE(a.commit(ci).ok());
  BOOST_TEST(a.commit(ci).IsInvalidState());
  BOOST_TEST(a.abort().IsInvalidState());
  ap->reset();

  auto pts = r.store->points();
  BOOST_REQUIRE(pts.ok());
  BOOST_REQUIRE(pts->size() == 1u);
  BOOST_TEST(pts->front().virtual_system_type() ==
             "Microsoft:Hyper-V:Snapshot:Replica:PlannedFailover");
  BOOST_TEST((pts->front().replication_type == ReplicationType::Planned));

  // materialize: the path count, relative paths, the store's own files, its undo folder.
  BOOST_TEST(r.store->materialize(1, {dir / "a"}).status().IsInvalidParameter());
  BOOST_TEST(r.store->materialize(1, {"a", "b"}).status().IsInvalidParameter());
  BOOST_TEST(r.store->materialize(1, {r.image(0), dir / "b"}).status().IsInvalidParameter());
  BOOST_TEST(r.store->materialize(1, {dir / "a", dir / "a"}).status().IsInvalidParameter());
  BOOST_TEST(r.store->materialize(1, {r.vm.folder + "/undo/5.undo", dir / "b"})
                 .status()
                 .IsInvalidParameter());
  BOOST_TEST(!stdfs::exists(r.vm.folder + "/undo/5.undo"));
  BOOST_TEST(r.store->materialize(2, {dir / "a", dir / "b"}).status().IsInvalidParameter());
  BOOST_TEST(stdfs::file_size(r.image(1)) == 1 * kMiB + 4096);  // untouched

  BOOST_TEST(virtual_system_type(RecoveryPointType::Standard) ==
             "Microsoft:Hyper-V:Snapshot:Replica:Standard");
  BOOST_TEST((recovery_point_type_from_virtual_system_type(
                  "Microsoft:Hyper-V:Snapshot:Replica:ApplicationConsistent") ==
              RecoveryPointType::ApplicationConsistent));
  BOOST_TEST(!recovery_point_type_from_virtual_system_type("Microsoft:Hyper-V:Snapshot:Recovery"));
  BOOST_TEST(!recovery_point_type_from_number(0));
}

BOOST_AUTO_TEST_CASE(partial_updates_write_only_their_bytes_and_log_only_their_ranges) {
  Replica r(dir / "root", {4 * kMiB});
  r.sources = {dir / "src.img"};
  make_source(r.sources[0], 4 * kMiB, 101);
  r.cycle(1);
  std::vector<std::vector<std::byte>> model = {file_bytes(r.image(0))};

  auto ap = r.store->begin_apply(2, RecoveryPointType::Standard);
  BOOST_REQUIRE(ap.ok());
  constexpr uint64_t kBlocks = 24;
  std::vector<std::vector<std::byte>> held;
  std::vector<BlockUpdate> ups;
  uint64_t range_bytes = 0;
  for (uint64_t i = 0; i < kBlocks; ++i) {
    const auto len = static_cast<uint32_t>(1000 + 797 * i);  // 1000 B .. ~19 KiB
    const auto off = static_cast<uint32_t>((i * 6151) % (kBs - len));
    // Every 8th range is zeros: it punches that range.
    held.push_back(i % 8 == 7 ? std::vector<std::byte>(len) : random_bytes(200 + i, len));
    ups.push_back({0, 2 * i, held.back(), off});
    range_bytes += len;
  }
  apply_both(**ap, ups, model);
  const ApplyStats st = (*ap)->stats();
  BOOST_TEST(st.partial_blocks == kBlocks);
  BOOST_TEST(st.blocks_written == 0u);
  BOOST_TEST(st.zero_blocks == 0u);
  BOOST_TEST(st.preimages == kBlocks);  // one range record per block
  BOOST_TEST(st.batches == 1u);
  BOOST_TEST(st.preimage_bytes <= range_bytes);
  BOOST_REQUIRE((*ap)->commit(any_commit_info(1)).ok());
  BOOST_TEST(byte_difference(file_bytes(r.image(0)), model[0]) == "");

  // Ranges were logged, not blocks.
  const uint64_t log_bytes = (*ap)->stats().log_bytes;
  BOOST_TEST(stdfs::file_size(r.store->undo_path(2)) == log_bytes);
  BOOST_TEST(log_bytes < kBlocks * kBs, "log of " << log_bytes << " bytes");
  BOOST_TEST(log_bytes <= UndoLog::kHeaderSize + 2 * (UndoLog::kBatchHeaderSize +
                                                      UndoLog::kCommitSize) +
                              kBlocks * UndoLog::kRecordHeaderSize + range_bytes);

  r.check_materialize(1, dir.path());
  BOOST_REQUIRE(r.store->rollback_to(1).ok());
  BOOST_TEST((r.image_digests() == r.expected[1]));
}

BOOST_AUTO_TEST_CASE(partial_updates_of_one_block_in_one_apply_roll_back_exactly) {
  Replica r(dir / "root", {2 * kMiB});
  r.sources = {dir / "src.img"};
  make_source(r.sources[0], 2 * kMiB, 111);
  r.cycle(1);
  const std::vector<std::byte> before = file_bytes(r.image(0));
  std::optional<uint64_t> data_blk, zero_blk;
  for (uint64_t b = 0; b < 2 * kMiB / kBs; ++b) {
    const bool zero = is_all_zero(std::span(before).subspan(b * kBs, kBs));
    if (zero && !zero_blk) zero_blk = b;
    if (!zero && !data_blk) data_blk = b;
  }
  BOOST_REQUIRE((data_blk && zero_blk));
  const uint64_t db = *data_blk, zb = *zero_blk;

  const auto a = random_bytes(1, 8000), b = random_bytes(2, 10000), c = random_bytes(3, 20000),
             d = random_bytes(4, 3000), e = random_bytes(5, 4096), f = random_bytes(6, 13000),
             g = random_bytes(7, 5536), h = random_bytes(8, kBs);
  // The same blocks written again and again in one apply; returns the expected image.
  auto run = [&](ReplicaStore::Apply& ap) {
    std::vector<std::vector<std::byte>> model = {before};
    // One call: two disjoint ranges, a third overlapping both; a range of a zero block.
    const BlockUpdate first[] = {{0, db, a, 1000}, {0, db, b, 20000}, {0, db, c, 5000},
                                 {0, zb, d, 7000}};
    apply_both(ap, first, model);
    BOOST_TEST(ap.stats().preimages == 2u);  // [1000, 30000) of db, [7000, 10000) of zb
    // Another call: a range reaching below the logged one, one inside it, one at the end.
    const BlockUpdate second[] = {{0, db, e, 0}, {0, db, f, 8000}, {0, db, g, kBs - 5536}};
    apply_both(ap, second, model);
    BOOST_TEST(ap.stats().preimages == 4u);  // [0, 1000) and [60000, 65536)
    // Whole blocks: only what is not logged yet, [30000, 60000) and zb's two zero gaps.
    const BlockUpdate third[] = {{0, db, h}, {0, zb, {}}};
    apply_both(ap, third, model);
    BOOST_TEST(ap.stats().preimages == 7u);
    BOOST_TEST(ap.stats().preimage_bytes == kBs);  // db's old bytes exactly once; zb's are zero
    BOOST_TEST(ap.stats().partial_blocks == 7u);
    BOOST_TEST(ap.stats().blocks_written == 1u);
    BOOST_TEST(ap.stats().zero_blocks == 1u);
    BOOST_TEST(byte_difference(file_bytes(r.image(0)), model[0]) == "");
    return model;
  };

  {
    auto ap = r.store->begin_apply(2, RecoveryPointType::Standard);
    BOOST_REQUIRE(ap.ok());
    run(**ap);
    BOOST_REQUIRE((*ap)->abort().ok());
    BOOST_TEST(byte_difference(file_bytes(r.image(0)), before) == "");
  }
  auto ap = r.store->begin_apply(2, RecoveryPointType::Standard);
  BOOST_REQUIRE(ap.ok());
  const auto model2 = run(**ap);
  BOOST_REQUIRE((*ap)->commit(any_commit_info(1)).ok());
  ap->reset();
  // Point 3 changes db in part again.
  auto model3 = model2;
  ap = r.store->begin_apply(3, RecoveryPointType::Standard);
  BOOST_REQUIRE(ap.ok());
  const auto i = random_bytes(9, 777);
  const BlockUpdate fourth[] = {{0, db, i, 12345}, {0, db + 1, i, 0}};
  apply_both(**ap, fourth, model3);
  BOOST_REQUIRE((*ap)->commit(any_commit_info(1)).ok());
  BOOST_TEST(byte_difference(file_bytes(r.image(0)), model3[0]) == "");

  const std::string dest = dir / "m.img";
  for (const auto& [seq, want] : {std::pair(1u, &before), std::pair(2u, &model2[0])}) {
    auto m = r.store->materialize(seq, {dest});
    BOOST_REQUIRE_MESSAGE(m.ok(), m.status().ToString());
    BOOST_TEST(byte_difference(file_bytes(dest), *want) == "", "point " << seq);
  }
  BOOST_TEST(byte_difference(file_bytes(r.image(0)), model3[0]) == "");  // unchanged
  BOOST_REQUIRE(r.store->rollback_to(2).ok());
  BOOST_TEST(byte_difference(file_bytes(r.image(0)), model2[0]) == "");
  BOOST_REQUIRE(r.store->rollback_to(1).ok());
  BOOST_TEST(byte_difference(file_bytes(r.image(0)), before) == "");
}

BOOST_AUTO_TEST_CASE(random_partial_and_whole_updates_log_each_old_byte_once) {
  Replica r(dir / "root", {1 * kMiB});
  r.sources = {dir / "src.img"};
  make_source(r.sources[0], 1 * kMiB, 121);
  r.cycle(1);
  const std::vector<std::byte> before = file_bytes(r.image(0));
  std::mt19937_64 rng(122);
  for (int round = 0; round < 2; ++round) {
    auto ap = r.store->begin_apply(2, RecoveryPointType::Standard);
    BOOST_REQUIRE(ap.ok());
    std::vector<std::vector<std::byte>> model = {before};
    std::vector<std::vector<std::byte>> held;
    for (int call = 0; call < 12; ++call) {
      std::vector<BlockUpdate> ups;
      for (int n = 0; n < 15; ++n) {
        const uint64_t blk = 4 + rng() % 5;  // a few blocks, written over and over
        const uint64_t shape = rng() % 10;
        if (shape == 0) {
          ups.push_back({0, blk, {}});  // a whole zero block
          continue;
        }
        if (shape == 1) {
          held.push_back(random_bytes(rng(), kBs));
          ups.push_back({0, blk, held.back()});
          continue;
        }
        const auto off = static_cast<uint32_t>(rng() % kBs);
        const auto len = static_cast<uint32_t>(1 + rng() % std::min<uint64_t>(kBs - off, 9000));
        held.push_back(shape == 2 ? std::vector<std::byte>(len) : random_bytes(rng(), len));
        ups.push_back({0, blk, held.back(), off});
      }
      // Most calls go on while the previous batch is written: they touch the same blocks.
      const bool wait = call % 4 == 3;
      apply_both(**ap, ups, model, wait);
      if (wait)
        BOOST_REQUIRE_MESSAGE(byte_difference(file_bytes(r.image(0)), model[0]) == "",
                              "round " << round << " call " << call);
    }
    // Every old byte is logged at most once: never more than the five blocks hold.
    BOOST_TEST((*ap)->stats().preimage_bytes <= 5 * kBs);
    if (round == 0) {
      BOOST_REQUIRE((*ap)->abort().ok());
      BOOST_TEST(byte_difference(file_bytes(r.image(0)), before) == "");
      continue;
    }
    BOOST_REQUIRE((*ap)->commit(any_commit_info(1)).ok());
    const std::string dest = dir / "m.img";
    auto m = r.store->materialize(1, {dest});
    BOOST_REQUIRE_MESSAGE(m.ok(), m.status().ToString());
    BOOST_TEST(byte_difference(file_bytes(dest), before) == "");
    BOOST_REQUIRE(r.store->rollback_to(1).ok());
    BOOST_TEST(byte_difference(file_bytes(r.image(0)), before) == "");
  }
}

BOOST_AUTO_TEST_CASE(a_partial_update_on_a_hole_rolls_back_to_a_hole) {
  Replica r(dir / "root", {1 * kMiB});
  {
    auto ap = r.store->begin_apply(1, RecoveryPointType::Standard);  // nothing: all one hole
    BOOST_REQUIRE(ap.ok());
    BOOST_REQUIRE((*ap)->commit(any_commit_info(1)).ok());
  }
  const std::vector<std::byte> zeros(1 * kMiB);
  const auto data = random_bytes(1, 8192), tail = random_bytes(2, 100);
  // A range of whole 4 KiB pages of block 3, and 100 bytes at the end of block 5.
  const BlockUpdate ups[] = {{0, 3, data, 4096}, {0, 5, tail, kBs - 100}};
  auto apply = [&](ReplicaStore::Apply& ap) {
    std::vector<std::byte> blk;
    BOOST_REQUIRE(ap.apply_batch(ups, [&](uint32_t, uint64_t b, std::span<const std::byte> c) {
                      if (b == 3) blk.assign(c.begin(), c.end());
                    }).ok());
    BOOST_TEST(ap.stats().preimages == 2u);
    BOOST_TEST(ap.stats().preimage_bytes == 0u);  // zero ranges: no data
    BOOST_TEST(ap.stats().log_bytes == UndoLog::kHeaderSize + UndoLog::kBatchHeaderSize +
                                           2 * UndoLog::kRecordHeaderSize + UndoLog::kCommitSize);
    BOOST_REQUIRE(ap.wait_writes().ok());
    BOOST_REQUIRE(blk.size() == kBs);
    BOOST_TEST(is_all_zero(std::span(blk).first(4096)));
    BOOST_TEST(std::memcmp(blk.data() + 4096, data.data(), data.size()) == 0);
    BOOST_TEST(is_all_zero(std::span(blk).subspan(4096 + 8192)));
    BOOST_TEST(allocated(r.image(0)) > 0u);
  };
  auto check_hole = [&] {
    BOOST_TEST(byte_difference(file_bytes(r.image(0)), zeros) == "");
    auto fd = open_file(r.image(0), O_RDONLY);
    BOOST_REQUIRE(fd.ok());
    auto ext = next_data_extent(fd->get(), 3 * kBs, 4 * kBs);
    BOOST_REQUIRE(ext.ok());
    BOOST_TEST(!ext->has_value());  // punched again, not zeros written
  };
  {
    auto ap = r.store->begin_apply(2, RecoveryPointType::Standard);
    BOOST_REQUIRE(ap.ok());
    apply(**ap);
    BOOST_REQUIRE((*ap)->abort().ok());
    check_hole();
  }
  auto ap = r.store->begin_apply(2, RecoveryPointType::Standard);
  BOOST_REQUIRE(ap.ok());
  apply(**ap);
  BOOST_REQUIRE((*ap)->commit(any_commit_info(1)).ok());
  BOOST_REQUIRE(r.store->rollback_to(1).ok());
  check_hole();
}

BOOST_AUTO_TEST_CASE(each_block_updated_in_part_is_reported_as_the_image_holds_it) {
  Replica r(dir / "root", {1 * kMiB, 1 * kMiB + 4096});
  auto ap = r.store->begin_apply(1, RecoveryPointType::Standard);
  BOOST_REQUIRE(ap.ok());
  auto& a = **ap;
  using Key = std::pair<uint32_t, uint64_t>;
  std::vector<std::pair<Key, std::vector<std::byte>>> seen;
  auto report = [&](uint32_t d, uint64_t b, std::span<const std::byte> c) {
    seen.push_back({{d, b}, std::vector<std::byte>(c.begin(), c.end())});
  };
  const auto full = random_bytes(1, kBs), part = random_bytes(2, 96), x = random_bytes(3, 700),
             y = random_bytes(4, 300);
  // A whole block is not reported; 1/16 is the 4 KiB tail, reported at its length.
  const BlockUpdate ups[] = {{0, 2, full}, {1, 16, part, 1000}};
  BOOST_REQUIRE(a.apply_batch(ups, report).ok());
  std::vector<std::byte> tail(4096);
  std::copy(part.begin(), part.end(), tail.begin() + 1000);
  BOOST_REQUIRE(seen.size() == 1u);
  BOOST_TEST((seen[0].first == Key{1, 16}));
  BOOST_TEST((seen[0].second == tail));

  // A queued write is applied first: the range lands on it. Several updates of one block in a
  // batch are reported once, with what they make of it together.
  seen.clear();
  BOOST_REQUIRE(a.write(0, 4, full).ok());
  const BlockUpdate more[] = {{0, 4, x, 100},   {0, 6, x, 0},    {0, 6, full},
                              {0, 6, y, 500},   {0, 7, x, 9000}, {0, 7, {}},
                              {0, 8, y, kBs - 300}};
  BOOST_REQUIRE(a.apply_batch(more, report).ok());
  auto with = [](std::vector<std::byte> base, const std::vector<std::byte>& v, std::size_t at) {
    std::copy(v.begin(), v.end(), base.begin() + static_cast<std::ptrdiff_t>(at));
    return base;
  };
  const std::vector<std::byte> zeros(kBs);
  const std::vector<std::pair<Key, std::vector<std::byte>>> want = {
      {{0, 4}, with(full, x, 100)},
      {{0, 6}, with(full, y, 500)},
      {{0, 7}, zeros},
      {{0, 8}, with(zeros, y, kBs - 300)}};
  BOOST_TEST((seen == want));
  // And that is what the image holds once the writes are done.
  BOOST_REQUIRE(a.wait_writes().ok());
  const auto img = file_bytes(r.image(0));
  for (const auto& [key, bytes] : want)
    BOOST_TEST(std::memcmp(img.data() + key.second * kBs, bytes.data(), kBs) == 0,
               "block " << key.second);
  BOOST_REQUIRE(a.commit(any_commit_info(2)).ok());
}

BOOST_AUTO_TEST_CASE(partial_updates_of_a_bad_shape_are_refused_and_nothing_is_written) {
  Replica r(dir / "root", {1 * kMiB, 1 * kMiB + 4096});
  auto ap = r.store->begin_apply(1, RecoveryPointType::Standard);
  BOOST_REQUIRE(ap.ok());
  auto& a = **ap;
  const auto d100 = random_bytes(1, 100), full = random_bytes(2, kBs), page = random_bytes(3, 4096);
  struct Case {
    const char* what;
    BlockUpdate update;
  };
  const Case cases[] = {
      {"past the block's end", {0, 0, d100, kBs - 99}},
      {"past the 4 KiB tail block's end", {1, 16, d100, 4000}},
      {"a whole block's bytes at offset 1", {0, 0, full, 1}},
      {"empty data at a nonzero offset", {0, 0, {}, 100}},
      {"an offset past the block", {0, 0, d100, kBs + 1}},
      {"the tail block's length at offset 1", {1, 16, page, 1}},
  };
  for (const auto& c : cases) {
    const BlockUpdate ups[] = {{0, 1, full}, c.update};  // the good one is not applied either
    Status st = a.apply_batch(ups);
    BOOST_TEST(st.IsInvalidParameter(), c.what);
    BOOST_TEST(contains(st.message(), "at offset " + std::to_string(c.update.offset)),
               st.message());
    BOOST_TEST(contains(st.message(), "block " + std::to_string(c.update.block)), st.message());
  }
  BOOST_TEST(a.write(0, 0, d100).IsInvalidParameter());  // the queue takes whole blocks only
  BOOST_TEST(a.stats().batches == 0u);
  BOOST_TEST(a.stats().log_bytes == UndoLog::kHeaderSize);
  BOOST_TEST(stdfs::file_size(r.store->undo_path(1)) == UndoLog::kHeaderSize);
  BOOST_TEST(allocated(r.image(0)) == 0u);
  BOOST_TEST(allocated(r.image(1)) == 0u);
  // The Apply goes on: a refused update does not fail it.
  const BlockUpdate ok[] = {{1, 16, d100, 4096 - 100}};
  BOOST_REQUIRE(a.apply_batch(ok).ok());
  BOOST_REQUIRE(a.commit(any_commit_info(2)).ok());
}

BOOST_AUTO_TEST_CASE(removing_the_vm_removes_its_points) {
  Replica r(dir / "root", {1 * kMiB});
  r.sources = {dir / "src.img"};
  make_source(r.sources[0], 1 * kMiB, 91);
  r.cycle(1);
  r.cycle(2);
  BOOST_TEST(r.seqs().size() == 2u);
  r.store.reset();
  BOOST_REQUIRE(r.vms->remove(r.vm.id.to_string()).ok());
  // The same GUID defined again starts with no points and nothing applied.
  auto d = r.vms->define({"again", r.vm.id, r.sizes});
  BOOST_REQUIRE(d.ok());
  r.open();
  BOOST_TEST(r.seqs().empty());
  BOOST_TEST(r.store->image_seq() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vmrepl
