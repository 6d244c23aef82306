// RemoteApi: a client of ManagementServer. One connection, one reader thread that routes
// answers to their callers by seq and job events to the job handles.
#include "core/service/remote_api.h"

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "core/engine/channel.h"
#include "core/jobs/event_loop.h"
#include "core/net/tls.h"
#include "core/protocol/messages.h"
#include "core/service/management_protocol.h"

namespace vmrepl {

namespace proto = protocol;
using nlohmann::json;

namespace {

struct RemoteOptions {
  int64_t connect_timeout_ms = 5000;
  int64_t call_timeout_ms = 60000;
  TlsConfig tls;                  // vmrepl://: this client's certificate, key, and the daemon's CA
  std::string server_thumbprint;  // optional pin of the daemon's certificate
};

Result<RemoteOptions> parse_options(std::string_view text) {
  RemoteOptions o;
  auto j = management::parse_body(text);
  if (!j) return j.status().Annotate("options");
  for (const auto& [k, v] : j->items()) {
    int64_t* num = k == "connect_timeout_ms" ? &o.connect_timeout_ms : k == "call_timeout_ms" ? &o.call_timeout_ms : nullptr;
    std::string* text_slot = k == "tls_certificate"     ? &o.tls.certificate_file
                             : k == "tls_key"           ? &o.tls.key_file
                             : k == "tls_ca"            ? &o.tls.ca_file
                             : k == "server_thumbprint" ? &o.server_thumbprint
                                                        : nullptr;
    if (num) {
      if (!v.is_number_integer() || v.get<int64_t>() <= 0)
        return Status(Code::IncorrectDataType, "options: " + k + " must be a positive integer (milliseconds)");
      *num = v.get<int64_t>();
    } else if (text_slot) {
      if (!v.is_string()) return Status(Code::IncorrectDataType, "options: " + k + " must be a string");
      *text_slot = v.get<std::string>();
    } else {
      return Status::InvalidParameter("options: unknown key '" + k.substr(0, 64) +
                                      "' for a remote service (expected connect_timeout_ms, call_timeout_ms, "
                                      "tls_certificate, tls_key, tls_ca, server_thumbprint)");
    }
  }
  for (auto& c : o.server_thumbprint) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return o;
}

Status status_of(uint32_t code, std::string text) {
  if (code >= static_cast<uint32_t>(Code::Failed) && is_known_code(code)) return Status(static_cast<Code>(code), std::move(text));
  return Status::Failed(text + " (daemon status " + std::to_string(code) + ")");
}

// What the client knows of one job: the latest snapshot the daemon pushed.
struct JobCache {
  mutable std::mutex mu;
  mutable std::condition_variable cv;
  Guid id;
  Instance snap;
  JobState state = JobState::New;
  Status lost;  // not OK once the connection is gone before the job ended

  void update(Instance s) {
    std::lock_guard<std::mutex> lk(mu);
    auto st = s.u64_or_null("JobState");
    if (st) state = static_cast<JobState>(*st);
    snap = std::move(s);
    cv.notify_all();
  }
};

class Core;

class RemoteJob final : public JobView {
 public:
  RemoteJob(std::shared_ptr<JobCache> s, std::weak_ptr<Core> core) : s_(std::move(s)), core_(std::move(core)) {}
  Guid id() const override { return s_->id; }
  Instance snapshot() const override {
    std::lock_guard<std::mutex> lk(s_->mu);
    return s_->snap;
  }
  JobState state() const override {
    std::lock_guard<std::mutex> lk(s_->mu);
    return s_->state;
  }
  Status outcome() const override {
    std::lock_guard<std::mutex> lk(s_->mu);
    if (s_->state == JobState::Completed) return Status::OK();
    if (!job_state_is_final(s_->state)) return Status::OK();
    uint32_t code = static_cast<uint32_t>(s_->snap.u64_or_null("ErrorCode").value_or(0));
    std::string text = s_->snap.string_or_null("ErrorDescription").value_or("");
    if (code == 0) return Status::Failed(text.empty() ? "job ended in state " + std::to_string(to_number(s_->state)) : text);
    return status_of(code, text);
  }
  Status wait(std::chrono::milliseconds timeout) const override {
    std::unique_lock<std::mutex> lk(s_->mu);
    auto done = [&] { return job_state_is_final(s_->state) || !s_->lost.ok(); };
    if (timeout.count() < 0) {
      s_->cv.wait(lk, done);
    } else if (!s_->cv.wait_for(lk, timeout, done)) {
      return Status::Timeout("job " + s_->id.to_string() + " did not end within " + std::to_string(timeout.count()) +
                             " ms");
    }
    if (job_state_is_final(s_->state)) return Status::OK();
    return s_->lost;
  }
  Status cancel() override;

