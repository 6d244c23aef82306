/*
 * Replication between two in-process services on 127.0.0.1, through the C ABI only:
 * hv-b becomes a recovery server that admits hv-a; hv-a enables replication of a VM with a
 * 256 MiB disk, runs the initial replication, then writes into the disk and runs cycles. It
 * prints what each cycle sent, the recovery points on hv-b, and both sides' Merkle roots.
 *
 *   replication_demo [SCRATCH_DIR]      (default /tmp/vmrepl-demo)
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vmrepl/vmrepl.h>

static void die(vmr_status st, const char *what) {
  fprintf(stderr, "%s: %s (%u): %s\n", what, vmr_status_name(st), st, vmr_last_error_message());
  exit(1);
}

/* Waits for a method's job; exits with its ErrorDescription when it failed. */
static vmr_instance *finish(vmr_status st, vmr_job *job, const char *what) {
  if (st != VMR_JOB_STARTED) die(st, what);
  vmr_job_wait(job, -1);
  vmr_instance *props = NULL;
  vmr_job_get(job, &props);
  if (vmr_job_error_code(job) != VMR_OK) {
    char *desc = NULL;
    vmr_instance_get_string(props, "ErrorDescription", &desc);
    fprintf(stderr, "%s failed: %s (%u): %s\n", what, vmr_status_name(vmr_job_error_code(job)),
            vmr_job_error_code(job), desc ? desc : "");
    exit(1);
  }
  vmr_job_release(job);
  return props;
}

static uint64_t u64(const vmr_instance *i, const char *name) {
  uint64_t v = 0;
  vmr_instance_get_u64(i, name, &v);
  return v;
}

static void show_state(vmr_service *svc, const char *host, const char *vm) {
  vmr_instance *i = NULL;
  if (vmr_get_system(svc, vm, &i) != VMR_OK) die(1, "get_system");
  printf("  %s: ReplicationMode %llu, ReplicationState %llu, ReplicationHealth %llu\n", host,
         (unsigned long long)u64(i, "ReplicationMode"), (unsigned long long)u64(i, "ReplicationState"),
         (unsigned long long)u64(i, "ReplicationHealth"));
  vmr_instance_release(i);
}

