// Replicator: the replication engine of one host — both sides of every relationship.
//
// Primary side: CreateReplicationRelationship, StartReplication (network or seeded), interval
// and on-demand cycles, Resynchronize, suspend/resume, modify, remove. Replica side: a TCP
// listener whose sessions admit primaries through the authorization entries, create replica
// VMs under the entry's storage location, and apply cycles through the ReplicaStore (undo
// log, fsync, in-place write, commit) after checking that the primary's Merkle roots equal
// their own. With certificates (ReplicatorOptions::tls), relationships of AuthenticationType 2
// go over mutual TLS to the recovery server's second, TLS listener (tls_listen): the primary
// checks the server's certificate names the connection point, the server checks that the
// primary's names the host it claims and is the one the relationship names.
//
// Each job and each session runs as sequential code on a thread of its own; every byte moves
// through the service's libuv loop (Channel), and file work happens on those threads, never on
// the loop. A relationship is worked on by one thread at a time (a per-VM lock).
//
// Thread-safety: public methods may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/blocks/hash.h"
#include "core/engine/bandwidth.h"
#include "core/engine/channel.h"
#include "core/engine/relationship.h"
#include "core/engine/server_config.h"
#include "core/jobs/job_manager.h"
#include "core/net/tcp.h"
#include "core/net/tls.h"
#include "core/store/change_feed.h"
#include "core/store/cycle_history.h"
#include "core/store/replica_store.h"
#include "core/store/vm_store.h"

namespace vmrepl {

struct ReplicatorOptions {
  std::string host_name;
  std::string listen;                        // "host:port"; empty = no replication listener
  // Certificate authentication (AuthenticationType 2): this host's certificate, key and CA
  // (all or none), and the TLS listener "host:port" (empty = none) beside `listen`.
  TlsConfig tls;
  std::string tls_listen;
  std::map<std::string, std::string> hosts;  // connection point -> address (like /etc/hosts)
  int64_t cycle_interval_override_s = 0;     // tests: replaces ReplicationInterval
  uint32_t block_size = 64 * 1024;
  HashAlgorithm hash = HashAlgorithm::Xxh3_128;
  int zstd_level = 1;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds io_timeout{30000};
};

// A VM and the store (catalog) that holds it.
struct VmRef {
  VmStore* store = nullptr;
  VmRecord vm;
};

class Replicator {
 public:
  Replicator(EventLoop& loop, JobManager& jobs, VmStore& main_store, ReplicatorOptions opts);
  ~Replicator();  // REQUIRES: shutdown() ran
  // Opens the replica locations recorded in the catalog, starts the listener and the
  // interval timers of replicating relationships.
  Status start();
  // Stops the listener and timers, closes sessions, joins every thread.
  void shutdown();

  uint16_t listen_port() const;
  uint16_t tls_listen_port() const;  // 0 when there is no TLS listener
  const ReplicatorOptions& options() const { return opts_; }
  ServerConfig& server() { return *server_; }

  // Every store (the host root's, then each replica location's).
  std::vector<VmStore*> stores();
  // Looks a VM up in every store by GUID or name.
  Result<VmRef> find_vm(std::string_view name_or_guid);
  // Whether `host` is the other side of a relationship here.
  bool is_peer(const std::string& host);
  Result<std::optional<Relationship>> relationship(const VmRef& vm);
  Status put_relationship(const VmRef& vm, const Relationship& r,
                          Catalog::Durability durability = Catalog::Durability::Full);

  // ---- bandwidth limits (wire bytes/s; 0 = none) ----
  // Every batch a job sends (cycles, initial replication, resync, reverse) waits for the
  // VM's relationship limit, then for the service-wide one; a change applies at once, to the
  // transfers running too. `vm` = nullopt sets the service-wide limit (not persisted: the
  // daemon's configuration sets it at start); a VM's limit is stored with its relationship
  // and survives a restart. A limit is 0 or at least one block per second
  // (options().block_size bytes/s), so a receiver hears from the sender at least about every
  // second. FileNotFound for an unknown VM, InvalidState for a VM without a relationship.
  Status set_bandwidth_limit(std::optional<Guid> vm, uint64_t bytes_per_s);
  uint64_t bandwidth_limit(std::optional<Guid> vm) const;

