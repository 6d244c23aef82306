/*
 * A disaster-recovery runbook through the C ABI only: two in-process services on 127.0.0.1,
 * hv-a and hv-b, each a recovery server admitting the other (a reverse needs the old primary
 * to accept the new one).
 *
 *  PLANNED   web01 replicates hv-a -> hv-b. Prepare the planned failover on hv-a (VM off: a
 *            final cycle), fail over on hv-b, the VM runs there and writes, reverse on hv-b
 *            (hv-a becomes the replica and receives only what hv-b changed), one cycle
 *            hv-b -> hv-a; then the failback: prepare on hv-b, fail over on hv-a, reverse on hv-a.
 *  UNPLANNED db01 replicates hv-a -> hv-b; hv-a writes what it never ships and goes down. hv-b
 *            fails over to an older recovery point and commits, the VM writes on hv-b; hv-a comes
 *            back and is made a replica (RequestReplicationStateChange 2), the reverse on hv-b
 *            sends the blocks either side changed since their common point, StartReplication on
 *            hv-b completes the relationship.
 *
 * Every write is reported through vmr_disk_mark_dirty, as a hypervisor plugin would, so the
 * reverses take the new primary's changes from its change feed instead of scanning its disk.
 * After each step the job and both sides' ReplicationMode / ReplicationState are printed; at
 * the end the primary's disk and the replica's image are compared byte for byte (exit 1 when
 * they differ or any step fails).
 *
 *   failover_runbook [SCRATCH_DIR]      (default: a fresh temporary folder, removed at the end)
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vmrepl/vmrepl.h>

#define BLOCK 65536u
#define DISK_BYTES (128u << 20) /* 2048 blocks of 64 KiB */

static const char *const kModes[] = {"None", "Primary", "Replica", "Test Replica", "Extended Replica"};
static const char *const kStates[] = {"Disabled", "Ready for replication", "Waiting to complete initial replication",
                                      "Replicating", "Synced replication complete", "Recovered", "Committed",
                                      "Suspended", "Critical", "Waiting to start resynchronization",
                                      "Resynchronizing", "Resynchronization suspended", "Failover in progress",
                                      "Failback in progress", "Failback complete", "Disk update in progress",
                                      "Disk update critical", "Unknown", "Repurpose replication in progress",
                                      "Prepared for sync replication", "Prepared for group reverse replication",
                                      "Firedrill in progress"};

typedef struct {
  vmr_service *svc;
  const char *name; /* hv-a, hv-b */
  uint64_t port;
} host;

static void die(vmr_status st, const char *what) {
  fprintf(stderr, "%s: %s (%u): %s\n", what, vmr_status_name(st), st, vmr_last_error_message());
  exit(1);
}

static uint64_t u64(const vmr_instance *i, const char *name) {
  uint64_t v = 0;
  vmr_instance_get_u64(i, name, &v);
  return v;
}

static char *str(const vmr_instance *i, const char *name) {
  char *s = NULL;
  vmr_instance_get_string(i, name, &s);
  return s;
}

/* "mode 1 (Primary), state 3 (Replicating)" of a VM on one host. */
static void describe(const host *h, const char *vm, char *out, size_t n) {
  vmr_instance *i = NULL;
  vmr_status st = vmr_get_system(h->svc, vm, &i);
  if (st != VMR_OK) die(st, "get_system");
  uint64_t m = u64(i, "ReplicationMode"), s = u64(i, "ReplicationState"), e = u64(i, "EnabledState");
  snprintf(out, n, "mode %llu (%s), state %llu (%s), VM %s", (unsigned long long)m, m < 5 ? kModes[m] : "?",
           (unsigned long long)s, s < 22 ? kStates[s] : "?", e == 2 ? "running" : "off");
  vmr_instance_release(i);
}

static void show_sides(const host *a, const host *b, const char *vm) {
  char x[160], y[160];
  describe(a, vm, x, sizeof x);
  describe(b, vm, y, sizeof y);
  printf("      %s: %s\n      %s: %s\n", a->name, x, b->name, y);
}

