/*
 * Replication benchmarks through the C ABI: two in-process services on 127.0.0.1 (hv-a the
 * primary, hv-b the recovery server on a fixed port so the roots can be reopened between
 * steps). bench/run changes the primary's disk between steps and times rsync beside it.
 *
 *   bench_replication setup DIR PORT IMAGE   enable + initial replication of IMAGE
 *   bench_replication cycle DIR PORT         one cycle (replicate_now)
 * Each prints one JSON line: {"seconds", "blocks", "data_bytes", "wire_bytes", "disk",
 * "replica_image", "peak_rss_bytes"}.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <vmrepl/vmrepl.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(vmr_status st, const char *what) {
  fprintf(stderr, "%s: %s (%u): %s\n", what, vmr_status_name(st), st, vmr_last_error_message());
  exit(1);
}

static vmr_instance *finish(vmr_status st, vmr_job **jobp, const char *what) {
  vmr_job *job = *jobp;
  if (st != VMR_JOB_STARTED) die(st, what);
  vmr_job_wait(job, -1);
  vmr_instance *p = NULL;
  vmr_job_get(job, &p);
  if (vmr_job_error_code(job) != VMR_OK) {
    char *d = NULL;
    vmr_instance_get_string(p, "ErrorDescription", &d);
    fprintf(stderr, "%s failed (%u): %s\n", what, vmr_job_error_code(job), d ? d : "");
    exit(1);
  }
  vmr_job_release(job);
  return p;
}

static uint64_t u64(const vmr_instance *i, const char *n) {
  uint64_t v = 0;
  vmr_instance_get_u64(i, n, &v);
  return v;
}

static vmr_service *open_host(const char *dir, const char *name, const char *peer, const char *listen) {
  char uri[4096], opts[512];
  snprintf(uri, sizeof uri, "local:%s/%s", dir, name);
  snprintf(opts, sizeof opts, "{\"host_name\": \"%s\", \"listen\": \"%s\", \"hosts\": {\"%s\": \"127.0.0.1\"}}", name,
           listen, peer);
  vmr_service *s = NULL;
  vmr_status st = vmr_open(uri, opts, &s);
  if (st != VMR_OK) die(st, "open");
  return s;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: bench_replication setup DIR PORT IMAGE | cycle DIR PORT\n");
    return 2;
  }
  const char *dir = argv[2];
  char listen[64];
  snprintf(listen, sizeof listen, "127.0.0.1:%s", argv[3]);
  vmr_service *b = open_host(dir, "hv-b", "hv-a", listen);
  vmr_service *a = open_host(dir, "hv-a", "hv-b", "127.0.0.1:0");
  vmr_job *job = NULL;
  vmr_instance *p = NULL;
  double t0, t1;
  if (strcmp(argv[1], "setup") == 0 && argc == 5) {
    char entry[1024], rsd[512], def[256], cmd[8192];
    vmr_instance_release(finish(vmr_modify_service_settings(b, "{\"__CLASS\": \"Msvm_ReplicationServiceSettingData\", \"RecoveryServerEnabled\": true, \"AllowedAuthenticationType\": 1}", &job), &job, "settings"));
    snprintf(entry, sizeof entry, "{\"__CLASS\": \"Msvm_ReplicationAuthorizationSettingData\", \"AllowedPrimaryHostSystem\": \"hv-a\", \"TrustGroup\": \"DEFAULT\", \"ReplicaStorageLocation\": \"%s/replicas\"}", dir);
    vmr_instance_release(finish(vmr_add_authorization_entry(b, entry, &job), &job, "entry"));
    struct stat sb;
    if (stat(argv[4], &sb) != 0) die(VMR_FILE_NOT_FOUND, "image");
    snprintf(def, sizeof def, "{\"name\": \"bench\", \"disks\": [%lld]}", (long long)sb.st_size);
    vmr_instance *vm = NULL;
    vmr_status st = vmr_define_system(a, def, &vm);
    if (st != VMR_OK) die(st, "define");
    vmr_instance_release(vm);
    char *disk = NULL;
    vmr_disk_path(a, "bench", 0, &disk);
    snprintf(cmd, sizeof cmd, "cp --sparse=always '%s' '%s' && sync", argv[4], disk);
    if (system(cmd) != 0) die(VMR_FAILED, "copy image");
    vmr_free(disk);
    snprintf(rsd, sizeof rsd, "{\"RecoveryConnectionPoint\": \"hv-b\", \"RecoveryServerPortNumber\": %s, \"AuthenticationType\": 1, \"RecoveryHistory\": 2, \"CompressionEnabled\": %s}",
             argv[3], getenv("BENCH_COMPRESS") ? "true" : "false");
    vmr_instance_release(finish(vmr_create_replication_relationship(a, "bench", rsd, &job), &job, "create"));
    t0 = now_s();
    p = finish(vmr_start_replication(a, "bench", 1, NULL, NULL, &job), &job, "start");
    t1 = now_s();
  } else if (strcmp(argv[1], "cycle") == 0) {
    t0 = now_s();
    p = finish(vmr_replicate_now(a, "bench", &job), &job, "cycle");
    t1 = now_s();
  } else {
    return 2;
  }
  char *disk = NULL, *folder = NULL;
  vmr_disk_path(a, "bench", 0, &disk);
  vmr_instance *vb = NULL;
  vmr_get_system(b, "bench", &vb);
  vmr_instance_get_string(vb, "Folder", &folder);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"seconds\": %.6f, \"blocks\": %llu, \"data_bytes\": %llu, \"wire_bytes\": %llu, \"disk\": \"%s\", "
         "\"replica_image\": \"%s/replica/disk0.img\", \"peak_rss_bytes\": %lld}\n",
         t1 - t0, (unsigned long long)u64(p, "BlocksSent"), (unsigned long long)u64(p, "DataBytesSent"),
         (unsigned long long)u64(p, "WireBytesSent"), disk, folder, (long long)ru.ru_maxrss * 1024);
  vmr_free(disk);
  vmr_free(folder);
  vmr_instance_release(vb);
  vmr_instance_release(p);
  vmr_close(a);
  vmr_close(b);
  return 0;
}
