// Copying a replica image to a new disk without reading what need not be read: a reflink
// clone (ioctl FICLONE: shared extents, copy-on-write, O(1) data) where the filesystem offers
// one, else a sparse-aware copy (copy_file_range over the data extents found with
// SEEK_DATA/SEEK_HOLE, so holes stay holes and the kernel moves the bytes). Used to
// materialize a recovery point (DESIGN.md, Failover) while the replica store stays intact.
//
// Thread-safety: free functions, callable from any thread; the caller keeps the source from
// being written while a copy runs.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/model/status.h"

namespace vmrepl {

enum class CopyMethod : uint8_t {
  Reflink = 1,     // FICLONE: the copy shares the source's extents
  SparseCopy = 2,  // data extents copied, holes left as holes
};

// "reflink" / "sparse-copy".
std::string_view copy_method_name(CopyMethod m);

struct FileCopy {
  CopyMethod method = CopyMethod::SparseCopy;
  uint64_t bytes_copied = 0;  // data bytes moved by the sparse copy; 0 for a reflink
};

// Makes `dst_fd` (a regular file open for writing) an exact copy of the `size`-byte file
// `src_fd`: truncated to 0, then cloned, or else sized to `size` and its data extents
// copied. A clone that the filesystem cannot make (other filesystem, no reflink support) falls
// back to the copy; other errors are returned. Nothing is fsynced.
Result<FileCopy> clone_or_copy(int src_fd, int dst_fd, uint64_t size);

// The sparse copy alone (no clone attempt): `dst_fd` is truncated and sized to `size`.
Result<FileCopy> sparse_copy(int src_fd, int dst_fd, uint64_t size);

}  // namespace vmrepl