/* Waits for a method's job, prints its name and JobState; exits with its ErrorDescription
 * when it failed. Returns the job's properties (release them). `jobp` is the out-parameter
 * of the call that gave `st`, read only after that call. */
static vmr_instance *run(const char *step, vmr_status st, vmr_job **jobp) {
  if (st != VMR_JOB_STARTED) die(st, step);
  vmr_job *job = *jobp; /* read after the call that set it */
  vmr_job_wait(job, -1);
  vmr_instance *p = NULL;
  vmr_job_get(job, &p);
  char *name = str(p, "Name"), *status = str(p, "JobStatus");
  printf("  %-44s job \"%s\": JobState %llu (%s)\n", step, name ? name : "", (unsigned long long)u64(p, "JobState"),
         status ? status : "");
  vmr_free(name);
  vmr_free(status);
  if (vmr_job_error_code(job) != VMR_OK) {
    char *desc = str(p, "ErrorDescription");
    fprintf(stderr, "%s failed: %s (%u): %s\n", step, vmr_status_name(vmr_job_error_code(job)), vmr_job_error_code(job),
            desc ? desc : "");
    exit(1);
  }
  vmr_job_release(job);
  return p;
}

static void run_and_show(const char *step, vmr_status st, vmr_job **job, const host *a, const host *b, const char *vm) {
  vmr_instance_release(run(step, st, job));
  show_sides(a, b, vm);
}

static void power(const host *h, const char *vm, uint16_t state) {
  vmr_job *none = NULL;
  vmr_status st = vmr_request_state_change(h->svc, vm, state, &none);
  if (st != VMR_OK) die(st, state == 2 ? "start VM" : "stop VM");
  printf("  %-44s (completes at once)\n", state == 2 ? "RequestStateChange(2): start the VM" : "RequestStateChange(3): turn the VM off");
}

/* The guest writes n 64 KiB blocks at pseudo-random block offsets; each write is reported to
 * the host's change feed, as a hypervisor plugin does. */
static void guest_writes(const host *h, const char *vm, int n, uint32_t seed) {
  char *path = NULL;
  vmr_status st = vmr_disk_path(h->svc, vm, 0, &path);
  if (st != VMR_OK) die(st, "disk_path");
  int fd = open(path, O_WRONLY);
  if (fd < 0) die(VMR_FAILED, "open disk");
  unsigned char *buf = malloc(BLOCK);
  uint32_t x = seed;
  for (int k = 0; k < n; ++k) {
    for (uint32_t i = 0; i < BLOCK; ++i) {
      x = x * 1664525u + 1013904223u;
      buf[i] = (i & 4096) ? (unsigned char)(x >> 24) : (unsigned char)"failover runbook\n"[i % 17];
    }
    x = x * 1664525u + 1013904223u;
    uint64_t off = (uint64_t)((x >> 8) % (DISK_BYTES / BLOCK)) * BLOCK;
    if (pwrite(fd, buf, BLOCK, (off_t)off) != (ssize_t)BLOCK) die(VMR_FAILED, "pwrite");
    if ((st = vmr_disk_mark_dirty(h->svc, vm, 0, off, BLOCK)) != VMR_OK) die(st, "disk_mark_dirty");
  }
  free(buf);
  fsync(fd);
  close(fd);
  vmr_free(path);
  char step[64];
  snprintf(step, sizeof step, "the guest writes on %s", h->name);
  printf("  %-44s %d blocks of 64 KiB, each reported with vmr_disk_mark_dirty\n", step, n);
}

/* A host's change feed for a VM exists once one write was reported there; a plugin attaches
 * it before the VM can run on that host (here: one block marked before a failover, which then
 * re-establishes the feed at the recovery point). */
static void attach_feed(const host *h, const char *vm) {
  vmr_status st = vmr_disk_mark_dirty(h->svc, vm, 0, 0, BLOCK);
  if (st != VMR_OK) die(st, "attach the change feed");
}

static void reverse_settings(char *out, size_t n, const host *old_primary) {
  snprintf(out, n,
           "{\"RecoveryConnectionPoint\": \"%s\", \"RecoveryServerPortNumber\": %llu, \"AuthenticationType\": 1, "
           "\"ReplicationInterval\": 300, \"RecoveryHistory\": 3, \"CompressionEnabled\": true}",
           old_primary->name, (unsigned long long)old_primary->port);
}

