// VmStore: the VMs of one host, kept under a host root folder.
//
//   <root>/catalog.db       the Catalog (VM and disk rows, jobs, settings)
//   <root>/vmrepl.lock      held (flock) by the one process that has the store open
//   <root>/vms/<GUID>/      one folder per VM, named by its GUID only (uppercase):
//       config.json {"format":1,"id","name","created_us","disks":[{"index","size_bytes","file"}]}
//       disk<N>.img         raw disk image N, created sparse (no block is ever written here)
//
// Names never become path components; every path the store builds is checked to stay inside
// the root, all file operations are relative to the opened vms/ directory and never follow a
// symlink, and nothing outside <root>/vms is ever deleted.
//
// Crash safety. The catalog is the truth; a VM folder exists only while, or just before, its
// catalog row does:
//   define: builds vms/.tmp-<GUID>/ (sparse disks, config.json; files fsynced), fsyncs it,
//           renames it to vms/<GUID>, fsyncs vms/, and only then inserts the VM and disk rows in
//           one transaction.
//   remove: deletes the rows in one transaction, then deletes the folder.
// So after a crash, open() finds at most: a vms/.tmp-<GUID> folder (a define that did not
// finish) or a vms/<GUID> folder without a row (a define that did not commit, or a remove that
// did not finish deleting). open() deletes both (they are listed by repaired()), plus a stale
// config.json.tmp inside a live VM folder. Entries of vms/ not named like the store's own are
// left alone.
//
// What open() refuses to repair:
//   - a lost catalog: when catalog.db is missing or empty while vms/ holds VM folders, open()
//     fails (Failed), creating no catalog and deleting nothing, rather than start an empty
//     catalog and treat every VM on the host as an orphan (the refusal repeats until fixed);
//   - damaged rows: a row whose folder, config.json or disk file is missing, is not a plain
//     directory/file, or has the wrong size is damage a crash of this code cannot cause. It is
//     reported, not hidden and never deleted: the VM stays in get()/list() with
//     VmRecord::integrity = Failed (32768) naming each problem, and remove() clears it. The
//     check runs on every get()/list(), so it is always current.
//
// One process per root: open() takes an exclusive lock on <root>/vmrepl.lock and answers
// SystemInUse (32774) while another VmStore (in any process) holds it.
//
// Thread-safety: every method may be called from any thread; one internal mutex serializes
// them. define() and remove() do blocking file I/O with fsync: call them from a worker thread,
// not from an event-loop thread. root() and repaired() never change after open().
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/guid.h"
#include "core/model/status.h"
#include "core/store/catalog.h"
#include "core/store/fs.h"
#include "core/store/vm_definition.h"

namespace vmrepl {

// Msvm_ComputerSystem.EnabledState values the store keeps (spec §5).
enum : uint16_t {
  kEnabledStateRunning = 2,
  kEnabledStateOff = 3,
};

struct DiskRecord {
  uint32_t index = 0;
  uint64_t size_bytes = 0;
  std::string path;  // absolute: <root>/vms/<GUID>/disk<N>.img
};

struct VmRecord {
  Guid id;           // Name
  std::string name;  // ElementName
  uint16_t enabled_state = kEnabledStateOff;
  int64_t created_us = 0;         // Unix epoch, microseconds
  uint64_t generation = 0;        // 1 at define; +1 at every change of the VM's row
  std::vector<DiskRecord> disks;  // by index
  std::string folder;             // absolute: <root>/vms/<GUID>
  Status integrity;               // OK, or Failed naming what is missing/wrong on disk
};

class VmStore {
 public:
  static constexpr mode_t kDirMode = 0700;
  static constexpr mode_t kFileMode = 0600;

  // Opens the store at `root`: an absolute path without NUL bytes (else InvalidParameter). Creates
  // the root (mode 0700, with missing parents), vms/ and the catalog as needed, takes the
  // root's lock (SystemInUse if held) and repairs what a crash left (see above).
  static Result<std::unique_ptr<VmStore>> open(const std::string& root);

  VmStore(const VmStore&) = delete;
  VmStore& operator=(const VmStore&) = delete;
  ~VmStore();

  // Defines a new VM, off, with sparse disks. InvalidParameter for a definition that breaks
  // the rules of vm_definition.h, or whose id or name is already used.
  Result<VmRecord> define(const VmDefinition& def);
  // Looks a VM up by GUID (any case, braces optional) or by name. FileNotFound when unknown.
  Result<VmRecord> get(std::string_view name_or_guid) const;
  // Every VM, by name.
  Result<std::vector<VmRecord>> list() const;
  // Removes a VM's catalog rows and then its folder. FileNotFound when unknown. A folder that
  // cannot be deleted gives Failed after the rows are gone; open() deletes it later. The power
  // state is not consulted: whether a running VM may be removed is the service's decision.
  Status remove(std::string_view name_or_guid);
  // Persists the VM's EnabledState: 2 (running) or 3 (off), else InvalidParameter; FileNotFound
  // when unknown. Setting the current state changes nothing (generation stays).
  Status set_enabled_state(const Guid& id, uint16_t state);

  Catalog& catalog() { return *catalog_; }
  const std::string& root() const { return root_; }
  // Entries of vms/ that open() deleted (leftover .tmp-<GUID> and orphan <GUID> folders).
  const std::vector<std::string>& repaired() const { return repaired_; }

 private:
  struct Lookup;

  VmStore(std::string root, fs::Fd root_fd, fs::Fd lock_fd, fs::Fd vms_fd,
          std::unique_ptr<Catalog> catalog);

  Status repair();
  // The VMs matching `which` (all when null), integrity checked.
  Result<std::vector<VmRecord>> load(const Lookup* which) const;
  // load() of one VM; FileNotFound naming the look-up when there is none.
  Result<VmRecord> find(std::string_view name_or_guid) const;
  // Sets vm.integrity from `problems` (found in its rows) and what is on disk.
  void check_files(VmRecord& vm, std::vector<std::string> problems) const;
  const std::string root_;
  const fs::Fd root_fd_;
  const fs::Fd lock_fd_;
  const fs::Fd vms_fd_;
  std::unique_ptr<Catalog> catalog_;
  std::vector<std::string> repaired_;
  mutable std::mutex mu_;
};

}  // namespace vmrepl
