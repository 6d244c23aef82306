#include "core/engine/replicator.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/blocks/disk_scanner.h"
#include "core/blocks/merkle.h"
#include "core/blocks/sparse_io.h"
#include "core/blocks/unique_fd.h"
#include "core/blocks/zero.h"
#include "core/model/cim_datetime.h"
#include "core/engine/engine_detail.h"
#include "core/engine/replica_session.h"
#include "core/protocol/block_batch.h"
#include "core/settings/json.h"

namespace vmrepl {

using json = nlohmann::json;
namespace proto = protocol;
using engine_detail::call;
using engine_detail::fetch_index;
using engine_detail::mkdirs;
using engine_detail::mode_text;
using engine_detail::now_us;
using engine_detail::state_text;

namespace {

constexpr std::string_view kLocationsKey = "replica_locations";
// 1 MiB batches of 64 KiB blocks: deep enough for the wire, small enough that the few
// buffers in flight stay warm in the pool (and a replica that keeps up applies each at once).
constexpr size_t kBlocksPerBatch = 16;

// The smaller of two limits, 0 meaning none.
uint64_t effective_limit(uint64_t a, uint64_t b) { return !a ? b : !b ? a : std::min(a, b); }

// Under a limit a batch holds at most the bucket's burst (at least one block): batches then
// follow each other about every TokenBucket::kBurst, never one large batch every few seconds.
size_t batch_blocks(uint64_t limit, uint32_t block_size) {
  if (!limit) return kBlocksPerBatch;
  const uint64_t burst = limit * static_cast<uint64_t>(TokenBucket::kBurst.count()) / 1000;
  return static_cast<size_t>(std::clamp<uint64_t>(burst / block_size, 1, kBlocksPerBatch));
}

struct TimerTag {
  Replicator* r;
  Guid id;
};

void close_timer(uv_handle_t* h) {
  delete static_cast<TimerTag*>(h->data);
  delete reinterpret_cast<uv_timer_t*>(h);
}

}  // namespace

void Replicator::ThreadCtx::phase(std::string p) const {
  // VMREPL_TRACE=1 prints each phase with its time: where a job spends it.
  static const bool trace = std::getenv("VMREPL_TRACE") != nullptr;
  if (trace)
    std::fprintf(stderr, "vmrepl: %.3f %s: %s\n", static_cast<double>(now_us() % 100000000) / 1e6,
                 ctx.job()->name().c_str(), p.c_str());
  auto c = ctx;
  r->loop_.post([c, p = std::move(p)] { c.phase(p); });
}

void Replicator::ThreadCtx::progress(uint64_t done, uint64_t total) const {
  auto c = ctx;
  r->loop_.post([c, done, total] { c.progress(done, total); });
}

void Replicator::ThreadCtx::rate(uint64_t bytes_per_s) const {
  auto c = ctx;
  r->loop_.post([c, bytes_per_s] { c.rate(bytes_per_s); });
}

void Replicator::ThreadCtx::result(Property p) const {
  auto c = ctx;
  r->loop_.post([c, p = std::move(p)] { c.result(p); });
}

std::string Replicator::acked_index_path(const VmRecord& vm, uint32_t disk) {
  return primary_folder(vm) + "/acked-disk" + std::to_string(disk) + ".idx";
}

Replicator::Replicator(EventLoop& loop, JobManager& jobs, VmStore& main_store, ReplicatorOptions opts)
    : loop_(loop), jobs_(jobs), main_(main_store), opts_(std::move(opts)), service_id_(Guid::generate()) {}

Replicator::~Replicator() { shutdown(); }

ConnectionOptions Replicator::server_connection_options() const {
  auto o = proto::connection_options();
  o.write_stall_timeout_ms = static_cast<uint64_t>(std::max<int64_t>(opts_.io_timeout.count() * 2, 1));
  return o;
}

// "host:port" (empty: none); with `tls`, the certificate listener.
Status Replicator::start_listener(const std::string& spec, std::shared_ptr<TlsContext> tls,
                                  std::unique_ptr<TcpListener>& out) {
  if (spec.empty()) return Status::OK();
  auto colon = spec.rfind(':');
  if (colon == std::string::npos) return Status::InvalidParameter("listen must be host:port (got '" + spec + "')");
  std::string host = spec.substr(0, colon);
  int port = std::atoi(spec.c_str() + colon + 1);
  if (port < 0 || port > 65535) return Status::InvalidParameter("listen port out of range");
  if (!tls && !is_loopback_address(host))
    return Status::InvalidParameter("listen: plaintext replication (AuthenticationType 1) listens on a loopback address "
                                    "only (got '" + host + "'); between hosts use tls_listen with a certificate");
  auto options = server_connection_options();
  options.tls = std::move(tls);
  return loop_.run_sync([&]() -> Status {
    auto l = TcpListener::listen(
        loop_.uv(), host, static_cast<uint16_t>(port), [this](std::unique_ptr<Connection> c) { accept(std::move(c)); },
        options);
    if (!l) return l.status();
    out = std::move(l).value();
    return Status::OK();
  });
}

Status Replicator::start() {
  auto cfg = ServerConfig::load(main_.catalog());
  if (!cfg) return cfg.status();
  server_ = std::move(cfg).value();
  // Replica locations in use, so their VMs are found after a restart.
  auto locs = main_.catalog().get_meta(kLocationsKey);
  if (!locs) return locs.status();
  if (*locs) {
    auto arr = json::parse(**locs, nullptr, false);
    if (arr.is_array())
      for (const auto& l : arr)
        if (l.is_string()) {
          auto st = location_store(l.get<std::string>());
          if (!st) return st.status().Annotate("replica location " + l.get<std::string>());
        }
  }
  if (!opts_.tls.certificate_file.empty() || !opts_.tls.key_file.empty() || !opts_.tls.ca_file.empty()) {
    auto srv = TlsContext::create(opts_.tls, /*server=*/true);
    if (!srv) return srv.status();
    auto cli = TlsContext::create(opts_.tls, /*server=*/false);
    if (!cli) return cli.status();
    tls_server_ = std::move(srv).value();
    tls_client_ = std::move(cli).value();
  }
  VMREPL_RETURN_IF_ERROR(start_listener(opts_.listen, nullptr, listener_));
  if (!opts_.tls_listen.empty()) {
    if (!tls_server_) return Status::InvalidParameter("tls_listen needs a TLS certificate, key and CA");
    VMREPL_RETURN_IF_ERROR(start_listener(opts_.tls_listen, tls_server_, tls_listener_));
  }
  // Interval cycles of the relationships that replicate from here.
  for (VmStore* s : stores()) {
    auto rels = RelationshipTable(s->catalog()).list();
    if (!rels) return rels.status();
    for (const auto& r : *rels) {
      if (r.bandwidth_limit) relationship_bucket(r.vm_id)->set_rate(r.bandwidth_limit);
      // What discard_later() had not finished deleting before a crash.
      if (auto vm = s->get(r.vm_id.to_string())) {
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(vm->folder, ec))
          if (e.path().filename().string().rfind("trash-", 0) == 0) {
            std::string p = e.path().string();
            spawn_thread([p] { engine_detail::remove_tree(p); });
          }
      }
      if (r.mode == ReplicationMode::Primary && r.state == ReplicationState::Replicating)
        arm_timer(r.vm_id, r.settings.ReplicationInterval);
      if (r.reverse_commit_pending) {
        auto vm = s->get(r.vm_id.to_string());
        if (vm) tell_reverse_committed(VmRef{s, std::move(vm).value()});
      }
      // A reverse this host was preparing as the old primary: undone if it was not yet
      // prepared; if it was, the new primary decides (asked in the background).
      if (!r.reverse_json.empty()) {
        auto vm = s->get(r.vm_id.to_string());
        if (!vm) return vm.status();
        VmRef ref{s, std::move(vm).value()};
        auto rec = json::parse(r.reverse_json, nullptr, false);
        if (!rec.is_discarded() && rec.value("phase", "") == "prepared") {
          resolve_reverse_later(ref);
        } else {
          Status undone = reverse_revert(ref);
          if (!undone.ok()) return undone.Annotate("undoing the unfinished reverse of " + r.vm_id.to_string());
        }
        continue;
      }
      // Replica images are recovered now, not at the next cycle: an apply cut by a crash is
      // rolled back before anything can read the image.
      if (r.mode == ReplicationMode::Replica) {
        auto vm = s->get(r.vm_id.to_string());
        if (!vm) return vm.status();
        auto rs = replica_store(VmRef{s, std::move(vm).value()});
        if (!rs) return rs.status().Annotate("recovering the replica of " + r.vm_id.to_string());
      }
    }
  }
  return Status::OK();
}

