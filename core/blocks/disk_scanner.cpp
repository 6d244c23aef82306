#include "core/blocks/disk_scanner.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "core/blocks/posix_error.h"
#include "core/blocks/sparse_io.h"
#include "core/blocks/unique_fd.h"
#include "core/blocks/zero.h"

namespace vmrepl {
namespace {

constexpr uint32_t kMaxChunkSize = 256u << 20;
constexpr uint32_t kMaxInFlight = 64;
// Chunk buffers of 2 MiB or more are 2 MiB aligned and advised as transparent huge pages: a
// fresh 4 MiB buffer otherwise costs 1024 page faults per scan, and the copy into it TLB misses.
constexpr std::size_t kHugePage = 2u << 20;
constexpr std::size_t kPage = 4096;

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<std::byte, FreeDeleter>;

}  // namespace

Status check_scan_options(const ScanOptions& o) {
  VMREPL_RETURN_IF_ERROR(
      BlockIndex::check_geometry(static_cast<uint32_t>(o.algorithm), o.block_size, 0));
  if (o.chunk_size < o.block_size || o.chunk_size % o.block_size != 0 ||
      o.chunk_size > kMaxChunkSize) {
    return Status::InvalidParameter("chunk size " + std::to_string(o.chunk_size) +
                                    " is not a multiple of the block size " +
                                    std::to_string(o.block_size) + " up to " +
                                    std::to_string(kMaxChunkSize));
  }
  if (o.max_in_flight < 1 || o.max_in_flight > kMaxInFlight) {
    return Status::InvalidParameter("max_in_flight " + std::to_string(o.max_in_flight) +
                                    " is not between 1 and " + std::to_string(kMaxInFlight));
  }
  return Status::OK();
}

class DiskScanner::Impl {
 public:
  Impl(uv_loop_t* loop, std::string path, ScanOptions options)
      : loop_(loop), path_(std::move(path)), opt_(options) {}

  Status start(ProgressFn progress, DoneFn done) {
    if (state_ != State::Idle) return Status::InvalidState("scan of " + path_ + " already started");
    VMREPL_RETURN_IF_ERROR(check_scan_options(opt_));
    if (!done) return Status::InvalidParameter("scan of " + path_ + ": no done callback");
    if (loop_ == nullptr) return Status::InvalidParameter("scan of " + path_ + ": no loop");
    prepare_req_.data = this;
    const int rc = uv_queue_work(loop_, &prepare_req_, &Impl::prepare_work, &Impl::prepare_done);
    if (rc != 0) return Status::Failed(std::string("uv_queue_work: ") + uv_strerror(rc));
    progress_ = std::move(progress);
    done_ = std::move(done);
    state_ = State::Preparing;
    return Status::OK();
  }

  void cancel() {
    if (state_ != State::Preparing && state_ != State::Scanning) return;
    cancel_requested_ = true;
    // Queued items that no thread has picked up yet come back with UV_ECANCELED; running
    // ones refuse and finish normally. Either way after_work runs later, never in here.
    if (state_ == State::Preparing) uv_cancel(reinterpret_cast<uv_req_t*>(&prepare_req_));
    for (auto& s : slots_) {
      if (s->busy) uv_cancel(reinterpret_cast<uv_req_t*>(&s->req));
    }
  }

  // The owning DiskScanner is gone: finish quietly and free ourselves. The callbacks are
  // kept (one of them may be running right now) and simply never called again.
  void orphan() {
    orphaned_ = true;
    cancel();
  }

  void set_range_fn(RangeFn fn) { range_ = std::move(fn); }
  void set_target(BlockIndex* into) { into_ = into; }

  bool running() const { return state_ == State::Preparing || state_ == State::Scanning; }
  const ScanStats& stats() const { return stats_; }

 private:
  enum class State { Idle, Preparing, Scanning, Finished };

  struct Slot {
    uv_work_t req{};
    Impl* owner = nullptr;
    Buffer buf;
    std::vector<uint8_t> holes;  // per block of the chunk, from read_blocks
    bool busy = false;
    uint64_t offset = 0;
    uint32_t length = 0;
    // Results, written by the worker, read on the loop thread after the work completes.
    Status status;
    uint64_t bytes_read = 0, hole_blocks = 0, zero_blocks = 0;
  };

  // --- thread pool ---

  static void prepare_work(uv_work_t* req) { static_cast<Impl*>(req->data)->prepare(); }

