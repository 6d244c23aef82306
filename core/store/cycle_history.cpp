#include "core/store/cycle_history.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "core/blocks/block_index.h"
#include "core/blocks/hash.h"
#include "core/blocks/posix_error.h"
#include "core/store/change_codec.h"
#include "core/store/change_io.h"

namespace vmrepl {
namespace {

constexpr std::string_view kMagic{"VMRCYCL\0", 8};
constexpr std::string_view kPrefix = "cycle-";
constexpr std::string_view kSuffix = ".cbl";
constexpr std::string_view kTempSuffix = ".cbl.tmp";
constexpr std::size_t kSeqDigits = 20;
constexpr std::size_t kHeaderSize = 32;
constexpr std::size_t kTrailerSize = 8;
constexpr mode_t kFileMode = 0600;

std::string str(uint64_t v) { return std::to_string(v); }

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The seq of a name file_name() produced; false for anything else.
bool parse_name(std::string_view name, uint64_t& seq) {
  if (name.size() != kPrefix.size() + kSeqDigits + kSuffix.size()) return false;
  if (name.substr(0, kPrefix.size()) != kPrefix || !ends_with(name, kSuffix)) return false;
  uint64_t v = 0;
  for (char c : name.substr(kPrefix.size(), kSeqDigits)) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  seq = v;
  return true;
}

std::string encode(uint64_t seq, uint32_t block_size, const DiskBlockSets& disks) {
  std::string out(kMagic);
  codec::put_u32(out, CycleHistory::kFormatVersion);
  codec::put_u32(out, block_size);
  codec::put_u64(out, seq);
  codec::put_u32(out, static_cast<uint32_t>(disks.size()));
  codec::put_u32(out, 0);
  for (const BlockSet& set : disks) {
    codec::put_varint(out, set.run_count());
    uint64_t prev_end = 0;
    set.for_each_run([&](const BlockRun& r) {
      codec::put_varint(out, r.first - prev_end);
      codec::put_varint(out, r.count - 1);
      prev_end = r.end();
    });
  }
  codec::put_u64(out, XXH3_64bits(out.data(), out.size()));
  return out;
}

// Decodes a file whose checksum, version and block size have been checked; the error text
// says what is wrong.
Result<DiskBlockSets> decode_body(std::string_view body, uint64_t seq) {
  codec::Reader r(body.substr(kMagic.size()));
  uint32_t version = 0, file_block_size = 0, disk_count = 0, reserved = 0;
  uint64_t file_seq = 0;
  if (!r.u32(version) || !r.u32(file_block_size) || !r.u64(file_seq) || !r.u32(disk_count) ||
      !r.u32(reserved))
    return Status::Failed("truncated header");
  if (file_seq != seq) return Status::Failed("the file holds cycle " + str(file_seq));
  if (reserved != 0 || disk_count > CycleHistory::kMaxDisks)
    return Status::Failed("bad header field");
  DiskBlockSets disks(disk_count);
  for (uint32_t d = 0; d < disk_count; ++d) {
    uint64_t runs = 0;
    // Each run takes at least two bytes, which bounds the loop by the file's size.
    if (!r.varint(runs) || runs > r.remaining() / 2)
      return Status::Failed("disk " + str(d) + ": bad run count");
    uint64_t prev_end = 0;
    for (uint64_t i = 0; i < runs; ++i) {
      uint64_t gap = 0, count_minus_1 = 0;
      if (!r.varint(gap) || !r.varint(count_minus_1))
        return Status::Failed("disk " + str(d) + ": truncated run");
      if (gap > UINT64_MAX - prev_end || count_minus_1 == UINT64_MAX ||
          count_minus_1 + 1 > UINT64_MAX - (prev_end + gap))
        return Status::Failed("disk " + str(d) + ": run overflows");
      const uint64_t first = prev_end + gap;
      disks[d].insert(first, count_minus_1 + 1);
      prev_end = first + count_minus_1 + 1;
    }
  }
  if (r.remaining() != 0) return Status::Failed(str(r.remaining()) + " unexpected trailing bytes");
  return disks;
}

}  // namespace

std::string CycleHistory::file_name(uint64_t seq) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "cycle-%020llu.cbl", static_cast<unsigned long long>(seq));
  return buf;
}

