// ManagementServer: sessions of the management protocol (management_protocol.h), each on a
// thread of its own, over the service's loop; plus one event thread per session pushing the
// changes of the jobs its client holds.
#include "core/service/management_server.h"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/engine/channel.h"
#include "core/net/tcp.h"
#include "core/net/unix.h"
#include "core/protocol/messages.h"
#include "core/service/management_protocol.h"
#include "core/service/service_api.h"

namespace vmrepl {

namespace proto = protocol;
using nlohmann::json;

namespace {

// What a method answers: a JSON body, and the job the client now holds (watched from then on).
struct Reply {
  json body = json::object();
  JobPtr job;
};

using Handler = std::function<Result<Reply>(ServiceApi&, const json&)>;

Reply instance_reply(const Instance& i) { return Reply{json{{"instance", management::instance_to_json(i)}}, nullptr}; }
Reply list_reply(const std::vector<Instance>& v) {
  json a = json::array();
  for (const auto& i : v) a.push_back(management::instance_to_json(i));
  return Reply{json{{"instances", std::move(a)}}, nullptr};
}
Reply job_reply(JobPtr j) { return Reply{json{{"job", management::instance_to_json(j->snapshot())}}, std::move(j)}; }

Result<Reply> from(Result<Instance> r) {
  if (!r) return r.status();
  return instance_reply(*r);
}
Result<Reply> from(Result<std::vector<Instance>> r) {
  if (!r) return r.status();
  return list_reply(*r);
}
Result<Reply> from(Result<JobPtr> r) {
  if (!r) return r.status();
  return job_reply(std::move(r).value());
}
Result<Reply> from(Status s) {
  if (!s.ok()) return s;
  return Reply{};
}

// Unwraps an argument or returns its error from the enclosing handler.
#define ARG(var, expr)          \
  auto var##_r = (expr);        \
  if (!var##_r) return var##_r.status(); \
  auto var = std::move(var##_r).value()

#define S(name) management::arg_string(a, m, name)
#define U(name, max) management::arg_uint(a, m, name, max)

const std::map<std::string, Handler, std::less<>>& handlers() {
  static const std::map<std::string, Handler, std::less<>> table = [] {
    std::map<std::string, Handler, std::less<>> t;
    t["info"] = [](ServiceApi& s, const json&) { return from(s.info()); };
    t["define_system"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "define_system";
      ARG(def, S("definition"));
      return from(s.define_system(def));
    };
    t["get_system"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "get_system";
      ARG(cs, S("cs"));
      return from(s.get_system(cs));
    };
    t["list_systems"] = [](ServiceApi& s, const json&) { return from(s.list_systems()); };
    t["destroy_system"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "destroy_system";
      ARG(cs, S("cs"));
      return from(s.destroy_system(cs));
    };
    t["request_state_change"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "request_state_change";
      ARG(cs, S("cs"));
      ARG(st, U("state", 0xFFFF));
      return from(s.request_state_change(cs, static_cast<uint16_t>(st)));
    };
    t["disk_path"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "disk_path";
      ARG(cs, S("cs"));
      ARG(disk, U("disk", 0xFFFFFFFF));
      auto r = s.disk_path(cs, static_cast<uint32_t>(disk));
      if (!r) return r.status();
      return Reply{json{{"text", *r}}, nullptr};
    };
    t["disk_mark_dirty"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "disk_mark_dirty";
      ARG(cs, S("cs"));
      ARG(disk, U("disk", 0xFFFFFFFF));
      ARG(off, U("offset", UINT64_MAX));
      ARG(len, U("length", UINT64_MAX));
      return from(s.disk_mark_dirty(cs, static_cast<uint32_t>(disk), off, len));
    };
    t["set_bandwidth_limit"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "set_bandwidth_limit";
      ARG(cs, S("cs"));
      ARG(bps, U("bytes_per_s", UINT64_MAX));
      return from(s.set_bandwidth_limit(cs, bps));
    };
    t["bandwidth_limit"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "bandwidth_limit";
      ARG(cs, S("cs"));
      auto r = s.bandwidth_limit(cs);
      if (!r) return r.status();
      return Reply{json{{"value", *r}}, nullptr};
    };
    // Methods of (cs) -> job.
    auto cs_job = [&t](const char* name, Result<JobPtr> (ServiceApi::*fn)(std::string_view)) {
      t[name] = [name, fn](ServiceApi& s, const json& a) -> Result<Reply> {
        const char* m = name;
        ARG(cs, S("cs"));
        return from((s.*fn)(cs));
      };
    };
    cs_job("compute_digest", &ServiceApi::compute_digest);
    cs_job("remove_replication_relationship", &ServiceApi::remove_replication_relationship);
    cs_job("replicate_now", &ServiceApi::replicate_now);
    cs_job("revert_failover", &ServiceApi::revert_failover);
    cs_job("commit_failover", &ServiceApi::commit_failover);
    // Methods of (cs, text) -> job.
    auto cs_text_job = [&t](const char* name, const char* arg,
                            Result<JobPtr> (ServiceApi::*fn)(std::string_view, std::string_view)) {
      t[name] = [name, arg, fn](ServiceApi& s, const json& a) -> Result<Reply> {
        const char* m = name;
        ARG(cs, S("cs"));
        ARG(text, S(arg));
        return from((s.*fn)(cs, text));
      };
    };
    cs_text_job("create_replication_relationship", "sd", &ServiceApi::create_replication_relationship);
    cs_text_job("modify_replication_settings", "sd", &ServiceApi::modify_replication_settings);
    cs_text_job("resynchronize", "start_time", &ServiceApi::resynchronize);
    cs_text_job("initiate_failover", "snapshot", &ServiceApi::initiate_failover);
    cs_text_job("test_replica_system", "snapshot", &ServiceApi::test_replica_system);
    // Methods of (text) -> job.
    auto text_job = [&t](const char* name, const char* arg, Result<JobPtr> (ServiceApi::*fn)(std::string_view)) {
      t[name] = [name, arg, fn](ServiceApi& s, const json& a) -> Result<Reply> {
        const char* m = name;
        ARG(text, S(arg));
        return from((s.*fn)(text));
      };
    };
    text_job("modify_service_settings", "sd", &ServiceApi::modify_service_settings);
    text_job("add_authorization_entry", "entry", &ServiceApi::add_authorization_entry);
    text_job("modify_authorization_entry", "entry", &ServiceApi::modify_authorization_entry);
    text_job("remove_authorization_entry", "host", &ServiceApi::remove_authorization_entry);
    text_job("get_job", "id", &ServiceApi::get_job);
    // Methods of (cs) -> instance / list.
    t["get_replication_statistics"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "get_replication_statistics";
      ARG(cs, S("cs"));
      return from(s.get_replication_statistics(cs));
    };
    t["get_replication_settings"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "get_replication_settings";
      ARG(cs, S("cs"));
      return from(s.get_replication_settings(cs));
    };
    t["list_recovery_points"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "list_recovery_points";
      ARG(cs, S("cs"));
      return from(s.list_recovery_points(cs));
    };
    t["service_settings"] = [](ServiceApi& s, const json&) { return from(s.service_settings()); };
    t["list_authorization_entries"] = [](ServiceApi& s, const json&) { return from(s.list_authorization_entries()); };
    t["list_jobs"] = [](ServiceApi& s, const json&) { return from(s.list_jobs()); };
    t["start_replication"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "start_replication";
      ARG(cs, S("cs"));
      ARG(type, U("type", 0xFFFF));
      ARG(loc, S("export_location"));
      ARG(start, S("start_time"));
      return from(s.start_replication(cs, static_cast<uint16_t>(type), loc, start));
    };
    t["request_replication_state_change"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "request_replication_state_change";
      ARG(cs, S("cs"));
      ARG(st, U("state", 0xFFFF));
      return from(s.request_replication_state_change(cs, static_cast<uint16_t>(st)));
    };
    t["test_replication_connection"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "test_replication_connection";
      ARG(point, S("point"));
      ARG(port, U("port", 0xFFFF));
      ARG(auth, U("auth_type", 0xFFFF));
      ARG(thumb, S("thumbprint"));
      return from(s.test_replication_connection(point, static_cast<uint16_t>(port), static_cast<uint16_t>(auth), thumb));
    };
    t["reverse_replication_relationship"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "reverse_replication_relationship";
      ARG(cs, S("cs"));
      ARG(sd, S("sd"));
      ARG(verify, management::arg_bool(a, m, "verify_full"));
      return from(s.reverse_replication_relationship(cs, sd, verify));
    };
    t["job_cancel"] = [](ServiceApi& s, const json& a) -> Result<Reply> {
      const char* m = "job_cancel";
      ARG(id, S("id"));
      auto j = s.get_job(id);
      if (!j) return j.status();
      return from((*j)->cancel());
    };
    return t;
  }();
  return table;
}

#undef S
#undef U
#undef ARG

}  // namespace

// One client connection.
class Session : public std::enable_shared_from_this<Session> {
 public:
  // `admission`: OK, or why this client may not manage the host (answered to its hello);
  // `pinned`: for a TLS session, the client thumbprints that may manage it.
  Session(ServiceApi& api, std::shared_ptr<Channel> ch, std::string host_name, Guid service_id, Status admission,
          std::vector<std::string> pinned)
      : api_(api),
        ch_(std::move(ch)),
        host_name_(std::move(host_name)),
        service_id_(service_id),
        admission_(std::move(admission)),
        pinned_(std::move(pinned)) {}

  void run() {
    std::thread events([self = shared_from_this()] { self->push_events(); });
    serve();
    {
      std::lock_guard<std::mutex> lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    events.join();
    ch_->close(Status::OK());
  }

  // Loop thread (job listener): never blocks beyond a mutex.
  void job_changed(const Guid& id) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!watched_.count(id)) return;
      changed_.insert(id);
    }
    cv_.notify_all();
  }