  // ---- methods of the model (validation now; work in the returned job) ----
  Result<std::shared_ptr<Job>> create_relationship(const VmRef& vm, const ReplicationSettingData& rsd);
  Result<std::shared_ptr<Job>> start_replication(const VmRef& vm, uint16_t type);
  Result<std::shared_ptr<Job>> replicate_now(const VmRef& vm);
  Result<std::shared_ptr<Job>> resynchronize(const VmRef& vm);
  Result<std::shared_ptr<Job>> request_replication_state_change(const VmRef& vm, uint16_t requested);
  Result<std::shared_ptr<Job>> modify_settings(const VmRef& vm, const ReplicationSettingData& rsd);
  Result<std::shared_ptr<Job>> remove_relationship(const VmRef& vm);
  Result<std::shared_ptr<Job>> test_connection(const std::string& point, uint16_t port, uint16_t auth_type);
  Result<Instance> statistics(const VmRef& vm);
  Result<std::vector<Instance>> recovery_points(const VmRef& vm);

  // ---- failover and reverse (spec §8-10; failover.cpp) ----
  // RequestReplicationStateChange(4) on a primary: VM off, state 3; a final cycle recorded as
  // a PlannedFailover point, then state 4 with the VM locked against starting (JobType 100).
  Result<std::shared_ptr<Job>> prepare_failover(const VmRef& vm);
  // RequestReplicationStateChange(2) on an old primary after an unplanned failover: VM off;
  // mode 1 -> mode 2, state 2. What it last replicated stays: the reverse starts from it.
  Result<std::shared_ptr<Job>> make_replica(const VmRef& vm);
  // Replica: materializes point `point` (0 = the latest) as the VM's disks; 12 -> 5.
  Result<std::shared_ptr<Job>> initiate_failover(const VmRef& vm, uint64_t point);
  // Primary in 4: back to 3. Replica in 5: the failover disks are dropped; back to 3.
  Result<std::shared_ptr<Job>> revert_failover(const VmRef& vm);
  // Replica in 5: the failover point becomes the only one; 6.
  Result<std::shared_ptr<Job>> commit_failover(const VmRef& vm);
  // Replica in 3 or 7: a separate VM "<name> - Test" (mode 3) from a point, replication goes
  // on. The job's ResultingSystem property names it.
  Result<std::shared_ptr<Job>> test_replica_system(const VmRef& vm, uint64_t point);
  // Before DestroySystem of a test VM: its replica forgets it.
  Status forget_test_system(const VmRef& test_vm);
  // On the failed-over replica (mode 2, state 5 or 6): the old primary becomes its replica,
  // sent only the blocks that differ (spec §9). `rsd` is already validated by the caller.
  Result<std::shared_ptr<Job>> reverse(const VmRef& vm, const ReplicationSettingData& rsd, bool verify_full);

  // Replica side: the store of a replica VM (opened and recovered on first use).
  Result<ReplicaStore*> replica_store(const VmRef& vm);
  // The change feed of a VM (opened on first use): vmr_disk_mark_dirty lands here, durably,
  // in units of kFeedUnit bytes (a 4 KiB write marks 4 KiB, not its replication block).
  Result<ChangeFeed*> feed(const VmRef& vm);
  static constexpr uint32_t kFeedUnit = 4096;
  // The replication blocks a feed's units fall in.
  BlockSet feed_blocks(const BlockSet& units) const { return coarsen(units, kFeedUnit, opts_.block_size); }
  // The first mark attaches the feed: from then on cycles take blocks from it (after one
  // scan cycle that establishes it), instead of scanning.
  Status mark_dirty(const VmRef& vm, uint32_t disk, uint64_t offset, uint64_t length);
  bool feed_attached(const VmRecord& vm);
  // The changed-block lists of the acknowledged cycles of a primary VM.
  Result<CycleHistory*> history(const VmRef& vm);
  // Primary side: the Merkle roots, per disk, of the last acknowledged point.
  Result<std::vector<BlockHash>> acked_roots(const VmRef& vm);

  // Where the replica engine keeps a VM's files: <vm folder>/replica (replica side),
  // <vm folder>/repl (primary side).
  static std::string replica_folder(const VmRecord& vm) { return vm.folder + "/replica"; }
  static std::string primary_folder(const VmRecord& vm) { return vm.folder + "/repl"; }
  // Primary side: the index of what the replica holds (the last acknowledged point).
  static std::string acked_index_path(const VmRecord& vm, uint32_t disk);

  // 32773 unless `thumbprint` (SHA-1 or SHA-256) is this service's own TLS certificate.
  Status check_own_certificate(std::string_view thumbprint) const;
  // This service's certificate thumbprint ("sha1" or "sha256", uppercase hex); "" without TLS.
  std::string own_thumbprint(std::string_view algo) const;