 private:
  std::shared_ptr<JobCache> s_;
  std::weak_ptr<Core> core_;
};

// The connection and its reader; shared with the job handles, which may outlive the api.
class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(RemoteOptions o, std::string where) : opts_(o), where_(std::move(where)) {}

  Status connect_unix(const std::string& path) {
    auto ch = Channel::connect_unix(loop_, path, std::chrono::milliseconds(opts_.connect_timeout_ms),
                                    std::chrono::milliseconds(opts_.call_timeout_ms));
    if (!ch) return ch.status();
    ch_ = std::move(ch).value();
    return handshake();
  }

  Status connect_tls(const std::string& host, uint16_t port) {
    if (opts_.tls.certificate_file.empty() || opts_.tls.key_file.empty() || opts_.tls.ca_file.empty())
      return Status::InvalidParameter("vmrepl:// needs the options tls_certificate, tls_key and tls_ca "
                                      "(this client's certificate and key, and the CA of the daemon's)");
    auto ctx = TlsContext::create(opts_.tls, false);
    if (!ctx) return ctx.status();
    auto ch = Channel::connect(loop_, host, port, std::chrono::milliseconds(opts_.connect_timeout_ms),
                               std::chrono::milliseconds(opts_.call_timeout_ms), std::move(ctx).value());
    if (!ch) return ch.status();
    ch_ = std::move(ch).value();
    if (!opts_.server_thumbprint.empty() && ch_->peer_thumbprint("sha1") != opts_.server_thumbprint &&
        ch_->peer_thumbprint("sha256") != opts_.server_thumbprint)
      return Status::AccessDenied(where_ + " presented certificate " + ch_->peer_thumbprint("sha1") +
                                  " (SHA-1), not the pinned " + opts_.server_thumbprint);
    return handshake();
  }

  Status handshake() {
    proto::Hello hello;
    hello.service_id = Guid::generate();
    hello.host_name = "vmrepl-client";
    hello.capabilities = {management::kCapability};
    if (Status st = ch_->send(hello); !st.ok()) {
      // A daemon refusing our certificate closes at once: its reason may still be readable.
      auto why = ch_->recv(std::chrono::milliseconds(500));
      if (!why && why.status().code() == Code::AccessDenied) return why.status();
      return st;
    }
    auto reply = ch_->expect<proto::HelloReply>(std::chrono::milliseconds(opts_.call_timeout_ms));
    if (!reply) return reply.status();
    if (!reply->accepted) return status_of(reply->error_code, reply->error_text);
    host_name_ = reply->host_name;
    reader_ = std::thread([this] { read_loop(); });
    return Status::OK();
  }

  ~Core() {
    if (ch_) ch_->close(Status::SystemNotAvailable("the client closed the connection"));
    if (reader_.joinable()) reader_.join();
  }

  void set_listener(std::function<void(const Guid&)> l) {
    std::lock_guard<std::mutex> lk(mu_);
    listener_ = std::move(l);
  }

  // One call; the job of a job-returning method comes back registered (in `job`).
  struct Answer {
    json body;
    std::shared_ptr<JobCache> job;
  };