  void stop() { ch_->close(Status::SystemNotAvailable("the management server is stopping")); }

 private:
  static constexpr auto kHelloTimeout = std::chrono::seconds(10);
  // A client may stay idle between calls for as long as it likes.
  static constexpr auto kIdle = std::chrono::hours(24 * 365);

  void serve() {
    auto hello = ch_->expect<proto::Hello>(kHelloTimeout);
    if (!hello) return;
    proto::HelloReply reply;
    reply.service_id = service_id_;
    reply.host_name = host_name_;
    reply.capabilities = {management::kCapability};
    Status ok = proto::check_protocol_version(hello->protocol_version);
    bool wants = false;
    for (const auto& c : hello->capabilities) wants = wants || c == management::kCapability;
    if (ok.ok() && !wants)
      ok = Status::InvalidParameter("this is a management endpoint: the hello must ask for the 'management' capability");
    if (ok.ok()) ok = admission_;
    if (ok.ok() && ch_->is_tls()) ok = admit_certificate();
    reply.accepted = ok.ok();
    if (!ok.ok()) {
      reply.error_code = ok.number();
      reply.error_text = ok.message();
    }
    if (!send(reply).ok() || !ok.ok()) return;
    for (;;) {
      auto m = ch_->recv(kIdle);
      if (!m) return;
      auto* req = std::get_if<proto::Request>(&*m);
      if (!req) {
        send(proto::error_from(Status::InvalidParameter("management: expected a request, not '" +
                                                        std::string(proto::message_type(*m)) + "'")));
        return;
      }
      proto::Response resp;
      resp.seq = req->seq;
      JobPtr job;
      Result<Reply> r = call(*req);
      if (r) {
        resp.body_json = r->body.dump();
        job = std::move(r->job);
      } else {
        resp.code = r.status().number();
        resp.text = r.status().message();
      }
      // Watched only after the answer went: the client learns the job from the answer first.
      if (!send(resp).ok()) return;
      if (job) {
        {
          std::lock_guard<std::mutex> lk(mu_);
          watched_[job->id()] = job;
          changed_.insert(job->id());
        }
        cv_.notify_all();
      }
    }
  }