void Replicator::shutdown() {
  if (stopping_.exchange(true)) return;
  loop_.run_sync([this] {
    listener_.reset();
    tls_listener_.reset();
    for (auto& [id, t] : timers_) {
      uv_timer_stop(t);
      uv_close(reinterpret_cast<uv_handle_t*>(t), close_timer);
    }
    timers_.clear();
    return 0;
  });
  // Threads may still spawn threads (a timer's cycle): join until none is left.
  for (;;) {
    std::list<Worker> threads;
    {
      std::lock_guard<std::mutex> lk(mu_);
      for (auto& w : sessions_)
        if (auto ch = w.lock()) ch->close(Status::SystemNotAvailable("service shutting down"));
      threads.swap(threads_);
    }
    if (threads.empty()) break;
    for (auto& w : threads)
      if (w.thread.joinable()) w.thread.join();
  }
  std::lock_guard<std::mutex> lk(mu_);
  replica_stores_.clear();
}

uint16_t Replicator::listen_port() const {
  return const_cast<Replicator*>(this)->loop_.run_sync([this]() -> uint16_t { return listener_ ? listener_->port() : 0; });
}

uint16_t Replicator::tls_listen_port() const {
  return const_cast<Replicator*>(this)->loop_.run_sync(
      [this]() -> uint16_t { return tls_listener_ ? tls_listener_->port() : 0; });
}

std::vector<VmStore*> Replicator::stores() {
  std::vector<VmStore*> out{&main_};
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& [path, s] : locations_) out.push_back(s.get());
  return out;
}

Result<VmRef> Replicator::find_vm(std::string_view name_or_guid) {
  Status first;
  for (VmStore* s : stores()) {
    auto r = s->get(name_or_guid);
    if (r) return VmRef{s, std::move(r).value()};
    if (first.ok()) first = r.status();
    if (r.status().code() != Code::FileNotFound) return r.status();
  }
  return first;
}

bool Replicator::is_peer(const std::string& host) {
  for (VmStore* s : stores()) {
    auto rels = RelationshipTable(s->catalog()).list();
    if (!rels) continue;
    for (const auto& r : *rels)
      if (r.peer_host == host) return true;
  }
  return false;
}

Result<std::optional<Relationship>> Replicator::relationship(const VmRef& vm) {
  return RelationshipTable(vm.store->catalog()).get(vm.vm.id);
}

Status Replicator::put_relationship(const VmRef& vm, const Relationship& r, Catalog::Durability durability) {
  return RelationshipTable(vm.store->catalog()).put(r, durability);
}

Status Replicator::set_bandwidth_limit(std::optional<Guid> vm, uint64_t bytes_per_s) {
  if (bytes_per_s != 0 && (bytes_per_s < opts_.block_size || bytes_per_s > static_cast<uint64_t>(INT64_MAX)))
    return Status::InvalidParameter("bandwidth limit " + std::to_string(bytes_per_s) +
                                    " bytes/s: must be 0 (none) or at least one block per second (" +
                                    std::to_string(opts_.block_size) + ")");
  if (!vm) {
    service_bucket_.set_rate(bytes_per_s);
    return Status::OK();
  }
  auto ref = find_vm(vm->to_string());
  if (!ref) return ref.status();
  auto rel = relationship(*ref);
  if (!rel) return rel.status();
  if (!*rel || (*rel)->mode == ReplicationMode::None)
    return Status::InvalidState("VM " + ref->vm.name + " has no replication relationship (ReplicationMode 0, " +
                                "ReplicationState " + state_text(*rel ? (*rel)->state : ReplicationState::Disabled) +
                                "); a bandwidth limit of its own needs one");
  // Catalog first, then the bucket, both under bw_mu_: concurrent changes land in one order.
  std::lock_guard<std::mutex> lk(bw_mu_);
  Status st = RelationshipTable(ref->store->catalog()).set_bandwidth_limit(ref->vm.id, bytes_per_s);
  if (st.code() == Code::FileNotFound)
    return Status::InvalidState("the replication relationship of VM " + ref->vm.name + " was removed meanwhile");
  VMREPL_RETURN_IF_ERROR(st);
  auto& b = relationship_buckets_[ref->vm.id];
  if (!b) b = std::make_shared<TokenBucket>();
  b->set_rate(bytes_per_s);
  return Status::OK();
}

uint64_t Replicator::bandwidth_limit(std::optional<Guid> vm) const {
  if (!vm) return service_bucket_.rate();
  std::lock_guard<std::mutex> lk(bw_mu_);
  auto it = relationship_buckets_.find(*vm);
  return it == relationship_buckets_.end() ? 0 : it->second->rate();
}

std::shared_ptr<TokenBucket> Replicator::relationship_bucket(const Guid& vm) {
  std::lock_guard<std::mutex> lk(bw_mu_);
  auto& b = relationship_buckets_[vm];
  if (!b) b = std::make_shared<TokenBucket>();
  return b;
}

Result<VmStore*> Replicator::location_store(const std::string& location) {
  if (location == main_.root()) return &main_;
  // One opener at a time: two sessions creating their first replicas under the same location
  // must not both open it (the second would find it locked).
  std::lock_guard<std::mutex> open_lock(locations_open_mu_);
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = locations_.find(location);
    if (it != locations_.end()) return it->second.get();
  }
  auto s = VmStore::open(location);
  if (!s) return s.status();
  std::lock_guard<std::mutex> lk(mu_);
  auto& slot = locations_[location];
  if (!slot) slot = std::move(s).value();
  json arr = json::array();
  for (const auto& [p, st] : locations_) arr.push_back(p);
  VMREPL_RETURN_IF_ERROR(main_.catalog().put_meta(kLocationsKey, arr.dump()));
  return slot.get();
}

std::shared_ptr<std::mutex> Replicator::vm_lock(const Guid& id) {
  std::lock_guard<std::mutex> lk(mu_);
  auto& m = vm_locks_[id];
  if (!m) m = std::make_shared<std::mutex>();
  return m;
}

void Replicator::spawn_thread(std::function<void()> fn) {
  std::lock_guard<std::mutex> lk(mu_);
  // Join the threads that ended, so a long-running service does not accumulate them.
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = threads_.erase(it);
    } else {
      ++it;
    }
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  threads_.push_back(Worker{std::thread([fn = std::move(fn), done] {
                              fn();
                              done->store(true);
                            }),
                            done});
}

std::shared_ptr<Job> Replicator::spawn_job(JobType type, std::string name, bool cancellable, Work work) {
  std::string what = name;
  return jobs_.submit(type, std::move(name), cancellable, [this, work, what](const JobContext& ctx) {
    if (stopping_) return ctx.finish(Status::SystemNotAvailable("service shutting down"));
    spawn_thread([this, ctx, work, what] {
      ThreadCtx t{this, ctx};
      Status st;
      try {
        st = work(t);
      } catch (const std::bad_alloc&) {
        st = Status::OutOfMemory(what + ": out of memory");
      } catch (const std::exception& e) {
        st = Status::Failed(std::string("internal error: ") + e.what());
      }
      loop_.post([ctx, st] { ctx.finish(st); });
    });
  });
}

// ---- primary side -------------------------------------------------------------------------

Status Replicator::no_certificate() const {
  return Status::InvalidParameter(
      "AuthenticationType 2 (certificate) needs this service's TLS certificate: set the options tls_certificate, "
      "tls_key and tls_ca");
}

// A relationship's CertificateThumbPrint names the primary's own certificate (spec §3).
Status Replicator::check_own_certificate(std::string_view thumbprint) const {
  if (!tls_client_) return no_certificate();
  std::string own = tls_client_->certificate_thumbprint(thumbprint_algorithm(thumbprint));
  if (!same_thumbprint(thumbprint, own))
    return Status::InvalidParameter("CertificateThumbPrint " + std::string(thumbprint) +
                                    " is not this host's certificate (" + opts_.tls.certificate_file + ", " + own + ")");
  return Status::OK();
}

std::string Replicator::own_thumbprint(std::string_view algo) const {
  return tls_client_ ? tls_client_->certificate_thumbprint(algo) : std::string();
}