  Result<Answer> call(const std::string& method, const json& args) {
    auto p = std::make_shared<Pending>();
    p->method = method;
    uint64_t seq;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!broken_.ok()) return broken_;
      seq = ++seq_;
      pending_[seq] = p;
    }
    proto::Request req;
    req.seq = seq;
    req.method = method;
    req.body_json = args.dump();
    Status st;
    {
      std::lock_guard<std::mutex> lk(send_mu_);
      st = ch_->send(req);
    }
    std::unique_lock<std::mutex> lk(mu_);
    if (st.ok()) {
      bool answered = cv_.wait_for(lk, std::chrono::milliseconds(opts_.call_timeout_ms), [&] { return p->done; });
      if (!answered) st = Status::Timeout(method + ": no answer from " + where_ + " within " +
                                         std::to_string(opts_.call_timeout_ms) + " ms");
    }
    pending_.erase(seq);
    if (!st.ok()) return st;
    if (!p->status.ok()) return p->status;
    return Answer{std::move(p->body), std::move(p->job)};
  }

  std::shared_ptr<JobCache> job_state(const Guid& id) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = jobs_.find(id);
    return it == jobs_.end() ? nullptr : it->second.lock();
  }

  const std::string& where() const { return where_; }

 private:
  struct Pending {
    std::string method;
    bool done = false;
    Status status;
    json body;
    std::shared_ptr<JobCache> job;
  };

  // Registers (or refreshes) the job an answer or an event describes. Reader thread.
  std::shared_ptr<JobCache> register_job(const json& j) {
    auto inst = management::instance_from_json(j);
    if (!inst) return nullptr;
    auto id_text = inst->string_or_null("InstanceID");
    if (!id_text) return nullptr;
    auto id = Guid::parse(*id_text);
    if (!id) return nullptr;
    std::shared_ptr<JobCache> s;
    {
      std::lock_guard<std::mutex> lk(mu_);
      std::erase_if(jobs_, [](const auto& kv) { return kv.second.expired(); });
      auto it = jobs_.find(*id);
      if (it != jobs_.end()) s = it->second.lock();
      if (!s) {
        s = std::make_shared<JobCache>();
        s->id = *id;
        jobs_[*id] = s;
      }
    }
    s->update(std::move(inst).value());
    return s;
  }

  void read_loop() {
    Status why;
    for (;;) {
      auto m = ch_->recv(std::chrono::hours(24 * 365));
      if (!m) {
        why = m.status();
        break;
      }
      if (auto* r = std::get_if<proto::Response>(&*m)) {
        Pending result;
        result.done = true;
        if (r->code != 0) {
          result.status = status_of(r->code, r->text);
        } else {
          auto body = management::parse_body(r->body_json);
          if (!body) {
            result.status = body.status().Annotate("answer from " + where_);
          } else {
            result.body = std::move(body).value();
            if (auto it = result.body.find("job"); it != result.body.end()) {
              result.job = register_job(*it);
              if (!result.job) result.status = Status(Code::IncorrectDataType, "answer from " + where_ + ": bad job");
            }
          }
        }
        std::lock_guard<std::mutex> lk(mu_);
        auto it = pending_.find(r->seq);
        if (it != pending_.end()) {
          *it->second = std::move(result);
          cv_.notify_all();
        }
      } else if (auto* ev = std::get_if<proto::Request>(&*m); ev && ev->method == management::kJobEvent) {
        auto body = management::parse_body(ev->body_json);
        if (!body) continue;
        auto id_known = management::instance_from_json(*body);
        if (!id_known) continue;
        auto id = Guid::parse(id_known->string_or_null("InstanceID").value_or(""));
        if (!id) continue;
        auto s = job_state(*id);
        if (!s) continue;  // no handle holds it any more
        s->update(std::move(id_known).value());
        std::function<void(const Guid&)> l;
        {
          std::lock_guard<std::mutex> lk(mu_);
          l = listener_;
        }
        if (l) l(*id);
      } else if (auto* e = std::get_if<proto::Error>(&*m)) {
        why = proto::status_from(*e);
        break;
      }
    }
    fail_all(Status::SystemNotAvailable("connection to " + where_ + " lost: " + why.message()));
  }

  void fail_all(Status why) {
    std::vector<std::shared_ptr<JobCache>> jobs;
    std::function<void(const Guid&)> l;
    {
      std::lock_guard<std::mutex> lk(mu_);
      broken_ = why;
      // A call on its way had no answer: the daemon may or may not have done it.
      for (auto& [seq, p] : pending_) {
        p->done = true;
        p->status = Status::Unknown(why.message() + " before the answer to " + p->method +
                                    ": whether it took effect is unknown; check before retrying");
      }
      cv_.notify_all();
      for (auto& [id, w] : jobs_)
        if (auto s = w.lock()) jobs.push_back(s);
      l = listener_;
    }
    for (auto& s : jobs) {
      {
        std::lock_guard<std::mutex> lk(s->mu);
        s->lost = why;
      }
      s->cv.notify_all();
      if (l) l(s->id);
    }
  }

  const RemoteOptions opts_;
  const std::string where_;
  EventLoop loop_;  // before ch_: the channel goes first
  std::shared_ptr<Channel> ch_;
  std::string host_name_;
  std::thread reader_;
  std::mutex send_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t seq_ = 0;
  std::map<uint64_t, std::shared_ptr<Pending>> pending_;
  std::map<Guid, std::weak_ptr<JobCache>> jobs_;
  std::function<void(const Guid&)> listener_;
  Status broken_;
};

