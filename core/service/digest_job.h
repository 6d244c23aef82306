// DigestJob: the body of the ComputeDigest job — the BlockIndex and Merkle root of every
// disk of a VM, disk after disk, each scanned in parallel on the thread pool (DiskScanner).
//
// The index of disk N is saved next to the image as disk<N>.idx (atomically, on the thread
// pool), so later cycles and verifications start from it. JobType 113 (Consistency Checker
// run): the model has no digest job of its own and this is what a consistency check does.
//
// Thread-safety: start() and everything it schedules run on the loop thread.
#pragma once

#include <cstdint>

#include "core/blocks/hash.h"
#include "core/jobs/event_loop.h"
#include "core/jobs/job_manager.h"
#include "core/store/vm_store.h"

namespace vmrepl {

class DigestJob {
 public:
  struct Params {
    VmRecord vm;
    uint32_t block_size;
    HashAlgorithm algorithm;
  };
  // Runs the job to its end through ctx. Cancellable between and inside disks.
  static void start(EventLoop* loop, const Params& params, const JobContext& ctx);
};

// Path of the persisted index of a disk image: <image without .img>.idx.
std::string index_path_for(const std::string& image_path);

// A compact JSON record of a job instance for the catalog's history.
std::string job_record_json(const Instance& job);

}  // namespace vmrepl