Result<std::shared_ptr<Channel>> Replicator::connect_peer(const Relationship& r) {
  std::string point = r.peer_host;
  auto it = opts_.hosts.find(point);
  std::string address = it != opts_.hosts.end() ? it->second : point;
  if (stopping_) return Status::SystemNotAvailable("service shutting down");
  // AuthenticationType 2: mutual TLS; the recovery server's certificate must name the
  // connection point (and chain to our CA); it checks ours against the relationship.
  bool certificate = r.settings.AuthenticationType && *r.settings.AuthenticationType == 2;
  if (certificate && !tls_client_) return no_certificate();
  auto ch = Channel::connect(loop_, address, r.peer_port, opts_.connect_timeout, opts_.io_timeout * 2,
                             certificate ? tls_client_ : nullptr, point);
  if (!ch) return ch.status().Annotate("recovery server " + point + ":" + std::to_string(r.peer_port));
  // Plaintext never leaves the host: nothing is sent to another address without TLS.
  if (!certificate && !is_loopback_address((*ch)->peer())) {
    (*ch)->close(Status::OK());
    return Status::AccessDenied("AuthenticationType 1 (plaintext) goes over loopback only; " + point + " is " +
                                (*ch)->peer() + ": use AuthenticationType 2 (certificate)");
  }
  {
    // Tracked so shutdown() can close it and wake a job blocked on it.
    std::lock_guard<std::mutex> lk(mu_);
    sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(), [](const auto& w) { return w.expired(); }),
                    sessions_.end());
    sessions_.push_back(*ch);
  }
  std::vector<std::string> caps{"cycles-v1", std::string(proto::kBlockRangesCapability)};
  // Our own listener, so a recovery server can reach us later (split-brain check, reverse).
  if (uint16_t port = listen_port()) caps.push_back("listen-port:" + std::to_string(port));
  if (uint16_t port = tls_listen_port()) caps.push_back("tls-listen-port:" + std::to_string(port));
  VMREPL_RETURN_IF_ERROR((*ch)->send(proto::Hello{proto::kProtocolVersion, service_id_, opts_.host_name, caps, {}}));
  auto reply = (*ch)->expect<proto::HelloReply>(opts_.io_timeout);
  if (!reply) return reply.status();
  if (!reply->accepted)
    return Status(static_cast<Code>(reply->error_code ? reply->error_code : 32768),
                  point + " refused this primary: " + reply->error_text);
  VMREPL_RETURN_IF_ERROR(proto::check_protocol_version(reply->protocol_version));
  (*ch)->set_peer_capabilities(std::move(reply->capabilities));
  return ch;
}