Result<std::unique_ptr<CycleHistory>> CycleHistory::open(const std::string& dir,
                                                         uint32_t block_size) {
  VMREPL_RETURN_IF_ERROR(
      BlockIndex::check_geometry(static_cast<uint32_t>(HashAlgorithm::Xxh3_128), block_size, 0));
  VMREPL_RETURN_IF_ERROR(fs::make_dirs(dir, 0700));
  auto d = fs::open_dir(dir);
  if (!d.ok()) return d.status();
  auto names = fs::list_dir(d->get());
  if (!names.ok()) return names.status().Annotate(dir);
  for (const auto& n : *names) {
    if (n.substr(0, kPrefix.size()) == kPrefix && ends_with(n, kTempSuffix))
      (void)::unlinkat(d->get(), n.c_str(), 0);
  }
  return std::unique_ptr<CycleHistory>(new CycleHistory(std::move(*d), block_size));
}

Status CycleHistory::put(uint64_t seq, const DiskBlockSets& disks) {
  auto pending = prepare_put(seq, disks);
  if (!pending.ok()) return pending.status();
  return pending->commit();
}

Result<CycleHistory::PendingPut> CycleHistory::prepare_put(uint64_t seq,
                                                            const DiskBlockSets& disks) {
  if (disks.size() > kMaxDisks) {
    return Status::InvalidParameter("disks has " + str(disks.size()) + " entries; at most " +
                                    str(kMaxDisks) + " are supported");
  }
  const std::string content = encode(seq, block_size_, disks);
  std::lock_guard lock(mu_);
  // Unique, so that two puts of one cycle never share a temp file; open() removes the name.
  std::string tmp = file_name(seq);
  tmp.insert(tmp.size() - kSuffix.size(), "." + str(temps_made_++));
  tmp += ".tmp";
  VMREPL_RETURN_IF_ERROR(
      fs::write_synced_file_at(dir_.get(), tmp, content, kFileMode, /*replace=*/false)
          .Annotate("store the changed-block list of cycle " + str(seq)));
  PendingPut pending;
  pending.history_ = this;
  pending.seq_ = seq;
  pending.tmp_ = std::move(tmp);
  return pending;
}

CycleHistory::PendingPut::PendingPut(PendingPut&& o) noexcept
    : history_(o.history_), seq_(o.seq_), tmp_(std::exchange(o.tmp_, std::string())) {}

CycleHistory::PendingPut& CycleHistory::PendingPut::operator=(PendingPut&& o) noexcept {
  if (this != &o) {
    discard();
    history_ = o.history_;
    seq_ = o.seq_;
    tmp_ = std::exchange(o.tmp_, std::string());
  }
  return *this;
}

CycleHistory::PendingPut::~PendingPut() { discard(); }

void CycleHistory::PendingPut::discard() {
  if (tmp_.empty()) return;
  std::lock_guard lock(history_->mu_);
  (void)::unlinkat(history_->dir_.get(), tmp_.c_str(), 0);
  tmp_.clear();
}

Status CycleHistory::PendingPut::commit() {
  if (tmp_.empty()) return Status::InvalidState("changed-block list: nothing to commit");
  std::lock_guard lock(history_->mu_);
  VMREPL_RETURN_IF_ERROR(fs::rename_durably_at(history_->dir_.get(), tmp_, file_name(seq_))
                             .Annotate("store the changed-block list of cycle " + str(seq_)));
  tmp_.clear();
  return Status::OK();
}

Result<DiskBlockSets> CycleHistory::get(uint64_t seq) const {
  std::lock_guard lock(mu_);
  return get_locked(seq);
}

