/*
 * Management calls through the C ABI against a service with many relationships: the status
 * call a monitoring loop makes (GetReplicationStatistics of one VM), paced or flat out.
 * bench/run starts the vmrepld daemons and compares unix: with the same calls on local:.
 *
 *   bench_mgmt setup URI_A URI_B N PORT_B STORAGE DISK_BYTES
 *       hv-b (URI_B) admits hv-a with replicas under STORAGE; hv-a (URI_A) defines vm00..vmNN
 *       with one sparse disk of DISK_BYTES each and enables replication of each to hv-b on
 *       PORT_B (ReplicationInterval 900, so no cycle runs during the calls); prints
 *       {"vms", "replicating", "seconds"}
 *   bench_mgmt calls URI OPTIONS N RATE SECONDS
 *       one call = vmr_get_replication_statistics of one VM (cycling over the N) and a read of
 *       its ReplicationHealth; RATE calls/s on an absolute schedule (0 = back to back) for
 *       SECONDS; OPTIONS is vmr_open's options_json ("" for none). Each call is timed from
 *       its start to its return; prints {"calls", "seconds", "calls_per_s", "p50_us",
 *       "p99_us", "p999_us", "max_us", "mean_us", "errors", "late_calls", "max_lag_us",
 *       "peak_rss_bytes"} (late: started more than 1 ms after its scheduled time).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <vmrepl/vmrepl.h>

#include "bench_util.h"

static vmr_service *open_uri(const char *uri, const char *options) {
  vmr_service *s = NULL;
  vmr_status st = vmr_open(uri, options && *options ? options : NULL, &s);
  if (st != VMR_OK) die(st, uri);
  return s;
}

static void vm_name(char out[16], int i) { snprintf(out, 16, "vm%02d", i); }

static int setup_main(char **argv) {
  vmr_service *a = open_uri(argv[2], NULL), *b = open_uri(argv[3], NULL);
  const int n = atoi(argv[4]);
  char buf[8192], name[16];
  vmr_job *job = NULL;
  double t0 = now_s();
  job_ok(vmr_modify_service_settings(b, "{\"__CLASS\": \"Msvm_ReplicationServiceSettingData\", \"RecoveryServerEnabled\": true, \"AllowedAuthenticationType\": 1}", &job),
         &job, "settings");
  snprintf(buf, sizeof buf, "{\"__CLASS\": \"Msvm_ReplicationAuthorizationSettingData\", \"AllowedPrimaryHostSystem\": \"hv-a\", \"TrustGroup\": \"DEFAULT\", \"ReplicaStorageLocation\": \"%s\"}", argv[6]);
  job_ok(vmr_add_authorization_entry(b, buf, &job), &job, "authorization entry");
  vmr_job **starts = calloc((size_t)n, sizeof *starts);
  for (int i = 0; i < n; ++i) {
    vm_name(name, i);
    snprintf(buf, sizeof buf, "{\"name\": \"%s\", \"disks\": [%s]}", name, argv[7]);
    vmr_instance *vm = NULL;
    vmr_status st = vmr_define_system(a, buf, &vm);
    if (st != VMR_OK) die(st, "define");
    vmr_instance_release(vm);
    snprintf(buf, sizeof buf, "{\"RecoveryConnectionPoint\": \"hv-b\", \"RecoveryServerPortNumber\": %s, \"AuthenticationType\": 1, \"ReplicationInterval\": 900, \"RecoveryHistory\": 1}", argv[5]);
    job_ok(vmr_create_replication_relationship(a, name, buf, &job), &job, "create relationship");
    st = vmr_start_replication(a, name, 1, NULL, NULL, &starts[i]);
    if (st != VMR_JOB_STARTED) die(st, "start replication");
  }
  for (int i = 0; i < n; ++i) job_ok(VMR_JOB_STARTED, &starts[i], "initial replication");
  free(starts);
  int replicating = 0;
  for (int i = 0; i < n; ++i) {
    vm_name(name, i);
    vmr_instance *vm = NULL;
    uint64_t state = 0;
    if (vmr_get_system(a, name, &vm) == VMR_OK) vmr_instance_get_u64(vm, "ReplicationState", &state);
    vmr_instance_release(vm);
    replicating += state == 3;
  }
  printf("{\"vms\": %d, \"replicating\": %d, \"seconds\": %.3f}\n", n, replicating, now_s() - t0);
  vmr_close(a);
  vmr_close(b);
  return 0;
}

/* The status call: statistics of one VM; a health outside 1..3 (OK, warning, critical) is an error. */
static int status_call(vmr_service *s, const char *name) {
  vmr_instance *stats = NULL;
  uint64_t health = 0;
  vmr_status st = vmr_get_replication_statistics(s, name, &stats);
  if (st == VMR_OK) vmr_instance_get_u64(stats, "ReplicationHealth", &health);
  vmr_instance_release(stats);
  return st == VMR_OK && health >= 1 && health <= 3;
}