  // The TLS handshake is over once the hello arrived: the client's certificate chains to
  // our CA; it must also be one of the pinned ones.
  Status admit_certificate() const {
    const std::string sha1 = ch_->peer_thumbprint("sha1"), sha256 = ch_->peer_thumbprint("sha256");
    for (const auto& p : pinned_) {
      std::string up = p;
      for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (up == sha1 || up == sha256) return Status::OK();
    }
    return Status::AccessDenied("client certificate " + sha1 + " (SHA-1) is not pinned for management on this host");
  }

  Result<Reply> call(const proto::Request& req) {
    const auto& table = handlers();
    auto it = table.find(req.method);
    if (it == table.end())
      return Status::InvalidParameter("management: unknown method '" + req.method.substr(0, 64) + "'");
    auto args = management::parse_body(req.body_json);
    if (!args) return args.status();
    try {
      return it->second(api_, *args);
    } catch (const std::bad_alloc&) {
      return Status(Code::OutOfMemory, "out of memory in " + req.method);
    } catch (const std::exception& e) {
      return Status(Code::Failed, req.method + ": " + e.what());
    }
  }

  Status send(const proto::Message& m) {
    std::lock_guard<std::mutex> lk(send_mu_);
    return ch_->send(m);
  }

  // Pushes the latest snapshot of each changed watched job; at most every kPace per round,
  // so a job's progress ticks coalesce; a final state is pushed once, then unwatched.
  void push_events() {
    static constexpr auto kPace = std::chrono::milliseconds(50);
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return done_ || !changed_.empty(); });
      if (done_) return;
      std::vector<JobPtr> jobs;
      for (const auto& id : changed_)
        if (auto it = watched_.find(id); it != watched_.end()) jobs.push_back(it->second);
      changed_.clear();
      lk.unlock();
      for (const auto& j : jobs) {
        // Final or not as of this very snapshot: a job ending right after it is pushed again.
        Instance snap = j->snapshot();
        const bool final = job_state_is_final(static_cast<JobState>(snap.u64_or_null("JobState").value_or(0)));
        proto::Request ev;
        ev.method = management::kJobEvent;
        ev.body_json = management::instance_to_json(snap).dump();
        if (!send(ev).ok()) {
          lk.lock();
          return;
        }
        if (final) {
          std::lock_guard<std::mutex> g(mu_);
          watched_.erase(j->id());
        }
      }
      lk.lock();
      cv_.wait_for(lk, kPace, [&] { return done_; });
    }
  }

  ServiceApi& api_;
  std::shared_ptr<Channel> ch_;
  const std::string host_name_;
  const Guid service_id_;
  const Status admission_;
  const std::vector<std::string> pinned_;
  std::mutex send_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<Guid, JobPtr> watched_;
  std::set<Guid> changed_;
  bool done_ = false;
};

