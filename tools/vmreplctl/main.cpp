// vmreplctl: drive a vmrepl service from the command line through the public C ABI only
// (libvmrepl.so). One invocation opens the service named by --uri / $VMREPL_URI, runs one
// command (waiting for its job), and closes the service; for local: URIs that releases the
// host root for the next invocation.
//
// The commands mirror the model's methods (see vmreplctl.1); output is aligned tables and
// "Key  value" lines for people, and one JSON document with --json.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ctl.h"
#include "format.h"
#include "handles.h"
#include "progress.h"

#ifndef VMREPLCTL_VERSION
#define VMREPLCTL_VERSION "0.0.0"
#endif

using namespace vmreplctl;

namespace {

constexpr const char* kExitHelp =
    "Exit status:\n"
    "  0  success\n"
    "  1  a job failed (it ended in JobState 8 Terminated, 9 Killed or 10 Exception);\n"
    "     stderr: \"error <ErrorCode> <Name>: <ErrorDescription>\"\n"
    "  2  bad usage: unknown command or option, missing or malformed argument\n"
    "  3  the service refused the call at once (or could not be opened);\n"
    "     stderr: \"error <code> <Name>: <message>\", e.g. \"error 32779 FileNotFound: ...\"\n"
    "With --json, stdout holds exactly one JSON document: the instance(s), or the job's final\n"
    "properties; a failure adds {\"error\": {\"code\": N, \"name\": \"...\", \"message\": \"...\"}}.\n"
    "\n"
    "Environment: VMREPL_URI (default for --uri), VMREPL_OPEN_OPTIONS (default for\n"
    "--open-options). URIs: local:/path/to/host-root, unix:/path/to/socket, vmrepl://host:port.\n"
    "Without either, the local vmrepld's socket unix:/run/vmrepl/vmrepld.sock when it exists.\n"
    "See vmreplctl(1).";

// ---- helpers ---------------------------------------------------------------------------

// Where vmrepld's systemd unit puts its admin socket.
constexpr const char* kDaemonSocket = "/run/vmrepl/vmrepld.sock";

Json get_instance(vmr_status (*fn)(vmr_service*, const char*, vmr_instance**), Ctl& c, const std::string& vm) {
  vmr_instance* raw = nullptr;
  vmr_status st = fn(c.svc(), vm.c_str(), &raw);
  Instance inst(raw);
  check(st);
  return to_json(inst.get());
}

Json list_json(vmr_list* raw) {
  List l(raw);
  Json arr = Json::array();
  for (size_t i = 0; i < vmr_list_size(l.get()); ++i) arr.push_back(to_json(vmr_list_get(l.get(), i)));
  return arr;
}

std::string s(const Json& j, const char* k) {
  auto it = j.find(k);
  if (it == j.end() || it->is_null()) return "-";
  return render_value(k, *it);
}

uint64_t n(const Json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

int show_instance(Ctl& c, const Json& inst) {
  if (c.json())
    c.print_json(inst);
  else
    print_properties(std::cout, inst);
  return kExitOk;
}

std::string disks_text(const Json& vm) {
  auto it = vm.find("DiskSizes");
  if (it == vm.end() || !it->is_array() || it->empty()) return "-";
  std::string out;
  for (const auto& d : *it) {
    if (!out.empty()) out += ",";
    out += d.is_number_unsigned() ? human_bytes(d.get<uint64_t>()) : d.dump();
  }
  return out;
}

// "Microsoft:Hyper-V:Snapshot:Replica:Standard" -> "Standard"
std::string last_segment(const std::string& t) {
  auto p = t.rfind(':');
  return p == std::string::npos ? t : t.substr(p + 1);
}

// A bandwidth limit for people: "unlimited", "8.0 MiB/s (8388608 bytes/s)".
std::string rate_text(uint64_t bytes_per_s) {
  if (bytes_per_s == 0) return "unlimited";
  return human_bytes(bytes_per_s) + "/s (" + std::to_string(bytes_per_s) + " bytes/s)";
}

// A bandwidth limit from the command line: bytes/s, a whole number with an optional K, M or
// G suffix (powers of 1024, as for disk sizes: 8M = 8388608), or 0 / "unlimited" for none.
std::optional<uint64_t> parse_rate(std::string_view t) {
  std::string lower;
  for (char ch : t) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower == "0" || lower == "unlimited") return 0;
  return parse_size(t);
}

// ---- commands --------------------------------------------------------------------------

int vm_list(Ctl& c) {
  vmr_list* raw = nullptr;
  check(vmr_list_systems(c.svc(), &raw));
  const Json vms = list_json(raw);
  if (c.json()) {
    c.print_json(vms);
    return kExitOk;
  }
  Table t({"NAME", "GUID", "POWER", "MODE", "STATE", "HEALTH", "DISKS"});
  for (const auto& vm : vms)
    t.add({s(vm, "ElementName"), s(vm, "Name"), s(vm, "EnabledState"), s(vm, "ReplicationMode"),
           s(vm, "ReplicationState"), s(vm, "ReplicationHealth"), disks_text(vm)});
  t.print(std::cout);
  return kExitOk;
}

int vm_create(Ctl& c, const std::string& name, const std::vector<uint64_t>& disks, const std::string& id) {
  Json def = Json::object();
  def["name"] = name;
  if (!id.empty()) def["id"] = id;
  def["disks"] = disks;
  vmr_instance* raw = nullptr;
  vmr_status st = vmr_define_system(c.svc(), def.dump().c_str(), &raw);
  Instance inst(raw);
  check(st);
  return show_instance(c, to_json(inst.get()));
}

int vm_destroy(Ctl& c, const std::string& vm) {
  const Json inst = get_instance(vmr_get_system, c, vm);
  check(vmr_destroy_system(c.svc(), vm.c_str()));
  if (c.json()) {
    Json doc = Json::object();
    doc["Name"] = inst.value("Name", "");
    doc["ElementName"] = inst.value("ElementName", "");
    doc["Destroyed"] = true;
    c.print_json(doc);
  } else {
    std::cout << "destroyed " << inst.value("ElementName", vm) << " (" << inst.value("Name", "") << ")\n";
  }
  return kExitOk;
}

int status(Ctl& c, const std::string& vm) {
  const Json inst = get_instance(vmr_get_system, c, vm);
  if (c.json()) {
    c.print_json(inst);
    return kExitOk;
  }
  static const char* const kKeys[] = {"ElementName",       "Name",
                                      "EnabledState",      "ReplicationMode",
                                      "ReplicationState",  "ReplicationHealth",
                                      "ReplicationHealthDescription",
                                      "ReplicationPeer",   "LastReplicationType",
                                      "LastReplicationTime", "LastApplyTime",
                                      "FailedOverReplicationType"};
  Json pick = Json::object();
  for (const char* k : kKeys)
    if (inst.contains(k)) pick[k] = inst[k];
  print_properties(std::cout, pick);
  return kExitOk;
}

int enable(Ctl& c, const std::string& vm, const std::string& server, unsigned port, int interval, int history,
           bool compression, unsigned auth, const std::string& thumbprint) {
  Json sd = Json::object();
  sd["__CLASS"] = "Msvm_ReplicationSettingData";
  sd["RecoveryConnectionPoint"] = server;
  sd["RecoveryServerPortNumber"] = port;
  sd["AuthenticationType"] = auth;
  if (!thumbprint.empty()) sd["CertificateThumbPrint"] = thumbprint;
  if (interval >= 0) sd["ReplicationInterval"] = interval;
  if (history >= 0) sd["RecoveryHistory"] = history;
  sd["CompressionEnabled"] = compression;
  vmr_job* job = nullptr;
  vmr_status st = vmr_create_replication_relationship(c.svc(), vm.c_str(), sd.dump().c_str(), &job);
  return c.finish(st, job, vm);
}

int reverse(Ctl& c, const std::string& vm, const std::string& server, unsigned port, const std::string& verify,
            unsigned auth, const std::string& thumbprint) {
  // The VM's current settings, with the old primary as the new recovery server; with
  // certificate authentication they name this host's certificate (it is the primary now).
  Json sd = get_instance(vmr_get_replication_settings, c, vm);
  sd["RecoveryConnectionPoint"] = server;
  sd["RecoveryServerPortNumber"] = port;
  if (auth != 0) sd["AuthenticationType"] = auth;
  if (!thumbprint.empty()) sd["CertificateThumbPrint"] = thumbprint;
  else if (auto at = sd.find("AuthenticationType"); at == sd.end() || !at->is_number() || at->get<unsigned>() != 2u)
    sd.erase("CertificateThumbPrint");
  const uint32_t flags = verify == "full" ? VMR_REVERSE_VERIFY_FULL : 0u;
  vmr_job* job = nullptr;
  vmr_status st = vmr_reverse_replication_relationship_ex(c.svc(), vm.c_str(), sd.dump().c_str(), flags, &job);
  return c.finish(st, job, vm);
}

int points(Ctl& c, const std::string& vm) {
  vmr_list* raw = nullptr;
  check(vmr_list_recovery_points(c.svc(), vm.c_str(), &raw));
  const Json pts = list_json(raw);
  if (c.json()) {
    c.print_json(pts);
    return kExitOk;
  }
  Table t({"SEQ", "TYPE", "CREATED", "INSTANCEID"});
  for (const auto& p : pts)
    t.add({s(p, "RecoveryPointSequence"), last_segment(p.value("VirtualSystemType", "-")), s(p, "CreationTime"),
           s(p, "InstanceID")});
  t.print(std::cout);
  return kExitOk;
}

// Shows (after setting it, with `set`) the bandwidth limit of the VM's relationship, or of the
// whole service when no VM was given (cs NULL).
int limit(Ctl& c, const char* cs, std::optional<uint64_t> set) {
  if (set) check(vmr_set_bandwidth_limit(c.svc(), cs, *set));
  uint64_t bytes_per_s = 0;
  check(vmr_get_bandwidth_limit(c.svc(), cs, &bytes_per_s));
  if (c.json()) {
    Json doc = Json::object();
    doc["BandwidthLimit"] = bytes_per_s;
    doc["ComputerSystem"] = cs ? Json(cs) : Json(nullptr);
    c.print_json(doc);
  } else {
    std::cout << rate_text(bytes_per_s) << '\n';
  }
  return kExitOk;
}

int auth_add(Ctl& c, const std::string& host, const std::string& location, const std::string& group) {
  Json e = Json::object();
  e["__CLASS"] = "Msvm_ReplicationAuthorizationSettingData";
  e["AllowedPrimaryHostSystem"] = host;
  e["TrustGroup"] = group;
  e["ReplicaStorageLocation"] = location;
  vmr_job* job = nullptr;
  vmr_status st = vmr_add_authorization_entry(c.svc(), e.dump().c_str(), &job);
  return c.finish(st, job);
}

int auth_list(Ctl& c) {
  vmr_list* raw = nullptr;
  check(vmr_list_authorization_entries(c.svc(), &raw));
  const Json entries = list_json(raw);
  if (c.json()) {
    c.print_json(entries);
    return kExitOk;
  }
  Table t({"PRIMARY", "TRUST GROUP", "STORAGE LOCATION"});
  for (const auto& e : entries)
    t.add({s(e, "AllowedPrimaryHostSystem"), s(e, "TrustGroup"), s(e, "ReplicaStorageLocation")});
  t.print(std::cout);
  return kExitOk;
}

int server_set(Ctl& c, bool enabled, int auth, const std::string& thumbprint) {
  Json sd = Json::object();
  sd["__CLASS"] = "Msvm_ReplicationServiceSettingData";
  sd["RecoveryServerEnabled"] = enabled;
  if (auth >= 0) sd["AllowedAuthenticationType"] = auth;
  if (!thumbprint.empty()) sd["CertificateThumbPrint"] = thumbprint;
  vmr_job* job = nullptr;
  vmr_status st = vmr_modify_service_settings(c.svc(), sd.dump().c_str(), &job);
  return c.finish(st, job);
}

int server_show(Ctl& c) {
  vmr_instance* raw = nullptr;
  vmr_status st = vmr_service_info(c.svc(), &raw);
  Instance inst(raw);
  check(st);
  return show_instance(c, to_json(inst.get()));
}

int jobs(Ctl& c) {
  vmr_list* raw = nullptr;
  check(vmr_list_jobs(c.svc(), &raw));
  const Json js = list_json(raw);
  if (c.json()) {
    c.print_json(js);
    return kExitOk;
  }
  Table t({"ID", "TYPE", "STATE", "PCT", "ERROR", "NAME"});
  for (const auto& j : js)
    t.add({s(j, "InstanceID"), s(j, "JobType"), s(j, "JobState"), std::to_string(n(j, "PercentComplete")) + "%",
           n(j, "ErrorCode") ? std::to_string(n(j, "ErrorCode")) : "-", s(j, "Name")});
  t.print(std::cout);
  return kExitOk;
}

Job find_job(Ctl& c, const std::string& id) {
  vmr_job* raw = nullptr;
  vmr_status st = vmr_get_job(c.svc(), id.c_str(), &raw);
  Job job(raw);
  check(st);
  return job;
}

Json job_props(vmr_job* job) {
  vmr_instance* raw = nullptr;
  vmr_status st = vmr_job_get(job, &raw);
  Instance inst(raw);
  check(st);
  return to_json(inst.get());
}

int job_show(Ctl& c, const std::string& id) {
  Job job = find_job(c, id);
  return show_instance(c, job_props(job.get()));
}

int job_watch(Ctl& c, const std::string& id) {
  Job job = find_job(c, id);
  const Json props = wait_for_job(job.get(), choose_progress(c.json(), c.opts().quiet));
  return c.report_job(props);
}

int job_cancel(Ctl& c, const std::string& id) {
  Job job = find_job(c, id);
  check(vmr_job_cancel(job.get()));
  // The cancel was accepted: the job stops at its next safe point.
  const Json props = wait_for_job(job.get(), choose_progress(c.json(), c.opts().quiet));
  if (c.json())
    c.print_json(props);
  else
    std::cout << s(props, "Name") << ": JobState " << s(props, "JobState") << '\n';
  return kExitOk;
}

// ---- command line ----------------------------------------------------------------------

using Action = std::function<int(Ctl&)>;

// Disk sizes: "256M", "1G,2G", repeatable.
std::vector<uint64_t> parse_sizes(const std::vector<std::string>& texts) {
  std::vector<uint64_t> out;
  for (const auto& t : texts) {
    auto v = parse_size(t);
    if (!v) throw CLI::ValidationError("--disk", "bad size '" + t + "' (a whole number with K, M, G or T)");
    out.push_back(*v);
  }
  return out;
}

struct SizeValidator : CLI::Validator {
  SizeValidator() {
    name_ = "SIZE";
    func_ = [](std::string& t) -> std::string {
      return parse_size(t) ? std::string() : "bad size '" + t + "' (a whole number with K, M, G or T)";
    };
  }
};

struct RateValidator : CLI::Validator {
  RateValidator() {
    name_ = "RATE";
    func_ = [](std::string& t) -> std::string {
      return parse_rate(t) ? std::string()
                           : "bad rate '" + t + "' (bytes/s: a whole number with K, M or G, or 0 / unlimited)";
    };
  }
};

}  // namespace

