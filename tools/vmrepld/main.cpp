// vmrepld: the replication service of one host. One ReplicationService over the host root,
// its replication listener, and a ManagementServer for vmr_open("unix:...") clients, set up
// from a TOML file (config.h). It runs in the foreground (systemd: Type=notify) and logs to
// stderr (log.h).
//
// Exit codes: 0 clean shutdown (SIGTERM/SIGINT), --help, --version, --check-config ok;
// 1 the service could not start (host root, listeners); 2 bad command line or config.
//
// Signals are blocked in every thread (the service's threads inherit the mask of main, which
// blocks them before creating any) and taken by sigwaitinfo on the main thread, so no
// handler ever runs inside the engine.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "core/service/management_server.h"
#include "core/service/replication_service.h"
#include "tools/vmrepld/config.h"
#include "tools/vmrepld/job_log.h"
#include "tools/vmrepld/log.h"
#include "tools/vmrepld/sd_notify.h"

namespace vmrepld {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitStart = 1;
constexpr int kExitUsage = 2;

constexpr const char* kSelf = "vmrepld";

void log_config(Logger& log, const Config& c) {
  if (!log.enabled(LogLevel::Debug)) return;
  for (const auto& [k, v] : flatten(c)) log.debug("config", k + " = " + v);
}

std::string bytes_per_s(uint64_t v) { return v ? std::to_string(v) + " bytes/s" : std::string("unlimited"); }

// SIGHUP: re-reads the file, applies what can change while running, and names the rest.
// A file that no longer passes the checks changes nothing.
void reload(const std::string& path, Config& running, Logger& log, vmrepl::ReplicationService& svc) {
  sd_notify("RELOADING=1");
  log.info("config", "SIGHUP: reloading " + path);
  auto next = load_config(path);
  if (!next) {
    log.error("config", "config " + path + ": " + next.status().message() + "; keeping the running configuration");
    sd_notify("READY=1");
    return;
  }
  const auto before = flatten(running), after = flatten(*next);
  std::map<std::string, std::pair<std::string, std::string>> changed;  // key -> (old, new)
  for (const auto& [k, v] : before) {
    auto it = after.find(k);
    const std::string now = it == after.end() ? "(unset)" : it->second;
    if (now != v) changed[k] = {v, now};
  }
  for (const auto& [k, v] : after)
    if (!before.count(k)) changed[k] = {"(unset)", v};

  for (const auto& [k, ov] : changed) {
    const auto& [old_v, new_v] = ov;
    if (!reloadable(k)) {
      log.warn("config", k + " changed (" + old_v + " -> " + new_v + "): needs a restart; still using " + old_v);
      continue;
    }
    if (k == "log_level") {
      running.log_level = next->log_level;
      log.set_level(running.log_level);
      // Said at info, or at the new level when that hides info, so the change always shows.
      log.log(std::min(running.log_level, LogLevel::Info), "config", "log_level: " + old_v + " -> " + new_v);
    } else if (k == "limits.bandwidth_bytes_per_s") {
      vmrepl::Status st = svc.replicator().set_bandwidth_limit(std::nullopt, next->bandwidth_bytes_per_s);
      if (!st.ok()) {
        log.error("config", "limits.bandwidth_bytes_per_s: " + st.ToString() + "; keeping " +
                                bytes_per_s(running.bandwidth_bytes_per_s));
        continue;
      }
      log.info("config", "limits.bandwidth_bytes_per_s: " + bytes_per_s(running.bandwidth_bytes_per_s) + " -> " +
                             bytes_per_s(next->bandwidth_bytes_per_s));
      running.bandwidth_bytes_per_s = next->bandwidth_bytes_per_s;
    }
  }
  if (changed.empty()) log.info("config", "reloaded: no change");
  log_config(log, running);
  sd_notify("READY=1");
}

// The socket's directory, when missing, is made private to the daemon's user (systemd's
// RuntimeDirectory= makes it already).
vmrepl::Status ensure_socket_dir(const std::string& socket, Logger& log) {
  const std::filesystem::path dir = std::filesystem::path(socket).parent_path();
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) return vmrepl::Status::OK();
  if (!std::filesystem::create_directories(dir, ec) && ec)
    return vmrepl::Status::Failed("cannot create " + dir.string() + ": " + ec.message());
  if (::chmod(dir.c_str(), 0700) != 0)
    return vmrepl::Status::Failed("chmod " + dir.string() + ": " + std::strerror(errno));
  log.info(kSelf, "created " + dir.string() + " (mode 0700) for the management socket");
  return vmrepl::Status::OK();
}

