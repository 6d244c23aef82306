#include "core/store/vm_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

namespace vmrepl {

namespace {

using sqlite::Db;

constexpr std::string_view kVmsDir = "vms";
constexpr std::string_view kCatalogFile = "catalog.db";
constexpr std::string_view kLockFile = "vmrepl.lock";
constexpr std::string_view kConfigFile = "config.json";
constexpr std::string_view kConfigTmpFile =
    "config.json.tmp";  // what write_file_atomic leaves on a crash
constexpr std::string_view kTmpPrefix = ".tmp-";

std::string disk_file_name(uint32_t index) { return "disk" + std::to_string(index) + ".img"; }

int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

// True for the uppercase form Guid::to_string() gives: the only folder names the store makes.
bool is_canonical_guid(std::string_view s) {
  auto g = Guid::parse(s);
  return g.ok() && g->to_string() == s;
}

// <root>/<parts...>: each part must be one plain component, and the result must lie inside the
// root. The parts are our own (fixed names, GUIDs, disk file names from the catalog), so this
// never fails on a healthy store; it is the last guard against a tampered catalog.
Result<std::string> join_in_root(const std::string& root,
                                 std::initializer_list<std::string_view> parts) {
  std::string p = root;
  for (auto part : parts) {
    Status st = fs::check_component(part);
    if (!st.ok()) return Status::Failed("refusing path below " + root + ": " + st.message());
    if (p.back() != '/') p += '/';
    p += part;
  }
  if (!fs::is_inside(root, p))
    return Status::Failed("refusing path " + p + ": it is outside " + root);
  return p;
}

Result<std::string> normalize_root(const std::string& root) {
  if (root.find('\0') != std::string::npos)
    return Status::InvalidParameter("host root: contains a NUL byte");
  if (root.empty() || root.front() != '/')
    return Status::InvalidParameter("host root: '" + printable(root) + "' is not an absolute path");
  std::filesystem::path p(root);
  for (const auto& part : p) {
    // Lexical ".." handling disagrees with the kernel's once symlinks are involved: refuse it.
    if (part == "..")
      return Status::InvalidParameter("host root: '" + printable(root) + "' contains '..'");
  }
  std::string n = p.lexically_normal().string();
  while (n.size() > 1 && n.back() == '/') n.pop_back();
  return n;
}

std::string config_json(const Guid& id, const std::string& name, int64_t created_us,
                        const std::vector<uint64_t>& sizes) {
  nlohmann::ordered_json disks = nlohmann::ordered_json::array();
  for (size_t i = 0; i < sizes.size(); ++i) {
    disks.push_back({{"index", i},
                     {"size_bytes", sizes[i]},
                     {"file", disk_file_name(static_cast<uint32_t>(i))}});
  }
  nlohmann::ordered_json j = {{"format", 1},
                              {"id", id.to_string()},
                              {"name", name},
                              {"created_us", created_us},
                              {"disks", disks}};
  // The name is valid UTF-8 (checked); `replace` only makes dump() unable to throw.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

// No catalog (or an empty file) next to VM folders means the catalog was lost, not that the
// folders are orphans: opening would create an empty catalog and repair() would then delete
// every disk on the host. Checked before the catalog file is created, so a refusal is sticky.
Status check_catalog_not_lost(int root_fd, int vms_fd, const std::string& catalog_path) {
  const std::string name(kCatalogFile);
  struct stat st {};
  if (::fstatat(root_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) return fs::errno_status("stat " + catalog_path, errno);
  } else if (st.st_size > 0) {
    return Status::OK();
  }
  auto entries = fs::list_dir(vms_fd);
  if (!entries.ok()) return entries.status();
  const auto vm_folders = std::count_if(entries->begin(), entries->end(),
                                        [](const std::string& e) { return is_canonical_guid(e); });
  if (vm_folders == 0) return Status::OK();
  return Status::Failed(
      "catalog " + catalog_path + " is missing or empty, but vms/ holds " +
      std::to_string(vm_folders) +
      " VM folders; refusing to start over and delete them as orphans (restore the catalog, "
      "or move the folders away)");
}

}  // namespace

struct VmStore::Lookup {
  std::optional<std::string> id;  // canonical GUID text, when the look-up is by GUID
  std::string name;               // otherwise the ElementName
};

// --- open and repair ---

Result<std::unique_ptr<VmStore>> VmStore::open(const std::string& root_in) {
  auto normalized = normalize_root(root_in);
  if (!normalized.ok()) return normalized.status();
  const std::string root = *normalized;

  VMREPL_RETURN_IF_ERROR(fs::make_dirs(root, kDirMode).Annotate("host root"));
  auto root_fd = fs::open_dir(root);
  if (!root_fd.ok()) return root_fd.status().Annotate("host root");

  const std::string lock_name(kLockFile);
  fs::Fd lock_fd(::openat(root_fd->get(), lock_name.c_str(),
                          O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, kFileMode));
  if (!lock_fd) return fs::errno_status("open " + root + "/" + lock_name, errno);
  // The lock keeps a second store from repairing (deleting) this one's half-built folders.
  while (::flock(lock_fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK)
      return Status::SystemInUse("host root " + root + " is in use by another VmStore (lock " +
                                 root + "/" + lock_name + ")");
    return fs::errno_status("lock " + root + "/" + lock_name, errno);
  }

  VMREPL_RETURN_IF_ERROR(fs::make_dir_at(root_fd->get(), kVmsDir, kDirMode, true).Annotate(root));
  auto vms_fd = fs::open_dir_at(root_fd->get(), kVmsDir);
  if (!vms_fd.ok()) return vms_fd.status().Annotate(root);

  auto catalog_path = join_in_root(root, {kCatalogFile});
  if (!catalog_path.ok()) return catalog_path.status();
  VMREPL_RETURN_IF_ERROR(check_catalog_not_lost(root_fd->get(), vms_fd->get(), *catalog_path));
  auto catalog = Catalog::open(*catalog_path);
  if (!catalog.ok()) return catalog.status();
  // Make the new entries of the root (vms/, the lock, the catalog files) durable.
  VMREPL_RETURN_IF_ERROR(fs::fsync_fd(root_fd->get(), root));

  std::unique_ptr<VmStore> store(new VmStore(root, std::move(root_fd).value(), std::move(lock_fd),
                                             std::move(vms_fd).value(),
                                             std::move(catalog).value()));
  VMREPL_RETURN_IF_ERROR(store->repair().Annotate("repairing " + root + "/vms"));
  return store;
}

VmStore::VmStore(std::string root, fs::Fd root_fd, fs::Fd lock_fd, fs::Fd vms_fd,
                 std::unique_ptr<Catalog> catalog)
    : root_(std::move(root)),
      root_fd_(std::move(root_fd)),
      lock_fd_(std::move(lock_fd)),
      vms_fd_(std::move(vms_fd)),
      catalog_(std::move(catalog)) {}

VmStore::~VmStore() = default;

Status VmStore::repair() {
  std::set<std::string> ids;
  VMREPL_RETURN_IF_ERROR(catalog_->read([&](Db& db) -> Status {
    auto st = db.prepare("SELECT id FROM vms");
    if (!st.ok()) return st.status();
    for (;;) {
      auto row = st->step();
      if (!row.ok()) return row.status();
      if (!*row) return Status::OK();
      ids.insert(st->column_text(0));
    }
  }));

  auto entries = fs::list_dir(vms_fd_.get());
  if (!entries.ok()) return entries.status();
  bool removed = false;
  for (const auto& e : *entries) {
    const bool leftover = e.starts_with(kTmpPrefix) &&
                          is_canonical_guid(std::string_view(e).substr(kTmpPrefix.size()));
    const bool orphan = is_canonical_guid(e) && ids.count(e) == 0;
    if (leftover || orphan) {
      VMREPL_RETURN_IF_ERROR(fs::remove_tree_at(vms_fd_.get(), e));
      repaired_.push_back(e);
      removed = true;
    } else if (is_canonical_guid(e)) {
      // A live VM: drop a config.json.tmp an interrupted rewrite left. A folder that cannot be
      // opened is damage; load() reports it.
      auto dir = fs::open_dir_at(vms_fd_.get(), e);
      if (!dir.ok()) continue;
      const std::string tmp(kConfigTmpFile);
      if (::unlinkat(dir->get(), tmp.c_str(), 0) == 0) {
        VMREPL_RETURN_IF_ERROR(fs::fsync_fd(dir->get(), e));
      } else if (errno != ENOENT) {
        return fs::errno_status("unlink " + e + "/" + tmp, errno);
      }
    }
    // Anything else is not the store's: leave it alone.
  }
  if (removed) VMREPL_RETURN_IF_ERROR(fs::fsync_fd(vms_fd_.get(), "vms"));
  std::sort(repaired_.begin(), repaired_.end());
  return Status::OK();
}

// --- reading ---

Result<std::vector<VmRecord>> VmStore::load(const Lookup* which) const {
  std::vector<VmRecord> out;
  std::vector<std::vector<std::string>> problems;  // per VM, found in its rows
  Status s = catalog_->read([&](Db& db) -> Status {
    std::string sql = "SELECT id, name, enabled_state, created_us, generation FROM vms";
    if (which != nullptr) sql += which->id ? " WHERE id = ?1" : " WHERE name = ?1";
    sql += " ORDER BY name";
    auto vms = db.prepare(sql);
    if (!vms.ok()) return vms.status();
    if (which != nullptr)
      VMREPL_RETURN_IF_ERROR(vms->bind_text(1, which->id ? *which->id : which->name));
    auto disks =
        db.prepare("SELECT idx, size_bytes, file FROM disks WHERE vm_id = ?1 ORDER BY idx");
    if (!disks.ok()) return disks.status();
    for (;;) {
      auto row = vms->step();
      if (!row.ok()) return row.status();
      if (!*row) return Status::OK();
      const std::string id_text = vms->column_text(0);
      auto id = Guid::parse(id_text);
      if (!id.ok())
        return Status::Failed("catalog: VM row with malformed id '" + printable(id_text) + "'");
      VmRecord vm;
      std::vector<std::string> found;
      vm.id = *id;
      vm.name = vms->column_text(1);
      const int64_t state = vms->column_int(2);
      if (state < 0 || state > UINT16_MAX)
        found.push_back("catalog EnabledState " + std::to_string(state) + " is out of range");
      vm.enabled_state = static_cast<uint16_t>(state);
      vm.created_us = vms->column_int(3);
      vm.generation = static_cast<uint64_t>(vms->column_int(4));
      auto folder = join_in_root(root_, {kVmsDir, id_text});
      if (!folder.ok()) return folder.status();
      vm.folder = *folder;

      VMREPL_RETURN_IF_ERROR(disks->reset());
      VMREPL_RETURN_IF_ERROR(disks->bind_text(1, id_text));
      for (;;) {
        auto drow = disks->step();
        if (!drow.ok()) return drow.status();
        if (!*drow) break;
        DiskRecord d;
        d.index = static_cast<uint32_t>(disks->column_int(0));
        d.size_bytes = static_cast<uint64_t>(disks->column_int(1));
        const std::string file = disks->column_text(2);
        auto path = join_in_root(root_, {kVmsDir, id_text, file});
        if (path.ok()) {
          d.path = *path;
        } else {
          found.push_back("disk " + std::to_string(d.index) + ": catalog file name '" +
                          printable(file) + "' is not a plain file name");
        }
        vm.disks.push_back(std::move(d));
      }
      if (vm.disks.empty()) found.push_back("the catalog lists no disks");
      out.push_back(std::move(vm));
      problems.push_back(std::move(found));
    }
  });
  if (!s.ok()) return s;
  for (size_t i = 0; i < out.size(); ++i) check_files(out[i], std::move(problems[i]));
  return out;
}

void VmStore::check_files(VmRecord& vm, std::vector<std::string> problems) const {
  const std::string dir_name = vm.id.to_string();
  struct stat st {};
  if (::fstatat(vms_fd_.get(), dir_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    problems.push_back(errno == ENOENT ? "folder " + vm.folder + " is missing"
                                       : fs::errno_status("stat " + vm.folder, errno).message());
  } else if (!S_ISDIR(st.st_mode)) {
    problems.push_back(vm.folder + " is not a directory");
  } else if (auto dir = fs::open_dir_at(vms_fd_.get(), dir_name); !dir.ok()) {
    problems.push_back(dir.status().message());
  } else {
    auto check_file = [&](const std::string& name, const std::string& shown,
                          std::optional<uint64_t> size) {
      struct stat fst {};
      if (::fstatat(dir->get(), name.c_str(), &fst, AT_SYMLINK_NOFOLLOW) != 0) {
        problems.push_back(errno == ENOENT ? shown + " is missing"
                                           : fs::errno_status("stat " + shown, errno).message());
      } else if (!S_ISREG(fst.st_mode)) {
        problems.push_back(shown + " is not a regular file");
      } else if (size && static_cast<uint64_t>(fst.st_size) != *size) {
        problems.push_back(shown + " is " + std::to_string(fst.st_size) +
                           " bytes; the catalog says " + std::to_string(*size));
      }
    };
    check_file(std::string(kConfigFile), vm.folder + "/" + std::string(kConfigFile), std::nullopt);
    for (const auto& d : vm.disks) {
      if (d.path.empty()) continue;  // already reported: unusable name
      const std::string name = d.path.substr(d.path.rfind('/') + 1);
      check_file(name, "disk " + std::to_string(d.index) + " file " + d.path, d.size_bytes);
    }
  }
  if (problems.empty()) {
    vm.integrity = Status::OK();
    return;
  }
  std::string m = "VM '" + printable(vm.name) + "' (" + dir_name + "): ";
  for (size_t i = 0; i < problems.size(); ++i) m += (i ? "; " : "") + problems[i];
  vm.integrity = Status::Failed(std::move(m));
}

Result<VmRecord> VmStore::find(std::string_view name_or_guid) const {
  Lookup lookup;
  if (auto g = Guid::parse(name_or_guid); g.ok()) {
    lookup.id = g->to_string();
  } else {
    lookup.name = std::string(name_or_guid);
  }
  auto found = load(&lookup);
  if (!found.ok()) return found.status();
  if (found->empty()) {
    if (lookup.id) return Status::FileNotFound("no virtual machine with Name (GUID) " + *lookup.id);
    return Status::FileNotFound("no virtual machine with ElementName '" + printable(name_or_guid) +
                                "'");
  }
  return std::move(found->front());
}

Result<VmRecord> VmStore::get(std::string_view name_or_guid) const {
  std::lock_guard lock(mu_);
  return find(name_or_guid);
}

Result<std::vector<VmRecord>> VmStore::list() const {
  std::lock_guard lock(mu_);
  return load(nullptr);
}

// --- changing ---

Result<VmRecord> VmStore::define(const VmDefinition& def) {
  VMREPL_RETURN_IF_ERROR(validate_definition(def));
  std::lock_guard lock(mu_);
  const Guid id = def.id ? *def.id : Guid::generate();
  const std::string ids = id.to_string();

  // Friendly answers for the two collisions; the table's keys enforce them again below.
  Status collision = catalog_->read([&](Db& db) -> Status {
    auto by_id = db.prepare("SELECT name FROM vms WHERE id = ?1");
    if (!by_id.ok()) return by_id.status();
    VMREPL_RETURN_IF_ERROR(by_id->bind_text(1, ids));
    auto row = by_id->step();
    if (!row.ok()) return row.status();
    if (*row)
      return Status::InvalidParameter("Name: a virtual machine with GUID " + ids +
                                      " already exists ('" + printable(by_id->column_text(0)) +
                                      "')");
    auto by_name = db.prepare("SELECT id FROM vms WHERE name = ?1");
    if (!by_name.ok()) return by_name.status();
    VMREPL_RETURN_IF_ERROR(by_name->bind_text(1, def.name));
    row = by_name->step();
    if (!row.ok()) return row.status();
    if (*row)
      return Status::InvalidParameter("ElementName: a virtual machine named '" +
                                      printable(def.name) + "' already exists (" +
                                      by_name->column_text(0) + ")");
    return Status::OK();
  });
  if (!collision.ok()) return collision;

  const int vms = vms_fd_.get();
  const std::string tmp = std::string(kTmpPrefix) + ids;
  auto folder = join_in_root(root_, {kVmsDir, ids});
  if (!folder.ok()) return folder.status();
  // Leftovers with this GUID have no catalog row (checked above): a failed define or remove.
  VMREPL_RETURN_IF_ERROR(fs::remove_tree_at(vms, tmp));
  VMREPL_RETURN_IF_ERROR(fs::remove_tree_at(vms, ids));

  const int64_t created = now_us();
  auto build = [&]() -> Status {
    VMREPL_RETURN_IF_ERROR(fs::make_dir_at(vms, tmp, kDirMode, false));
    auto dir = fs::open_dir_at(vms, tmp);
    if (!dir.ok()) return dir.status();
    for (size_t i = 0; i < def.disk_sizes.size(); ++i) {
      VMREPL_RETURN_IF_ERROR(fs::create_sparse_file_at(
          dir->get(), disk_file_name(static_cast<uint32_t>(i)), def.disk_sizes[i], kFileMode));
    }
    VMREPL_RETURN_IF_ERROR(fs::write_file_atomic(
        dir->get(), kConfigFile, config_json(id, def.name, created, def.disk_sizes), kFileMode));
    VMREPL_RETURN_IF_ERROR(fs::fsync_fd(dir->get(), tmp));
    // NOREPLACE: never merge into or clobber an existing folder.
    if (::renameat2(vms, tmp.c_str(), vms, ids.c_str(), RENAME_NOREPLACE) != 0)
      return fs::errno_status("rename " + tmp + " to " + ids, errno);
    return fs::fsync_fd(vms, "vms");
  };
  if (Status st = build(); !st.ok()) {
    (void)fs::remove_tree_at(vms, tmp);  // best effort; open() deletes what remains
    return st.Annotate("defining VM '" + printable(def.name) + "' in " + *folder);
  }

  Status st = catalog_->transact([&](Db& db) -> Status {
    auto vm = db.prepare(
        "INSERT INTO vms(id, name, enabled_state, created_us, generation) VALUES(?1, ?2, ?3, ?4, "
        "1)");
    if (!vm.ok()) return vm.status();
    VMREPL_RETURN_IF_ERROR(vm->bind_text(1, ids));
    VMREPL_RETURN_IF_ERROR(vm->bind_text(2, def.name));
    VMREPL_RETURN_IF_ERROR(vm->bind_int(3, kEnabledStateOff));
    VMREPL_RETURN_IF_ERROR(vm->bind_int(4, created));
    VMREPL_RETURN_IF_ERROR(vm->run());
    auto disk =
        db.prepare("INSERT INTO disks(vm_id, idx, size_bytes, file) VALUES(?1, ?2, ?3, ?4)");
    if (!disk.ok()) return disk.status();
    for (size_t i = 0; i < def.disk_sizes.size(); ++i) {
      VMREPL_RETURN_IF_ERROR(disk->reset());
      VMREPL_RETURN_IF_ERROR(disk->bind_text(1, ids));
      VMREPL_RETURN_IF_ERROR(disk->bind_int(2, static_cast<int64_t>(i)));
      VMREPL_RETURN_IF_ERROR(disk->bind_int(3, static_cast<int64_t>(def.disk_sizes[i])));
      VMREPL_RETURN_IF_ERROR(disk->bind_text(4, disk_file_name(static_cast<uint32_t>(i))));
      VMREPL_RETURN_IF_ERROR(disk->run());
    }
    return Status::OK();
  });
  if (!st.ok()) {
    // Without its rows the folder is an orphan: delete it now (open() would, later).
    if (fs::remove_tree_at(vms, ids).ok()) (void)fs::fsync_fd(vms, "vms");
    return st.Annotate("defining VM '" + printable(def.name) + "'");
  }

  Lookup lookup{ids, {}};
  auto loaded = load(&lookup);
  if (!loaded.ok()) return loaded.status();
  if (loaded->empty()) return Status::Failed("VM " + ids + " vanished right after it was defined");
  return std::move(loaded->front());
}

Status VmStore::remove(std::string_view name_or_guid) {
  std::lock_guard lock(mu_);
  auto vm = find(name_or_guid);
  if (!vm.ok()) return vm.status();
  const std::string ids = vm->id.to_string();
  Status deleted = catalog_->transact([&](Db& db) -> Status {
    auto st = db.prepare("DELETE FROM vms WHERE id = ?1");  // disks go by ON DELETE CASCADE
    if (!st.ok()) return st.status();
    VMREPL_RETURN_IF_ERROR(st->bind_text(1, ids));
    VMREPL_RETURN_IF_ERROR(st->run());
    if (db.changes() != 1)
      return Status::FileNotFound("no virtual machine with Name (GUID) " + ids);
    return Status::OK();
  });
  if (!deleted.ok()) return deleted;
  Status st = fs::remove_tree_at(vms_fd_.get(), ids);
  if (st.ok()) st = fs::fsync_fd(vms_fd_.get(), "vms");
  if (!st.ok())
    return st.Annotate("VM '" + printable(vm->name) + "' left the catalog but its folder " +
                       vm->folder + " was not fully deleted (the next open deletes it)");
  return Status::OK();
}

Status VmStore::set_enabled_state(const Guid& id, uint16_t state) {
  if (state != kEnabledStateRunning && state != kEnabledStateOff)
    return Status::InvalidParameter("EnabledState: " + std::to_string(state) +
                                    " is not a state the store keeps (2 running, 3 off)");
  std::lock_guard lock(mu_);
  const std::string ids = id.to_string();
  return catalog_->transact([&](Db& db) -> Status {
    auto up = db.prepare(
        "UPDATE vms SET enabled_state = ?1, generation = generation + 1 WHERE id = ?2 AND "
        "enabled_state <> ?1");
    if (!up.ok()) return up.status();
    VMREPL_RETURN_IF_ERROR(up->bind_int(1, state));
    VMREPL_RETURN_IF_ERROR(up->bind_text(2, ids));
    VMREPL_RETURN_IF_ERROR(up->run());
    if (db.changes() == 1) return Status::OK();
    auto exists = db.prepare("SELECT 1 FROM vms WHERE id = ?1");
    if (!exists.ok()) return exists.status();
    VMREPL_RETURN_IF_ERROR(exists->bind_text(1, ids));
    auto row = exists->step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::FileNotFound("no virtual machine with Name (GUID) " + ids);
    return Status::OK();  // already in that state
  });
}

}  // namespace vmrepl
