#include "core/store/replica_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "core/blocks/block_index.h"
#include "core/blocks/posix_error.h"
#include "core/blocks/sparse_io.h"
#include "core/blocks/zero.h"

namespace vmrepl {
namespace {

using sqlite::Db;

constexpr std::string_view kUndoDir = "undo";
constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;
constexpr uint64_t kMaxBatchPreimageBytes = uint64_t{32} << 20;
constexpr std::size_t kMaxDisks = 256;
constexpr uint64_t kMaxSeq = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

constexpr std::string_view kTypeNames[] = {
    "Microsoft:Hyper-V:Snapshot:Replica:Standard",
    "Microsoft:Hyper-V:Snapshot:Replica:ApplicationConsistent",
    "Microsoft:Hyper-V:Snapshot:Replica:PlannedFailover",
};

std::string image_name(uint32_t disk) { return "disk" + std::to_string(disk) + ".img"; }

uint64_t block_count(uint64_t disk_size, uint32_t block_size) {
  return disk_size / block_size + (disk_size % block_size != 0 ? 1 : 0);
}

std::string roots_text(HashAlgorithm a, const std::vector<BlockHash>& roots) {
  std::string out;
  for (std::size_t i = 0; i < roots.size(); ++i) {
    if (i != 0) out += ',';
    out += roots[i].to_hex(a);
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

Result<std::vector<BlockHash>> parse_roots(std::string_view text, HashAlgorithm a) {
  std::vector<BlockHash> out;
  const std::size_t n = digest_size(a);
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    if (item.size() != 2 * n) return Status::Failed("bad Merkle root '" + std::string(item) + "'");
    BlockHash h;
    for (std::size_t i = 0; i < n; ++i) {
      const int hi = hex_digit(item[2 * i]), lo = hex_digit(item[2 * i + 1]);
      if (hi < 0 || lo < 0) return Status::Failed("bad Merkle root '" + std::string(item) + "'");
      h.bytes[i] = static_cast<uint8_t>(hi * 16 + lo);
    }
    out.push_back(h);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
    if (text.empty()) return Status::Failed("bad Merkle root list (trailing comma)");
  }
  return out;
}

Result<std::vector<RecoveryPoint>> load_points(Db& db, const std::string& vm) {
  auto st = db.prepare(
      "SELECT seq, point_type, created_us, replication_type, hash_algorithm, roots, has_undo "
      "FROM recovery_points WHERE vm_id = ?1 ORDER BY seq");
  if (!st.ok()) return st.status();
  VMREPL_RETURN_IF_ERROR(st->bind_text(1, vm));
  std::vector<RecoveryPoint> out;
  for (;;) {
    auto row = st->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    RecoveryPoint p;
    p.seq = static_cast<uint64_t>(st->column_int(0));
    const std::string where = "catalog: recovery point " + std::to_string(p.seq) + " of VM " + vm;
    auto type = recovery_point_type_from_number(static_cast<uint64_t>(st->column_int(1)));
    auto rtype = ReplicationType_from_number(static_cast<uint64_t>(st->column_int(3)));
    const auto algo = static_cast<uint64_t>(st->column_int(4));
    if (!type || !rtype || algo > UINT32_MAX ||
        !is_known_hash_algorithm(static_cast<uint32_t>(algo)))
      return Status::Failed(where + ": unknown point type, replication type or hash algorithm");
    p.type = *type;
    p.created_us = st->column_int(2);
    p.replication_type = *rtype;
    p.hash_algorithm = static_cast<HashAlgorithm>(algo);
    auto roots = parse_roots(st->column_text(5), p.hash_algorithm);
    if (!roots.ok()) return roots.status().Annotate(where);
    p.roots = std::move(roots).value();
    p.has_undo = st->column_int(6) != 0;
    out.push_back(std::move(p));
  }
  return out;
}

Result<uint64_t> load_image_seq(Db& db, const std::string& vm) {
  auto st = db.prepare("SELECT image_seq FROM replica_images WHERE vm_id = ?1");
  if (!st.ok()) return st.status();
  VMREPL_RETURN_IF_ERROR(st->bind_text(1, vm));
  auto row = st->step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::FileNotFound("catalog: no replica image row for VM " + vm);
  return static_cast<uint64_t>(st->column_int(0));
}

// Runs one statement with the VM id as ?1 and up to two integers as ?2, ?3.
Status run(Db& db, std::string_view sql, const std::string& vm, std::optional<int64_t> a = {},
           std::optional<int64_t> b = {}) {
  auto st = db.prepare(sql);
  if (!st.ok()) return st.status();
  VMREPL_RETURN_IF_ERROR(st->bind_text(1, vm));
  if (a) VMREPL_RETURN_IF_ERROR(st->bind_int(2, *a));
  if (b) VMREPL_RETURN_IF_ERROR(st->bind_int(3, *b));
  return st->run();
}

const RecoveryPoint* find_point(const std::vector<RecoveryPoint>& pts, uint64_t seq) {
  for (const auto& p : pts)
    if (p.seq == seq) return &p;
  return nullptr;
}

// Appends to `out` (cleared first) the parts of the sorted, disjoint, non-adjacent ranges
// `want` that the ranges `have` (likewise) do not cover: maximal runs, in order.
void subtract(const std::vector<std::pair<uint32_t, uint32_t>>& want,
              const std::vector<std::pair<uint32_t, uint32_t>>& have,
              std::vector<std::pair<uint32_t, uint32_t>>* out) {
  out->clear();
  for (const auto& [b, e] : want) {
    auto it = std::lower_bound(have.begin(), have.end(), b,
                               [](const auto& x, uint32_t v) { return x.second <= v; });
    uint32_t cur = b;
    for (; it != have.end() && it->first < e; ++it) {
      if (it->first > cur) out->emplace_back(cur, it->first);
      cur = std::max(cur, it->second);
    }
    if (cur < e) out->emplace_back(cur, e);
  }
}

struct FileId {
  dev_t dev;
  ino_t ino;
  auto operator<=>(const FileId&) const = default;
};

}  // namespace

// --- point types ---

std::optional<RecoveryPointType> recovery_point_type_from_number(uint64_t n) {
  if (n >= 1 && n <= 3) return static_cast<RecoveryPointType>(n);
  return std::nullopt;
}

std::string_view virtual_system_type(RecoveryPointType t) {
  const auto i = static_cast<std::size_t>(t);
  return i >= 1 && i <= 3 ? kTypeNames[i - 1] : std::string_view{};
}

std::optional<RecoveryPointType> recovery_point_type_from_virtual_system_type(std::string_view s) {
  for (std::size_t i = 0; i < 3; ++i)
    if (kTypeNames[i] == s) return static_cast<RecoveryPointType>(i + 1);
  return std::nullopt;
}

CopyMethod MaterializeResult::method() const {
  for (CopyMethod m : methods)
    if (m != CopyMethod::Reflink) return CopyMethod::SparseCopy;
  return methods.empty() ? CopyMethod::SparseCopy : CopyMethod::Reflink;
}

// --- ReplicaStore ---

ReplicaStore::ReplicaStore(Catalog& catalog, const Guid& vm_id, std::string folder,
                           std::vector<uint64_t> disk_sizes, uint32_t block_size)
    : catalog_(catalog),
      vm_id_(vm_id),
      vm_text_(vm_id.to_string()),
      folder_(std::move(folder)),
      disk_sizes_(std::move(disk_sizes)),
      block_size_(block_size) {}

ReplicaStore::~ReplicaStore() = default;

std::string ReplicaStore::image_path(uint32_t disk) const {
  return folder_ + "/" + image_name(disk);
}
std::string ReplicaStore::undo_path(uint64_t seq) const {
  return folder_ + "/" + std::string(kUndoDir) + "/" + UndoLog::file_name(seq);
}

std::vector<int> ReplicaStore::image_fds() const {
  std::vector<int> fds;
  for (const auto& f : images_) fds.push_back(f.get());
  return fds;
}

Result<std::unique_ptr<ReplicaStore>> ReplicaStore::open(Catalog& catalog, const Guid& vm_id,
                                                         std::string folder,
                                                         std::vector<uint64_t> disk_sizes,
                                                         uint32_t block_size) {
  if (folder.empty() || folder[0] != '/' || folder.find('\0') != std::string::npos)
    return Status::InvalidParameter("replica folder must be an absolute path");
  while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
  if (block_size < UndoLog::kMinBlockSize || block_size > UndoLog::kMaxBlockSize ||
      (block_size & (block_size - 1)) != 0)
    return Status::InvalidParameter("block size " + std::to_string(block_size) +
                                    " is not a power of two between 4 KiB and 16 MiB");
  if (disk_sizes.empty() || disk_sizes.size() > kMaxDisks)
    return Status::InvalidParameter("a replica has 1 to " + std::to_string(kMaxDisks) + " disks; " +
                                    std::to_string(disk_sizes.size()) + " given");
  for (std::size_t i = 0; i < disk_sizes.size(); ++i)
    if (disk_sizes[i] == 0 || disk_sizes[i] > BlockIndex::kMaxDiskSize)
      return Status::InvalidParameter("disk " + std::to_string(i) + " size " +
                                      std::to_string(disk_sizes[i]) + " is out of range");

  std::unique_ptr<ReplicaStore> s(
      new ReplicaStore(catalog, vm_id, std::move(folder), std::move(disk_sizes), block_size));
  const std::string& vm = s->vm_text_;

  // The VM must exist before anything is created in its folder.
  Status known = catalog.read([&](Db& db) -> Status {
    auto st = db.prepare("SELECT count(*) FROM vms WHERE id = ?1");
    if (!st.ok()) return st.status();
    VMREPL_RETURN_IF_ERROR(st->bind_text(1, vm));
    auto row = st->step();
    if (!row.ok()) return row.status();
    if (!*row || st->column_int(0) == 0)
      return Status::FileNotFound("VM " + vm + " is not defined in the catalog");
    return Status::OK();
  });
  if (!known.ok()) return known;

  auto dir = fs::open_dir(s->folder_);
  if (!dir.ok()) return dir.status().Annotate("replica folder " + s->folder_);
  s->folder_fd_ = std::move(dir).value();
  VMREPL_RETURN_IF_ERROR(fs::make_dir_at(s->folder_fd_.get(), kUndoDir, kDirMode, true));
  VMREPL_RETURN_IF_ERROR(fs::fsync_fd(s->folder_fd_.get(), s->folder_));
  auto undo = fs::open_dir_at(s->folder_fd_.get(), kUndoDir);
  if (!undo.ok()) return undo.status().Annotate(s->folder_);
  s->undo_fd_ = std::move(undo).value();
  if (::flock(s->undo_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Status::SystemInUse("the replica store of VM " + vm + " is open elsewhere");
    return errno_status(errno, "flock " + s->folder_ + "/undo");
  }

  bool fresh = false;
  Status txn = catalog.transact([&](Db& db) -> Status {
    // Under the lock now; the foreign key refuses a VM removed meanwhile.
    VMREPL_RETURN_IF_ERROR(
        run(db, "INSERT OR IGNORE INTO replica_images(vm_id, image_seq) VALUES(?1, 0)", vm));
    auto seq = load_image_seq(db, vm);
    if (!seq.ok()) return seq.status();
    auto pts = load_points(db, vm);
    if (!pts.ok()) return pts.status();
    s->image_seq_ = *seq;
    fresh = *seq == 0 && pts->empty();
    return Status::OK();
  });
  if (!txn.ok()) return txn;

  bool created = false;
  for (uint32_t i = 0; i < s->disk_sizes_.size(); ++i) {
    const std::string name = image_name(i);
    const std::string path = s->image_path(i);
    fs::Fd fd(::openat(s->folder_fd_.get(), name.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
    if (!fd && errno == ENOENT && fresh) {
      VMREPL_RETURN_IF_ERROR(
          fs::create_sparse_file_at(s->folder_fd_.get(), name, s->disk_sizes_[i], kFileMode));
      created = true;
      fd = fs::Fd(::openat(s->folder_fd_.get(), name.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!fd) return errno_status(errno, "open replica image " + path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return errno_status(errno, "fstat " + path);
    if (!S_ISREG(st.st_mode)) return Status::Failed("replica image " + path + " is not a file");
    if (static_cast<uint64_t>(st.st_size) != s->disk_sizes_[i])
      return Status::InvalidParameter(
          "replica image " + path + " is " + std::to_string(st.st_size) + " bytes; disk " +
          std::to_string(i) + " is " + std::to_string(s->disk_sizes_[i]) + " bytes");
    s->images_.push_back(std::move(fd));
  }
  if (created) VMREPL_RETURN_IF_ERROR(fs::fsync_fd(s->folder_fd_.get(), s->folder_));

  VMREPL_RETURN_IF_ERROR(s->recover());
  return s;
}

Status ReplicaStore::recover() {
  auto pts = points();
  if (!pts.ok()) return pts.status();
  if (!pts->empty() && (pts->back().seq != image_seq_))
    return Status::Failed("catalog: VM " + vm_text_ + " has latest recovery point " +
                          std::to_string(pts->back().seq) + " but image_seq " +
                          std::to_string(image_seq_));

  auto names = fs::list_dir(undo_fd_.get());
  if (!names.ok()) return names.status().Annotate(folder_ + "/undo");
  std::vector<uint64_t> logs;
  bool removed_any = false;
  for (const auto& name : *names) {
    uint64_t seq = 0;
    if (UndoLog::parse_temp_file_name(name, &seq)) {
      // A log whose creation did not finish: no block was written under it.
      if (::unlinkat(undo_fd_.get(), name.c_str(), 0) != 0 && errno != ENOENT)
        return errno_status(errno, "unlink " + folder_ + "/undo/" + name);
      recovered_.removed.push_back(name);
      removed_any = true;
    } else if (UndoLog::parse_file_name(name, &seq)) {
      logs.push_back(seq);
    }
  }
  if (removed_any) VMREPL_RETURN_IF_ERROR(fs::fsync_fd(undo_fd_.get(), folder_ + "/undo"));

  std::sort(logs.rbegin(), logs.rend());
  std::vector<uint64_t> leftovers;
  std::set<uint64_t> present;
  for (uint64_t seq : logs) {
    if (seq > image_seq_) {
      VMREPL_RETURN_IF_ERROR(undo_unfinished(seq, false));
      recovered_.rolled_back.push_back(seq);
      continue;
    }
    const RecoveryPoint* p = find_point(*pts, seq);
    if (p == nullptr || !p->has_undo) {
      leftovers.push_back(seq);
      recovered_.removed.push_back(UndoLog::file_name(seq));
    } else {
      present.insert(seq);
    }
  }
  VMREPL_RETURN_IF_ERROR(remove_logs(leftovers));

  std::string missing;
  for (const auto& p : *pts)
    if (p.has_undo && present.count(p.seq) == 0)
      missing += (missing.empty() ? "" : ", ") + undo_path(p.seq);
  if (!missing.empty())
    recovered_.integrity = Status::Failed("undo logs of recovery points are missing: " + missing +
                                          " (older points cannot be materialized)");
  return Status::OK();
}

Status ReplicaStore::usable() const {
  if (apply_open_)
    return Status::InvalidState("an apply is in progress on the replica of VM " + vm_text_);
  if (!broken_.ok())
    return Status::Failed("the replica store of VM " + vm_text_ +
                          " must be reopened to recover: " + broken_.message());
  return Status::OK();
}

Result<std::vector<RecoveryPoint>> ReplicaStore::points() const {
  std::vector<RecoveryPoint> out;
  Status txn = catalog_.read([&](Db& db) -> Status {
    auto p = load_points(db, vm_text_);
    if (!p.ok()) return p.status();
    out = std::move(p).value();
    return Status::OK();
  });
  if (!txn.ok()) return txn;
  return out;
}

Status ReplicaStore::fsync_images() const {
  for (uint32_t i = 0; i < images_.size(); ++i)
    if (::fsync(images_[i].get()) != 0) return errno_status(errno, "fsync " + image_path(i));
  return Status::OK();
}

Status ReplicaStore::remove_logs(const std::vector<uint64_t>& seqs, std::vector<fs::Fd>* dead) {
  if (seqs.empty()) return Status::OK();
  for (uint64_t seq : seqs) {
    const std::string name = UndoLog::file_name(seq);
    if (dead != nullptr) {
      fs::Fd fd(::openat(undo_fd_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (fd) dead->push_back(std::move(fd));
    }
    if (::unlinkat(undo_fd_.get(), name.c_str(), 0) != 0 && errno != ENOENT)
      return errno_status(errno, "unlink " + undo_path(seq));
  }
  return fs::fsync_fd(undo_fd_.get(), folder_ + "/undo");
}

Status ReplicaStore::play_back(uint64_t seq, const std::vector<int>& fds, bool require_seal,
                               uint64_t* restored) const {
  auto reader = UndoLogReader::open(undo_fd_.get(), undo_path(seq), vm_id_, seq, disk_sizes_);
  if (!reader.ok()) return reader.status();
  const uint32_t bs = reader->header().block_size;
  std::vector<std::byte> zeros(bs);
  auto scan = reader->read(
      [&](std::span<const UndoRecord> records) -> Status {
        // A log's records of one block are disjoint (undo_log.h): any order restores them.
        for (const auto& r : records) {
          const uint64_t off = r.block * bs + r.offset;
          std::span<const std::byte> data = r.data;
          if (r.zero)
            data = std::span<const std::byte>(zeros).first(
                r.is_range() ? r.range_length
                             : UndoLog::block_length(disk_sizes_[r.disk], bs, r.block));
          auto w = write_block(fds[r.disk], off, data);
          if (!w.ok())
            return w.status().Annotate("restoring disk " + std::to_string(r.disk) + " block " +
                                       std::to_string(r.block) +
                                       (r.is_range() ? " bytes " + std::to_string(r.offset) + ".." +
                                                           std::to_string(r.offset + r.range_length)
                                                     : std::string()) +
                                       " from " + undo_path(seq));
          ++*restored;
        }
        return Status::OK();
      },
      require_seal);
  return scan.status();
}

Status ReplicaStore::verify_log(uint64_t seq) const {
  auto reader = UndoLogReader::open(undo_fd_.get(), undo_path(seq), vm_id_, seq, disk_sizes_);
  if (!reader.ok()) return reader.status();
  return reader->read([](std::span<const UndoRecord>) { return Status::OK(); }, true).status();
}

Status ReplicaStore::undo_unfinished(uint64_t seq, bool require_seal) {
  uint64_t restored = 0;
  Status st = play_back(seq, image_fds(), require_seal, &restored);
  if (st.ok()) st = fsync_images();
  if (st.ok()) st = remove_logs({seq});
  if (!st.ok()) broken_ = st;
  return st;
}

Result<std::unique_ptr<ReplicaStore::Apply>> ReplicaStore::begin_apply(uint64_t seq,
                                                                       RecoveryPointType type) {
  VMREPL_RETURN_IF_ERROR(usable());
  if (seq <= image_seq_ || seq > kMaxSeq)
    return Status::InvalidParameter("apply seq " + std::to_string(seq) +
                                    " must be above the image's seq " + std::to_string(image_seq_) +
                                    " (and at most 2^63-1)");
  if (!recovery_point_type_from_number(static_cast<uint64_t>(type)))
    return Status::InvalidParameter("unknown recovery point type " +
                                    std::to_string(static_cast<unsigned>(type)));
  UndoLogHeader h{vm_id_, seq, static_cast<uint32_t>(disk_sizes_.size()), block_size_};
  auto log = UndoLogWriter::create(undo_fd_.get(), undo_path(seq), h);
  if (!log.ok()) return log.status();
  apply_open_ = true;
  return std::unique_ptr<Apply>(new Apply(this, seq, type, std::move(log).value()));
}

Result<uint32_t> ReplicaStore::prune_rows(Db& db, uint32_t keep_history,
                                          std::vector<uint64_t>* files) const {
  auto pts = load_points(db, vm_text_);
  if (!pts.ok()) return pts.status();
  if (pts->empty()) return uint32_t{0};
  const std::size_t keep = std::min<std::size_t>(pts->size(), std::size_t{keep_history} + 1);
  const std::size_t drop = pts->size() - keep;
  const RecoveryPoint& oldest = (*pts)[drop];
  for (std::size_t i = 0; i < drop; ++i)
    if ((*pts)[i].has_undo) files->push_back((*pts)[i].seq);
  // The oldest kept point has no point before it to go back to: its log is dead weight.
  if (oldest.has_undo) files->push_back(oldest.seq);
  if (drop == 0 && !oldest.has_undo) return uint32_t{0};
  VMREPL_RETURN_IF_ERROR(run(db, "DELETE FROM recovery_points WHERE vm_id = ?1 AND seq < ?2",
                             vm_text_, static_cast<int64_t>(oldest.seq)));
  VMREPL_RETURN_IF_ERROR(
      run(db, "UPDATE recovery_points SET has_undo = 0 WHERE vm_id = ?1 AND seq = ?2", vm_text_,
          static_cast<int64_t>(oldest.seq)));
  return static_cast<uint32_t>(drop);
}

Result<uint32_t> ReplicaStore::prune(uint32_t keep_history, std::vector<fs::Fd>* dead) {
  VMREPL_RETURN_IF_ERROR(usable());
  std::vector<uint64_t> files;
  uint32_t dropped = 0;
  Status txn = catalog_.transact([&](Db& db) -> Status {
    auto n = prune_rows(db, keep_history, &files);
    if (!n.ok()) return n.status();
    dropped = *n;
    return Status::OK();
  });
  if (!txn.ok()) return txn;
  VMREPL_RETURN_IF_ERROR(remove_logs(files, dead));
  return dropped;
}

Status ReplicaStore::rollback_to(uint64_t seq) {
  VMREPL_RETURN_IF_ERROR(usable());
  auto pts = points();
  if (!pts.ok()) return pts.status();
  std::size_t idx = pts->size();
  for (std::size_t i = 0; i < pts->size(); ++i)
    if ((*pts)[i].seq == seq) idx = i;
  if (idx == pts->size())
    return Status::InvalidParameter("VM " + vm_text_ + " has no recovery point " +
                                    std::to_string(seq));
  // Check every log first, so a damaged one is found before the image changes at all.
  for (std::size_t k = idx + 1; k < pts->size(); ++k) {
    if (!(*pts)[k].has_undo)
      return Status::Failed("recovery point " + std::to_string((*pts)[k].seq) + " has no undo log");
    VMREPL_RETURN_IF_ERROR(verify_log((*pts)[k].seq));
  }
  for (std::size_t k = pts->size() - 1; k > idx; --k) {
    const uint64_t drop = (*pts)[k].seq;
    const uint64_t below = (*pts)[k - 1].seq;
    // The row goes first: from here the log is "above image_seq", which open() finishes.
    Status txn = catalog_.transact([&](Db& db) -> Status {
      VMREPL_RETURN_IF_ERROR(run(db, "DELETE FROM recovery_points WHERE vm_id = ?1 AND seq = ?2",
                                 vm_text_, static_cast<int64_t>(drop)));
      return run(db, "UPDATE replica_images SET image_seq = ?2 WHERE vm_id = ?1", vm_text_,
                 static_cast<int64_t>(below));
    });
    if (!txn.ok()) return txn;
    image_seq_ = below;
    VMREPL_RETURN_IF_ERROR(undo_unfinished(drop, true));
  }
  return Status::OK();
}

Status ReplicaStore::drop_points_except(uint64_t seq) {
  VMREPL_RETURN_IF_ERROR(usable());
  auto pts = points();
  if (!pts.ok()) return pts.status();
  if (find_point(*pts, seq) == nullptr)
    return Status::InvalidParameter("VM " + vm_text_ + " has no recovery point " +
                                    std::to_string(seq));
  if (pts->back().seq != seq)
    return Status::InvalidState("recovery point " + std::to_string(seq) + " is not the latest (" +
                                std::to_string(pts->back().seq) + "); roll back to it first");
  std::vector<uint64_t> files;
  for (const auto& p : *pts)
    if (p.has_undo) files.push_back(p.seq);
  Status txn = catalog_.transact([&](Db& db) -> Status {
    VMREPL_RETURN_IF_ERROR(run(db, "DELETE FROM recovery_points WHERE vm_id = ?1 AND seq <> ?2",
                               vm_text_, static_cast<int64_t>(seq)));
    return run(db, "UPDATE recovery_points SET has_undo = 0 WHERE vm_id = ?1 AND seq = ?2",
               vm_text_, static_cast<int64_t>(seq));
  });
  if (!txn.ok()) return txn;
  return remove_logs(files);
}

Status ReplicaStore::forget(Catalog& catalog, const Guid& vm_id) {
  const std::string vm = vm_id.to_string();
  return catalog.transact([&](Db& db) -> Status {
    VMREPL_RETURN_IF_ERROR(run(db, "DELETE FROM recovery_points WHERE vm_id = ?1", vm));
    return run(db, "DELETE FROM replica_images WHERE vm_id = ?1", vm);
  });
}

Status ReplicaStore::reset() {
  VMREPL_RETURN_IF_ERROR(usable());
  Status txn = catalog_.transact([&](Db& db) -> Status {
    return run(db, "DELETE FROM recovery_points WHERE vm_id = ?1", vm_text_);
  });
  if (!txn.ok()) return txn;
  auto names = fs::list_dir(undo_fd_.get());
  if (!names.ok()) return names.status().Annotate(folder_ + "/undo");
  std::vector<uint64_t> files;
  for (const auto& name : *names) {
    uint64_t seq = 0;
    if (UndoLog::parse_file_name(name, &seq)) files.push_back(seq);
  }
  return remove_logs(files);
}

Result<MaterializeResult> ReplicaStore::materialize(uint64_t seq,
                                                    const std::vector<std::string>& dest_paths) {
  VMREPL_RETURN_IF_ERROR(usable());
  if (dest_paths.size() != disk_sizes_.size())
    return Status::InvalidParameter(std::to_string(dest_paths.size()) + " destination paths for " +
                                    std::to_string(disk_sizes_.size()) + " disks");
  auto pts = points();
  if (!pts.ok()) return pts.status();
  if (find_point(*pts, seq) == nullptr)
    return Status::InvalidParameter("VM " + vm_text_ + " has no recovery point " +
                                    std::to_string(seq));
  std::vector<uint64_t> later;  // newest first
  for (auto it = pts->rbegin(); it != pts->rend() && it->seq > seq; ++it) {
    if (!it->has_undo)
      return Status::Failed("recovery point " + std::to_string(it->seq) + " has no undo log");
    later.push_back(it->seq);
  }

  // The store's own files and its undo folder are never a destination.
  std::set<FileId> forbidden;
  struct stat st {};
  for (const auto& f : images_) {
    if (::fstat(f.get(), &st) != 0) return errno_status(errno, "fstat replica image");
    forbidden.insert({st.st_dev, st.st_ino});
  }
  if (::fstat(undo_fd_.get(), &st) != 0) return errno_status(errno, "fstat undo folder");
  const FileId undo_dir{st.st_dev, st.st_ino};
  auto names = fs::list_dir(undo_fd_.get());
  if (!names.ok()) return names.status();
  for (const auto& n : *names)
    if (::fstatat(undo_fd_.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
      forbidden.insert({st.st_dev, st.st_ino});

  std::vector<fs::Fd> dests;
  std::set<FileId> seen;
  std::set<std::string> parents;
  for (const auto& path : dest_paths) {
    if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos)
      return Status::InvalidParameter("destination '" + path + "' is not an absolute path");
    const std::string parent = std::filesystem::path(path).parent_path().string();
    if (::stat(parent.c_str(), &st) != 0) return errno_status(errno, "stat " + parent);
    if (FileId{st.st_dev, st.st_ino} == undo_dir)
      return Status::InvalidParameter("destination " + path +
                                      " is inside the replica's undo folder");
    parents.insert(parent);
    fs::Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, kFileMode));
    if (!fd) return errno_status(errno, "open destination " + path);
    if (::fstat(fd.get(), &st) != 0) return errno_status(errno, "fstat " + path);
    if (!S_ISREG(st.st_mode))
      return Status::InvalidParameter("destination " + path + " is not a file");
    const FileId id{st.st_dev, st.st_ino};
    if (forbidden.count(id) != 0)
      return Status::InvalidParameter("destination " + path + " is a file of the replica store");
    if (!seen.insert(id).second)
      return Status::InvalidParameter("destination " + path + " is given twice");
    dests.push_back(std::move(fd));
  }

  MaterializeResult out;
  std::vector<int> fds;
  for (uint32_t i = 0; i < dests.size(); ++i) {
    auto c = clone_or_copy(images_[i].get(), dests[i].get(), disk_sizes_[i]);
    if (!c.ok()) return c.status().Annotate("copying " + image_path(i) + " to " + dest_paths[i]);
    out.methods.push_back(c->method);
    out.bytes_copied += c->bytes_copied;
    fds.push_back(dests[i].get());
  }
  for (uint64_t k : later) {
    VMREPL_RETURN_IF_ERROR(play_back(k, fds, true, &out.blocks_restored));
    ++out.undo_logs_applied;
  }
  for (uint32_t i = 0; i < dests.size(); ++i)
    if (::fsync(dests[i].get()) != 0) return errno_status(errno, "fsync " + dest_paths[i]);
  for (const auto& p : parents) {
    auto d = fs::open_dir(p);
    if (!d.ok()) return d.status();
    VMREPL_RETURN_IF_ERROR(fs::fsync_fd(d->get(), p));
  }
  return out;
}

// --- Apply ---

ReplicaStore::Apply::Apply(ReplicaStore* store, uint64_t seq, RecoveryPointType type,
                           UndoLogWriter log)
    : store_(store),
      seq_(seq),
      type_(type),
      log_(std::move(log)),
      logged_(store->disk_sizes_.size()),
      partly_logged_(store->disk_sizes_.size()) {
  stats_.log_bytes = log_.size();
}

ReplicaStore::Apply::~Apply() {
  if (state_ == State::Open || state_ == State::Failed)
    (void)abort();  // which stops the writer first
  else
    (void)stop_writer();
}

uint32_t ReplicaStore::Apply::max_batch_blocks() const {
  return static_cast<uint32_t>(std::max<uint64_t>(1, kMaxBatchPreimageBytes / store_->block_size_));
}

Status ReplicaStore::Apply::fail(Status st) {
  state_ = State::Failed;
  failure_ = st;
  return st;
}

Status ReplicaStore::Apply::check_block(uint32_t disk, uint64_t block) const {
  if (state_ == State::Failed) return failure_;
  if (state_ != State::Open)
    return Status::InvalidState("the apply of point " + std::to_string(seq_) + " is finished");
  const auto& sizes = store_->disk_sizes_;
  if (disk >= sizes.size())
    return Status::InvalidParameter("disk " + std::to_string(disk) +
                                    " does not exist (the replica has " +
                                    std::to_string(sizes.size()) + " disks)");
  const uint64_t blocks = block_count(sizes[disk], store_->block_size_);
  if (block >= blocks)
    return Status::InvalidParameter("disk " + std::to_string(disk) + " block " +
                                    std::to_string(block) + " is past the end (" +
                                    std::to_string(blocks) + " blocks)");
  return Status::OK();
}

Status ReplicaStore::Apply::check_update(uint32_t disk, uint64_t block, uint32_t offset,
                                         size_t length, bool partial_ok) const {
  VMREPL_RETURN_IF_ERROR(check_block(disk, block));
  const uint64_t want =
      UndoLog::block_length(store_->disk_sizes_[disk], store_->block_size_, block);
  const bool whole = offset == 0 && (length == 0 || length == want);
  const bool partial = partial_ok && length != 0 && length <= want && offset <= want - length;
  if (!whole && !partial)
    return Status::InvalidParameter("disk " + std::to_string(disk) + " block " +
                                    std::to_string(block) + ": " + std::to_string(length) +
                                    " bytes given at offset " + std::to_string(offset) +
                                    "; the block holds " + std::to_string(want));
  return Status::OK();
}

Status ReplicaStore::Apply::write(uint32_t disk, uint64_t block, std::span<const std::byte> data) {
  if (data.empty())
    return Status::InvalidParameter("write of disk " + std::to_string(disk) + " block " +
                                    std::to_string(block) + " without data (use write_zero)");
  VMREPL_RETURN_IF_ERROR(check_update(disk, block, 0, data.size(), false));
  Queued q{disk, block, queue_buf_.size(), 0};
  if (!is_all_zero(data)) {
    queue_buf_.insert(queue_buf_.end(), data.begin(), data.end());
    q.length = data.size();
  }
  queue_.push_back(q);
  if (queue_.size() >= max_batch_blocks()) return apply_batch();
  return Status::OK();
}

Status ReplicaStore::Apply::write_zero(uint32_t disk, uint64_t block) {
  VMREPL_RETURN_IF_ERROR(check_update(disk, block, 0, 0, false));
  queue_.push_back(Queued{disk, block, 0, 0});
  if (queue_.size() >= max_batch_blocks()) return apply_batch();
  return Status::OK();
}

Status ReplicaStore::Apply::apply_batch() {
  if (state_ == State::Failed) return failure_;
  if (state_ != State::Open)
    return Status::InvalidState("the apply of point " + std::to_string(seq_) + " is finished");
  if (queue_.empty()) return Status::OK();
  std::vector<BlockUpdate> updates;
  updates.reserve(queue_.size());
  for (const auto& q : queue_)
    updates.push_back(BlockUpdate{
        q.disk, q.block, std::span<const std::byte>(queue_buf_.data() + q.offset, q.length)});
  const std::size_t step = max_batch_blocks();
  Status st;
  for (std::size_t i = 0; i < updates.size() && st.ok(); i += step)
    st = apply_one_batch(
        std::span<const BlockUpdate>(updates).subspan(i, std::min(step, updates.size() - i)), {});
  queue_.clear();
  queue_buf_.clear();
  return st;
}

Status ReplicaStore::Apply::apply_batch(std::span<const BlockUpdate> updates,
                                        const BlockContentFn& on_partial) {
  VMREPL_RETURN_IF_ERROR(apply_batch());
  for (const auto& u : updates)
    VMREPL_RETURN_IF_ERROR(check_update(u.disk, u.block, u.offset, u.data.size(), true));
  const std::size_t step = max_batch_blocks();
  for (std::size_t i = 0; i < updates.size(); i += step)
    VMREPL_RETURN_IF_ERROR(
        apply_one_batch(updates.subspan(i, std::min(step, updates.size() - i)), on_partial));
  return Status::OK();
}

void ReplicaStore::Apply::mark_logged(uint32_t disk, uint64_t block, uint32_t begin, uint32_t end,
                                      uint32_t length) {
  if (begin == 0 && end == length) {
    logged_[disk].insert(block);
    return;
  }
  Ranges& r = partly_logged_[disk][block];
  // Merge with every range it overlaps or touches.
  auto lo = std::lower_bound(r.begin(), r.end(), begin,
                             [](const auto& x, uint32_t b) { return x.second < b; });
  auto hi = lo;
  while (hi != r.end() && hi->first <= end) {
    begin = std::min(begin, hi->first);
    end = std::max(end, hi->second);
    ++hi;
  }
  lo = r.erase(lo, hi);
  r.insert(lo, {begin, end});
  if (r.size() == 1 && r.front() == std::pair<uint32_t, uint32_t>(0, length)) {
    partly_logged_[disk].erase(block);
    logged_[disk].insert(block);
  }
}

Status ReplicaStore::Apply::apply_one_batch(std::span<const BlockUpdate> updates,
                                            const BlockContentFn& on_partial) {
  const uint32_t bs = store_->block_size_;
  const auto& sizes = store_->disk_sizes_;
  enum Kind : uint8_t { kData, kZero, kPartial };

  // The bytes each update overwrites, for blocks whose pre-image is not wholly logged yet.
  struct Touch {
    uint32_t disk;
    uint64_t block;
    uint32_t begin;
    uint32_t end;
    bool zero_block;  // a whole zero block
  };
  std::vector<Touch> touches;
  touches.reserve(updates.size());
  std::vector<uint8_t> kind(updates.size());
  for (std::size_t i = 0; i < updates.size(); ++i) {
    const auto& u = updates[i];
    const auto len = static_cast<uint32_t>(UndoLog::block_length(sizes[u.disk], bs, u.block));
    const bool whole = u.offset == 0 && (u.data.empty() || u.data.size() == len);
    kind[i] = !whole ? kPartial : u.data.empty() || is_all_zero(u.data) ? kZero : kData;
    if (logged_[u.disk].count(u.block) != 0) continue;
    if (whole)
      touches.push_back(Touch{u.disk, u.block, 0, len, kind[i] == kZero});
    else
      touches.push_back(Touch{u.disk, u.block, u.offset,
                              u.offset + static_cast<uint32_t>(u.data.size()), false});
  }
  std::sort(touches.begin(), touches.end(), [](const Touch& a, const Touch& b) {
    return std::tuple(a.disk, a.block, a.begin) < std::tuple(b.disk, b.block, b.begin);
  });

  // Blocks this batch updates in part are read whole before anything is written: their
  // unlogged bytes are the pre-image pieces below, and once the batch is written the caller
  // gets each block as the batch leaves it (on_partial), without reading it back to hash it.
  using BlockKey = std::pair<uint32_t, uint64_t>;
  std::vector<BlockKey> partial;
  for (std::size_t i = 0; i < updates.size(); ++i)
    if (kind[i] == kPartial) partial.emplace_back(updates[i].disk, updates[i].block);
  std::sort(partial.begin(), partial.end());
  partial.erase(std::unique(partial.begin(), partial.end()), partial.end());
  if (store_->partial_blocks_.size() < partial.size() * bs)
    store_->partial_blocks_.resize(partial.size() * bs);
  auto partial_block = [&](uint32_t disk, uint64_t block) -> std::span<std::byte> {
    auto it = std::lower_bound(partial.begin(), partial.end(), BlockKey(disk, block));
    if (it == partial.end() || *it != BlockKey(disk, block)) return {};
    return std::span<std::byte>(store_->partial_blocks_)
        .subspan(static_cast<std::size_t>(it - partial.begin()) * bs,
                 UndoLog::block_length(sizes[disk], bs, block));
  };
  // Earlier batches' writes may still be running: they touch only bytes already logged,
  // never the bytes read below for the log, but a block read whole may be among them.
  if (std::any_of(partial.begin(), partial.end(),
                  [this](const BlockKey& key) { return being_written(key); }))
    VMREPL_RETURN_IF_ERROR(finish_writes());
  for (const auto& [disk, block] : partial) {
    Status st = pread_full(store_->images_[disk].get(), partial_block(disk, block), block * bs);
    if (!st.ok()) return fail(st.Annotate("reading pre-images of " + store_->image_path(disk)));
  }

  // What to log: per block, each maximal run of the bytes this batch overwrites that has no
  // pre-image logged yet. Those bytes were never overwritten in this apply, so the image
  // still holds their original content, and the pieces of one block (in this batch and
  // across batches) are disjoint: play-back order inside the log does not matter.
  struct Piece {
    uint32_t disk;
    uint64_t block;
    uint32_t begin;
    uint32_t end;
    bool whole;             // the whole block, none of it logged before: a whole record
    bool zero_writes;       // whole: every write to it in this batch is a zero block
    bool skip = false;      // zero over zero: nothing to log or write
    bool pre_zero = false;  // the old bytes are all zero (or a hole)
    std::span<const std::byte> old = {};  // its old bytes (pre-image buffer or a partial block)
  };
  std::vector<Piece> pieces;
  pieces.reserve(touches.size());
  std::vector<std::pair<uint32_t, uint32_t>> needed, missing;
  for (std::size_t i = 0; i < touches.size();) {
    const uint32_t disk = touches[i].disk;
    const uint64_t block = touches[i].block;
    const auto len = static_cast<uint32_t>(UndoLog::block_length(sizes[disk], bs, block));
    bool zero_writes = true;
    needed.clear();
    std::size_t j = i;
    for (; j < touches.size() && touches[j].disk == disk && touches[j].block == block; ++j) {
      const Touch& t = touches[j];
      zero_writes = zero_writes && t.zero_block;
      if (!needed.empty() && t.begin <= needed.back().second)
        needed.back().second = std::max(needed.back().second, t.end);
      else
        needed.emplace_back(t.begin, t.end);
    }
    i = j;
    auto& partly = partly_logged_[disk];
    auto part = partly.empty() ? partly.end() : partly.find(block);
    if (part == partly.end()) {
      if (needed.size() == 1 && needed[0].first == 0 && needed[0].second == len) {
        pieces.push_back(Piece{disk, block, 0, len, true, zero_writes});
        continue;
      }
      missing = needed;
    } else {
      subtract(needed, part->second, &missing);
    }
    for (const auto& [b, e] : missing) pieces.push_back(Piece{disk, block, b, e, false, false});
  }

  // Read the old bytes: a range of a block read whole above is there already; runs of
  // adjacent whole blocks take one sparse-aware read each, other ranges a pread each.
  uint64_t total = 0;
  std::vector<uint64_t> pre_at(pieces.size());
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    Piece& p = pieces[i];
    if (!p.whole) {
      if (auto blk = partial_block(p.disk, p.block); !blk.empty()) {
        p.old = blk.subspan(p.begin, p.end - p.begin);
        continue;
      }
    }
    pre_at[i] = total;
    total += p.end - p.begin;
  }
  // The store's pre-image buffer serves every batch of every apply: its pages stay mapped.
  if (store_->preimages_.size() < total) store_->preimages_.resize(total);
  std::span<std::byte> pre(store_->preimages_.data(), total);
  std::vector<uint8_t> holes;
  for (std::size_t i = 0; i < pieces.size();) {
    const int fd = store_->images_[pieces[i].disk].get();
    if (!pieces[i].whole) {
      Piece& p = pieces[i];
      if (p.old.empty()) {
        auto old = pre.subspan(pre_at[i], p.end - p.begin);
        Status st = pread_full(fd, old, p.block * bs + p.begin);
        if (!st.ok())
          return fail(st.Annotate("reading pre-images of " + store_->image_path(p.disk)));
        p.old = old;
      }
      p.pre_zero = is_all_zero(p.old);
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    while (j < pieces.size() && pieces[j].whole && pieces[j].disk == pieces[i].disk &&
           pieces[j].block == pieces[j - 1].block + 1)
      ++j;
    const uint64_t begin = pre_at[i];
    const uint64_t end = pre_at[j - 1] + (pieces[j - 1].end - pieces[j - 1].begin);
    holes.assign(j - i, 0);
    auto r = read_blocks(fd, pieces[i].block * bs, pre.subspan(begin, end - begin), bs, holes);
    if (!r.ok())
      return fail(
          r.status().Annotate("reading pre-images of " + store_->image_path(pieces[i].disk)));
    for (std::size_t k = i; k < j; ++k) {
      Piece& p = pieces[k];
      p.old = pre.subspan(pre_at[k], p.end - p.begin);
      p.pre_zero = holes[k - i] != 0 || is_all_zero(p.old);
      p.skip = p.pre_zero && p.zero_writes;
    }
    i = j;
  }

  std::vector<UndoRecord> records;
  records.reserve(pieces.size());
  for (const auto& p : pieces) {
    if (p.skip) continue;
    const auto old = p.pre_zero ? std::span<const std::byte>{} : p.old;
    if (p.whole)
      records.push_back(UndoRecord{p.disk, p.block, p.pre_zero, old});
    else
      records.push_back(UndoRecord{p.disk, p.block, p.pre_zero, old, p.begin, p.end - p.begin});
  }
  // The log must be durable before the first byte of the image changes: appended here, made
  // durable by the writer thread before it writes. Many small ranges can outgrow one undo
  // batch: then several, all before any write.
  for (std::size_t k = 0; k < records.size();) {
    std::size_t e = k;
    uint64_t payload = 0;
    while (e < records.size() &&
           (e == k || payload + UndoLog::kRecordHeaderSize + records[e].data.size() <=
                          UndoLog::kMaxBatchPayload)) {
      payload += UndoLog::kRecordHeaderSize + records[e].data.size();
      ++e;
    }
    Status st =
        log_.append_batch(std::span<const UndoRecord>(records).subspan(k, e - k), sizes, false);
    if (!st.ok()) return fail(st);
    ++stats_.batches;
    stats_.log_bytes = log_.size();
    k = e;
  }
  stats_.preimages += records.size();
  for (const auto& r : records) stats_.preimage_bytes += r.data.size();
  for (const auto& p : pieces)
    if (!p.skip)
      mark_logged(p.disk, p.block, p.begin, p.end,
                  static_cast<uint32_t>(UndoLog::block_length(sizes[p.disk], bs, p.block)));

  // The writes, with their bytes copied: the caller may reuse its buffers once this returns.
  WriteJob job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!store_->spare_bufs_.empty()) {
      job.buf = std::move(store_->spare_bufs_.back());
      store_->spare_bufs_.pop_back();
    }
  }
  std::vector<std::byte>& buf = job.buf;
  std::size_t need = 0;
  for (const auto& u : updates) need += u.data.size();
  if (buf.size() < need) buf.resize(need);
  std::vector<PendingWrite>& writes = job.writes;
  writes.reserve(updates.size());
  std::size_t used = 0;
  for (std::size_t i = 0; i < updates.size(); ++i) {
    const auto& u = updates[i];
    PendingWrite w{u.disk, u.block, u.block * bs, {}, kind[i] == kPartial ? u.offset : 0};
    if (kind[i] == kZero) {
      auto it = std::lower_bound(pieces.begin(), pieces.end(), std::pair(u.disk, u.block),
                                 [](const Piece& p, const std::pair<uint32_t, uint64_t>& k) {
                                   return std::pair(p.disk, p.block) < k;
                                 });
      if (it != pieces.end() && it->disk == u.disk && it->block == u.block && it->skip) {
        ++stats_.blocks_skipped;
        continue;
      }
      if (zeros_.size() < bs) zeros_.assign(bs, std::byte{0});
      w.data = std::span<const std::byte>(zeros_).first(
          UndoLog::block_length(sizes[u.disk], bs, u.block));
    } else {
      std::copy(u.data.begin(), u.data.end(), buf.begin() + static_cast<std::ptrdiff_t>(used));
      w.data = std::span<const std::byte>(buf).subspan(used, u.data.size());
      used += u.data.size();
      w.at += u.offset;
    }
    ++(kind[i] == kPartial ? stats_.partial_blocks
       : kind[i] == kZero  ? stats_.zero_blocks
                           : stats_.blocks_written);
    writes.push_back(w);
  }
  // Written after the batches queued before it, while the caller prepares the next ones.
  for (const auto& w : writes) job.blocks.emplace_back(w.disk, w.block);
  std::sort(job.blocks.begin(), job.blocks.end());
  job.blocks.erase(std::unique(job.blocks.begin(), job.blocks.end()), job.blocks.end());
  VMREPL_RETURN_IF_ERROR(enqueue(std::move(job)));

  if (!on_partial || partial.empty()) return Status::OK();
  // Every update of a block read whole, in order, makes what the image holds of it once the
  // writes are done.
  for (const auto& u : updates) {
    auto blk = partial_block(u.disk, u.block);
    if (blk.empty()) continue;
    if (u.data.empty())
      std::fill(blk.begin(), blk.end(), std::byte{0});
    else
      std::copy(u.data.begin(), u.data.end(), blk.begin() + u.offset);
  }
  for (const auto& [disk, block] : partial) on_partial(disk, block, partial_block(disk, block));
  return Status::OK();
}

Status ReplicaStore::Apply::enqueue(WriteJob job) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!writer_.joinable()) {
    stop_ = false;
    writer_ = std::thread([this] { writer_loop(); });
  }
  // What the batch holds in memory until it is written.
  job.bytes = sizeof(WriteJob) + job.buf.size() + job.writes.size() * sizeof(PendingWrite) +
              job.blocks.size() * sizeof(job.blocks[0]);
  const std::size_t bytes = job.bytes;
  // One batch always fits, however large; more wait for room.
  done_cv_.wait(lock, [&] {
    return !writer_status_.ok() || queued_bytes_ == 0 ||
           queued_bytes_ + bytes <= kMaxQueuedWriteBytes;
  });
  if (!writer_status_.ok()) {
    Status st = writer_status_;
    lock.unlock();
    return fail(st);
  }
  queued_bytes_ += bytes;
  jobs_.push_back(std::move(job));
  work_cv_.notify_one();
  return Status::OK();
}

void ReplicaStore::Apply::writer_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stop_, and nothing left
    // Group commit: every batch queued so far had its undo records appended before it was
    // queued, so one fdatasync makes all of them durable before any of their writes.
    running_.swap(jobs_);
    lock.unlock();
    Status st = log_.sync();
    for (const auto& job : running_) {
      if (!st.ok()) break;
      st = write_in_place(job.writes);
    }
    lock.lock();
    auto retire = [this](std::vector<WriteJob>& jobs) {
      for (auto& job : jobs) {
        queued_bytes_ -= job.bytes;
        if (store_->spare_bufs_.size() < kMaxSpareBufs)
          store_->spare_bufs_.push_back(std::move(job.buf));
      }
      jobs.clear();
    };
    retire(running_);
    if (!st.ok()) {
      // Nothing queued may be written any more: the Apply fails and rolls back.
      writer_status_ = st;
      retire(jobs_);
    }
    done_cv_.notify_all();
  }
}

bool ReplicaStore::Apply::being_written(const std::pair<uint32_t, uint64_t>& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto in = [&key](const std::vector<WriteJob>& jobs) {
    return std::any_of(jobs.begin(), jobs.end(), [&key](const WriteJob& j) {
      return std::binary_search(j.blocks.begin(), j.blocks.end(), key);
    });
  };
  return in(running_) || in(jobs_);
}

Status ReplicaStore::Apply::write_in_place(std::span<const PendingWrite> writes) const {
  // Where the writes went, per disk, for the writeback below.
  std::vector<std::pair<uint64_t, uint64_t>> span(store_->disk_sizes_.size(), {UINT64_MAX, 0});
  for (const auto& w : writes) {
    auto wr = write_block(store_->images_[w.disk].get(), w.at, w.data);
    if (!wr.ok())
      return wr.status().Annotate(
          "writing disk " + std::to_string(w.disk) + " block " + std::to_string(w.block) +
          (w.offset != 0 || w.data.size() != UndoLog::block_length(store_->disk_sizes_[w.disk],
                                                                   store_->block_size_, w.block)
               ? " bytes " + std::to_string(w.offset) + ".." +
                     std::to_string(w.offset + w.data.size())
               : std::string()) +
          " of " + store_->image_path(w.disk));
    auto& [lo, hi] = span[w.disk];
    lo = std::min(lo, w.at);
    hi = std::max(hi, w.at + w.data.size());
  }
  // Start the writeback now, without waiting for it: the disk works while the next batches
  // arrive, and the fsync at commit finds little left to flush. Advisory only (its failure
  // changes nothing: the commit's fsync is what counts).
  for (std::size_t d = 0; d < span.size(); ++d)
    if (span[d].second > span[d].first)
      ::sync_file_range(store_->images_[d].get(), static_cast<off64_t>(span[d].first),
                        static_cast<off64_t>(span[d].second - span[d].first), SYNC_FILE_RANGE_WRITE);
  return Status::OK();
}

Status ReplicaStore::Apply::finish_writes() {
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [this] { return jobs_.empty() && running_.empty(); });
  Status st = writer_status_;
  lock.unlock();
  if (!st.ok()) return fail(st);
  return Status::OK();
}

Status ReplicaStore::Apply::stop_writer() {
  Status st = finish_writes();
  if (writer_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_one();
    writer_.join();
  }
  return st;
}

Status ReplicaStore::Apply::commit(const CommitInfo& info) {
  if (state_ == State::Failed) return failure_;
  if (state_ != State::Open)
    return Status::InvalidState("the apply of point " + std::to_string(seq_) + " is finished");
  const auto nd = store_->disk_sizes_.size();
  if (info.roots.size() != nd)
    return Status::InvalidParameter(std::to_string(info.roots.size()) + " Merkle roots for " +
                                    std::to_string(nd) + " disks");
  if (info.replication_type == ReplicationType::None ||
      !ReplicationType_from_number(static_cast<uint64_t>(info.replication_type)))
    return Status::InvalidParameter("a recovery point needs a replication type of 1 to 3");
  if (!is_known_hash_algorithm(static_cast<uint32_t>(info.hash_algorithm)))
    return Status::InvalidParameter("unknown hash algorithm");
  VMREPL_RETURN_IF_ERROR(apply_batch());

  // The seal goes durable with the last batches' records, in the writer's last fdatasync: an
  // uncommitted log plays back the same sealed or not, so it may precede their writes.
  Status st = log_.seal(false);
  if (st.ok()) st = enqueue(WriteJob{});
  if (st.ok()) st = stop_writer();
  if (st.ok()) st = store_->fsync_images();
  if (!st.ok()) return fail(st);
  stats_.log_bytes = log_.size();
  commit_attempted_ = true;
  const std::string& vm = store_->vm_text_;
  std::vector<uint64_t> merged;  // the logs the prune frees
  st = store_->catalog_.transact([&](Db& db) -> Status {
    auto ins = db.prepare(
        "INSERT INTO recovery_points(vm_id, seq, point_type, created_us, replication_type, "
        "hash_algorithm, roots, has_undo) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 1)");
    if (!ins.ok()) return ins.status();
    VMREPL_RETURN_IF_ERROR(ins->bind_text(1, vm));
    VMREPL_RETURN_IF_ERROR(ins->bind_int(2, static_cast<int64_t>(seq_)));
    VMREPL_RETURN_IF_ERROR(ins->bind_int(3, static_cast<int64_t>(type_)));
    VMREPL_RETURN_IF_ERROR(ins->bind_int(4, info.created_us));
    VMREPL_RETURN_IF_ERROR(ins->bind_int(5, static_cast<int64_t>(info.replication_type)));
    VMREPL_RETURN_IF_ERROR(ins->bind_int(6, static_cast<int64_t>(info.hash_algorithm)));
    VMREPL_RETURN_IF_ERROR(ins->bind_text(7, roots_text(info.hash_algorithm, info.roots)));
    VMREPL_RETURN_IF_ERROR(ins->run());
    VMREPL_RETURN_IF_ERROR(run(db, "UPDATE replica_images SET image_seq = ?2 WHERE vm_id = ?1",
                               vm, static_cast<int64_t>(seq_)));
    merged.clear();
    if (info.keep_history) {
      auto n = store_->prune_rows(db, *info.keep_history, &merged);
      if (!n.ok()) return n.status();
    }
    return info.also ? info.also(db) : Status::OK();
  });
  if (!st.ok()) return fail(st.Annotate("committing recovery point " + std::to_string(seq_)));
  state_ = State::Committed;
  store_->image_seq_ = seq_;
  store_->apply_closed();
  // The point is committed whatever happens here: a log left behind is one no point claims,
  // which open() deletes.
  if (!merged.empty()) (void)store_->remove_logs(merged, info.dead);
  return Status::OK();
}

Status ReplicaStore::Apply::abort() {
  (void)stop_writer();  // the rollback below undoes whatever they did
  if (state_ == State::Aborted) return Status::OK();
  if (state_ == State::Committed)
    return Status::InvalidState("the apply of point " + std::to_string(seq_) + " is committed");
  if (commit_attempted_) {
    // A commit whose transaction reported failure may still have landed; the catalog decides.
    bool landed = false;
    Status read = store_->catalog_.read([&](Db& db) -> Status {
      auto pts = load_points(db, store_->vm_text_);
      if (!pts.ok()) return pts.status();
      landed = find_point(*pts, seq_) != nullptr;
      return Status::OK();
    });
    if (read.ok() && landed) {
      state_ = State::Committed;
      store_->image_seq_ = seq_;
      store_->apply_closed();
      return Status::OK();
    }
    if (!read.ok()) {
      // Unknown whether the point exists: leave the log for open() to judge by the catalog.
      state_ = State::Aborted;
      store_->apply_closed();
      store_->broken_ = read;
      return read;
    }
  }
  state_ = State::Aborted;
  store_->apply_closed();
  log_ = UndoLogWriter();
  return store_->undo_unfinished(seq_, false);
}

}  // namespace vmrepl