Result<DiskBlockSets> CycleHistory::get_locked(uint64_t seq) const {
  const std::string what = "cycle " + str(seq);
  auto raw = change_io::read_file_at(dir_.get(), file_name(seq), kMaxFileBytes);
  if (!raw.ok()) {
    if (raw.status().IsNotFound())
      return Status::FileNotFound(what + ": no changed-block list (" + file_name(seq) + ")");
    return raw.status().Annotate(what);
  }
  const std::string_view all = *raw;
  if (all.size() < kHeaderSize + kTrailerSize || all.substr(0, kMagic.size()) != kMagic)
    return Status::Failed(what + ": corrupt changed-block list (bad magic or too short)");
  const std::string_view body = all.substr(0, all.size() - kTrailerSize);
  if (XXH3_64bits(body.data(), body.size()) != codec::load_u64(all.data() + body.size()))
    return Status::Failed(what + ": corrupt changed-block list (checksum mismatch)");
  // Intact but unusable (written by a newer vmrepl, or for another block size): say so rather
  // than call it corrupt.
  const uint32_t version = codec::load_u32(all.data() + kMagic.size());
  const uint32_t file_block_size = codec::load_u32(all.data() + kMagic.size() + 4);
  if (version != kFormatVersion) {
    return Status::Failed(what + ": changed-block list has unknown version " + str(version));
  }
  if (file_block_size != block_size_) {
    return Status::Failed(what + ": changed-block list was recorded with block size " +
                          str(file_block_size) + ", the history uses " + str(block_size_));
  }
  auto disks = decode_body(body, seq);
  if (!disks.ok())
    return Status::Failed(what + ": corrupt changed-block list (" + disks.status().message() + ")");
  return disks;
}

Result<std::vector<uint64_t>> CycleHistory::seqs() const {
  std::lock_guard lock(mu_);
  return seqs_locked();
}

Result<std::vector<uint64_t>> CycleHistory::seqs_locked() const {
  auto names = fs::list_dir(dir_.get());
  if (!names.ok()) return names.status();
  std::vector<uint64_t> out;
  for (const auto& n : *names) {
    uint64_t seq = 0;
    if (parse_name(n, seq)) out.push_back(seq);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status CycleHistory::prune(std::size_t keep) {
  std::lock_guard lock(mu_);
  auto all = seqs_locked();
  if (!all.ok()) return all.status();
  if (all->size() <= keep) return Status::OK();
  const std::size_t drop = all->size() - keep;
  for (std::size_t i = 0; i < drop; ++i) {
    const std::string n = file_name((*all)[i]);
    if (::unlinkat(dir_.get(), n.c_str(), 0) != 0 && errno != ENOENT)
      return errno_status(errno, "delete " + n);
  }
  return fs::fsync_fd(dir_.get(), "cycle history directory");
}

Result<DiskBlockSets> CycleHistory::union_since(uint64_t after, uint64_t through) const {
  if (through < after) {
    return Status::InvalidParameter("through (" + str(through) + ") precedes after (" + str(after) +
                                    ")");
  }
  DiskBlockSets out;
  if (through == after) return out;
  std::lock_guard lock(mu_);
  auto all = seqs_locked();
  if (!all.ok()) return all.status();
  // Walk the listing rather than probing every number, so the cost follows the files kept.
  auto it = std::lower_bound(all->begin(), all->end(), after + 1);
  for (uint64_t expect = after + 1;; ++expect, ++it) {
    if (it == all->end() || *it != expect) {
      return Status::FileNotFound("cycle " + str(expect) +
                                  ": no changed-block list (missing), needed for the changes "
                                  "after cycle " +
                                  str(after));
    }
    auto list = get_locked(expect);
    if (!list.ok()) return list.status();
    merge_into(out, *list);
    if (expect == through) return out;
  }
}

}  // namespace vmrepl