/* ReverseReplicationRelationship on `now_primary`; prints what travelled. */
static void reverse(const host *now_primary, const host *old_primary, const host *a, const host *b, const char *vm) {
  char rsd[512], step[96];
  reverse_settings(rsd, sizeof rsd, old_primary);
  vmr_job *job = NULL;
  snprintf(step, sizeof step, "ReverseReplicationRelationship on %s", now_primary->name);
  vmr_instance *p = run(step, vmr_reverse_replication_relationship(now_primary->svc, vm, rsd, &job), &job);
  char *source = str(p, "ChangeSource");
  const uint64_t blocks = u64(p, "BlocksSent"), data = u64(p, "DataBytesSent");
  printf("      ChangeSource %s, common point %llu; changed since then: %llu blocks on %s, %llu on %s\n",
         source ? source : "?", (unsigned long long)u64(p, "CommonPoint"),
         (unsigned long long)u64(p, "OldPrimaryChangedBlocks"), old_primary->name,
         (unsigned long long)u64(p, "NewPrimaryChangedBlocks"), now_primary->name);
  printf("      sent %llu blocks, %.2f MiB of data (%.2f MiB on the wire, %.2f MiB both ways) of a %u MiB disk: %.2f%%\n",
         (unsigned long long)blocks, data / 1048576.0, u64(p, "WireBytesSent") / 1048576.0,
         u64(p, "WireBytes") / 1048576.0, DISK_BYTES >> 20, 100.0 * (double)data / DISK_BYTES);
  vmr_free(source);
  vmr_instance_release(p);
  show_sides(a, b, vm);
}

/* Byte-for-byte comparison of two files. */
static int same_bytes(const char *x, const char *y) {
  FILE *f = fopen(x, "rb"), *g = fopen(y, "rb");
  int same = f && g;
  static char p[1 << 20], q[1 << 20];
  while (same) {
    size_t n = fread(p, 1, sizeof p, f), m = fread(q, 1, sizeof q, g);
    if (n != m || memcmp(p, q, n) != 0) same = 0;
    if (n == 0 || n < sizeof p) break;
  }
  if (f) fclose(f);
  if (g) fclose(g);
  return same;
}

/* The primary's disk and the replica's image (<VM folder>/replica/disk0.img). */
static int verify(const host *primary, const host *replica, const char *vm) {
  char *disk = NULL, *folder = NULL, image[4200];
  vmr_instance *r = NULL;
  if (vmr_disk_path(primary->svc, vm, 0, &disk) != VMR_OK || vmr_get_system(replica->svc, vm, &r) != VMR_OK)
    die(VMR_FAILED, "verify");
  folder = str(r, "Folder");
  snprintf(image, sizeof image, "%s/replica/disk0.img", folder ? folder : "");
  int same = same_bytes(disk, image);
  printf("  %s: %s disk and %s replica image are %s\n", vm, primary->name, replica->name,
         same ? "byte-equal" : "DIFFERENT");
  vmr_free(disk);
  vmr_free(folder);
  vmr_instance_release(r);
  return same;
}

static void open_host(host *h, const char *dir, const char *name, const char *peer) {
  char uri[4200], opts[256];
  snprintf(uri, sizeof uri, "local:%s/%s", dir, name);
  snprintf(opts, sizeof opts, "{\"host_name\": \"%s\", \"listen\": \"127.0.0.1:0\", \"hosts\": {\"%s\": \"127.0.0.1\"}}",
           name, peer);
  vmr_status st = vmr_open(uri, opts, &h->svc);
  if (st != VMR_OK) die(st, name);
  h->name = name;
  vmr_instance *info = NULL;
  vmr_service_info(h->svc, &info);
  h->port = u64(info, "ListenPort");
  vmr_instance_release(info);
}

