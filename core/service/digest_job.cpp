#include "core/service/digest_job.h"

#include <memory>

#include "core/blocks/disk_scanner.h"
#include "core/blocks/merkle.h"
#include "core/settings/json.h"

namespace vmrepl {

std::string index_path_for(const std::string& image_path) {
  std::string p = image_path;
  if (p.size() > 4 && p.compare(p.size() - 4, 4, ".img") == 0) p.resize(p.size() - 4);
  return p + ".idx";
}

std::string job_record_json(const Instance& job) { return encode_json(job); }

namespace {

// State shared by the steps of one digest; lives until the job finishes.
struct DigestRun : std::enable_shared_from_this<DigestRun> {
  EventLoop* loop;
  DigestJob::Params params;
  JobContext ctx;
  size_t disk = 0;
  uint64_t bytes_before = 0;  // disk sizes of the disks already done
  uint64_t bytes_total = 0;
  std::unique_ptr<DiskScanner> scanner;
  std::vector<std::string> disk_roots;
  std::vector<BlockHash> root_hashes;
  uint64_t block_count = 0, zero_blocks = 0, bytes_read = 0;

  DigestRun(EventLoop* l, DigestJob::Params p, JobContext c) : loop(l), params(std::move(p)), ctx(std::move(c)) {}

  void next_disk() {
    if (ctx.cancelled()) return finish(Status::Failed("digest of " + params.vm.name + " cancelled"));
    if (disk == params.vm.disks.size()) return complete();
    const DiskRecord& d = params.vm.disks[disk];
    ctx.phase("hashing disk " + std::to_string(disk));
    ScanOptions so;
    so.algorithm = params.algorithm;
    so.block_size = params.block_size;
    so.chunk_size = std::max<uint32_t>(params.block_size, 4u << 20);
    scanner = std::make_unique<DiskScanner>(loop->uv(), d.path, so);
    auto self = shared_from_this();
    Status st = scanner->start(
        [self](uint64_t done, uint64_t) { self->ctx.progress(self->bytes_before + done, self->bytes_total); },
        [self](Result<BlockIndex> r, bool cancelled) { self->disk_scanned(std::move(r), cancelled); });
    if (!st.ok()) finish(st.Annotate("disk " + std::to_string(disk)));
  }

  void disk_scanned(Result<BlockIndex> r, bool cancelled) {
    auto keep = shared_from_this();  // the callback that holds us dies with the scanner
    const ScanStats stats = scanner->stats();
    // The scanner may be destroyed from inside its done callback.
    scanner.reset();
    if (cancelled) return finish(Status::Failed("digest of " + params.vm.name + " cancelled"));
    if (!r) return finish(r.status().Annotate("disk " + std::to_string(disk)));
    bytes_read += stats.bytes_read;
    zero_blocks += stats.zero_blocks;
    block_count += r->block_count();
    // Merkle build and index save touch every entry and fsync: thread-pool work.
    struct Work {
      uv_work_t req;
      std::shared_ptr<DigestRun> run;
      BlockIndex index;
      std::string path;
      BlockHash root;
      Status saved;
    };
    auto* w = new Work{{}, shared_from_this(), std::move(r).value(),
                       index_path_for(params.vm.disks[disk].path), {}, {}};
    w->req.data = w;
    ctx.phase("saving index of disk " + std::to_string(disk));
    uv_queue_work(
        loop->uv(), &w->req,
        [](uv_work_t* req) {
          auto* wk = static_cast<Work*>(req->data);
          wk->root = merkle_root(wk->index);
          wk->saved = wk->index.save(wk->path);
        },
        [](uv_work_t* req, int) {
          std::unique_ptr<Work> wk(static_cast<Work*>(req->data));
          auto& run = *wk->run;
          if (!wk->saved.ok()) return run.finish(wk->saved.Annotate("saving the index of disk " + std::to_string(run.disk)));
          run.root_hashes.push_back(wk->root);
          run.disk_roots.push_back(wk->root.to_hex(run.params.algorithm));
          run.bytes_before += run.params.vm.disks[run.disk].size_bytes;
          ++run.disk;
          run.next_disk();
        });
  }

  void complete() {
    // The VM's root: H(root_0 || root_1 || ...) — one value to compare between replicas.
    std::vector<std::byte> cat;
    const size_t n = digest_size(params.algorithm);
    for (const auto& h : root_hashes)
      for (size_t k = 0; k < n; ++k) cat.push_back(static_cast<std::byte>(h.bytes[k]));
    BlockHash vm_root = hash_bytes(params.algorithm, cat);
    ctx.result(Property{"MerkleRoot", CimType::String, false, std::vector<Scalar>{vm_root.to_hex(params.algorithm)}});
    std::vector<Scalar> roots(disk_roots.begin(), disk_roots.end());
    ctx.result(Property{"DiskMerkleRoots", CimType::String, true, std::move(roots)});
    ctx.result(Property{"HashAlgorithm", CimType::String, false,
                        std::vector<Scalar>{std::string(hash_algorithm_name(params.algorithm))}});
    ctx.result(Property{"BlockSize", CimType::UInt32, false, std::vector<Scalar>{uint64_t{params.block_size}}});
    ctx.result(Property{"BlockCount", CimType::UInt64, false, std::vector<Scalar>{block_count}});
    ctx.result(Property{"ZeroBlocks", CimType::UInt64, false, std::vector<Scalar>{zero_blocks}});
    ctx.result(Property{"BytesRead", CimType::UInt64, false, std::vector<Scalar>{bytes_read}});
    ctx.result(Property{"VirtualSystemIdentifier", CimType::String, false, std::vector<Scalar>{params.vm.id.to_string()}});
    ctx.phase("done");
    finish(Status::OK());
  }

  void finish(Status st) {
    ctx.on_cancel(nullptr);
    ctx.finish(std::move(st));
  }
};

}  // namespace

void DigestJob::start(EventLoop* loop, const Params& params, const JobContext& ctx) {
  auto run = std::make_shared<DigestRun>(loop, params, ctx);
  for (const auto& d : params.vm.disks) run->bytes_total += d.size_bytes;
  std::weak_ptr<DigestRun> weak = run;
  ctx.on_cancel([weak] {
    if (auto r = weak.lock())
      if (r->scanner) r->scanner->cancel();
  });
  ctx.progress(0, run->bytes_total);
  run->next_disk();
}

}  // namespace vmrepl