  void prepare() {
    auto fd = open_file(path_, O_RDONLY);
    if (!fd.ok()) {
      prepare_status_ = fd.status();
      return;
    }
    fd_ = std::move(*fd);
    // lseek(SEEK_END) rather than st_size, so that block devices work too.
    const off_t end = ::lseek(fd_.get(), 0, SEEK_END);
    if (end < 0) {
      prepare_status_ = errno_status(errno, "size of " + path_);
      return;
    }
    size_ = static_cast<uint64_t>(end);
    // Helps cold scans (larger readahead); harmless when the file is cached.
    ::posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    if (into_) {
      if (into_->algorithm() != opt_.algorithm || into_->block_size() != opt_.block_size ||
          into_->disk_size() != size_) {
        prepare_status_ = Status::Failed(
            "scan of " + path_ + ": the file is " + std::to_string(size_) + " bytes; the index to fill describes " +
            std::to_string(into_->disk_size()) + " bytes in blocks of " + std::to_string(into_->block_size()));
        return;
      }
      target_ = into_;
    } else {
      auto index = BlockIndex::create(opt_.algorithm, opt_.block_size, size_);
      if (!index.ok()) {
        prepare_status_ = index.status().Annotate("scan of " + path_);
        return;
      }
      index_ = std::move(*index);
      target_ = &index_;
    }
    chunks_ = (size_ + opt_.chunk_size - 1) / opt_.chunk_size;
    has_data_.assign((chunks_ + 63) / 64, opt_.skip_holes ? 0 : ~uint64_t{0});
    if (!opt_.skip_holes) return;
    // One bit per chunk. After an extent, the search resumes at the next chunk boundary: a
    // chunk already known to hold data needs no more lookups, which bounds the syscalls by
    // the number of chunks however fragmented the file is.
    uint64_t pos = 0;
    while (pos < size_) {
      auto e = next_data_extent(fd_.get(), pos, size_);
      if (!e.ok()) {
        prepare_status_ = e.status().Annotate("scan of " + path_);
        return;
      }
      if (!e->has_value()) break;
      const uint64_t first = (*e)->offset / opt_.chunk_size;
      const uint64_t last = ((*e)->end() - 1) / opt_.chunk_size;
      for (uint64_t c = first; c <= last; ++c) has_data_[c / 64] |= uint64_t{1} << (c % 64);
      pos = (last + 1) * opt_.chunk_size;
    }
  }

  static void chunk_work(uv_work_t* req) {
    auto* s = static_cast<Slot*>(req->data);
    s->owner->hash_chunk(*s);
  }

  void hash_chunk(Slot& s) const {
    s.status = Status::OK();
    s.bytes_read = s.hole_blocks = s.zero_blocks = 0;
    const std::span<std::byte> buf(s.buf.get(), s.length);
    if (opt_.skip_holes) {
      auto r = read_blocks(fd_.get(), s.offset, buf, opt_.block_size, s.holes, HoleFill::Skip);
      if (!r.ok()) {
        s.status = r.status().Annotate("scan of " + path_);
        return;
      }
      s.bytes_read = r->bytes_read;
      s.hole_blocks = r->hole_blocks;
    } else {
      s.status = pread_full(fd_.get(), buf, s.offset);
      if (!s.status.ok()) {
        s.status = s.status.Annotate("scan of " + path_);
        return;
      }
      s.bytes_read = s.length;
      std::fill(s.holes.begin(), s.holes.end(), uint8_t{0});
    }
    // Entries start out Zero (BlockIndex::create), so holes and zero blocks need no write.
    // Chunks own disjoint entries; the loop thread reads them only after the work completes.
    BlockEntry* entries = entries_ + s.offset / opt_.block_size;
    const uint32_t nblocks = (s.length + opt_.block_size - 1) / opt_.block_size;
    for (uint32_t b = 0; b < nblocks; ++b) {
      if (s.holes[b] != 0) {
        ++s.zero_blocks;
        continue;
      }
      const uint32_t off = b * opt_.block_size;
      const auto block = buf.subspan(off, std::min(opt_.block_size, s.length - off));
      if (is_all_zero(block)) {
        ++s.zero_blocks;
        continue;
      }
      entries[b] = BlockEntry{hash_bytes(opt_.algorithm, block), 0};
    }
  }

  // --- loop thread ---

  static void prepare_done(uv_work_t* req, int status) {
    auto* self = static_cast<Impl*>(req->data);
    if (status == UV_ECANCELED) self->prepare_status_ = Status::Failed("cancelled");
    self->on_prepared();
  }

  void on_prepared() {
    state_ = State::Scanning;
    if (!prepare_status_.ok()) {
      error_ = prepare_status_;
    } else {
      entries_ = target_->mutable_entries().data();
      stats_.bytes_total = size_;
      stats_.chunks_total = chunks_;
      if (range_) chunk_final_.assign(chunks_, false);
    }
    pump();  // may finish (and free this); nothing may follow
  }