/* Recovery server admitting `peer`; its replicas live under `storage`. */
static void admit(const host *h, const char *peer, const char *storage) {
  char entry[4400];
  vmr_job *job = NULL;
  vmr_instance_release(run("ModifyServiceSettings (recovery server on)",
                           vmr_modify_service_settings(h->svc,
                                                       "{\"__CLASS\": \"Msvm_ReplicationServiceSettingData\", "
                                                       "\"RecoveryServerEnabled\": true, \"AllowedAuthenticationType\": 1}",
                                                       &job),
                           &job));
  snprintf(entry, sizeof entry,
           "{\"__CLASS\": \"Msvm_ReplicationAuthorizationSettingData\", \"AllowedPrimaryHostSystem\": \"%s\", "
           "\"TrustGroup\": \"DEFAULT\", \"ReplicaStorageLocation\": \"%s\"}",
           peer, storage);
  vmr_instance_release(run("AddAuthorizationEntry", vmr_add_authorization_entry(h->svc, entry, &job), &job));
  printf("      %s admits %s, replicas under %s\n", h->name, peer, storage);
}

/* A VM on hv-a replicating to hv-b: define, write, create, initial replication, `cycles` cycles. */
static void replicate(const host *a, const host *b, const char *vm, int cycles, uint32_t seed) {
  char def[256], rsd[512];
  vmr_instance *inst = NULL;
  snprintf(def, sizeof def, "{\"name\": \"%s\", \"disks\": [%u]}", vm, DISK_BYTES);
  vmr_status st = vmr_define_system(a->svc, def, &inst);
  if (st != VMR_OK) die(st, "define");
  vmr_instance_release(inst);
  printf("  %s defined on %s with a %u MiB sparse disk\n", vm, a->name, DISK_BYTES >> 20);
  power(a, vm, 2);
  guest_writes(a, vm, 512, seed);
  snprintf(rsd, sizeof rsd,
           "{\"RecoveryConnectionPoint\": \"%s\", \"RecoveryServerPortNumber\": %llu, \"AuthenticationType\": 1, "
           "\"ReplicationInterval\": 300, \"RecoveryHistory\": 3, \"CompressionEnabled\": true}",
           b->name, (unsigned long long)b->port);
  vmr_job *job = NULL;
  run_and_show("CreateReplicationRelationship", vmr_create_replication_relationship(a->svc, vm, rsd, &job), &job, a, b, vm);
  run_and_show("StartReplication(1) (initial replication)", vmr_start_replication(a->svc, vm, 1, NULL, NULL, &job), &job,
               a, b, vm);
  for (int c = 0; c < cycles; ++c) {
    guest_writes(a, vm, 16, seed + 1 + (uint32_t)c);
    run_and_show("ReplicateNow (one cycle)", vmr_replicate_now(a->svc, vm, &job), &job, a, b, vm);
  }
}

/* Planned failover from `from` to `to`, the VM writing on `to`, and the reverse on `to`. */
static void planned(const host *from, const host *to, const host *a, const host *b, const char *vm, uint32_t seed) {
  vmr_job *job = NULL;
  char step[96];
  power(from, vm, 3);
  snprintf(step, sizeof step, "Prepare planned failover (4) on %s", from->name);
  run_and_show(step, vmr_request_replication_state_change(from->svc, vm, 4, &job), &job, a, b, vm);
  attach_feed(to, vm);
  snprintf(step, sizeof step, "InitiateFailover (latest point) on %s", to->name);
  run_and_show(step, vmr_initiate_failover(to->svc, vm, NULL, &job), &job, a, b, vm);
  power(to, vm, 2);
  guest_writes(to, vm, 24, seed);
  reverse(to, from, a, b, vm);
}