 private:
  friend class ReplicaSession;
  // What a job's work sees: its cancellation and a way to report, from its own thread.
  struct ThreadCtx {
    Replicator* r;
    JobContext ctx;
    bool cancelled() const { return ctx.cancelled() || r->stopping_.load(); }
    void phase(std::string p) const;
    void progress(uint64_t done, uint64_t total) const;
    void rate(uint64_t bytes_per_s) const;
    void result(Property p) const;
  };
  using Work = std::function<Status(ThreadCtx&)>;

  std::shared_ptr<Job> spawn_job(JobType type, std::string name, bool cancellable, Work work);
  void spawn_thread(std::function<void()> fn);
  std::shared_ptr<std::mutex> vm_lock(const Guid& id);
  // The bucket of a VM's relationship limit (created on first use, unlimited).
  std::shared_ptr<TokenBucket> relationship_bucket(const Guid& vm);

  // Primary side.
  Status no_certificate() const;
  Result<std::shared_ptr<Channel>> connect_peer(const Relationship& r);
  Status hello(Channel& ch);
  enum class CycleKind { Initial, Seeded, Incremental, Resync };
  Status run_cycle(ThreadCtx& t, VmRef vm, CycleKind kind, ReplicationType rtype);
  // What send_blocks sends: the candidates' current bytes, skipping those equal to `base`
  // (every candidate when base is null).
  struct SendPlan {
    const VmRecord& vm;
    uint64_t cycle_id = 0;
    bool compress = false;
    const std::vector<BlockIndex>* base = nullptr;
    uint64_t progress_base = 0, progress_total = 0;
    // The feed's parts go as whole blocks: the retry of a cycle that sent ranges and failed.
    bool whole_blocks = false;
  };
  struct SendTally {
    explicit SendTally(size_t disks) : sets(disks) {}
    uint64_t blocks = 0, data_bytes = 0, ranges = 0;
    DiskBlockSets sets;  // what was sent
  };
  // Sends a cycle's blocks in batches under the bandwidth limits and reports the job's rate;
  // one per cycle, whatever finds the blocks (a feed, a scan, a reverse's divergence).
  class BlockSender {
   public:
    BlockSender(Replicator& r, ThreadCtx& t, Channel& ch, uint64_t& seq, const SendPlan& plan, SendTally& tally);
    // Its read buffer goes back to the loop's pool (a batch that turned out empty keeps it).
    ~BlockSender();
    BlockSender(const BlockSender&) = delete;
    BlockSender& operator=(const BlockSender&) = delete;
    // With a total, each batch moves the job's progress over the plan's progress range.
    void expect(uint64_t candidate_bytes) { to_send_ = candidate_bytes; }
    // The current bytes of disk d's candidates (read from fd), except those equal to the
    // plan's base; `now` takes the hash of what was read, which is what the replica computes.
    Status send(uint32_t d, int fd, BlockIndex& now, std::span<const uint64_t> cand);
    // The same for the change feed's parts (one per candidate block): a block of which only
    // part was written goes as that range when the peer takes ranges (the rest of it is the
    // base's), unless the plan says whole blocks.
    Status send(uint32_t d, int fd, BlockIndex& now, std::span<const DirtyBlock> parts);
    // An empty batch: the replica, waiting for the next one, knows the cycle is alive.
    Status keepalive(uint32_t d);
    // A finished transfer shows its average rate.
    void finish();

   private:
    template <class Item>  // uint64_t (a whole block) or DirtyBlock
    Status send_items(uint32_t d, int fd, BlockIndex& now, std::span<const Item> items);