  static void chunk_done(uv_work_t* req, int status) {
    auto* s = static_cast<Slot*>(req->data);
    s->owner->on_chunk_done(*s, status);
  }

  void on_chunk_done(Slot& s, int uv_status) {
    s.busy = false;
    --in_flight_;
    if (uv_status != UV_ECANCELED) {
      ++stats_.chunks_read;
      stats_.bytes_read += s.bytes_read;
      stats_.hole_blocks += s.hole_blocks;
      stats_.zero_blocks += s.zero_blocks;
      if (!s.status.ok()) {
        if (error_.ok()) error_ = std::move(s.status);
      } else {
        stats_.bytes_done += s.length;
        if (range_) chunk_final_[s.offset / opt_.chunk_size] = true;
      }
    }
    pump();  // may finish (and free this); nothing may follow
  }

  bool stopping() const { return cancel_requested_ || !error_.ok(); }

  bool chunk_has_data(uint64_t c) const { return (has_data_[c / 64] >> (c % 64)) & 1; }

  Slot* free_slot() {
    for (auto& s : slots_) {
      if (!s->busy) return s.get();
    }
    if (slots_.size() >= opt_.max_in_flight) return nullptr;
    // Buffers are allocated once per scan, and no larger than the disk needs.
    const uint64_t want = std::min<uint64_t>(opt_.chunk_size, size_);
    const std::size_t align = want >= kHugePage ? kHugePage : kPage;
    const std::size_t bytes = (want + align - 1) / align * align;
    Buffer buf(static_cast<std::byte*>(std::aligned_alloc(align, bytes)));
    if (!buf) {
      if (error_.ok()) error_ = Status::OutOfMemory("scan of " + path_ + ": chunk buffer");
      return nullptr;
    }
    if (align == kHugePage) ::madvise(buf.get(), bytes, MADV_HUGEPAGE);  // advisory only
    auto s = std::make_unique<Slot>();
    s->owner = this;
    s->req.data = s.get();
    s->buf = std::move(buf);
    s->holes.resize(opt_.chunk_size / opt_.block_size);
    stats_.buffer_bytes += bytes;
    slots_.push_back(std::move(s));
    return slots_.back().get();
  }

  void pump() {
    while (!stopping() && next_chunk_ < chunks_) {
      const uint64_t offset = next_chunk_ * opt_.chunk_size;
      const auto length = static_cast<uint32_t>(std::min<uint64_t>(opt_.chunk_size, size_ - offset));
      if (!chunk_has_data(next_chunk_)) {
        const uint64_t blocks = (length + opt_.block_size - 1) / opt_.block_size;
        stats_.bytes_done += length;
        ++stats_.chunks_skipped;
        stats_.hole_blocks += blocks;
        stats_.zero_blocks += blocks;
        if (range_) chunk_final_[next_chunk_] = true;
        ++next_chunk_;
        continue;
      }
      Slot* s = free_slot();
      if (s == nullptr) break;
      s->offset = offset;
      s->length = length;
      const int rc = uv_queue_work(loop_, &s->req, &Impl::chunk_work, &Impl::chunk_done);
      if (rc != 0) {
        error_ = Status::Failed(std::string("uv_queue_work: ") + uv_strerror(rc));
        break;
      }
      s->busy = true;
      ++in_flight_;
      stats_.peak_in_flight = std::max(stats_.peak_in_flight, in_flight_);
      ++next_chunk_;
    }
    if (!stopping()) report_ranges();
    if (!stopping()) report_progress();
    if (in_flight_ == 0 && (stopping() || next_chunk_ == chunks_)) finish();
  }

  // Hands the entries of every chunk now final, in order, to the RangeFn.
  void report_ranges() {
    if (!range_ || orphaned_) return;
    const uint64_t first = ranged_;
    while (ranged_ < chunks_ && chunk_final_[ranged_]) ++ranged_;
    if (ranged_ == first) return;
    const uint64_t per = opt_.chunk_size / opt_.block_size;
    const uint64_t b0 = first * per, b1 = std::min<uint64_t>(ranged_ * per, target_->block_count());
    if (!range_(b0, std::span<const BlockEntry>(entries_ + b0, b1 - b0))) cancel();
  }

  void report_progress() {
    if (orphaned_ || !progress_ || (reported_ && stats_.bytes_done == last_reported_)) return;
    reported_ = true;
    last_reported_ = stats_.bytes_done;
    progress_(stats_.bytes_done, stats_.bytes_total);
  }