Status RemoteJob::cancel() {
  auto core = core_.lock();
  if (!core) return Status::SystemNotAvailable("the service of job " + s_->id.to_string() + " was closed");
  auto r = core->call("job_cancel", json{{"id", s_->id.to_string()}});
  return r ? Status::OK() : r.status();
}

class RemoteApi final : public ServiceApi {
 public:
  explicit RemoteApi(std::shared_ptr<Core> core) : core_(std::move(core)) {}

  Result<Instance> info() override { return instance(core_->call("info", json::object())); }
  int64_t job_retention_s() const override { return retention_s_; }
  void set_job_listener(std::function<void(const Guid&)> l) override { core_->set_listener(std::move(l)); }

  Result<Instance> define_system(std::string_view def) override {
    return instance(core_->call("define_system", {{"definition", std::string(def)}}));
  }
  Result<Instance> get_system(std::string_view cs) override { return instance(core_->call("get_system", cs_args(cs))); }
  Result<std::vector<Instance>> list_systems() override { return list(core_->call("list_systems", json::object())); }
  Status destroy_system(std::string_view cs) override { return done(core_->call("destroy_system", cs_args(cs))); }
  Status request_state_change(std::string_view cs, uint16_t st) override {
    return done(core_->call("request_state_change", {{"cs", std::string(cs)}, {"state", st}}));
  }
  Result<std::string> disk_path(std::string_view cs, uint32_t disk) override {
    auto r = core_->call("disk_path", {{"cs", std::string(cs)}, {"disk", disk}});
    if (!r) return r.status();
    auto it = r->body.find("text");
    if (it == r->body.end() || !it->is_string()) return bad_answer("disk_path");
    return it->get<std::string>();
  }
  Status disk_mark_dirty(std::string_view cs, uint32_t disk, uint64_t off, uint64_t len) override {
    return done(core_->call("disk_mark_dirty", {{"cs", std::string(cs)}, {"disk", disk}, {"offset", off}, {"length", len}}));
  }
  Result<JobPtr> compute_digest(std::string_view cs) override { return job(core_->call("compute_digest", cs_args(cs))); }
  Status set_bandwidth_limit(std::string_view cs, uint64_t bps) override {
    return done(core_->call("set_bandwidth_limit", {{"cs", std::string(cs)}, {"bytes_per_s", bps}}));
  }
  Result<uint64_t> bandwidth_limit(std::string_view cs) override {
    auto r = core_->call("bandwidth_limit", cs_args(cs));
    if (!r) return r.status();
    auto it = r->body.find("value");
    if (it == r->body.end() || !it->is_number_unsigned()) return bad_answer("bandwidth_limit");
    return it->get<uint64_t>();
  }

