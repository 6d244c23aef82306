// Sparse-aware file I/O for disk images: find data extents with SEEK_DATA/SEEK_HOLE, read
// block ranges without touching holes, and write zero blocks as holes (punch-hole) rather
// than as zeros, so a sparse image stays sparse end to end (DESIGN.md: "sparse files kept
// sparse").
//
// Every call takes explicit offsets (pread/pwrite, lseek with SEEK_DATA/SEEK_HOLE, whose
// result does not depend on the current position), so one descriptor may be shared by
// several threads. Errors are Status values carrying the errno text (see posix_error.h).
//
// Thread-safety: free functions, callable from any thread; concurrent calls on the same
// descriptor are safe as long as their byte ranges do not overlap a concurrent write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/model/status.h"

namespace vmrepl {

// A byte range [offset, offset + length) of a file.
struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t end() const { return offset + length; }
  bool operator==(const Extent&) const = default;
};

// The first data extent that starts at or after `from` and before `end`, clipped to `end`;
// nullopt when [from, end) holds only holes. Where the filesystem does not support
// SEEK_DATA (EINVAL/EOPNOTSUPP), all of [from, end) is reported as data.
Result<std::optional<Extent>> next_data_extent(int fd, uint64_t from, uint64_t end);

// Every data extent in [begin, end), in order. The vector grows with the file's
// fragmentation; callers that must stay bounded iterate with next_data_extent instead.
Result<std::vector<Extent>> data_extents(int fd, uint64_t begin, uint64_t end);
// Every data extent of the file at `path`.
Result<std::vector<Extent>> data_extents(const std::string& path);

// Creates (or truncates) `path` as a file of `size` bytes that is one hole.
Status create_sparse_file(const std::string& path, uint64_t size);

// pread until `buf` is full, retrying EINTR and short reads. Reaching end of file first is
// an error ("unexpected end of file"), since callers read ranges they know to exist.
Status pread_full(int fd, std::span<std::byte> buf, uint64_t offset);
// pwrite until all of `buf` is written, retrying EINTR and short writes.
Status pwrite_full(int fd, std::span<const std::byte> buf, uint64_t offset);
// pwrite_full() of pieces that lie in different places, written back to back from `offset`
// with pwritev (any number of pieces; EINTR and short writes retried).
Status pwritev_full(int fd, std::span<const std::span<const std::byte>> pieces, uint64_t offset);

enum class HoleFill {
  Zero,  // hole blocks of the buffer are set to zero (the file's logical content)
  Skip,  // hole blocks are left as they are (a hasher that only needs the flags)
};

struct SparseRead {
  uint64_t bytes_read = 0;   // bytes actually read from the file
  uint64_t hole_blocks = 0;  // blocks that lay entirely in holes and were not read
};

// Reads [offset, offset + buf.size()) block by block: a block that lies entirely in a hole
// is never read; its is_hole[i] is set to 1 (else 0) and its bytes follow `fill`. Adjacent
// data blocks are read with one pread. The last block may be shorter than block_size.
// REQUIRES: block_size > 0; is_hole.size() >= ceil(buf.size() / block_size); the range lies
// within the file.
Result<SparseRead> read_blocks(int fd, uint64_t offset, std::span<std::byte> buf,
                               uint32_t block_size, std::span<uint8_t> is_hole,
                               HoleFill fill = HoleFill::Zero);

enum class BlockWrite {
  Data,  // the bytes were written
  Hole,  // the bytes were all zero: the range was punched into a hole instead
};

// Writes one block at `offset`. All-zero data is not written: the range becomes a hole with
// fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE), and the file is first extended
// (as a hole) when the block ends past its end. Where punch-hole is unsupported, the zeros
// are written and Data is returned.
Result<BlockWrite> write_block(int fd, uint64_t offset, std::span<const std::byte> data);

}  // namespace vmrepl