/* Writes n 64 KiB blocks of pseudo-random bytes at scattered offsets. */
static void write_blocks(const char *path, int n, uint32_t seed) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) die(1, "open disk");
  char *buf = malloc(65536);
  uint32_t x = seed;
  for (int k = 0; k < n; ++k) {
    for (int i = 0; i < 65536; ++i) {
      x = x * 1664525u + 1013904223u;
      buf[i] = (i & 4096) ? (char)(x >> 24) : "replicate what changed\n"[i % 23];
    }
    x = x * 1664525u + 1013904223u;
    off_t off = (off_t)(x % 4096) * 65536;
    if (pwrite(fd, buf, 65536, off) != 65536) die(1, "pwrite");
  }
  free(buf);
  fsync(fd);
  close(fd);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "/tmp/vmrepl-demo";
  char cmd[4200], uri[4096], opts[512], json[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s/repl-a' '%s/repl-b' '%s/repl-b-replicas'", dir, dir, dir);
  if (system(cmd) != 0) return 1;

  vmr_service *a = NULL, *b = NULL;
  vmr_status st;
  snprintf(uri, sizeof uri, "local:%s/repl-b", dir);
  snprintf(opts, sizeof opts, "{\"host_name\": \"hv-b\", \"listen\": \"127.0.0.1:0\", \"hosts\": {\"hv-a\": \"127.0.0.1\"}}");
  if ((st = vmr_open(uri, opts, &b)) != VMR_OK) die(st, "open hv-b");
  snprintf(uri, sizeof uri, "local:%s/repl-a", dir);
  snprintf(opts, sizeof opts, "{\"host_name\": \"hv-a\", \"listen\": \"127.0.0.1:0\", \"hosts\": {\"hv-b\": \"127.0.0.1\"}}");
  if ((st = vmr_open(uri, opts, &a)) != VMR_OK) die(st, "open hv-a");
  vmr_instance *info = NULL;
  vmr_service_info(b, &info);
  uint64_t port = u64(info, "ListenPort");
  vmr_instance_release(info);
  printf("hv-a and hv-b run in this process; hv-b listens on 127.0.0.1:%llu\n", (unsigned long long)port);

  vmr_job *job = NULL;
  st = vmr_modify_service_settings(
      b, "{\"__CLASS\": \"Msvm_ReplicationServiceSettingData\", \"RecoveryServerEnabled\": true, \"AllowedAuthenticationType\": 1}",
      &job);
  vmr_instance_release(finish(st, job, "ModifyServiceSettings"));
  snprintf(json, sizeof json,
           "<INSTANCE CLASSNAME=\"Msvm_ReplicationAuthorizationSettingData\">"
           "<PROPERTY NAME=\"AllowedPrimaryHostSystem\" TYPE=\"string\"><VALUE>hv-a</VALUE></PROPERTY>"
           "<PROPERTY NAME=\"TrustGroup\" TYPE=\"string\"><VALUE>DEFAULT</VALUE></PROPERTY>"
           "<PROPERTY NAME=\"ReplicaStorageLocation\" TYPE=\"string\"><VALUE>%s/repl-b-replicas</VALUE></PROPERTY>"
           "</INSTANCE>",
           dir);
  st = vmr_add_authorization_entry(b, json, &job);
  vmr_instance_release(finish(st, job, "AddAuthorizationEntry"));
  printf("hv-b: recovery server enabled, admits hv-a, stores replicas under %s/repl-b-replicas\n", dir);

  vmr_instance *vm = NULL;
  if ((st = vmr_define_system(a, "{\"name\": \"web01\", \"disks\": [268435456]}", &vm)) != VMR_OK) die(st, "define");
  vmr_instance_release(vm);
  char *disk = NULL;
  vmr_disk_path(a, "web01", 0, &disk);
  write_blocks(disk, 1024, 1);
  printf("hv-a: VM web01 with a 256 MiB sparse disk, 64 MiB written\n");

  snprintf(json, sizeof json,
           "instance of Msvm_ReplicationSettingData\n{\n\tRecoveryConnectionPoint = \"hv-b\";\n"
           "\tRecoveryServerPortNumber = %llu;\n\tAuthenticationType = 1;\n\tReplicationInterval = 300;\n"
           "\tRecoveryHistory = 3;\n\tCompressionEnabled = TRUE;\n};\n",
           (unsigned long long)port);
  st = vmr_create_replication_relationship(a, "web01", json, &job);
  vmr_instance_release(finish(st, job, "CreateReplicationRelationship"));
  printf("CreateReplicationRelationship done:\n");
  show_state(a, "hv-a", "web01");
  show_state(b, "hv-b", "web01");

  st = vmr_start_replication(a, "web01", 1, NULL, NULL, &job);
  vmr_instance *p = finish(st, job, "StartReplication");
  printf("StartReplication(1): %llu blocks, %.1f MiB of data, %.1f MiB on the wire (compressed)\n",
         (unsigned long long)u64(p, "BlocksSent"), u64(p, "DataBytesSent") / 1048576.0,
         u64(p, "WireBytesSent") / 1048576.0);
  vmr_instance_release(p);
  show_state(a, "hv-a", "web01");
  show_state(b, "hv-b", "web01");

  for (int c = 1; c <= 3; ++c) {
    write_blocks(disk, 16 * c, 100 + c);
    st = vmr_replicate_now(a, "web01", &job);
    p = finish(st, job, "cycle");
    printf("cycle %d: wrote %d blocks; sent %llu blocks, %.2f MiB on the wire\n", c, 16 * c,
           (unsigned long long)u64(p, "BlocksSent"), u64(p, "WireBytesSent") / 1048576.0);
    vmr_instance_release(p);
  }

  vmr_list *points = NULL;
  if ((st = vmr_list_recovery_points(b, "web01", &points)) != VMR_OK) die(st, "list_recovery_points");
  printf("recovery points on hv-b (RecoveryHistory 3: the latest and 3 older):\n");
  for (size_t i = 0; i < vmr_list_size(points); ++i) {
    const vmr_instance *pt = vmr_list_get(points, i);
    char *type = NULL, *when = NULL;
    vmr_instance_get_string(pt, "VirtualSystemType", &type);
    vmr_instance_get_string(pt, "CreationTime", &when);
    printf("  #%llu %s %s\n", (unsigned long long)u64(pt, "RecoveryPointSequence"), when, type);
    vmr_free(type);
    vmr_free(when);
  }
  vmr_list_release(points);

  /* Both sides' roots: hv-a digests its disk; hv-b's latest point carries the roots it verified. */
  st = vmr_compute_digest(a, "web01", &job);
  p = finish(st, job, "ComputeDigest");
  char **ra = NULL;
  size_t n = 0;
  vmr_instance_get_string_array(p, "DiskMerkleRoots", &ra, &n);
  vmr_list_recovery_points(b, "web01", &points);
  char **rb = NULL;
  vmr_instance_get_string_array(vmr_list_get(points, vmr_list_size(points) - 1), "DiskMerkleRoots", &rb, &n);
  printf("disk 0 Merkle root: hv-a %s\n                    hv-b %s  %s\n", ra[0], rb[0],
         strcmp(ra[0], rb[0]) == 0 ? "(equal)" : "(DIFFERENT)");
  int rc = strcmp(ra[0], rb[0]) == 0 ? 0 : 1;
  vmr_free(ra);
  vmr_free(rb);
  vmr_list_release(points);
  vmr_instance_release(p);
  vmr_free(disk);
  vmr_close(a);
  vmr_close(b);
  return rc;
}