int main(int argc, char **argv) {
  char dir[4096];
  int temp = argc < 2;
  if (temp) {
    snprintf(dir, sizeof dir, "/tmp/vmrepl-runbook-XXXXXX");
    if (!mkdtemp(dir)) die(VMR_FAILED, "mkdtemp");
  } else {
    char cmd[8400];
    if (snprintf(dir, sizeof dir, "%s/runbook", argv[1]) >= (int)sizeof dir / 2) die(VMR_INVALID_PARAMETER, "SCRATCH_DIR too long");
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0) return 1;
  }
  char storage[4200];
  host a, b;
  open_host(&b, dir, "hv-b", "hv-a");
  open_host(&a, dir, "hv-a", "hv-b");
  printf("hv-a listens on 127.0.0.1:%llu, hv-b on 127.0.0.1:%llu (both in this process, under %s)\n",
         (unsigned long long)a.port, (unsigned long long)b.port, dir);
  printf("\n== set-up: each host is a recovery server for the other ==\n");
  snprintf(storage, sizeof storage, "%s/hv-b-replicas", dir);
  admit(&b, "hv-a", storage);
  /* The old primary turns its own copy into the replica: its entry stores under its root. */
  snprintf(storage, sizeof storage, "%s/hv-a", dir);
  admit(&a, "hv-b", storage);

  printf("\n== PLANNED: web01 fails over hv-a -> hv-b, runs there, and fails back ==\n");
  replicate(&a, &b, "web01", 1, 1);
  planned(&a, &b, &a, &b, "web01", 100);
  guest_writes(&b, "web01", 8, 101);
  vmr_job *job = NULL;
  vmr_instance *p = run("ReplicateNow on hv-b (cycle hv-b -> hv-a)", vmr_replicate_now(b.svc, "web01", &job), &job);
  char *source = str(p, "ChangeSource");
  printf("      ChangeSource %s, %llu blocks sent\n", source ? source : "?", (unsigned long long)u64(p, "BlocksSent"));
  vmr_free(source);
  vmr_instance_release(p);
  show_sides(&a, &b, "web01");
  int ok = verify(&b, &a, "web01");
  printf("  -- failback --\n");
  planned(&b, &a, &a, &b, "web01", 200);
  ok &= verify(&a, &b, "web01");

  printf("\n== UNPLANNED: hv-a goes down with unshipped writes; db01 fails over to an older point ==\n");
  replicate(&a, &b, "db01", 2, 300);
  attach_feed(&b, "db01");
  guest_writes(&a, "db01", 24, 310);
  printf("  hv-a: those writes were never replicated; hv-a is lost (its VM stops)\n");
  power(&a, "db01", 3);
  vmr_list *points = NULL;
  vmr_status st = vmr_list_recovery_points(b.svc, "db01", &points);
  if (st != VMR_OK || vmr_list_size(points) < 2) die(st, "list_recovery_points");
  const vmr_instance *older = vmr_list_get(points, vmr_list_size(points) - 2);
  char *point = str(older, "InstanceID");
  printf("  hv-b has %zu recovery points; failing over to the one before the latest (#%llu)\n", vmr_list_size(points),
         (unsigned long long)u64(older, "RecoveryPointSequence"));
  run_and_show("InitiateFailover (older point) on hv-b", vmr_initiate_failover(b.svc, "db01", point, &job), &job, &a, &b,
               "db01");
  vmr_free(point);
  vmr_list_release(points);
  run_and_show("CommitFailover on hv-b", vmr_commit_failover(b.svc, "db01", &job), &job, &a, &b, "db01");
  power(&b, "db01", 2);
  guest_writes(&b, "db01", 24, 320);
  power(&b, "db01", 3);
  printf("  hv-a is back: its copy of db01 becomes a replica\n");
  run_and_show("RequestReplicationStateChange(2) on hv-a", vmr_request_replication_state_change(a.svc, "db01", 2, &job),
               &job, &a, &b, "db01");
  reverse(&b, &a, &a, &b, "db01");
  p = run("StartReplication(1) on hv-b", vmr_start_replication(b.svc, "db01", 1, NULL, NULL, &job), &job);
  printf("      %llu blocks sent (the reverse already sent every difference)\n", (unsigned long long)u64(p, "BlocksSent"));
  vmr_instance_release(p);
  show_sides(&a, &b, "db01");
  power(&b, "db01", 2);
  ok &= verify(&b, &a, "db01");

  vmr_close(a.svc);
  vmr_close(b.svc);
  if (ok && temp) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  }
  printf("\n%s\n", ok ? "runbook complete: every disk is byte-equal to its replica" : "runbook FAILED: disks differ");
  return ok ? 0 : 1;
}