Status Replicator::run_cycle(ThreadCtx& t, VmRef vmref, CycleKind kind, ReplicationType rtype) {
  auto lock = vm_lock(vmref.vm.id);
  std::lock_guard<std::mutex> guard(*lock);
  auto fresh = vmref.store->get(vmref.vm.id.to_string());
  if (!fresh) return fresh.status();
  const VmRecord vm = std::move(fresh).value();
  // A disk file of another size than defined (or missing) is not replicated as it is.
  if (!vm.integrity.ok()) return vm.integrity;
  auto relr = relationship(vmref);
  if (!relr) return relr.status();
  if (!*relr) return Status::InvalidState("VM " + vm.name + " has no replication relationship");
  Relationship rel = **relr;
  // The state may have changed since the job was accepted (a suspend, a removal).
  {
    const ReplicationState want = kind == CycleKind::Incremental ? ReplicationState::Replicating
                                  : kind == CycleKind::Resync   ? ReplicationState::Resynchronizing
                                                                : ReplicationState::WaitingToCompleteInitialReplication;
    if (rel.mode != ReplicationMode::Primary || rel.state != want)
      return Status::InvalidState("VM " + vm.name + " is now in ReplicationState " + state_text(rel.state) +
                                  "; this cycle needs " + state_text(want));
  }
  const int64_t started = now_us();
  const size_t nd = vm.disks.size();
  VMREPL_RETURN_IF_ERROR(mkdirs(primary_folder(vm)));

  t.phase("connecting");
  auto chr = connect_peer(rel);
  if (!chr) {
    rel.stats.network_failure_count++;
    rel.stats.failure_count++;
    rel.health = ReplicationHealth::Warning;
    rel.health_text = chr.status().message();
    put_relationship(vmref, rel);
    return chr.status();
  }
  Channel& ch = **chr;
  // The link failed after the connect (cut, peer gone or silent): counted like a failed
  // connect, and reported as the model's 32777 (a write stall or a silent peer is a Timeout
  // inside the engine).
  auto network_failure = [&](Status why) -> Status {
    if (t.cancelled()) return why;
    if (why.code() == Code::Timeout) why = Status::SystemNotAvailable(why.message());
    if (why.code() == Code::SystemNotAvailable) rel.stats.network_failure_count++;
    rel.stats.failure_count++;
    rel.health = ReplicationHealth::Warning;
    rel.health_text = why.message();
    put_relationship(vmref, rel);
    return why;
  };
  uint64_t seq = 0;
  auto st = call(ch, ++seq, "status", {{"vm_id", vm.id.to_string()}}, opts_.io_timeout);
  if (!st) return network_failure(st.status());
  uint64_t latest = st->value("latest", uint64_t{0});
  const uint64_t cycle_id = std::max(rel.last_cycle, latest) + 1;
  const uint32_t bs = opts_.block_size;

  // A VM whose writes are reported (vmr_disk_mark_dirty) has a change feed; this cycle takes
  // its epoch, and writes marked from now on belong to the next one. Other VMs are scanned.
  ChangeFeed* cf = nullptr;
  if (feed_attached(vm)) {
    auto feedr = feed(vmref);
    if (!feedr) return feedr.status();
    cf = *feedr;
  }
  FeedCycle fc;
  fc.scan_required = true;
  if (cf) {
    auto r = cf->begin_cycle();
    if (!r) return r.status();
    fc = std::move(r).value();
  }
  // Any failure below gives the epoch's blocks back to the feed, so nothing is lost.
  struct AbortEpoch {
    ChangeFeed* f;
    uint64_t e;
    bool armed = true;
    ~AbortEpoch() {
      if (f && armed) f->abort_cycle(e);
    }
  } abort_epoch{cf, fc.epoch};
  // After a reverse the replica already holds our last acknowledged point: an initial
  // replication (network or seeded) then sends only what changed since.
  bool from_common = false;
  if (kind == CycleKind::Initial || kind == CycleKind::Seeded) {
    from_common = rel.last_cycle > 0 && latest == rel.last_cycle;
    for (uint32_t d = 0; d < nd && from_common; ++d)
      from_common = ::access(acked_index_path(vm, d).c_str(), R_OK) == 0;
    if (from_common) kind = CycleKind::Initial;
  }
  const bool use_feed = cf && (kind == CycleKind::Incremental || from_common) && !fc.scan_required;

  // What the replica holds (base) is settled for every disk before the cycle begins; what we
  // hold now comes from the feed, or from a scan that runs while its changes are sent.
  std::vector<BlockIndex> base(nd), now(nd);
  std::vector<std::vector<DirtyBlock>> parts(nd);  // from the feed: the candidates, with the bytes written
  std::vector<uint8_t> scanned_disk(nd, 0);
  uint64_t total_bytes = 0;
  for (const auto& d : vm.disks) total_bytes += d.size_bytes;
  if (kind == CycleKind::Seeded) {
    auto r = call(ch, ++seq, "adopt_seed", {{"vm_id", vm.id.to_string()}}, opts_.io_timeout * 20);
    if (!r) return r.status().Annotate("seeding from the copy on the recovery server");
  }
  // The index of the last acknowledged point, if it describes this disk as it is defined (an
  // index of another geometry is as unusable as a missing one).
  auto load_acked = [&](size_t d) -> Result<BlockIndex> {
    auto b = BlockIndex::load(acked_index_path(vm, static_cast<uint32_t>(d)));
    if (!b) return b;
    if (b->algorithm() != opts_.hash || b->block_size() != bs || b->disk_size() != vm.disks[d].size_bytes)
      return Status::Failed("the acknowledged index of disk " + std::to_string(d) + " describes " +
                            std::to_string(b->disk_size()) + " bytes in blocks of " + std::to_string(b->block_size()) +
                            "; the disk is " + std::to_string(vm.disks[d].size_bytes) + " bytes in blocks of " +
                            std::to_string(bs));
    return b;
  };
  for (size_t d = 0; d < nd; ++d) {
    if (t.cancelled()) return Status::Failed("cycle cancelled");
    t.phase("comparing disk " + std::to_string(d));
    if (use_feed) {
      // O(changed): the last acknowledged index plus the blocks the feed recorded.
      auto b = load_acked(d);
      if (b) {
        base[d] = std::move(b).value();
        now[d] = base[d].clone();
        parts[d] = dirty_blocks(fc.blocks[d], kFeedUnit, bs, vm.disks[d].size_bytes);
        continue;
      }
      // Without the acknowledged index the feed alone cannot say what the replica holds.
    }
    scanned_disk[d] = 1;
    if (kind == CycleKind::Initial && from_common) {
      auto b = load_acked(d);
      if (!b) return b.status();
      base[d] = std::move(b).value();
    } else if (kind == CycleKind::Initial) {
      auto z = BlockIndex::create(opts_.hash, bs, vm.disks[d].size_bytes);
      if (!z) return z.status();
      base[d] = std::move(z).value();
    } else if (kind == CycleKind::Incremental) {
      auto b = load_acked(d);
      if (!b) {
        // Without the index of the last acknowledged point no delta can be trusted.
        rel.state = ReplicationState::WaitingToStartResynchronization;
        rel.health = ReplicationHealth::Critical;
        rel.health_text = "resynchronization required: " + b.status().message();
        put_relationship(vmref, rel);
        disarm_timer(vm.id);
        return Status::InvalidState("resynchronization required (state 9): " + b.status().message());
      }
      base[d] = std::move(b).value();
    } else {
      // A resync compares the disks as they are: the replica re-reads its image rather than
      // trusting its saved index (something may have written to it).
      auto b = fetch_index(ch, seq, "index",
                           {{"vm_id", vm.id.to_string()}, {"disk", d}, {"rescan", kind == CycleKind::Resync}},
                           opts_.hash, bs, vm.disks[d].size_bytes, opts_.io_timeout * 20);
      if (!b) return b.status().Annotate("index of the replica's disk " + std::to_string(d));
      base[d] = std::move(b).value();
    }
    auto n = BlockIndex::create(opts_.hash, bs, vm.disks[d].size_bytes);
    if (!n) return n.status();
    now[d] = std::move(n).value();
  }

  // Send.
  t.phase("sending");
  const bool compress = rel.settings.CompressionEnabled.value_or(false);
  proto::CycleBegin begin;
  begin.seq = ++seq;
  begin.vm_id = vm.id;
  begin.cycle_id = cycle_id;
  begin.point_type = to_number(rtype == ReplicationType::Planned ? RecoveryPointType::PlannedFailover
                                                                 : RecoveryPointType::Standard);
  begin.full = kind != CycleKind::Incremental && !from_common;
  for (const auto& d : vm.disks) begin.disk_sizes.push_back(d.size_bytes);
  begin.block_size = bs;
  begin.compression = compress;
  begin.zstd_level = opts_.zstd_level;
  if (Status sent = ch.send(begin); !sent.ok()) return network_failure(engine_detail::peer_refusal(ch, sent));
  // The replica accepts the cycle (or refuses it, with the reason) before any batch goes.
  if (auto accepted = ch.expect<proto::Ack>(opts_.io_timeout * 20); !accepted)
    return network_failure(accepted.status());

  SendPlan plan{vm, cycle_id, compress, &base, total_bytes / 4, total_bytes};
  // Sets whether the VM's next cycle sends whole blocks; returns what it was. Ranges that went
  // out stand on the rest of their blocks until the replica acknowledges them: from the moment
  // they are sent until the ack, the flag is set, so any failure makes the retry send whole
  // blocks.
  auto set_whole_blocks_next = [&](bool on) {
    std::lock_guard<std::mutex> lk(mu_);
    const bool was = whole_blocks_next_.erase(vm.id) != 0;
    if (on) whole_blocks_next_.insert(vm.id);
    return was;
  };
  plan.whole_blocks = set_whole_blocks_next(false);
  SendTally tally(nd);
  BlockSender sender(*this, t, ch, seq, plan, tally);
  Status sent_parts = send_blocks(sender, vm, now, parts);
  if (tally.ranges != 0) set_whole_blocks_next(true);
  if (!sent_parts.ok()) return network_failure(engine_detail::peer_refusal(ch, sent_parts));
  uint64_t scanned = 0;
  for (size_t d = 0; d < nd; ++d) {
    if (scanned_disk[d]) {
      bool link_failed = false;
      Status sent = scan_and_send(t, sender, vm, base, now, static_cast<uint32_t>(d), scanned, total_bytes, link_failed);
      if (!sent.ok()) return link_failed ? network_failure(engine_detail::peer_refusal(ch, sent)) : sent;
    }
    scanned += vm.disks[d].size_bytes;
  }
  sender.finish();
  const uint64_t sent_blocks = tally.blocks, sent_data = tally.data_bytes;
  DiskBlockSets& sent_sets = tally.sets;
  proto::CycleEnd end;
  end.seq = ++seq;
  end.vm_id = vm.id;
  end.cycle_id = cycle_id;
  for (size_t d = 0; d < nd; ++d) end.disk_roots.push_back(merkle_root(now[d]));
  end.blocks_sent = sent_blocks;
  end.bytes_sent = ch.bytes_sent();
  if (Status sent = ch.send(end); !sent.ok()) return network_failure(engine_detail::peer_refusal(ch, sent));
  t.phase("waiting for the replica to apply");
  // While the replica applies, the new indexes and the cycle's changed-block list (kept for
  // RecoveryHistory cycles: a reverse needs them) are written and fsynced as temp files; they
  // replace the acknowledged ones, by a rename, only once it has committed.
  std::vector<BlockIndex::PendingSave> saves;
  for (size_t d = 0; d < nd; ++d) {
    auto ps = now[d].prepare_save(acked_index_path(vm, static_cast<uint32_t>(d)));
    if (!ps) return ps.status();
    saves.push_back(std::move(ps).value());
  }
  auto hist = history(vmref);
  if (!hist) return hist.status();
  auto list = (*hist)->prepare_put(cycle_id, sent_sets);
  if (!list) return list.status();
  // Pruned before this cycle's list is added, so a cycle that fails still leaves the
  // RecoveryHistory + 1 newest lists (what a reverse from the oldest point the replica may
  // hold needs); one that succeeds leaves one more until the next cycle prunes.
  VMREPL_RETURN_IF_ERROR((*hist)->prune(static_cast<size_t>(rel.settings.RecoveryHistory) + 1));
  auto ack = ch.expect<proto::Ack>(opts_.io_timeout * 10);
  if (!ack) return network_failure(ack.status());
  if (ack->code != 0) return Status(static_cast<Code>(ack->code), ack->text);

  // The replica committed: this is now the acknowledged point. Each step is durable before
  // the next, so a crash leaves a prefix of them done, and every prefix is safe: without the
  // new indexes the next cycle starts from the old ones and sends this one's blocks again
  // (the feed's epoch is not acknowledged yet, and the replica's latest point sets the cycle
  // id); without this cycle's list a reverse across it finds the list missing and resyncs by
  // Merkle tree; without the relationship's update the replica's latest point still counts.
  set_whole_blocks_next(false);
  t.phase("recording the acknowledged point");
  for (auto& ps : saves) VMREPL_RETURN_IF_ERROR(ps.commit());
  VMREPL_RETURN_IF_ERROR(list->commit());
  abort_epoch.armed = false;
  if (cf) VMREPL_RETURN_IF_ERROR(cf->ack_cycle(fc.epoch));
  const uint64_t wire = ch.bytes_sent() + ch.bytes_received();
  const int64_t finished = now_us();
  rel.last_cycle = cycle_id;
  rel.reverse_commit_pending = false;  // the old primary took this cycle: it knows
  rel.state = ReplicationState::Replicating;
  rel.health = ReplicationHealth::Ok;
  rel.health_text.clear();
  rel.last_replication_us = finished;
  rel.last_replication_type = rtype;
  if (!rel.stats.start_us) rel.stats.start_us = started;
  rel.stats.success_count++;
  rel.stats.replication_size += ch.bytes_sent();
  rel.stats.max_replication_size = std::max<uint64_t>(rel.stats.max_replication_size, ch.bytes_sent());
  uint32_t latency = static_cast<uint32_t>((finished - started) / 1000000);
  rel.stats.latency_s += latency;
  rel.stats.max_latency_s = std::max(rel.stats.max_latency_s, latency);
  rel.stats.pending_size = 0;
  // Ordered, not synced: losing it in a crash is one of the safe prefixes above, and the next
  // synced catalog change makes it durable.
  VMREPL_RETURN_IF_ERROR(put_relationship(vmref, rel, Catalog::Durability::Ordered));
  t.result(Property{"CycleId", CimType::UInt64, false, std::vector<Scalar>{cycle_id}});
  t.result(Property{"BlocksSent", CimType::UInt64, false, std::vector<Scalar>{sent_blocks}});
  t.result(Property{"DataBytesSent", CimType::UInt64, false, std::vector<Scalar>{sent_data}});
  t.result(Property{"WireBytesSent", CimType::UInt64, false, std::vector<Scalar>{ch.bytes_sent()}});
  t.result(Property{"WireBytes", CimType::UInt64, false, std::vector<Scalar>{wire}});
  t.result(Property{"ChangeSource", CimType::String, false,
                    std::vector<Scalar>{std::string(use_feed ? "change-feed" : "scan")}});
  std::vector<Scalar> roots;
  for (const auto& r : end.disk_roots) roots.emplace_back(r.to_hex(opts_.hash));
  t.result(Property{"DiskMerkleRoots", CimType::String, true, std::move(roots)});
  ch.close(Status::OK());
  return Status::OK();
}