  Result<JobPtr> create_replication_relationship(std::string_view cs, std::string_view sd) override {
    return job(core_->call("create_replication_relationship", {{"cs", std::string(cs)}, {"sd", std::string(sd)}}));
  }
  Result<JobPtr> start_replication(std::string_view cs, uint16_t type, std::string_view loc,
                                   std::string_view start) override {
    return job(core_->call("start_replication", {{"cs", std::string(cs)},
                                                 {"type", type},
                                                 {"export_location", std::string(loc)},
                                                 {"start_time", std::string(start)}}));
  }
  Result<JobPtr> modify_replication_settings(std::string_view cs, std::string_view sd) override {
    return job(core_->call("modify_replication_settings", {{"cs", std::string(cs)}, {"sd", std::string(sd)}}));
  }
  Result<JobPtr> remove_replication_relationship(std::string_view cs) override {
    return job(core_->call("remove_replication_relationship", cs_args(cs)));
  }
  Result<JobPtr> request_replication_state_change(std::string_view cs, uint16_t requested) override {
    return job(core_->call("request_replication_state_change", {{"cs", std::string(cs)}, {"state", requested}}));
  }
  Result<JobPtr> resynchronize(std::string_view cs, std::string_view start) override {
    return job(core_->call("resynchronize", {{"cs", std::string(cs)}, {"start_time", std::string(start)}}));
  }
  Result<JobPtr> replicate_now(std::string_view cs) override { return job(core_->call("replicate_now", cs_args(cs))); }
  Result<JobPtr> test_replication_connection(std::string_view point, uint16_t port, uint16_t auth,
                                             std::string_view thumb) override {
    return job(core_->call("test_replication_connection", {{"point", std::string(point)},
                                                           {"port", port},
                                                           {"auth_type", auth},
                                                           {"thumbprint", std::string(thumb)}}));
  }
  Result<JobPtr> initiate_failover(std::string_view cs, std::string_view snapshot) override {
    return job(core_->call("initiate_failover", {{"cs", std::string(cs)}, {"snapshot", std::string(snapshot)}}));
  }
  Result<JobPtr> revert_failover(std::string_view cs) override { return job(core_->call("revert_failover", cs_args(cs))); }
  Result<JobPtr> commit_failover(std::string_view cs) override { return job(core_->call("commit_failover", cs_args(cs))); }
  Result<JobPtr> test_replica_system(std::string_view cs, std::string_view snapshot) override {
    return job(core_->call("test_replica_system", {{"cs", std::string(cs)}, {"snapshot", std::string(snapshot)}}));
  }
  Result<JobPtr> reverse_replication_relationship(std::string_view cs, std::string_view sd, bool verify_full) override {
    return job(core_->call("reverse_replication_relationship",
                           {{"cs", std::string(cs)}, {"sd", std::string(sd)}, {"verify_full", verify_full}}));
  }
  Result<Instance> get_replication_statistics(std::string_view cs) override {
    return instance(core_->call("get_replication_statistics", cs_args(cs)));
  }
  Result<Instance> get_replication_settings(std::string_view cs) override {
    return instance(core_->call("get_replication_settings", cs_args(cs)));
  }
  Result<std::vector<Instance>> list_recovery_points(std::string_view cs) override {
    return list(core_->call("list_recovery_points", cs_args(cs)));
  }

