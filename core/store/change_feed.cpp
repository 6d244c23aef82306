#include "core/store/change_feed.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <random>
#include <span>
#include <utility>

#include "core/blocks/block_index.h"
#include "core/blocks/hash.h"
#include "core/blocks/posix_error.h"
#include "core/blocks/sparse_io.h"
#include "core/store/change_codec.h"
#include "core/store/change_io.h"

namespace vmrepl {
namespace {

constexpr char kLogName[] = "change.log";
constexpr char kMarkerName[] = "change.feed";
// Leftovers of an interrupted fs::write_file_atomic; removed at open.
constexpr const char* kTempNames[] = {"change.log.tmp", "change.feed.tmp"};
constexpr std::string_view kLogMagic{"VMRCLOG\0", 8};
constexpr std::string_view kMarkerMagic{"VMRCFED\0", 8};
constexpr uint32_t kLogVersion = 1;
constexpr uint32_t kMarkerVersion = 1;
constexpr uint32_t kKindMark = 1;
constexpr uint32_t kKindAck = 2;
constexpr std::size_t kRecordBody = 32;  // the record without its checksum
constexpr std::size_t kLogFixedHeader = 40;
constexpr std::size_t kReadChunk = ChangeFeed::kRecordSize * 26214;  // ~1 MiB of whole records
constexpr std::size_t kMaxReason = 4096;
constexpr uint64_t kMaxMarkerBytes = 64 * 1024;
constexpr mode_t kFileMode = 0600;

using codec::put_u32;
using codec::put_u64;

std::string str(uint64_t v) { return std::to_string(v); }

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

uint64_t random_id() {
  std::random_device rd;
  uint64_t v = (static_cast<uint64_t>(rd()) << 32) | rd();
  return v == 0 ? 1 : v;
}

void put_record(std::string& out, uint64_t log_id, uint32_t kind, uint32_t disk, uint64_t epoch,
                uint64_t first, uint64_t count) {
  const std::size_t at = out.size();
  put_u32(out, kind);
  put_u32(out, disk);
  put_u64(out, epoch);
  put_u64(out, first);
  put_u64(out, count);
  // Seeded with the log id, so a record can only verify inside the log it was written to.
  put_u64(out, XXH3_64bits_withSeed(out.data() + at, kRecordBody, log_id));
}

std::string describe_geometry(uint32_t block_size, const std::vector<uint64_t>& sizes) {
  std::string s = "block size " + str(block_size) + ", disk sizes [";
  for (std::size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + str(sizes[i]);
  return s + "]";
}

struct Marker {
  uint32_t state = 0;
  uint32_t block_size = 0;
  uint64_t log_id = 0;
  uint64_t epoch = 0;
  std::vector<uint64_t> sizes;
  std::string reason;
};

std::string encode_marker(const Marker& m) {
  std::string out(kMarkerMagic);
  put_u32(out, kMarkerVersion);
  put_u32(out, m.state);
  put_u32(out, m.block_size);
  put_u32(out, static_cast<uint32_t>(m.sizes.size()));
  put_u64(out, m.log_id);
  put_u64(out, m.epoch);
  for (uint64_t s : m.sizes) put_u64(out, s);
  const std::string_view reason = std::string_view(m.reason).substr(0, kMaxReason);
  put_u32(out, static_cast<uint32_t>(reason.size()));
  out += reason;
  put_u64(out, XXH3_64bits(out.data(), out.size()));
  return out;
}

Result<Marker> decode_marker(std::string_view raw) {
  if (raw.size() < kMarkerMagic.size() + 8 || raw.substr(0, kMarkerMagic.size()) != kMarkerMagic)
    return Status::Failed("not a change feed marker (bad magic or too short)");
  const std::string_view body = raw.substr(0, raw.size() - 8);
  if (XXH3_64bits(body.data(), body.size()) != codec::load_u64(raw.data() + body.size()))
    return Status::Failed("checksum mismatch");
  codec::Reader r(body.substr(kMarkerMagic.size()));
  Marker m;
  uint32_t version = 0, count = 0, reason_len = 0;
  if (!r.u32(version)) return Status::Failed("truncated");
  if (version != kMarkerVersion) return Status::Failed("unknown version " + str(version));
  if (!r.u32(m.state) || !r.u32(m.block_size) || !r.u32(count) || !r.u64(m.log_id) ||
      !r.u64(m.epoch))
    return Status::Failed("truncated");
  if (m.state < 1 || m.state > 3) return Status::Failed("unknown state " + str(m.state));
  if (count > ChangeFeed::kMaxDisks) return Status::Failed("disk count " + str(count));
  m.sizes.resize(count);
  for (auto& s : m.sizes)
    if (!r.u64(s)) return Status::Failed("truncated");
  std::string_view reason;
  if (!r.u32(reason_len) || reason_len > kMaxReason || !r.bytes(reason_len, reason))
    return Status::Failed("bad reason field");
  if (r.remaining() != 0) return Status::Failed(str(r.remaining()) + " unexpected trailing bytes");
  m.reason = std::string(reason);
  return m;
}

// Releases a held lock for a blocking section and takes it back at the end of the scope.
class Unlocked {
 public:
  explicit Unlocked(std::unique_lock<std::mutex>& l) : l_(l) { l_.unlock(); }
  ~Unlocked() { l_.lock(); }
  Unlocked(const Unlocked&) = delete;
  Unlocked& operator=(const Unlocked&) = delete;

 private:
  std::unique_lock<std::mutex>& l_;
};

}  // namespace

// One waiting caller in the writer queue. Lives on its caller's stack.
struct ChangeFeed::Writer {
  enum Kind { kMarkRange, kControl };
  Kind kind = kControl;
  uint32_t disk = 0;
  BlockRun run;        // blocks still to record (narrowed by the leader)
  bool write = false;  // the leader wrote a record for it in this batch
  bool done = false;
  Status status;
  std::condition_variable cv;
};

// Waits until the calling thread is at the head of the writer queue and keeps it there for
// the scope: the only place the log is written and epochs or trust change.
class ChangeFeed::Turn {
 public:
  Turn(ChangeFeed& f, std::unique_lock<std::mutex>& lock) : f_(f), lock_(lock) {
    f_.queue_.push_back(&w_);
    while (f_.queue_.front() != &w_) w_.cv.wait(lock_);
  }
  ~Turn() {
    f_.queue_.pop_front();
    if (!f_.queue_.empty()) f_.queue_.front()->cv.notify_one();
  }
  Turn(const Turn&) = delete;
  Turn& operator=(const Turn&) = delete;