int main(int argc, char** argv) {
  GlobalOptions g;
  Action action;

  CLI::App app{"vmreplctl: manage VM replication (the Hyper-V Replica model) through a vmrepl service",
               "vmreplctl"};
  app.footer(kExitHelp);
  app.set_version_flag("--version", std::string("vmreplctl ") + VMREPLCTL_VERSION + " (libvmrepl " + vmr_version() + ")");
  app.add_option("--uri", g.uri, "Service: local:/host/root, unix:/socket or vmrepl://host:port")
      ->envname("VMREPL_URI");
  app.add_option("--open-options", g.open_options,
                 "JSON options for vmr_open, e.g. '{\"host_name\":\"hv-a\",\"listen\":\"127.0.0.1:0\","
                 "\"hosts\":{\"hv-b\":\"127.0.0.1\"}}'")
      ->envname("VMREPL_OPEN_OPTIONS");
  app.add_flag("--json", g.json, "Print one JSON document on stdout and nothing else");
  app.add_flag("-q,--quiet", g.quiet, "No job progress on stderr");
  app.require_subcommand(0, 1);  // none: "a command is required" below, after unknown words are reported
  app.fallthrough();  // global options may follow the command

  // Arguments shared by commands; each command's callback binds them into its action.
  std::string vm, name, host, location, trust_group = "DEFAULT", point, verify, type = "network", id, thumbprint,
      rate;
  std::vector<std::string> disk_texts;
  unsigned port = 0, auth_type = 1, reverse_auth = 0;
  int interval = -1, history = -1, server_auth = 1;
  bool compression = false, prepare = false, test = false, cancel = false;

  auto vm_arg = [&](CLI::App* sc) { sc->add_option("VM", vm, "The VM: its name, GUID or object path")->required(); };
  auto simple = [&](CLI::App* sc, std::function<int(Ctl&)> fn) { sc->callback([&action, fn] { action = fn; }); };
  auto with_job = [&](CLI::App* parent, const char* cmd, const char* help,
                      std::function<vmr_status(vmr_service*, const char*, vmr_job**)> call) {
    CLI::App* sc = parent->add_subcommand(cmd, help);
    vm_arg(sc);
    sc->callback([&action, &vm, call] {
      action = [&vm, call](Ctl& c) {
        vmr_job* job = nullptr;
        vmr_status st = call(c.svc(), vm.c_str(), &job);
        return c.finish(st, job, vm);
      };
    });
    return sc;
  };

  // vm ...
  CLI::App* vmc = app.add_subcommand("vm", "Virtual machines (Msvm_ComputerSystem)");
  vmc->require_subcommand(1);
  simple(vmc->add_subcommand("list", "List the VMs of the host"), [](Ctl& c) { return vm_list(c); });
  {
    CLI::App* sc = vmc->add_subcommand("show", "Show every property of a VM");
    vm_arg(sc);
    simple(sc, [&vm](Ctl& c) { return show_instance(c, get_instance(vmr_get_system, c, vm)); });
  }
  {
    CLI::App* sc = vmc->add_subcommand("create", "Define a VM with sparse raw disks (DefineSystem)");
    sc->add_option("NAME", name, "Display name (ElementName)")->required();
    sc->add_option("--disk", disk_texts, "Disk sizes, e.g. 256M or 1G,2G (K, M, G, T = powers of 1024)")
        ->required()
        ->delimiter(',')
        ->check(SizeValidator());
    sc->add_option("--id", id, "The VM's GUID (default: a new one)");
    simple(sc, [&](Ctl& c) { return vm_create(c, name, parse_sizes(disk_texts), id); });
  }
  with_job(vmc, "start", "Start the VM (RequestStateChange 2)",
           [](vmr_service* s, const char* v, vmr_job** j) { return vmr_request_state_change(s, v, 2, j); });
  with_job(vmc, "stop", "Turn the VM off (RequestStateChange 3)",
           [](vmr_service* s, const char* v, vmr_job** j) { return vmr_request_state_change(s, v, 3, j); });
  {
    CLI::App* sc = vmc->add_subcommand("destroy", "Delete an off VM and its disks");
    vm_arg(sc);
    simple(sc, [&vm](Ctl& c) { return vm_destroy(c, vm); });
  }

  // Digest and replication.
  {
    CLI::App* sc = app.add_subcommand("digest", "Block index and Merkle roots of the VM's disks (ComputeDigest)");
    vm_arg(sc);
    simple(sc, [&vm](Ctl& c) {
      vmr_job* job = nullptr;
      vmr_status st = vmr_compute_digest(c.svc(), vm.c_str(), &job);
      return c.finish(st, job);
    });
  }
  {
    CLI::App* sc = app.add_subcommand("enable", "Enable replication of a VM (CreateReplicationRelationship)");
    vm_arg(sc);
    sc->add_option("--recovery-server", host, "RecoveryConnectionPoint: the replica host's name")->required();
    sc->add_option("--port", port, "RecoveryServerPortNumber")->required()->check(CLI::Range(1, 65535));
    sc->add_option("--interval", interval, "ReplicationInterval in seconds: 30, 300 or 900 (default 300)");
    sc->add_option("--history", history, "RecoveryHistory: extra recovery points, 0-24 (default 0)")
        ->check(CLI::Range(0, 24));
    sc->add_flag("--compression", compression, "CompressionEnabled");
    sc->add_option("--auth-type", auth_type, "AuthenticationType: 1 plaintext (loopback only), 2 certificate (TLS)")
        ->check(CLI::IsMember({1u, 2u}))
        ->capture_default_str();
    sc->add_option("--thumbprint", thumbprint, "CertificateThumbPrint: this host's certificate (AuthenticationType 2)");
    simple(sc, [&](Ctl& c) {
      return enable(c, vm, host, port, interval, history, compression, auth_type, thumbprint);
    });
  }
  {
    CLI::App* sc = app.add_subcommand("start", "Initial replication (StartReplication)");
    vm_arg(sc);
    sc->add_option("--type", type, "InitialReplicationType: network (1) or seeded (3)")
        ->transform(CLI::CheckedTransformer(std::map<std::string, std::string>{{"network", "1"}, {"seeded", "3"}},
                                            CLI::ignore_case))
        ->capture_default_str();
    simple(sc, [&](Ctl& c) {
      vmr_job* job = nullptr;
      const uint16_t t = type == "3" ? 3 : 1;
      vmr_status st = vmr_start_replication(c.svc(), vm.c_str(), t, nullptr, nullptr, &job);
      return c.finish(st, job, vm);
    });
  }
  with_job(&app, "replicate", "Run one replication cycle now",
           [](vmr_service* s, const char* v, vmr_job** j) { return vmr_replicate_now(s, v, j); });
  {
    CLI::App* sc = app.add_subcommand("status", "ReplicationMode, ReplicationState, ReplicationHealth of a VM");
    vm_arg(sc);
    simple(sc, [&vm](Ctl& c) { return status(c, vm); });
  }
  with_job(&app, "suspend", "Suspend replication (RequestReplicationStateChange 7)",
           [](vmr_service* s, const char* v, vmr_job** j) { return vmr_request_replication_state_change(s, v, 7, j); });
  with_job(&app, "resume", "Resume replication (RequestReplicationStateChange 3)",
           [](vmr_service* s, const char* v, vmr_job** j) { return vmr_request_replication_state_change(s, v, 3, j); });
  {
    CLI::App* sc = app.add_subcommand("resync", "Resynchronize: send only the blocks that differ (Resynchronize)");
    vm_arg(sc);
    sc->add_flag("--cancel", cancel, "Cancel a resynchronization (RequestReplicationStateChange 9)");
    simple(sc, [&](Ctl& c) {
      vmr_job* job = nullptr;
      vmr_status st = cancel ? vmr_request_replication_state_change(c.svc(), vm.c_str(), 9, &job)
                             : vmr_resynchronize(c.svc(), vm.c_str(), nullptr, &job);
      return c.finish(st, job, vm);
    });
  }
  with_job(&app, "disable", "Remove the VM's replication relationship (RemoveReplicationRelationship)",
           [](vmr_service* s, const char* v, vmr_job** j) { return vmr_remove_replication_relationship(s, v, j); });

  // Failover and reverse.
  {
    CLI::App* sc = app.add_subcommand(
        "failover", "Fail over on the replica (InitiateFailover), prepare it on the primary, or test it");
    vm_arg(sc);
    CLI::Option* prep = sc->add_flag("--prepare", prepare,
                                     "On the primary, VM off: a final cycle (RequestReplicationStateChange 4)");
    CLI::Option* pt = sc->add_option("--point", point, "Recovery point: InstanceID or sequence (default the latest)");
    CLI::Option* tst = sc->add_flag("--test", test, "Create a test VM from the point (TestReplicaSystem)");
    prep->excludes(pt)->excludes(tst);
    simple(sc, [&](Ctl& c) {
      vmr_job* job = nullptr;
      const char* snap = point.empty() ? nullptr : point.c_str();
      vmr_status st = prepare ? vmr_request_replication_state_change(c.svc(), vm.c_str(), 4, &job)
                      : test  ? vmr_test_replica_system(c.svc(), vm.c_str(), snap, &job)
                              : vmr_initiate_failover(c.svc(), vm.c_str(), snap, &job);
      return c.finish(st, job, vm);
    });
  }
  with_job(&app, "make-replica", "Make an old primary the replica after an unplanned failover (RequestReplicationStateChange 2)",
           [](vmr_service* s, const char* v, vmr_job** j) { return vmr_request_replication_state_change(s, v, 2, j); });
  with_job(&app, "commit", "Commit the failover: the point becomes the only one (CommitFailover)",
           [](vmr_service* s, const char* v, vmr_job** j) { return vmr_commit_failover(s, v, j); });
  with_job(&app, "revert", "Revert a failover, or cancel a prepared one on the primary (RevertFailover)",
           [](vmr_service* s, const char* v, vmr_job** j) { return vmr_revert_failover(s, v, j); });
  {
    CLI::App* sc = app.add_subcommand(
        "reverse", "On the failed-over replica: the old primary becomes its replica (ReverseReplicationRelationship)");
    vm_arg(sc);
    sc->add_option("--recovery-server", host, "The old primary's host name (RecoveryConnectionPoint)")->required();
    sc->add_option("--port", port, "Its RecoveryServerPortNumber")->required()->check(CLI::Range(1, 65535));
    sc->add_option("--verify", verify, "full: re-read and re-hash both sides' disks before the commit")
        ->check(CLI::IsMember({"full"}));
    sc->add_option("--auth-type", reverse_auth, "AuthenticationType: 1 plaintext (loopback only), 2 certificate (TLS); "
                                               "default: the relationship's")
        ->check(CLI::IsMember({1u, 2u}));
    sc->add_option("--thumbprint", thumbprint, "CertificateThumbPrint: this host's certificate (AuthenticationType 2)");
    simple(sc, [&](Ctl& c) { return reverse(c, vm, host, port, verify, reverse_auth, thumbprint); });
  }

  // Read-only views of a relationship.
  {
    CLI::App* sc = app.add_subcommand("points", "Recovery points of a replica VM, oldest first");
    vm_arg(sc);
    simple(sc, [&vm](Ctl& c) { return points(c, vm); });
  }
  {
    CLI::App* sc = app.add_subcommand("stats", "Replication statistics (Msvm_ReplicationStatistics)");
    vm_arg(sc);
    simple(sc, [&vm](Ctl& c) { return show_instance(c, get_instance(vmr_get_replication_statistics, c, vm)); });
  }
  {
    CLI::App* sc = app.add_subcommand("settings", "Replication settings (Msvm_ReplicationSettingData)");
    vm_arg(sc);
    simple(sc, [&vm](Ctl& c) { return show_instance(c, get_instance(vmr_get_replication_settings, c, vm)); });
  }

  // Bandwidth limit.
  {
    CLI::App* sc = app.add_subcommand(
        "limit", "Show or set the bandwidth limit of a VM's replication relationship, or of the whole service");
    CLI::Option* vm_opt = sc->add_option("VM", vm, "The VM: its name, GUID or object path (default: the whole service)");
    CLI::Option* set_opt =
        sc->add_option("--set", rate, "New limit in bytes/s: e.g. 8388608 or 8M (K, M, G = powers of 1024); 0 or "
                                      "unlimited for none")
            ->check(RateValidator());
    simple(sc, [&vm, &rate, vm_opt, set_opt](Ctl& c) {
      const std::optional<uint64_t> set = set_opt->count() ? parse_rate(rate) : std::nullopt;
      return limit(c, vm_opt->count() ? vm.c_str() : nullptr, set);
    });
  }

  // Recovery server.
  CLI::App* authc = app.add_subcommand("auth", "Authorization entries of the recovery server");
  authc->require_subcommand(1);
  {
    CLI::App* sc = authc->add_subcommand("add", "Admit a primary host (AddAuthorizationEntry)");
    sc->add_option("HOST", host, "AllowedPrimaryHostSystem: a host name, *.domain or *")->required();
    sc->add_option("--location", location, "ReplicaStorageLocation: folder for its replicas")->required();
    sc->add_option("--trust-group", trust_group, "TrustGroup")->capture_default_str();
    simple(sc, [&](Ctl& c) { return auth_add(c, host, location, trust_group); });
  }
  simple(authc->add_subcommand("list", "List the authorization entries"), [](Ctl& c) { return auth_list(c); });
  {
    CLI::App* sc = authc->add_subcommand("remove", "Remove an entry (RemoveAuthorizationEntry)");
    sc->add_option("HOST", host, "AllowedPrimaryHostSystem of the entry")->required();
    simple(sc, [&](Ctl& c) {
      vmr_job* job = nullptr;
      vmr_status st = vmr_remove_authorization_entry(c.svc(), host.c_str(), &job);
      return c.finish(st, job);
    });
  }
  CLI::App* serverc = app.add_subcommand("server", "Recovery-server settings (ModifyServiceSettings)");
  serverc->require_subcommand(1);
  {
    CLI::App* sc = serverc->add_subcommand("enable", "Accept replication: RecoveryServerEnabled = true");
    sc->add_option("--auth", server_auth, "AllowedAuthenticationType: 1, 2 or 3 (both)")
        ->check(CLI::IsMember({1, 2, 3}))
        ->capture_default_str();
    sc->add_option("--thumbprint", thumbprint, "CertificateThumbPrint of the listener (types 2 and 3)");
    simple(sc, [&](Ctl& c) { return server_set(c, true, server_auth, thumbprint); });
  }
  simple(serverc->add_subcommand("disable", "Stop accepting replication: RecoveryServerEnabled = false"),
         [](Ctl& c) { return server_set(c, false, -1, {}); });
  simple(serverc->add_subcommand("show", "The service instance and its settings"),
         [](Ctl& c) { return server_show(c); });

  // Jobs.
  simple(app.add_subcommand("jobs", "List the service's jobs (kept job_retention_s after they end)"),
         [](Ctl& c) { return jobs(c); });
  CLI::App* jobc = app.add_subcommand("job", "One job, by InstanceID");
  jobc->require_subcommand(1);
  {
    CLI::App* sc = jobc->add_subcommand("show", "Every property of a job");
    sc->add_option("ID", id, "The job's InstanceID")->required();
    simple(sc, [&id](Ctl& c) { return job_show(c, id); });
  }
  {
    CLI::App* sc = jobc->add_subcommand("watch", "Wait for a job with progress, then show its result");
    sc->add_option("ID", id, "The job's InstanceID")->required();
    simple(sc, [&id](Ctl& c) { return job_watch(c, id); });
  }
  {
    CLI::App* sc = jobc->add_subcommand("cancel", "Ask a job to stop at its next safe point (RequestStateChange 4)");
    sc->add_option("ID", id, "The job's InstanceID")->required();
    simple(sc, [&id](Ctl& c) { return job_cancel(c, id); });
  }

  // --json is looked for before parsing so that a usage error can be reported in JSON too.
  bool json_requested = false;
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--json") json_requested = true;
  auto usage_error = [&](const std::string& message) {
    if (json_requested) {
      Json doc = Json::object();
      doc["error"] = Json::object();
      doc["error"]["code"] = nullptr;
      doc["error"]["name"] = "Usage";
      doc["error"]["message"] = message;
      std::cout << doc.dump(2) << '\n';
    }
    std::fprintf(stderr, "vmreplctl: %s\nRun with --help for more information.\n", message.c_str());
    return kExitUsage;
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --help-all, --version
    return usage_error(e.what());
  }
  if (g.uri.empty() && ::access(kDaemonSocket, F_OK) == 0) g.uri = std::string("unix:") + kDaemonSocket;
  if (g.uri.empty()) return usage_error("no service: give --uri URI or set VMREPL_URI (no vmrepld at " +
                                        std::string(kDaemonSocket) + ")");
  if (!action) return usage_error("a command is required (vmreplctl --help lists them)");

  install_interrupt_handler();
  Ctl ctl(g);
  try {
    ctl.open();
    const int rc = action(ctl);
    ctl.close();
    return rc;
  } catch (const Refused& r) {
    if (ctl.json()) {
      Json doc = Json::object();
      doc["error"] = error_json(r.code, r.message);
      ctl.print_json(doc);
    }
    print_error(r.code, r.message);
    ctl.close();
    return kExitRefused;
  } catch (const CLI::ValidationError& e) {
    ctl.close();
    return usage_error(e.what());
  } catch (const std::exception& e) {
    // A bug of the tool (e.g. JSON it cannot parse): report it as the library would.
    if (ctl.json()) {
      Json doc = Json::object();
      doc["error"] = error_json(VMR_FAILED, e.what());
      ctl.print_json(doc);
    }
    print_error(VMR_FAILED, e.what());
    ctl.close();
    return kExitRefused;
  }
}