Replicator::BlockSender::BlockSender(Replicator& r, ThreadCtx& t, Channel& ch, uint64_t& seq, const SendPlan& plan,
                                     SendTally& tally)
    : r_(r),
      t_(t),
      ch_(ch),
      seq_(seq),
      plan_(plan),
      tally_(tally),
      rel_bucket_(r.relationship_bucket(plan.vm.id)),
      limit_(effective_limit(rel_bucket_->rate(), r.service_bucket_.rate())),
      meter_(ch.bytes_sent()),
      rate_reported_(RateMeter::Clock::now()) {
  t_.result(Property{"BandwidthLimit", CimType::UInt64, false, std::vector<Scalar>{limit_}});
}

Replicator::BlockSender::~BlockSender() {
  if (buf_.capacity() != 0) ch_.give_buffer(std::move(buf_));
}

namespace {

// A candidate block as a part: all of it.
DirtyBlock as_part(uint64_t b, const BlockIndex& now) { return {b, 0, now.block_length(b)}; }
DirtyBlock as_part(const DirtyBlock& p, const BlockIndex&) { return p; }

}  // namespace

Status Replicator::BlockSender::send(uint32_t d, int fd, BlockIndex& now, std::span<const uint64_t> cand) {
  return send_items(d, fd, now, cand);
}

Status Replicator::BlockSender::send(uint32_t d, int fd, BlockIndex& now, std::span<const DirtyBlock> parts) {
  return send_items(d, fd, now, parts);
}

template <class Item>
Status Replicator::BlockSender::send_items(uint32_t d, int fd, BlockIndex& now, std::span<const Item> cand) {
  const uint32_t bs = r_.opts_.block_size;
  // A range stands on the base: only where the replica is known to hold it, and takes them.
  const bool ranges = !plan_.whole_blocks && plan_.base && ch_.peer_has(proto::kBlockRangesCapability);
  const proto::BatchGeometry geo{plan_.vm.disks[d].size_bytes, bs};
  const auto cancelled = [this] { return t_.cancelled(); };
  for (size_t i = 0, n = 0; i < cand.size(); i += n) {
    if (t_.cancelled()) return Status::Failed("cancelled");
    // Each batch waits for the relationship's limit, then the service's (a limit changed
    // meanwhile applies to the next batch, or at once to a wait in progress).
    if (const uint64_t l = effective_limit(rel_bucket_->rate(), r_.service_bucket_.rate()); l != limit_) {
      limit_ = l;
      t_.result(Property{"BandwidthLimit", CimType::UInt64, false, std::vector<Scalar>{limit_}});
    }
    n = std::min(cand.size() - i, batch_blocks(limit_, bs));
    // Blocks are read straight into a warm buffer of the pool, moved into the batch, and
    // the buffer goes back to the pool once the batch is encoded.
    if (buf_.capacity() < n * bs) buf_ = ch_.take_buffer(n * bs);
    proto::BlockBatch batch;
    batch.seq = ++seq_;
    batch.vm_id = plan_.vm.id;
    batch.cycle_id = plan_.cycle_id;
    batch.disk = d;
    buf_.clear();
    range_buf_.clear();
    for (size_t k = i; k < i + n; ++k) {
      const DirtyBlock part = as_part(cand[k], now);
      const uint64_t b = part.block;
      const uint32_t len = now.block_length(b);
      const size_t at = buf_.size();
      buf_.resize(at + len);
      std::span<std::byte> bytes(reinterpret_cast<std::byte*>(buf_.data() + at), len);
      Status rd = pread_full(fd, bytes, now.block_offset(b));
      if (!rd.ok()) return rd.Annotate("reading block " + std::to_string(b) + " of disk " + std::to_string(d));
      // The hash of what is sent is what the replica will compute: the roots agree even if
      // the disk changed since the scan.
      now.set_from_bytes(b, bytes);
      // Without a base (the receiver's content is unknown) every candidate is sent.
      if (plan_.base && now.entry(b) == (*plan_.base)[d].entry(b)) {
        buf_.resize(at);
        continue;
      }
      if (now.entry(b).is_zero()) {
        buf_.resize(at);
        batch.zero_blocks.push_back(b);
      } else if (ranges && (part.lo != 0 || part.hi != len)) {
        range_buf_.insert(range_buf_.end(), buf_.begin() + static_cast<std::ptrdiff_t>(at + part.lo),
                          buf_.begin() + static_cast<std::ptrdiff_t>(at + part.hi));
        buf_.resize(at);
        batch.ranges.push_back(proto::BlockRange{b, part.lo, part.hi - part.lo});
        ++tally_.ranges;
      } else {
        batch.data_blocks.push_back(b);
      }
      tally_.sets[d].insert(b, 1);
    }
    done_bytes_ += n * bs;
    if (batch.zero_blocks.empty() && batch.data_blocks.empty() && batch.ranges.empty()) continue;
    buf_.insert(buf_.end(), range_buf_.begin(), range_buf_.end());
    tally_.blocks += batch.zero_blocks.size() + batch.data_blocks.size() + batch.ranges.size();
    tally_.data_bytes += buf_.size();
    auto built = proto::build_batch(std::move(batch), std::move(buf_), geo, {plan_.compress, r_.opts_.zstd_level});
    buf_ = {};
    if (!built) return built.status();
    const uint64_t wire = proto::encoded_batch_bytes(*built);
    VMREPL_RETURN_IF_ERROR(rel_bucket_->acquire(wire, cancelled));
    VMREPL_RETURN_IF_ERROR(r_.service_bucket_.acquire(wire, cancelled));
    VMREPL_RETURN_IF_ERROR(ch_.send(proto::Message(std::move(built).value())));
    const auto sent_at = RateMeter::Clock::now();
    meter_.add(ch_.bytes_sent(), sent_at);
    if (sent_at - rate_reported_ >= TokenBucket::kBurst) {
      t_.rate(meter_.recent());
      rate_reported_ = sent_at;
    }
    if (to_send_) {
      const uint64_t span = plan_.progress_total - plan_.progress_base;
      const double frac = std::min(1.0, static_cast<double>(done_bytes_) / static_cast<double>(to_send_));
      t_.progress(plan_.progress_base + static_cast<uint64_t>(static_cast<double>(span) * frac), plan_.progress_total);
    }
  }
  return Status::OK();
}

Status Replicator::BlockSender::keepalive(uint32_t d) {
  proto::BlockBatch empty;
  empty.seq = ++seq_;
  empty.vm_id = plan_.vm.id;
  empty.cycle_id = plan_.cycle_id;
  empty.disk = d;
  return ch_.send(empty);
}

void Replicator::BlockSender::finish() {
  if (const uint64_t avg = meter_.average()) t_.rate(avg);
}