class ManagementServer::Impl {
 public:
  Impl(ReplicationService& svc, ManagementServerOptions opts)
      : svc_(svc), api_(make_local_api(svc)), opts_(std::move(opts)), hub_(std::make_shared<Hub>()) {
    auto info = svc_.info();
    host_name_ = info.string_or_null("HostName").value_or("");
    std::weak_ptr<Hub> weak = hub_;
    api_->set_job_listener([weak](const Guid& id) {
      if (auto hub = weak.lock()) hub->job_changed(id);
    });
  }

  Status start() {
    return svc_.loop().run_sync([this]() -> Status {
      if (!opts_.unix_path.empty()) {
        auto l = UnixListener::listen(
            svc_.loop().uv(), opts_.unix_path, 0600, [this](std::unique_ptr<Connection> c) { accept(std::move(c)); },
            connection_options());
        if (!l) return l.status();
        unix_ = std::move(l).value();
      }
      if (!opts_.tcp_listen.empty()) {
        if (!opts_.tls || !opts_.tls->server())
          return Status::InvalidParameter("management listen " + opts_.tcp_listen +
                                          ": vmrepl:// needs TLS (a certificate, key and CA)");
        auto colon = opts_.tcp_listen.rfind(':');
        if (colon == std::string::npos)
          return Status::InvalidParameter("management listen must be host:port (got '" + opts_.tcp_listen + "')");
        std::string host = opts_.tcp_listen.substr(0, colon);
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        int port = std::atoi(opts_.tcp_listen.c_str() + colon + 1);
        if (port < 0 || port > 65535) return Status::InvalidParameter("management listen port out of range");
        ConnectionOptions tls_options = connection_options();
        tls_options.tls = opts_.tls;
        auto l = TcpListener::listen(
            svc_.loop().uv(), host, static_cast<uint16_t>(port),
            [this](std::unique_ptr<Connection> c) { accept(std::move(c)); }, tls_options);
        if (!l) return l.status();
        tcp_ = std::move(l).value();
      }
      return Status::OK();
    });
  }