  void finish() {
    slots_.clear();  // no work in flight: the buffers go back now, not when the object dies
    fd_.reset();
    // One final (total, total), also for an empty disk. Still "running" here, so a callback
    // that destroys the scanner orphans us, and one that cancels makes the result cancelled.
    if (!stopping()) report_progress();
    state_ = State::Finished;
    if (orphaned_) {
      delete this;
      return;
    }
    const bool cancelled = cancel_requested_;
    std::optional<Result<BlockIndex>> result;
    if (cancelled) {
      result.emplace(Status::Failed("scan of " + path_ + " cancelled"));
    } else if (!error_.ok()) {
      result.emplace(error_);
    } else {
      result.emplace(std::move(index_));
    }
    DoneFn done = std::move(done_);
    done_ = nullptr;
    done(std::move(*result), cancelled);  // may destroy the scanner: nothing may follow
  }

  uv_loop_t* loop_;
  std::string path_;
  ScanOptions opt_;
  ProgressFn progress_;
  RangeFn range_;
  std::vector<bool> chunk_final_;  // with a RangeFn: chunks whose entries are final
  uint64_t ranged_ = 0;            // chunks handed to the RangeFn so far
  DoneFn done_;
  State state_ = State::Idle;
  bool cancel_requested_ = false;
  bool orphaned_ = false;

  // Written by prepare() on the pool, read by the loop after prepare_done.
  uv_work_t prepare_req_{};
  Status prepare_status_;
  UniqueFd fd_;
  uint64_t size_ = 0;
  uint64_t chunks_ = 0;
  std::vector<uint64_t> has_data_;
  BlockIndex index_;
  BlockIndex* into_ = nullptr;    // scan_file_into's index, filled in place of index_
  BlockIndex* target_ = nullptr;  // into_ or &index_

  BlockEntry* entries_ = nullptr;
  std::vector<std::unique_ptr<Slot>> slots_;
  uint64_t next_chunk_ = 0;
  uint32_t in_flight_ = 0;
  Status error_;
  ScanStats stats_;
  bool reported_ = false;
  uint64_t last_reported_ = 0;
};

DiskScanner::DiskScanner(uv_loop_t* loop, std::string path, ScanOptions options)
    : impl_(std::make_unique<Impl>(loop, std::move(path), options)) {}

DiskScanner::~DiskScanner() {
  if (impl_ && impl_->running()) {
    impl_->orphan();
    (void)impl_.release();  // the Impl frees itself once its work has drained
  }
}

Status DiskScanner::start(ProgressFn progress, DoneFn done) {
  return impl_->start(std::move(progress), std::move(done));
}

void DiskScanner::on_range(RangeFn fn) { impl_->set_range_fn(std::move(fn)); }

void DiskScanner::cancel() { impl_->cancel(); }

bool DiskScanner::running() const { return impl_->running(); }

const ScanStats& DiskScanner::stats() const { return impl_->stats(); }

namespace {

Result<BlockIndex> scan_to_end(const std::string& path, const ScanOptions& options, ScanStats* stats,
                               DiskScanner::RangeFn on_range, const std::function<void(DiskScanner&)>& setup) {
  uv_loop_t loop;
  const int rc = uv_loop_init(&loop);
  if (rc != 0) return Status::Failed(std::string("uv_loop_init: ") + uv_strerror(rc));
  std::optional<Result<BlockIndex>> out;
  {
    DiskScanner scanner(&loop, path, options);
    if (on_range) scanner.on_range(std::move(on_range));
    if (setup) setup(scanner);
    Status st = scanner.start(nullptr, [&](Result<BlockIndex> r, bool) { out.emplace(std::move(r)); });
    if (st.ok()) uv_run(&loop, UV_RUN_DEFAULT);
    if (stats != nullptr) *stats = scanner.stats();
    if (!st.ok()) out.emplace(std::move(st));
  }
  uv_loop_close(&loop);
  return std::move(*out);
}

}  // namespace

Result<BlockIndex> scan_file(const std::string& path, const ScanOptions& options, ScanStats* stats,
                             DiskScanner::RangeFn on_range) {
  return scan_to_end(path, options, stats, std::move(on_range), {});
}

Status scan_file_into(const std::string& path, BlockIndex& into, const ScanOptions& options, ScanStats* stats,
                      DiskScanner::RangeFn on_range) {
  return scan_to_end(path, options, stats, std::move(on_range),
                     [&into](DiskScanner& scanner) { scanner.impl_->set_target(&into); })
      .status();
}

}  // namespace vmrepl