static double pct(const double *sorted, size_t n, double q) {
  size_t k = (size_t)(q * (double)n + 0.999999);
  return sorted[k ? (k > n ? n : k) - 1 : 0];
}

static int calls_main(char **argv) {
  vmr_service *s = open_uri(argv[2], argv[3]);
  const int n = atoi(argv[4]);
  const double rate = atof(argv[5]), seconds = atof(argv[6]);
  char (*names)[16] = malloc((size_t)n * sizeof *names);
  for (int i = 0; i < n; ++i) vm_name(names[i], i);
  for (int i = 0; i < 2 * n; ++i) /* warm-up: connection, caches */
    if (!status_call(s, names[i % n])) die(VMR_FAILED, "warm-up status call");
  size_t cap = rate > 0 ? (size_t)(rate * seconds) + 1 : 1u << 20, count = 0, errors = 0, late = 0;
  double *lat = malloc(cap * sizeof *lat), max_lag = 0;
  const double t0 = now_s(), end = t0 + seconds;
  for (;;) {
    double start;
    if (rate > 0) {
      const double due = t0 + (double)count / rate;
      if (due >= end) break;
      struct timespec ts = {(time_t)due, (long)((due - (double)(time_t)due) * 1e9)};
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
      }
      start = now_s();
      if (start - due > max_lag) max_lag = start - due;
      late += start - due > 1e-3;
    } else {
      start = now_s();
      if (start >= end) break;
    }
    errors += !status_call(s, names[count % (size_t)n]);
    const double done = now_s();
    if (count == cap) lat = realloc(lat, (cap *= 2) * sizeof *lat);
    lat[count++] = done - start;
  }
  const double elapsed = now_s() - t0;
  double sum = 0;
  for (size_t i = 0; i < count; ++i) sum += lat[i];
  qsort(lat, count, sizeof *lat, cmp_double);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"calls\": %zu, \"seconds\": %.6f, \"calls_per_s\": %.1f, \"p50_us\": %.2f, \"p99_us\": %.2f, "
         "\"p999_us\": %.2f, \"max_us\": %.2f, \"mean_us\": %.2f, \"errors\": %zu, \"late_calls\": %zu, "
         "\"max_lag_us\": %.1f, \"peak_rss_bytes\": %lld}\n",
         count, elapsed, (double)count / elapsed, pct(lat, count, 0.50) * 1e6, pct(lat, count, 0.99) * 1e6,
         pct(lat, count, 0.999) * 1e6, lat[count - 1] * 1e6, sum / (double)count * 1e6, errors, late, max_lag * 1e6,
         (long long)ru.ru_maxrss * 1024);
  free(lat);
  free(names);
  vmr_close(s);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 8 && strcmp(argv[1], "setup") == 0) return setup_main(argv);
  if (argc == 7 && strcmp(argv[1], "calls") == 0) return calls_main(argv);
  fprintf(stderr, "usage: bench_mgmt setup URI_A URI_B N PORT_B STORAGE DISK_BYTES | calls URI OPTIONS N RATE SECONDS\n");
  return 2;
}