template <class Item>
Status Replicator::send_blocks(BlockSender& sender, const VmRecord& vm, std::vector<BlockIndex>& now,
                               const std::vector<std::vector<Item>>& lists) {
  uint64_t to_send = 0;
  for (const auto& l : lists) to_send += l.size() * uint64_t{opts_.block_size};
  sender.expect(to_send);
  for (size_t d = 0; d < vm.disks.size(); ++d) {
    if (lists[d].empty()) continue;
    UniqueFd fd(::open(vm.disks[d].path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return Status::Failed("cannot open " + vm.disks[d].path + ": " + std::strerror(errno));
    VMREPL_RETURN_IF_ERROR(sender.send(static_cast<uint32_t>(d), fd.get(), now[d], std::span<const Item>(lists[d])));
  }
  sender.expect(0);
  return Status::OK();
}

Status Replicator::send_blocks(ThreadCtx& t, Channel& ch, uint64_t& seq, const SendPlan& plan,
                               std::vector<BlockIndex>& now, const std::vector<std::vector<uint64_t>>& candidates,
                               SendTally& tally) {
  BlockSender sender(*this, t, ch, seq, plan, tally);
  VMREPL_RETURN_IF_ERROR(send_blocks(sender, plan.vm, now, candidates));
  sender.finish();
  return Status::OK();
}

// A scanned disk's changes go out while the rest of it is still being read: the scanner hands
// over each finished stretch of the disk in order, what differs from the base is batched and
// sent from inside that callback (the scan keeps a few chunks ahead meanwhile), so reading and
// sending overlap. A long stretch with nothing to send still sends an empty batch every 1/25
// of io_timeout (10 ms..2 s), so the replica, waiting for the next batch, does not time out.
Status Replicator::scan_and_send(ThreadCtx& t, BlockSender& sender, const VmRecord& vm,
                                 const std::vector<BlockIndex>& base, std::vector<BlockIndex>& now, uint32_t d,
                                 uint64_t scanned_before, uint64_t progress_total, bool& link_failed) {
  const auto keepalive = std::clamp<std::chrono::milliseconds>(opts_.io_timeout / 25, std::chrono::milliseconds(10),
                                                               std::chrono::milliseconds(2000));
  UniqueFd fd(::open(vm.disks[d].path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::Failed("cannot open " + vm.disks[d].path + ": " + std::strerror(errno));
  auto last_sent = std::chrono::steady_clock::now();
  std::vector<uint64_t> pending;
  Status failed;  // why the callback stopped the scan
  // Batches go out whole (kBlocksPerBatch), the rest when the disk is done.
  auto send_pending = [&](bool all) -> bool {
    if (pending.empty() || (!all && pending.size() < kBlocksPerBatch)) {
      if (!all && std::chrono::steady_clock::now() - last_sent >= keepalive) {
        failed = sender.keepalive(d);
        link_failed = !failed.ok();
        last_sent = std::chrono::steady_clock::now();
      }
      return failed.ok();
    }
    failed = sender.send(d, fd.get(), now[d], pending);
    link_failed = !failed.ok();
    pending.clear();
    last_sent = std::chrono::steady_clock::now();
    return failed.ok();
  };
  auto on_range = [&](uint64_t first, std::span<const BlockEntry> entries) -> bool {
    if (t.cancelled()) {
      failed = Status::Failed("cycle cancelled");
      return false;
    }
    // The entries are now[d]'s own (scan_file_into): compare them with the base.
    for (std::size_t i = 0; i < entries.size(); ++i)
      if (entries[i] != base[d].entry(first + i)) pending.push_back(first + i);
    const uint64_t done = scanned_before + (first + entries.size()) * uint64_t{now[d].block_size()};
    t.progress(std::min(done, progress_total), progress_total);
    return send_pending(false);
  };
  ScanOptions so;
  so.algorithm = opts_.hash;
  so.block_size = opts_.block_size;
  // now[d] is fresh from BlockIndex::create (run_cycle) and of the disk's defined size: the
  // scan fills it in place, and refuses a file of another size.
  Status scan = scan_file_into(vm.disks[d].path, now[d], so, nullptr, on_range);
  if (!failed.ok()) return failed;
  if (!scan.ok()) return scan.Annotate("disk " + std::to_string(d));
  if (!send_pending(true)) return failed;
  return Status::OK();
}

// ---- methods of the model -------------------------------------------------------------------

namespace {

Status wrong_state(const VmRecord& vm, const Relationship& r, std::string_view want) {
  return Status::InvalidState("VM " + vm.name + " is in ReplicationState " + state_text(r.state) + " (mode " +
                              mode_text(r.mode) + "); " + std::string(want));
}

}  // namespace

Result<std::shared_ptr<Job>> Replicator::create_relationship(const VmRef& vm, const ReplicationSettingData& in) {
  auto existing = relationship(vm);
  if (!existing) return existing.status();
  if (*existing && (*existing)->mode != ReplicationMode::None)
    return wrong_state(vm.vm, **existing, "CreateReplicationRelationship needs a VM without replication (mode 0)");
  VMREPL_RETURN_IF_ERROR(in.validate());
  if (!in.RecoveryConnectionPoint || in.RecoveryConnectionPoint->empty())
    return Status::InvalidParameter("RecoveryConnectionPoint: the recovery server must be named");
  if (!in.AuthenticationType) return Status::InvalidParameter("AuthenticationType: must be 1 or 2");
  if (*in.AuthenticationType == 2) VMREPL_RETURN_IF_ERROR(check_own_certificate(*in.CertificateThumbPrint));
  ReplicationSettingData rsd = in;
  rsd.InstanceID = "Microsoft:" + vm.vm.id.to_string() + "\\HVR\\0";
  rsd.VirtualSystemIdentifier = vm.vm.id.to_string();
  rsd.ElementName = vm.vm.name;
  rsd.PrimaryConnectionPoint = opts_.host_name;
  rsd.PrimaryHostSystem = opts_.host_name;
  rsd.RecoveryHostSystem = rsd.RecoveryConnectionPoint;
  VmRef ref = vm;
  return spawn_job(JobType::CreateReplicationRelationship, "Create replication relationship " + vm.vm.name, false,
                   [this, ref, rsd](ThreadCtx& t) -> Status {
                     Relationship rel;
                     rel.vm_id = ref.vm.id;
                     rel.settings = rsd;
                     rel.peer_host = *rsd.RecoveryConnectionPoint;
                     rel.peer_port = rsd.RecoveryServerPortNumber;
                     t.phase("contacting the recovery server");
                     auto ch = connect_peer(rel);
                     if (!ch) return ch.status();
                     proto::RelationshipCreate m;
                     m.seq = 1;
                     m.vm_id = ref.vm.id;
                     m.vm_name = ref.vm.name;
                     for (const auto& d : ref.vm.disks) m.disk_sizes.push_back(d.size_bytes);
                     m.block_size = opts_.block_size;
                     m.hash_algorithm = opts_.hash;
                     m.settings_json = encode_json(rsd.to_instance());
                     VMREPL_RETURN_IF_ERROR((*ch)->send(m));
                     auto ack = (*ch)->expect<proto::Ack>(opts_.io_timeout * 4);
                     if (!ack) return ack.status();
                     if (ack->code != 0) return Status(static_cast<Code>(ack->code), ack->text);
                     rel.mode = ReplicationMode::Primary;
                     rel.state = ReplicationState::ReadyForReplication;
                     rel.health = ReplicationHealth::Ok;
                     return put_relationship(ref, rel);
                   });
}

Result<std::shared_ptr<Job>> Replicator::start_replication(const VmRef& vm, uint16_t type) {
  if (type == to_number(InitialReplicationType::Export))
    return Status::NotSupported("InitialReplicationType 2 (export to a folder) is not offered; use 1 (network) or 3 (seeded)");
  if (type != to_number(InitialReplicationType::Network) && type != to_number(InitialReplicationType::Seeded))
    return Status::InvalidParameter("InitialReplicationType must be 1 (network) or 3 (seeded), got " + std::to_string(type));
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || (*r)->mode != ReplicationMode::Primary)
    return Status::InvalidState("VM " + vm.vm.name + " is not a primary (ReplicationMode " +
                                mode_text(*r ? (*r)->mode : ReplicationMode::None) + "); StartReplication needs mode 1");
  if ((*r)->state != ReplicationState::ReadyForReplication)
    return wrong_state(vm.vm, **r, "StartReplication needs state 1 (Ready for replication)");
  Relationship rel = **r;
  rel.state = ReplicationState::WaitingToCompleteInitialReplication;
  VMREPL_RETURN_IF_ERROR(put_relationship(vm, rel));
  VmRef ref = vm;
  CycleKind kind = type == 3 ? CycleKind::Seeded : CycleKind::Initial;
  return spawn_job(JobType::StartInbandInitialReplication, "Initial replication " + vm.vm.name, true,
                   [this, ref, kind](ThreadCtx& t) -> Status {
                     Status st = run_cycle(t, ref, kind, ReplicationType::Regular);
                     if (!st.ok()) {
                       // Back to "ready" so StartReplication can be called again.
                       auto cur = relationship(ref);
                       if (cur && *cur && (*cur)->state == ReplicationState::WaitingToCompleteInitialReplication) {
                         Relationship back = **cur;
                         back.state = ReplicationState::ReadyForReplication;
                         put_relationship(ref, back);
                       }
                       return st;
                     }
                     auto cur = relationship(ref);
                     if (cur && *cur) arm_timer(ref.vm.id, (*cur)->settings.ReplicationInterval);
                     return Status::OK();
                   });
}

Result<std::shared_ptr<Job>> Replicator::replicate_now(const VmRef& vm) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || (*r)->mode != ReplicationMode::Primary)
    return Status::InvalidState("VM " + vm.vm.name + " is not a primary; replicate_now needs mode 1 and state 3");
  if ((*r)->state != ReplicationState::Replicating)
    return wrong_state(vm.vm, **r, "a cycle needs state 3 (Replicating)");
  VmRef ref = vm;
  return spawn_job(JobType::ReplicationSendingDelta, "Replication cycle " + vm.vm.name, true,
                   [this, ref](ThreadCtx& t) { return run_cycle(t, ref, CycleKind::Incremental, ReplicationType::Regular); });
}

Result<std::shared_ptr<Job>> Replicator::resynchronize(const VmRef& vm) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || (*r)->mode != ReplicationMode::Primary)
    return Status::InvalidState("VM " + vm.vm.name + " is not a primary; Resynchronize runs on the primary (mode 1)");
  auto s = (*r)->state;
  if (s != ReplicationState::WaitingToStartResynchronization && s != ReplicationState::Suspended &&
      s != ReplicationState::ResynchronizationSuspended && s != ReplicationState::Replicating)
    return wrong_state(vm.vm, **r, "Resynchronize needs state 9 (resynchronization required), 3, 7 or 11");
  Relationship rel = **r;
  rel.state = ReplicationState::Resynchronizing;
  VMREPL_RETURN_IF_ERROR(put_relationship(vm, rel));
  VmRef ref = vm;
  auto prior = s;
  return spawn_job(JobType::Resynchronizing, "Resynchronize " + vm.vm.name, true,
                   [this, ref, prior](ThreadCtx& t) -> Status {
                     Status st = run_cycle(t, ref, CycleKind::Resync, ReplicationType::Regular);
                     auto cur = relationship(ref);
                     if (!st.ok()) {
                       if (cur && *cur) {
                         Relationship back = **cur;
                         back.state = prior == ReplicationState::Replicating ? ReplicationState::WaitingToStartResynchronization
                                                                              : prior;
                         put_relationship(ref, back);
                       }
                       return st;
                     }
                     if (cur && *cur) arm_timer(ref.vm.id, (*cur)->settings.ReplicationInterval);
                     return Status::OK();
                   });
}