  ~Impl() {
    svc_.loop().run_sync([this] {
      stopping_ = true;
      unix_.reset();
      tcp_.reset();
    });
    std::vector<Worker> threads;
    {
      std::lock_guard<std::mutex> lk(hub_->mu);
      for (auto& w : hub_->sessions)
        if (auto s = w.lock()) s->stop();
      threads.swap(threads_);
    }
    for (auto& w : threads) w.thread.join();
  }

  const std::string& unix_path() const { return opts_.unix_path; }
  uint16_t tcp_port() const {
    return svc_.loop().run_sync([this]() -> uint16_t { return tcp_ ? tcp_->port() : 0; });
  }
  size_t sessions() const {
    std::lock_guard<std::mutex> lk(hub_->mu);
    size_t n = 0;
    for (auto& w : hub_->sessions) n += w.expired() ? 0 : 1;
    return n;
  }

 private:
  struct Hub {
    mutable std::mutex mu;
    std::vector<std::weak_ptr<Session>> sessions;
    void job_changed(const Guid& id) {
      std::lock_guard<std::mutex> lk(mu);
      for (auto& w : sessions)
        if (auto s = w.lock()) s->job_changed(id);
    }
  };

  static ConnectionOptions connection_options() {
    ConnectionOptions o = proto::connection_options();
    o.idle_timeout_ms = 0;  // a client may hold a session open without calls
    return o;
  }

  // Loop thread.
  void accept(std::unique_ptr<Connection> conn) {
    if (stopping_) return;
    Status admission;
    // A unix client must be root or the daemon's own user, whatever the socket's mode became.
    if (auto uid = conn->peer_uid(); uid && *uid != 0 && *uid != ::geteuid())
      admission = Status::AccessDenied("uid " + std::to_string(*uid) + " may not manage this host (only root or uid " +
                                       std::to_string(::geteuid()) + ")");
    auto ch = Channel::adopt(svc_.loop(), std::move(conn));
    auto session =
        std::make_shared<Session>(*api_, ch, host_name_, service_id_, std::move(admission), opts_.allowed_clients);
    std::lock_guard<std::mutex> lk(hub_->mu);
    std::erase_if(hub_->sessions, [](const auto& w) { return w.expired(); });
    hub_->sessions.push_back(session);
    // Join the threads of sessions that ended, so a long-running daemon does not keep them.
    std::erase_if(threads_, [](Worker& w) {
      if (!w.done->load()) return false;
      w.thread.join();
      return true;
    });
    auto done = std::make_shared<std::atomic<bool>>(false);
    threads_.push_back(Worker{std::thread([session, done] {
                                session->run();
                                done->store(true);
                              }),
                              done});
  }

  ReplicationService& svc_;
  std::unique_ptr<ServiceApi> api_;
  const ManagementServerOptions opts_;
  std::string host_name_;
  Guid service_id_ = Guid::generate();
  std::shared_ptr<Hub> hub_;
  std::unique_ptr<UnixListener> unix_;  // loop thread
  std::unique_ptr<TcpListener> tcp_;    // loop thread
  bool stopping_ = false;               // loop thread
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Worker> threads_;  // under hub_->mu
};

ManagementServer::ManagementServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ManagementServer::~ManagementServer() = default;

Result<std::unique_ptr<ManagementServer>> ManagementServer::start(ReplicationService& svc, ManagementServerOptions opts) {
  auto impl = std::make_unique<Impl>(svc, std::move(opts));
  Status st = impl->start();
  if (!st.ok()) return st;
  return std::unique_ptr<ManagementServer>(new ManagementServer(std::move(impl)));
}

const std::string& ManagementServer::unix_path() const { return impl_->unix_path(); }
uint16_t ManagementServer::tcp_port() const { return impl_->tcp_port(); }
size_t ManagementServer::sessions() const { return impl_->sessions(); }

}  // namespace vmrepl