    Replicator& r_;
    ThreadCtx& t_;
    Channel& ch_;
    uint64_t& seq_;
    const SendPlan& plan_;
    SendTally& tally_;
    std::shared_ptr<TokenBucket> rel_bucket_;
    uint64_t limit_ = 0;
    RateMeter meter_;
    RateMeter::Clock::time_point rate_reported_;
    uint64_t to_send_ = 0, done_bytes_ = 0;
    std::vector<uint8_t> buf_;
    std::vector<uint8_t> range_buf_;  // the ranges' bytes, which follow the blocks' in a batch
  };
  // Opens each disk once and sends its candidates (candidates[d] for disk d).
  Status send_blocks(ThreadCtx& t, Channel& ch, uint64_t& seq, const SendPlan& plan, std::vector<BlockIndex>& now,
                     const std::vector<std::vector<uint64_t>>& candidates, SendTally& tally);
  // The same with a cycle's sender, for candidate blocks (uint64_t) or the feed's parts
  // (DirtyBlock): lists[d] for disk d.
  template <class Item>
  Status send_blocks(BlockSender& sender, const VmRecord& vm, std::vector<BlockIndex>& now,
                     const std::vector<std::vector<Item>>& lists);
  // Scans disk `d` into now[d] and sends what differs from base[d] while the scan goes on.
  // link_failed: the failure is the channel's (a network failure), not the scan's.
  Status scan_and_send(ThreadCtx& t, BlockSender& sender, const VmRecord& vm, const std::vector<BlockIndex>& base,
                       std::vector<BlockIndex>& now, uint32_t d, uint64_t scanned_before, uint64_t progress_total,
                       bool& link_failed);

  // Failover internals (failover.cpp).
  struct ReverseRun;
  Status run_reverse(ThreadCtx& t, VmRef vm, const ReplicationSettingData& rsd, bool verify_full, bool force_merkle,
                     ReverseRun& out);
  // The index of the disks as materialized by the failover (the common point, new primary).
  static std::string failover_index_path(const VmRecord& vm, uint32_t disk);
  // Old primary: finishes or undoes a reverse it prepared (see failover.cpp).
  Status reverse_finalize(const VmRef& vm, uint64_t cycle);
  Status reverse_revert(const VmRef& vm);
  void resolve_reverse_later(const VmRef& vm);
  // New primary: tells the old primary a committed reverse it did not hear about.
  void tell_reverse_committed(const VmRef& vm);
  Status primary_vm_running_elsewhere(const VmRecord& vm, const Relationship& rel);
  Status drop_primary_tracking(const VmRef& vm);
  // Moves `path` (inside `vm_folder`) aside at once and deletes it on a thread of its own:
  // unlinking a large image can take most of a second (ext4 with discard), which a job need
  // not wait for. Leftovers of a crash are deleted by start().
  Status discard_later(const std::string& vm_folder, const std::string& path);
  void arm_timer(const Guid& vm_id, int64_t interval_s);
  void disarm_timer(const Guid& vm_id);
  void on_timer(const Guid& vm_id);

  // Replica side.
  ConnectionOptions server_connection_options() const;
  Status start_listener(const std::string& spec, std::shared_ptr<TlsContext> tls, std::unique_ptr<TcpListener>& out);
  void accept(std::unique_ptr<Connection> conn);
  Result<VmStore*> location_store(const std::string& location);

  EventLoop& loop_;
  JobManager& jobs_;
  VmStore& main_;
  ReplicatorOptions opts_;
  Guid service_id_;
  std::unique_ptr<ServerConfig> server_;
  std::unique_ptr<TcpListener> listener_;  // loop thread
  std::unique_ptr<TcpListener> tls_listener_;  // loop thread
  // Made by start() from opts_.tls; null without TLS.
  std::shared_ptr<TlsContext> tls_server_, tls_client_;

  std::mutex mu_;
  std::mutex locations_open_mu_;
  std::map<std::string, std::unique_ptr<VmStore>> locations_;
  std::map<Guid, std::shared_ptr<std::mutex>> vm_locks_;
  std::map<Guid, std::unique_ptr<ReplicaStore>> replica_stores_;
  std::map<Guid, std::unique_ptr<ChangeFeed>> feeds_;
  // VMs whose last cycle sent ranges and failed: the next one sends whole blocks. A range
  // stands on the rest of its block being unchanged since the view; a write outside it that
  // landed while the block was read makes the replica's root disagree, and whole blocks then
  // carry what was read.
  std::set<Guid> whole_blocks_next_;
  std::map<Guid, std::unique_ptr<CycleHistory>> histories_;
  std::map<Guid, uv_timer_t*> timers_;  // loop thread
  std::map<Guid, std::shared_ptr<Job>> cycle_jobs_;  // the running cycle job per VM
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::list<Worker> threads_;
  std::vector<std::weak_ptr<Channel>> sessions_;
  std::atomic<bool> stopping_{false};
  // Bandwidth: bw_mu_ guards the map and orders limit changes (catalog, then bucket).
  mutable std::mutex bw_mu_;
  TokenBucket service_bucket_;
  std::map<Guid, std::shared_ptr<TokenBucket>> relationship_buckets_;
};

}  // namespace vmrepl