Result<std::shared_ptr<Job>> Replicator::request_replication_state_change(const VmRef& vm, uint16_t requested) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || (*r)->mode == ReplicationMode::None)
    return Status::InvalidState("VM " + vm.vm.name + " has no replication relationship (mode 0)");
  Relationship rel = **r;
  using RS = ReplicationState;
  if (requested == to_number(RequestedReplicationState::Suspend)) {
    if (rel.state != RS::Replicating && rel.state != RS::WaitingToCompleteInitialReplication && rel.state != RS::Resynchronizing)
      return wrong_state(vm.vm, rel, "suspend (7) needs state 2, 3 or 10");
    rel.state = rel.state == RS::Resynchronizing ? RS::ResynchronizationSuspended : RS::Suspended;
  } else if (requested == to_number(RequestedReplicationState::Replicating)) {
    if (rel.state != RS::Suspended && rel.state != RS::Critical && rel.state != RS::WaitingToStartResynchronization &&
        rel.state != RS::ResynchronizationSuspended && rel.state != RS::DiskUpdateCritical)
      return wrong_state(vm.vm, rel, "resume (3) needs state 7, 8, 9, 11 or 16");
    if (rel.state == RS::WaitingToStartResynchronization || rel.state == RS::ResynchronizationSuspended)
      return resynchronize(vm);
    rel.state = rel.last_cycle ? RS::Replicating : RS::ReadyForReplication;
  } else if (requested == to_number(RequestedReplicationState::Ready)) {
    return Status::InvalidState("RequestedState 1 (Ready) is not a transition a client can ask for (VM " + vm.vm.name +
                                " is in ReplicationState " + state_text(rel.state) + ")");
  } else if (requested == to_number(RequestedReplicationState::SyncedReplicationComplete)) {
    return prepare_failover(vm);
  } else if (requested == to_number(RequestedReplicationState::WaitingToCompleteInitialReplication)) {
    return make_replica(vm);
  } else if (requested == to_number(RequestedReplicationState::CancelResynchronize)) {
    if (rel.state != RS::Resynchronizing && rel.state != RS::ResynchronizationSuspended)
      return wrong_state(vm.vm, rel, "cancel resynchronize (9) needs state 10 or 11");
    // A running resync job is cancelled through its own job (RequestStateChange 4), which
    // rolls the replica back; this leaves the relationship waiting for a resync.
    rel.state = RS::WaitingToStartResynchronization;
  } else {
    return Status::InvalidParameter("RequestedState " + std::to_string(requested) +
                                    " is not a replication state (1, 2, 3, 4, 7 or 9)");
  }
  VmRef ref = vm;
  const ReplicationState target = rel.state;
  const ReplicationState from = (**r).state;
  return spawn_job(JobType::ReplicateStateChange, "Replication state change " + vm.vm.name, false,
                   [this, ref, target, from](ThreadCtx&) -> Status {
                     auto lock = vm_lock(ref.vm.id);
                     std::lock_guard<std::mutex> g(*lock);
                     // Only the state changes, on the relationship as it is now: a cycle that
                     // finished meanwhile keeps its counters and times.
                     auto cur = relationship(ref);
                     if (!cur) return cur.status();
                     if (!*cur) return Status::InvalidState("the relationship was removed meanwhile");
                     Relationship now = **cur;
                     if (now.state != from)
                       return Status::InvalidState("ReplicationState changed to " + state_text(now.state) +
                                                   " meanwhile; the request expected " + state_text(from));
                     now.state = target;
                     VMREPL_RETURN_IF_ERROR(put_relationship(ref, now));
                     if (now.mode == ReplicationMode::Primary) {
                       if (now.state == ReplicationState::Replicating)
                         arm_timer(ref.vm.id, now.settings.ReplicationInterval);
                       else
                         disarm_timer(ref.vm.id);
                     }
                     return Status::OK();
                   });
}

Result<std::shared_ptr<Job>> Replicator::modify_settings(const VmRef& vm, const ReplicationSettingData& in) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || (*r)->mode == ReplicationMode::None)
    return Status::InvalidState("VM " + vm.vm.name + " has no replication relationship (mode 0)");
  VMREPL_RETURN_IF_ERROR(in.validate());
  const Relationship& old = **r;
  if (in.IncludedDisks && old.settings.IncludedDisks && *in.IncludedDisks != *old.settings.IncludedDisks)
    return Status::InvalidParameter("IncludedDisks: the replicated disks cannot change on an existing relationship");
  // The replica lives on that server: moving it is a remove and a new relationship.
  auto lower = [](std::string x) {
    for (auto& c : x) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return x;
  };
  if (old.mode == ReplicationMode::Primary && in.RecoveryConnectionPoint &&
      lower(*in.RecoveryConnectionPoint) != lower(old.peer_host))
    return Status::InvalidParameter("RecoveryConnectionPoint: cannot change on an existing relationship (is '" +
                                    old.peer_host + "'); remove it and create a new one");
  if (old.mode == ReplicationMode::Primary && in.AuthenticationType && *in.AuthenticationType == 2)
    VMREPL_RETURN_IF_ERROR(check_own_certificate(in.CertificateThumbPrint.value_or("")));
  ReplicationSettingData rsd = in;
  // Identity and the read-only fields stay the server's.
  rsd.InstanceID = old.settings.InstanceID;
  rsd.VirtualSystemIdentifier = old.settings.VirtualSystemIdentifier;
  rsd.ElementName = old.settings.ElementName;
  rsd.PrimaryConnectionPoint = old.settings.PrimaryConnectionPoint;
  rsd.PrimaryHostSystem = old.settings.PrimaryHostSystem;
  rsd.RecoveryHostSystem = old.settings.RecoveryHostSystem;
  VmRef ref = vm;
  return spawn_job(JobType::ModifyReplicationRelationshipSettings, "Modify replication settings " + vm.vm.name, false,
                   [this, ref, rsd](ThreadCtx&) -> Status {
                     auto lock = vm_lock(ref.vm.id);
                     std::lock_guard<std::mutex> g(*lock);
                     auto cur = relationship(ref);
                     if (!cur) return cur.status();
                     if (!*cur) return Status::InvalidState("the relationship was removed meanwhile");
                     Relationship rel = **cur;
                     if (rel.mode == ReplicationMode::Primary) {
                       auto ch = connect_peer(rel);
                       if (!ch) return ch.status();
                       VMREPL_RETURN_IF_ERROR((*ch)->send(proto::RelationshipModify{1, ref.vm.id, encode_json(rsd.to_instance())}));
                       auto ack = (*ch)->expect<proto::Ack>(opts_.io_timeout);
                       if (!ack) return ack.status();
                       if (ack->code != 0) return Status(static_cast<Code>(ack->code), ack->text);
                     }
                     rel.settings = rsd;
                     // A new port (the recovery server moved its listener) is used from the next cycle.
                     if (rel.mode == ReplicationMode::Primary) rel.peer_port = rsd.RecoveryServerPortNumber;
                     VMREPL_RETURN_IF_ERROR(put_relationship(ref, rel));
                     if (rel.mode == ReplicationMode::Primary && rel.state == ReplicationState::Replicating)
                       arm_timer(ref.vm.id, rsd.ReplicationInterval);
                     return Status::OK();
                   });
}

Result<std::shared_ptr<Job>> Replicator::remove_relationship(const VmRef& vm) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || (*r)->mode == ReplicationMode::None)
    return Status::InvalidState("VM " + vm.vm.name + " has no replication relationship (mode 0)");
  VmRef ref = vm;
  return spawn_job(JobType::RemoveReplicationRelationship, "Remove replication " + vm.vm.name, false,
                   [this, ref](ThreadCtx&) -> Status {
                     auto lock = vm_lock(ref.vm.id);
                     std::lock_guard<std::mutex> g(*lock);
                     auto cur = relationship(ref);
                     if (!cur) return cur.status();
                     if (!*cur) return Status::OK();
                     disarm_timer(ref.vm.id);
                     if ((*cur)->mode == ReplicationMode::Primary) {
                       // The replica keeps its VM; tell it the relationship is gone when it is reachable.
                       if (auto ch = connect_peer(**cur)) {
                         if ((*ch)->send(proto::RelationshipRemove{1, ref.vm.id}).ok()) (*ch)->expect<proto::Ack>(opts_.io_timeout);
                       }
                     }
                     {
                       std::lock_guard<std::mutex> lk(mu_);
                       replica_stores_.erase(ref.vm.id);
                     }
                     VMREPL_RETURN_IF_ERROR(RelationshipTable(ref.store->catalog()).remove(ref.vm.id));
                     std::lock_guard<std::mutex> lk(bw_mu_);
                     relationship_buckets_.erase(ref.vm.id);  // its limit went with the record
                     return Status::OK();
                   });
}