  Result<JobPtr> modify_service_settings(std::string_view sd) override {
    return job(core_->call("modify_service_settings", {{"sd", std::string(sd)}}));
  }
  Result<Instance> service_settings() override { return instance(core_->call("service_settings", json::object())); }
  Result<JobPtr> add_authorization_entry(std::string_view e) override {
    return job(core_->call("add_authorization_entry", {{"entry", std::string(e)}}));
  }
  Result<JobPtr> modify_authorization_entry(std::string_view e) override {
    return job(core_->call("modify_authorization_entry", {{"entry", std::string(e)}}));
  }
  Result<JobPtr> remove_authorization_entry(std::string_view h) override {
    return job(core_->call("remove_authorization_entry", {{"host", std::string(h)}}));
  }
  Result<std::vector<Instance>> list_authorization_entries() override {
    return list(core_->call("list_authorization_entries", json::object()));
  }
  Result<JobPtr> get_job(std::string_view id) override { return job(core_->call("get_job", {{"id", std::string(id)}})); }
  Result<std::vector<Instance>> list_jobs() override { return list(core_->call("list_jobs", json::object())); }

  void set_retention(int64_t s) { retention_s_ = s; }

 private:
  static json cs_args(std::string_view cs) { return json{{"cs", std::string(cs)}}; }
  Status bad_answer(const char* method) const {
    return Status(Code::IncorrectDataType, std::string(method) + ": malformed answer from " + core_->where());
  }
  Result<Instance> instance(Result<Core::Answer> r) const {
    if (!r) return r.status();
    auto it = r->body.find("instance");
    if (it == r->body.end()) return bad_answer("call");
    return management::instance_from_json(*it);
  }
  Result<std::vector<Instance>> list(Result<Core::Answer> r) const {
    if (!r) return r.status();
    auto it = r->body.find("instances");
    if (it == r->body.end() || !it->is_array()) return bad_answer("call");
    std::vector<Instance> out;
    for (const auto& j : *it) {
      auto i = management::instance_from_json(j);
      if (!i) return i.status();
      out.push_back(std::move(i).value());
    }
    return out;
  }
  Status done(Result<Core::Answer> r) const { return r ? Status::OK() : r.status(); }
  Result<JobPtr> job(Result<Core::Answer> r) const {
    if (!r) return r.status();
    if (!r->job) return bad_answer("call");
    return JobPtr(std::make_shared<RemoteJob>(r->job, core_));
  }

  std::shared_ptr<Core> core_;
  int64_t retention_s_ = 300;
};

}  // namespace

Result<std::unique_ptr<ServiceApi>> connect_remote_api(std::string_view uri, std::string_view options_json) {
  auto opts = parse_options(options_json);
  if (!opts) return opts.status();
  std::shared_ptr<Core> core;
  if (uri.starts_with("unix:")) {
    std::string path(uri.substr(5));
    if (path.empty() || path.front() != '/')
      return Status::InvalidParameter("unix: URI needs an absolute socket path (unix:/run/vmrepl/vmrepld.sock)");
    core = std::make_shared<Core>(*opts, "vmrepld at unix:" + path);
    if (Status st = core->connect_unix(path); !st.ok()) return st;
  } else if (uri.starts_with("vmrepl://")) {
    std::string hp(uri.substr(9));
    auto colon = hp.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == hp.size() || hp.size() > 300)
      return Status::InvalidParameter("vmrepl:// URI must be vmrepl://host:port (got '" + std::string(uri.substr(0, 128)) + "')");
    std::string host = hp.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    char* end = nullptr;
    unsigned long port = std::strtoul(hp.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || port == 0 || port > 65535)
      return Status::InvalidParameter("vmrepl:// URI: port must be 1..65535 (got '" + hp.substr(colon + 1, 16) + "')");
    core = std::make_shared<Core>(*opts, "vmrepld at " + std::string(uri.substr(0, 128)));
    if (Status st = core->connect_tls(host, static_cast<uint16_t>(port)); !st.ok()) return st;
  } else {
    return Status::InvalidParameter("unknown URI '" + std::string(uri.substr(0, 128)) +
                                    "': expected local:<root>, unix:<socket> or vmrepl://host:port");
  }
  auto api = std::make_unique<RemoteApi>(core);
  auto info = api->info();
  if (!info) return info.status();
  api->set_retention(static_cast<int64_t>(info->u64_or_null("JobRetentionSeconds").value_or(300)));
  return std::unique_ptr<ServiceApi>(std::move(api));
}

}  // namespace vmrepl