int run(const std::string& config_path, Config cfg) {
  // Before any thread exists: the engine's threads inherit this mask. An ignored signal
  // (nohup ignores SIGHUP) would never reach sigwaitinfo, hence the default dispositions.
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&sigs, sig);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::signal(sig, SIG_DFL);  // blocked: pending, not fatal
  // A management client that goes away mid-answer gives EPIPE, not the end of the daemon.
  ::signal(SIGPIPE, SIG_IGN);

  Logger log(cfg.log_level);
  log.info(kSelf, std::string("version ") + VMREPLD_VERSION + " starting (pid " + std::to_string(::getpid()) +
                      ", config " + config_path + ")");
  log_config(log, cfg);

  auto opened = vmrepl::ReplicationService::open(cfg.host_root, cfg.service);
  if (!opened) {
    const vmrepl::Status& st = opened.status();
    if (st.code() == vmrepl::Code::SystemInUse && st.message().find("in use by another VmStore") != std::string::npos)
      log.error(kSelf, "host root " + cfg.host_root + " is locked: another vmrepld (or a local: client) has it open (" +
                           st.message() + ")");
    else
      log.error(kSelf, "cannot start the service on host root " + cfg.host_root + ": " + st.ToString());
    return kExitStart;
  }
  std::unique_ptr<vmrepl::ReplicationService> svc = std::move(opened).value();
  log.info(kSelf, "host " + cfg.service.host_name + ", host root " + cfg.host_root);
  if (cfg.service.listen.empty() && cfg.service.tls_listen.empty()) {
    log.info(kSelf, "no replication listener (replication.listen and tls_listen are empty): this host can only be a "
                    "primary");
  } else {
    const std::string& l = cfg.service.listen;
    log.info(kSelf, "replication listening on " + l.substr(0, l.rfind(':')) + ":" +
                        std::to_string(svc->replicator().listen_port()) + " (plaintext, loopback)");
  }
  if (!cfg.service.tls_listen.empty()) {
    const std::string& l = cfg.service.tls_listen;
    log.info(kSelf, "replication listening on " + l.substr(0, l.rfind(':')) + ":" +
                        std::to_string(svc->replicator().tls_listen_port()) + " (certificate authentication)");
  }
  if (vmrepl::Status st = svc->replicator().set_bandwidth_limit(std::nullopt, cfg.bandwidth_bytes_per_s); !st.ok()) {
    log.error(kSelf, "limits.bandwidth_bytes_per_s: " + st.ToString());
    return kExitStart;
  }
  log.info(kSelf, "bandwidth limit: " + bytes_per_s(cfg.bandwidth_bytes_per_s));

  auto job_log = std::make_shared<JobLog>(log);
  svc->jobs().add_listener([job_log](const std::shared_ptr<vmrepl::Job>& j) { job_log->on_change(j); });

  if (!cfg.management_socket.empty()) {
    if (vmrepl::Status st = ensure_socket_dir(cfg.management_socket, log); !st.ok()) {
      log.error(kSelf, "management.socket: " + st.message());
      return kExitStart;
    }
  }
  vmrepl::ManagementServerOptions mopts{cfg.management_socket, cfg.management_listen, nullptr, {}};
  if (!cfg.management_listen.empty()) {
    auto tls = vmrepl::TlsContext::create({cfg.tls.certificate, cfg.tls.key, cfg.tls.ca}, true);
    if (!tls) {
      log.error(kSelf, "tls: " + tls.status().ToString());
      return kExitStart;
    }
    mopts.tls = std::move(tls).value();
    mopts.allowed_clients = cfg.tls.pinned_thumbprints;
  }
  auto started = vmrepl::ManagementServer::start(*svc, std::move(mopts));
  if (!started) {
    log.error(kSelf, "cannot start management: " + started.status().ToString());
    return kExitStart;
  }
  std::unique_ptr<vmrepl::ManagementServer> mgmt = std::move(started).value();
  if (cfg.management_socket.empty())
    log.warn(kSelf, "no management socket (management.socket is empty): only the replication port is open");
  else
    log.info(kSelf, "listening on unix:" + cfg.management_socket);
  if (!cfg.management_listen.empty())
    log.info(kSelf, "management listening on vmrepl://" +
                        cfg.management_listen.substr(0, cfg.management_listen.rfind(':')) + ":" +
                        std::to_string(mgmt->tcp_port()) + " (mutual TLS, " +
                        std::to_string(cfg.tls.pinned_thumbprints.size()) + " pinned client(s))");

  sd_notify("READY=1\nSTATUS=running");
  log.info(kSelf, "ready");

  for (;;) {
    siginfo_t info{};
    const int sig = sigwaitinfo(&sigs, &info);
    if (sig < 0) {
      if (errno == EINTR) continue;
      log.error(kSelf, std::string("sigwaitinfo: ") + std::strerror(errno) + "; shutting down");
      break;
    }
    if (sig == SIGHUP) {
      reload(config_path, cfg, log, *svc);
      continue;
    }
    log.info(kSelf, std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") + " from pid " + std::to_string(info.si_pid) +
                        ": shutting down");
    break;
  }

  // Still blocked, a second SIGTERM or SIGINT now waits unseen: the shutdown runs to its end.
  sd_notify("STOPPING=1");
  size_t running = 0;
  for (const auto& j : svc->list_jobs()) running += vmrepl::job_state_is_final(j->state()) ? 0 : 1;
  mgmt.reset();
  log.info(kSelf, "management closed");
  if (running) log.info(kSelf, "stopping " + std::to_string(running) + " running job(s) at a safe point");
  svc.reset();  // cancels the jobs, waits for them, persists the state
  log.info(kSelf, "stopped");
  return kExitOk;
}

}  // namespace
}  // namespace vmrepld

int main(int argc, char** argv) {
  using namespace vmrepld;
  std::string config_path;
  bool foreground = false;
  bool check_only = false;
  CLI::App app{"vmrepld: the vmrepl replication service of one host (the Hyper-V Replica model)", "vmrepld"};
  app.set_version_flag("--version", std::string("vmrepld ") + VMREPLD_VERSION);
  app.add_option("-c,--config", config_path, "The configuration file (TOML; see vmrepld(8))")->required();
  app.add_flag("--foreground", foreground,
               "Stay attached (the only mode: vmrepld never forks; systemd runs it as Type=notify)");
  app.add_flag("--check-config", check_only, "Check the configuration file, print \"ok\" and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "vmrepld: %s (see vmrepld --help)\n", e.what());
    return kExitUsage;
  }
  (void)foreground;

  auto cfg = load_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "vmrepld: config %s: %s\n", config_path.c_str(), cfg.status().message().c_str());
    return kExitUsage;
  }
  if (check_only) {
    std::puts("ok");
    return kExitOk;
  }
  return run(config_path, std::move(cfg).value());
}