Result<std::shared_ptr<Job>> Replicator::test_connection(const std::string& point, uint16_t port, uint16_t auth_type) {
  if (point.empty()) return Status::InvalidParameter("RecoveryConnectionPoint is empty");
  if (port == 0) return Status::InvalidParameter("RecoveryServerPortNumber must not be 0");
  if (auth_type != 1 && auth_type != 2) return Status::InvalidParameter("AuthenticationType must be 1 or 2");
  if (auth_type == 2 && !tls_client_) return no_certificate();
  return spawn_job(JobType::TestReplicationConnection, "Test replication connection " + point, false,
                   [this, point, port, auth_type](ThreadCtx&) -> Status {
                     Relationship probe;
                     probe.peer_host = point;
                     probe.peer_port = port;
                     probe.settings.AuthenticationType = auth_type;
                     auto ch = connect_peer(probe);
                     if (!ch) return ch.status();
                     (*ch)->close(Status::OK());
                     return Status::OK();
                   });
}

Result<Instance> Replicator::statistics(const VmRef& vm) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || (*r)->mode == ReplicationMode::None)
    return Status::InvalidState("VM " + vm.vm.name + " has no replication relationship (mode 0)");
  Instance i = (*r)->stats.to_instance((*r)->health);
  i.set_string("VirtualSystemIdentifier", vm.vm.id.to_string());
  return i;
}

Result<ReplicaStore*> Replicator::replica_store(const VmRef& vm) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = replica_stores_.find(vm.vm.id);
    if (it != replica_stores_.end()) return it->second.get();
  }
  std::vector<uint64_t> sizes;
  for (const auto& d : vm.vm.disks) sizes.push_back(d.size_bytes);
  const std::string folder = replica_folder(vm.vm);
  VMREPL_RETURN_IF_ERROR(mkdirs(folder));
  auto rs = ReplicaStore::open(vm.store->catalog(), vm.vm.id, folder, sizes, opts_.block_size);
  if (!rs) return rs.status();
  std::lock_guard<std::mutex> lk(mu_);
  auto& slot = replica_stores_[vm.vm.id];
  if (!slot) slot = std::move(rs).value();
  return slot.get();
}

Result<std::vector<Instance>> Replicator::recovery_points(const VmRef& vm) {
  auto r = relationship(vm);
  if (!r) return r.status();
  if (!*r || (*r)->mode != ReplicationMode::Replica)
    return Status::InvalidState("VM " + vm.vm.name + " is not a replica (mode 2): recovery points live on the replica");
  auto rs = replica_store(vm);
  if (!rs) return rs.status();
  auto pts = (*rs)->points();
  if (!pts) return pts.status();
  std::vector<Instance> out;
  for (const auto& p : *pts) {
    Instance i("Msvm_VirtualSystemSettingData");
    i.set_string("InstanceID", "Microsoft:" + vm.vm.id.to_string() + "\\RP\\" + std::to_string(p.seq));
    i.set_string("VirtualSystemIdentifier", vm.vm.id.to_string());
    i.set_string("VirtualSystemType", std::string(p.virtual_system_type()));
    i.set_string("ElementName", vm.vm.name + " - " + CimDateTime::from_unix_us(p.created_us).format());
    i.set_datetime("CreationTime", CimDateTime::from_unix_us(p.created_us).format());
    i.set_u64("RecoveryPointSequence", p.seq);
    i.set_u16("ReplicationType", to_number(p.replication_type));
    i.set_bool("IsLatest", &p == &pts->back());
    std::vector<std::string> roots;
    for (const auto& h : p.roots) roots.push_back(h.to_hex(p.hash_algorithm));
    i.set_string_array("DiskMerkleRoots", std::move(roots));
    out.push_back(std::move(i));
  }
  return out;
}

Result<ChangeFeed*> Replicator::feed(const VmRef& vm) {
  std::lock_guard<std::mutex> lk(mu_);
  auto& slot = feeds_[vm.vm.id];
  if (!slot) {
    std::vector<uint64_t> sizes;
    for (const auto& d : vm.vm.disks) sizes.push_back(d.size_bytes);
    VMREPL_RETURN_IF_ERROR(mkdirs(primary_folder(vm.vm)));
    auto f = ChangeFeed::open(primary_folder(vm.vm) + "/feed", sizes, kFeedUnit);
    if (!f) {
      feeds_.erase(vm.vm.id);
      return f.status();
    }
    slot = std::move(f).value();
  }
  return slot.get();
}

bool Replicator::feed_attached(const VmRecord& vm) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (feeds_.count(vm.id)) return true;
  }
  struct stat st {};
  return ::stat((primary_folder(vm) + "/feed").c_str(), &st) == 0;
}

Status Replicator::mark_dirty(const VmRef& vm, uint32_t disk, uint64_t offset, uint64_t length) {
  auto f = feed(vm);
  if (!f) return f.status();
  return (*f)->mark_dirty(disk, offset, length);
}

Result<CycleHistory*> Replicator::history(const VmRef& vm) {
  std::lock_guard<std::mutex> lk(mu_);
  auto& slot = histories_[vm.vm.id];
  if (!slot) {
    VMREPL_RETURN_IF_ERROR(mkdirs(primary_folder(vm.vm)));
    auto h = CycleHistory::open(primary_folder(vm.vm) + "/cycles", opts_.block_size);
    if (!h) {
      histories_.erase(vm.vm.id);
      return h.status();
    }
    slot = std::move(h).value();
  }
  return slot.get();
}

Result<std::vector<BlockHash>> Replicator::acked_roots(const VmRef& vm) {
  std::vector<BlockHash> out;
  for (uint32_t d = 0; d < vm.vm.disks.size(); ++d) {
    auto idx = BlockIndex::load(acked_index_path(vm.vm, d));
    if (!idx) return idx.status();
    out.push_back(merkle_root(*idx));
  }
  return out;
}

// ---- interval cycles ----------------------------------------------------------------------

void Replicator::arm_timer(const Guid& vm_id, int64_t interval_s) {
  if (stopping_) return;
  int64_t s = opts_.cycle_interval_override_s > 0 ? opts_.cycle_interval_override_s : interval_s;
  uint64_t ms = static_cast<uint64_t>(std::max<int64_t>(s, 1)) * 1000;
  loop_.post([this, vm_id, ms] {
    if (stopping_) return;
    uv_timer_t*& t = timers_[vm_id];
    if (!t) {
      t = new uv_timer_t;
      uv_timer_init(loop_.uv(), t);
      t->data = new TimerTag{this, vm_id};
    }
    uv_timer_start(
        t,
        [](uv_timer_t* h) {
          auto* tag = static_cast<TimerTag*>(h->data);
          tag->r->on_timer(tag->id);
        },
        ms, ms);
  });
}

void Replicator::disarm_timer(const Guid& vm_id) {
  loop_.post([this, vm_id] {
    auto it = timers_.find(vm_id);
    if (it == timers_.end()) return;
    uv_timer_t* t = it->second;
    timers_.erase(it);
    uv_timer_stop(t);
    uv_close(reinterpret_cast<uv_handle_t*>(t), close_timer);
  });
}

void Replicator::on_timer(const Guid& vm_id) {
  // Loop thread. One cycle at a time per VM; a cycle still running means this one is missed.
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = cycle_jobs_.find(vm_id);
    if (it != cycle_jobs_.end() && !job_state_is_final(it->second->state())) return;
  }
  spawn_thread([this, vm_id] {
    auto vm = find_vm(vm_id.to_string());
    if (!vm) return;
    auto job = replicate_now(*vm);
    if (!job) return;
    std::lock_guard<std::mutex> lk(mu_);
    cycle_jobs_[vm_id] = *job;
  });
}

// ---- replica side -------------------------------------------------------------------------

void Replicator::accept(std::unique_ptr<Connection> conn) {
  // Loop thread.
  if (stopping_) return;
  auto ch = Channel::adopt(loop_, std::move(conn));
  {
    std::lock_guard<std::mutex> lk(mu_);
    sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(), [](const auto& w) { return w.expired(); }),
                    sessions_.end());
    sessions_.push_back(ch);
  }
  spawn_thread([this, ch] { ReplicaSession(*this, ch).run(); });
}

}  // namespace vmrepl