 private:
  ChangeFeed& f_;
  std::unique_lock<std::mutex>& lock_;
  Writer w_;
};

ChangeFeed::ChangeFeed(std::string dir, fs::Fd dir_fd, std::vector<uint64_t> disk_sizes,
                       uint32_t block_size, ChangeFeedOptions options)
    : dir_path_(std::move(dir)),
      dir_(std::move(dir_fd)),
      disk_sizes_(std::move(disk_sizes)),
      block_size_(block_size),
      options_(options),
      current_(disk_sizes_.size()) {
  for (uint64_t s : disk_sizes_)
    disk_blocks_.push_back(BlockIndex::block_count_for(s, block_size_));
}

ChangeFeed::~ChangeFeed() = default;

Result<std::unique_ptr<ChangeFeed>> ChangeFeed::open(const std::string& dir,
                                                     std::vector<uint64_t> disk_sizes,
                                                     uint32_t block_size,
                                                     ChangeFeedOptions options) {
  const auto algo = static_cast<uint32_t>(HashAlgorithm::Xxh3_128);
  VMREPL_RETURN_IF_ERROR(BlockIndex::check_geometry(algo, block_size, 0));
  if (disk_sizes.empty())
    return Status::InvalidParameter("disk_sizes is empty: a change feed covers at least one disk");
  if (disk_sizes.size() > kMaxDisks) {
    return Status::InvalidParameter("disk_sizes has " + str(disk_sizes.size()) +
                                    " disks; at most " + str(kMaxDisks) + " are supported");
  }
  for (std::size_t i = 0; i < disk_sizes.size(); ++i) {
    VMREPL_RETURN_IF_ERROR(
        BlockIndex::check_geometry(algo, block_size, disk_sizes[i]).Annotate("disk " + str(i)));
  }
  if (options.max_batch_records == 0)
    return Status::InvalidParameter("max_batch_records is 0: a batch holds at least one record");

  VMREPL_RETURN_IF_ERROR(fs::make_dirs(dir, 0700));
  auto d = fs::open_dir(dir);
  if (!d.ok()) return d.status();
  if (::flock(d->get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Status::SystemInUse("change feed " + dir + " is already open in another ChangeFeed");
    return errno_status(errno, "flock " + dir);
  }
  for (const char* tmp : kTempNames) (void)::unlinkat(d->get(), tmp, 0);

  std::unique_ptr<ChangeFeed> feed(
      new ChangeFeed(dir, std::move(*d), std::move(disk_sizes), block_size, options));
  feed->recover();
  return feed;
}

void ChangeFeed::recover() {
  // No other thread can see the feed yet; the lock only satisfies the helpers' contract.
  std::lock_guard guard(mu_);
  struct stat lst {};
  const bool log_exists = ::fstatat(dir_.get(), kLogName, &lst, AT_SYMLINK_NOFOLLOW) == 0;
  auto raw = change_io::read_file_at(dir_.get(), kMarkerName, kMaxMarkerBytes);
  std::string why;
  bool already_durable = false;
  uint64_t marker_log_id = 0;
  if (!raw.ok()) {
    if (raw.status().IsNotFound()) {
      why = log_exists ? "the marker file change.feed is missing while change.log exists"
                       : "new change feed: it knows nothing of writes made before it existed";
    } else {
      why = "cannot read the marker file: " + raw.status().message();
    }
  } else if (auto m = decode_marker(*raw); !m.ok()) {
    why = "marker file change.feed is damaged: " + m.status().message();
  } else {
    epoch_ = std::max<uint64_t>(m->epoch + 1, 1);
    marker_log_id = m->log_id;
    if (m->state == static_cast<uint32_t>(Trust::Untrusted)) {
      why = m->reason.empty() ? "the marker says the feed is untrusted" : m->reason;
      already_durable = true;
    } else if (m->state == static_cast<uint32_t>(Trust::ScanPending)) {
      why = "scan cycle " + str(m->epoch) + " was not acknowledged before the feed was closed";
    } else if (m->block_size != block_size_ || m->sizes != disk_sizes_) {
      why = "disk geometry changed: the feed recorded " +
            describe_geometry(m->block_size, m->sizes) + ", now " +
            describe_geometry(block_size_, disk_sizes_);
    }
  }
  if (why.empty()) {
    // The marker vouches for a log: replay it.
    fs::Fd fd(::openat(dir_.get(), kLogName, O_RDWR | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      why = errno == ENOENT ? "change.log is missing although the marker says the feed exists"
                            : "cannot open change.log: " + errno_status(errno, "open").message();
    } else {
      why = replay(fd.get(), marker_log_id);
      if (why.empty()) {
        log_ = std::move(fd);
        log_id_ = marker_log_id;
        trust_ = Trust::Trusted;
        return;
      }
    }
  }
  trust_ = Trust::Untrusted;
  reason_ = why;
  current_.assign(disk_sizes_.size(), {});
  // Record the verdict, so that it holds even if what caused it goes away (a geometry that
  // changes back, a log someone restores): the writes marked while untrusted are not logged.
  if (!already_durable) untrust_durable_ = write_marker(Trust::Untrusted, epoch_).ok();
}

std::string ChangeFeed::replay(int fd, uint64_t log_id) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_status(errno, "stat change.log").message();
  const auto size = static_cast<uint64_t>(st.st_size);
  const std::size_t n = disk_sizes_.size();
  const std::size_t hsize = header_size();
  if (size < kLogFixedHeader) return "change.log header is truncated (" + str(size) + " bytes)";
  std::string fixed(kLogFixedHeader, '\0');
  if (Status s = pread_full(fd, std::as_writable_bytes(std::span(fixed.data(), fixed.size())), 0);
      !s.ok())
    return "cannot read change.log: " + s.message();
  if (std::string_view(fixed).substr(0, kLogMagic.size()) != kLogMagic)
    return "change.log is not a change log (bad magic)";
  const uint32_t version = codec::load_u32(fixed.data() + 8);
  if (version != kLogVersion) return "change.log has unknown version " + str(version);
  const uint32_t hdr_block_size = codec::load_u32(fixed.data() + 12);
  const uint32_t hdr_disks = codec::load_u32(fixed.data() + 16);
  if (hdr_disks != n || hdr_block_size != block_size_) {
    return "change.log was written for " + str(hdr_disks) + " disks of block size " +
           str(hdr_block_size) + ", the feed has " + str(n) + " of " + str(block_size_);
  }
  if (size < hsize) return "change.log header is truncated (" + str(size) + " bytes)";
  std::string header(hsize, '\0');
  if (Status s = pread_full(fd, std::as_writable_bytes(std::span(header.data(), hsize)), 0);
      !s.ok())
    return "cannot read change.log: " + s.message();
  if (XXH3_64bits(header.data(), hsize - 8) != codec::load_u64(header.data() + hsize - 8))
    return "change.log header checksum mismatch";
  const uint64_t hdr_log_id = codec::load_u64(header.data() + 24);
  const uint64_t base_epoch = codec::load_u64(header.data() + 32);
  if (hdr_log_id != log_id) {
    return "change.log belongs to another generation of the feed (log id " + str(hdr_log_id) +
           ", the marker names " + str(log_id) + ")";
  }
  for (std::size_t d = 0; d < n; ++d) {
    if (codec::load_u64(header.data() + kLogFixedHeader + 8 * d) != disk_sizes_[d])
      return "change.log was written for another size of disk " + str(d);
  }

  // Blocks per still-open epoch: an Ack(E) drops every epoch <= E, but not the next epoch's
  // records that were logged before it (writes marked while cycle E was in flight).
  std::map<uint64_t, DiskBlockSets> open_epochs;
  uint64_t last_mark_epoch = base_epoch;
  std::optional<uint64_t> last_ack;
  std::string buf;
  uint64_t off = hsize;
  while (size - off >= kRecordSize) {
    const uint64_t chunk = std::min<uint64_t>(kReadChunk, (size - off) / kRecordSize * kRecordSize);
    buf.resize(static_cast<std::size_t>(chunk));
    if (Status s = pread_full(fd, std::as_writable_bytes(std::span(buf.data(), buf.size())), off);
        !s.ok())
      return "cannot read change.log: " + s.message();
    for (std::size_t i = 0; i < buf.size(); i += kRecordSize, off += kRecordSize) {
      const char* p = buf.data() + i;
      const std::string at = "change.log record at offset " + str(off) + ": ";
      if (XXH3_64bits_withSeed(p, kRecordBody, log_id) != codec::load_u64(p + kRecordBody))
        return at + "checksum mismatch";
      const uint32_t kind = codec::load_u32(p);
      const uint32_t disk = codec::load_u32(p + 4);
      const uint64_t epoch = codec::load_u64(p + 8);
      const uint64_t first = codec::load_u64(p + 16);
      const uint64_t count = codec::load_u64(p + 24);
      if (epoch < base_epoch)
        return at + "epoch " + str(epoch) + " precedes the log's base epoch " + str(base_epoch);
      if (kind == kKindMark) {
        if (disk >= n) return at + "disk " + str(disk) + " does not exist";
        if (count == 0 || first > disk_blocks_[disk] || count > disk_blocks_[disk] - first) {
          return at + "blocks [" + str(first) + ", +" + str(count) + ") are outside disk " +
                 str(disk) + " (" + str(disk_blocks_[disk]) + " blocks)";
        }
        if (epoch < last_mark_epoch)
          return at + "epoch " + str(epoch) + " after epoch " + str(last_mark_epoch);
        if (last_ack && epoch <= *last_ack)
          return at + "epoch " + str(epoch) + " was already acknowledged";
        last_mark_epoch = epoch;
        auto& sets = open_epochs[epoch];
        sets.resize(n);
        sets[disk].insert(first, count);
      } else if (kind == kKindAck) {
        if (disk != 0 || first != 0 || count != 0) return at + "malformed acknowledgement";
        if (last_ack && epoch <= *last_ack)
          return at + "acknowledgement of epoch " + str(epoch) + " is not increasing";
        last_ack = epoch;
        open_epochs.erase(open_epochs.begin(), open_epochs.upper_bound(epoch));
      } else {
        return at + "unknown record kind " + str(kind);
      }
    }
  }
  if (off < size) {
    // An incomplete last record: a batch that was being written when the process or host
    // died. Its callers were never answered (they wait for fdatasync), so it is cut off.
    while (::ftruncate(fd, static_cast<off_t>(off)) != 0) {
      if (errno != EINTR)
        return "cannot cut off the torn tail of change.log: " + errno_status(errno, "").message();
    }
    if (Status s = change_io::datasync(fd, "change.log"); !s.ok())
      return "cannot cut off the torn tail of change.log: " + s.message();
    ++stats_.fsyncs;
    stats_.torn_tail_bytes = size - off;
  }
  for (const auto& [epoch, sets] : open_epochs) merge_into(current_, sets);
  // The current epoch must be newer than every epoch in the log, or a later Ack could drop
  // records it does not cover.
  epoch_ = std::max({epoch_, base_epoch, last_mark_epoch + 1, last_ack ? *last_ack + 1 : 0});
  log_end_ = off;
  return {};
}

std::size_t ChangeFeed::header_size() const { return kLogFixedHeader + 8 * disk_sizes_.size() + 8; }

std::string ChangeFeed::encode_header(uint64_t log_id, uint64_t base_epoch) const {
  std::string h(kLogMagic);
  put_u32(h, kLogVersion);
  put_u32(h, block_size_);
  put_u32(h, static_cast<uint32_t>(disk_sizes_.size()));
  put_u32(h, 0);  // reserved
  put_u64(h, log_id);
  put_u64(h, base_epoch);
  for (uint64_t s : disk_sizes_) put_u64(h, s);
  put_u64(h, XXH3_64bits(h.data(), h.size()));
  return h;
}

Status ChangeFeed::check_range(uint32_t disk, uint64_t offset, uint64_t length) const {
  if (disk >= disk_sizes_.size()) {
    return Status::InvalidParameter("disk " + str(disk) + " does not exist: the VM has " +
                                    str(disk_sizes_.size()) + " disk(s)");
  }
  if (length == 0) return Status::InvalidParameter("length is 0: a range has at least one byte");
  if (offset > UINT64_MAX - length) {
    return Status::InvalidParameter("offset " + str(offset) + " + length " + str(length) +
                                    " overflows 64 bits");
  }
  const uint64_t size = disk_sizes_[disk];
  if (offset >= size) {
    return Status::InvalidParameter("offset " + str(offset) + " is beyond the end of disk " +
                                    str(disk) + " (" + str(size) + " bytes)");
  }
  if (length > size - offset) {
    return Status::InvalidParameter("length " + str(length) + " at offset " + str(offset) +
                                    " runs past the end of disk " + str(disk) + " (" + str(size) +
                                    " bytes)");
  }
  return Status::OK();
}

Status ChangeFeed::status_when_untrusted() const {
  if (untrust_durable_) return Status::OK();
  return Status::Failed("change feed is untrusted (" + reason_ +
                        ") and could not record that durably, so the range is not tracked");
}

Status ChangeFeed::mark_dirty(uint32_t disk, uint64_t offset, uint64_t length) {
  VMREPL_RETURN_IF_ERROR(check_range(disk, offset, length));
  const uint64_t first = offset / block_size_;
  const uint64_t count = (offset + length - 1) / block_size_ - first + 1;
  std::unique_lock lock(mu_);
  ++stats_.mark_calls;
  if (trust_ == Trust::Untrusted) {
    ++stats_.untracked;
    return status_when_untrusted();
  }
  const auto span = current_[disk].uncovered_span(first, count);
  if (!span) {
    ++stats_.coalesced;
    return Status::OK();
  }
  Writer w;
  w.kind = Writer::kMarkRange;
  w.disk = disk;
  w.run = *span;
  queue_.push_back(&w);
  while (!w.done && queue_.front() != &w) w.cv.wait(lock);
  if (!w.done) commit_batch(lock);
  return w.status;
}

// The head of the queue is a mark: write the records of it and of every mark queued right
// behind it with one write and one fdatasync, then answer them all.
void ChangeFeed::commit_batch(std::unique_lock<std::mutex>& lock) {
  std::vector<Writer*> batch;
  std::string records;
  const bool tracking = trust_ != Trust::Untrusted;
  for (Writer* w : queue_) {
    if (w->kind != Writer::kMarkRange || batch.size() >= options_.max_batch_records) break;
    batch.push_back(w);
    w->write = false;
    if (!tracking) continue;
    // Narrow again: an earlier batch may have recorded some of these blocks meanwhile.
    const auto span = current_[w->disk].uncovered_span(w->run.first, w->run.count);
    if (!span) continue;
    w->run = *span;
    w->write = true;
    put_record(records, log_id_, kKindMark, w->disk, epoch_, span->first, span->count);
  }
  Status st;
  if (!records.empty()) st = append_durably(lock, records);
  for (Writer* w : batch) {
    if (!w->write) {
      ++(tracking ? stats_.coalesced : stats_.untracked);
      w->status = tracking ? Status::OK() : status_when_untrusted();
    } else if (st.ok()) {
      current_[w->disk].insert(w->run);
      w->status = Status::OK();
    } else {
      // append_durably turned the feed untrusted: a scan now covers this range.
      w->status = status_when_untrusted();
    }
    w->done = true;
    queue_.pop_front();
    w->cv.notify_one();
  }
  if (!queue_.empty()) queue_.front()->cv.notify_one();
}

Status ChangeFeed::append_durably(std::unique_lock<std::mutex>& lock, const std::string& records) {
  const uint64_t at = log_end_;
  const int fd = log_.get();
  Status st;
  bool synced = false;
  {
    Unlocked unlocked(lock);
    st = pwrite_full(fd, bytes_of(records), at);
    if (st.ok()) {
      synced = true;
      st = change_io::datasync(fd, "change.log");
    }
  }
  ++stats_.batches;
  if (synced) ++stats_.fsyncs;
  stats_.records_written += records.size() / kRecordSize;
  if (!st.ok()) {
    fail_log(st);
    return st;
  }
  log_end_ += records.size();
  return Status::OK();
}

Status ChangeFeed::write_marker(Trust state, uint64_t epoch) {
  Marker m;
  m.state = static_cast<uint32_t>(state);
  m.block_size = block_size_;
  m.log_id = log_id_;
  m.epoch = epoch;
  m.sizes = disk_sizes_;
  if (state == Trust::Untrusted) m.reason = reason_;
  stats_.fsyncs += 2;  // the file and the directory
  return fs::write_file_atomic(dir_.get(), kMarkerName, encode_marker(m), kFileMode);
}

Status ChangeFeed::untrust(std::string reason) {
  trust_ = Trust::Untrusted;
  reason_ = std::move(reason);
  log_ = fs::Fd();
  current_.assign(disk_sizes_.size(), {});
  // Written with the lock held: this is the rare failure path, and no caller may be told OK
  // (untracked) before the verdict is durable.
  Status st = write_marker(Trust::Untrusted, epoch_);
  untrust_durable_ = st.ok();
  return st;
}

void ChangeFeed::fail_log(const Status& cause) {
  (void)untrust("change.log could not be written: " + cause.message());
}

Status ChangeFeed::open_log_fd() {
  fs::Fd fd(::openat(dir_.get(), kLogName, O_RDWR | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return errno_status(errno, "open change.log");
  log_ = std::move(fd);
  return Status::OK();
}

Result<FeedCycle> ChangeFeed::begin_cycle() {
  std::unique_lock lock(mu_);
  Turn turn(*this, lock);
  if (cycle_) {
    return Status::InvalidState("cycle " + str(cycle_->epoch) +
                                " is still open: acknowledge or abort it first");
  }
  const std::size_t n = disk_sizes_.size();
  if (trust_ == Trust::Trusted) {
    FeedCycle c;
    c.epoch = epoch_;
    c.blocks = current_;
    cycle_ = OpenCycle{epoch_, false, std::move(current_)};
    current_.assign(n, {});
    ++epoch_;
    return c;
  }
  // Untrusted: this is a scan cycle. From here on every write is logged in a fresh log, so
  // that once the scan is acknowledged the feed knows everything after its view.
  const uint64_t scan_epoch = epoch_;
  const uint64_t new_id = random_id();
  const std::string header = encode_header(new_id, scan_epoch + 1);
  Status st;
  {
    Unlocked unlocked(lock);
    st = fs::write_file_atomic(dir_.get(), kLogName, header, kFileMode);
  }
  stats_.fsyncs += 2;
  if (!st.ok()) return st.Annotate("cannot start the scan cycle's change log");
  log_id_ = new_id;
  VMREPL_RETURN_IF_ERROR(open_log_fd().Annotate("cannot start the scan cycle's change log"));
  st = write_marker(Trust::ScanPending, scan_epoch);
  if (!st.ok()) {
    log_ = fs::Fd();
    return st.Annotate("cannot start the scan cycle");
  }
  FeedCycle c;
  c.epoch = scan_epoch;
  c.scan_required = true;
  c.scan_reason = reason_;
  c.blocks.assign(n, {});
  trust_ = Trust::ScanPending;
  reason_ = "scan cycle " + str(scan_epoch) + " has not been acknowledged yet";
  untrust_durable_ = true;  // the marker says ScanPending, which reopens untrusted
  log_end_ = header.size();
  current_.assign(n, {});
  epoch_ = scan_epoch + 1;
  cycle_ = OpenCycle{scan_epoch, true, {}};
  return c;
}

Status ChangeFeed::ack_cycle(uint64_t epoch) {
  std::unique_lock lock(mu_);
  Turn turn(*this, lock);
  if (!cycle_ || cycle_->epoch != epoch) {
    return Status::InvalidParameter(
        "epoch " + str(epoch) + " is not the open cycle (" +
        (cycle_ ? "the open cycle is " + str(cycle_->epoch) : std::string("no cycle is open")) +
        ")");
  }
  const OpenCycle c = std::move(*cycle_);
  cycle_.reset();
  if (c.scan) {
    if (trust_ != Trust::ScanPending) return Status::OK();  // invalidated meanwhile
    // With the lock held (rare): the marker is what makes the feed trusted across restarts.
    Status st = write_marker(Trust::Trusted, epoch_);
    if (!st.ok()) {
      fail_log(st);
      return st.Annotate("cannot record the end of scan cycle " + str(epoch));
    }
    trust_ = Trust::Trusted;
    reason_.clear();
    maybe_compact(lock);
    return Status::OK();
  }
  if (trust_ == Trust::Untrusted) return Status::OK();  // nothing to record: the next cycle scans
  std::string record;
  put_record(record, log_id_, kKindAck, 0, c.epoch, 0, 0);
  VMREPL_RETURN_IF_ERROR(append_durably(lock, record).Annotate("acknowledge cycle " + str(epoch)));
  maybe_compact(lock);
  return Status::OK();
}

Status ChangeFeed::abort_cycle(uint64_t epoch) {
  std::unique_lock lock(mu_);
  Turn turn(*this, lock);
  if (!cycle_ || cycle_->epoch != epoch) {
    return Status::InvalidParameter(
        "epoch " + str(epoch) + " is not the open cycle (" +
        (cycle_ ? "the open cycle is " + str(cycle_->epoch) : std::string("no cycle is open")) +
        ")");
  }
  OpenCycle c = std::move(*cycle_);
  cycle_.reset();
  if (c.scan) {
    if (trust_ == Trust::ScanPending) {
      // The marker still says ScanPending, which reopens untrusted: nothing to write.
      trust_ = Trust::Untrusted;
      reason_ = "scan cycle " + str(epoch) + " was aborted";
      log_ = fs::Fd();
      current_.assign(disk_sizes_.size(), {});
    }
    return Status::OK();
  }
  if (trust_ != Trust::Untrusted) {
    merge_into(current_, c.blocks);  // their records are still in the log, never acknowledged
    maybe_compact(lock);
  }
  return Status::OK();
}

Status ChangeFeed::invalidate(std::string_view reason) {
  std::unique_lock lock(mu_);
  Turn turn(*this, lock);
  return untrust("invalidated: " + std::string(reason));
}

void ChangeFeed::maybe_compact(std::unique_lock<std::mutex>& lock) {
  if (trust_ != Trust::Trusted || cycle_ || !log_) return;
  std::size_t runs = 0;
  for (const auto& s : current_) runs += s.run_count();
  const uint64_t live = header_size() + runs * kRecordSize;
  if (log_end_ <= options_.compact_threshold_bytes || log_end_ <= 2 * live) return;
  // No cycle is open, so every live block belongs to the current epoch; the new log starts
  // there and a later Ack of it covers all of them.
  std::string content = encode_header(log_id_, epoch_);
  for (std::size_t d = 0; d < current_.size(); ++d) {
    current_[d].for_each_run([&](const BlockRun& r) {
      put_record(content, log_id_, kKindMark, static_cast<uint32_t>(d), epoch_, r.first, r.count);
    });
  }
  struct stat old_st {};
  const bool have_old = ::fstat(log_.get(), &old_st) == 0;
  Status st;
  {
    Unlocked unlocked(lock);
    st = fs::write_file_atomic(dir_.get(), kLogName, content, kFileMode);
  }
  stats_.fsyncs += 2;
  if (st.ok()) {
    if (Status o = open_log_fd(); !o.ok()) {
      fail_log(o);
      return;
    }
    log_end_ = content.size();
    ++stats_.compactions;
    return;
  }
  // Compaction is only an optimization: if the old log is still the one in place, keep it.
  // If the rename happened but was not made durable, appending to either file could be lost.
  struct stat now {};
  if (have_old && ::fstatat(dir_.get(), kLogName, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
      now.st_ino == old_st.st_ino && now.st_dev == old_st.st_dev) {
    (void)::unlinkat(dir_.get(), kTempNames[0], 0);
    return;
  }
  fail_log(st);
}

bool ChangeFeed::trusted() const {
  std::lock_guard lock(mu_);
  return trust_ == Trust::Trusted;
}

std::string ChangeFeed::untrusted_reason() const {
  std::lock_guard lock(mu_);
  return trust_ == Trust::Trusted ? std::string() : reason_;
}

DiskBlockSets ChangeFeed::pending() const {
  std::lock_guard lock(mu_);
  DiskBlockSets out = current_;
  if (cycle_ && !cycle_->scan) merge_into(out, cycle_->blocks);
  return out;
}

std::optional<uint64_t> ChangeFeed::open_cycle() const {
  std::lock_guard lock(mu_);
  if (!cycle_) return std::nullopt;
  return cycle_->epoch;
}

ChangeFeedStats ChangeFeed::stats() const {
  std::lock_guard lock(mu_);
  ChangeFeedStats s = stats_;
  s.log_bytes = log_ ? log_end_ : 0;
  return s;
}

}  // namespace vmrepl
