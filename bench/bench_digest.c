/*
 * ComputeDigest through the C ABI, as a user runs it: the benchmark driver (bench/run) times
 * the real job, not a layer underneath.
 *
 *   bench_digest define ROOT NAME SIZE_BYTES   prints the disk path to fill
 *   bench_digest run ROOT NAME RUNS            runs the digest RUNS times; prints one JSON line
 *                                              {best_s, median_s, bytes_read, merkle_root,
 *                                               peak_rss_bytes}
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <vmrepl/vmrepl.h>

#include "bench_util.h"

static vmr_service *open_root(const char *root) {
  char uri[4096];
  snprintf(uri, sizeof uri, "local:%s", root);
  vmr_service *svc = NULL;
  if (vmr_open(uri, NULL, &svc) != VMR_OK) {
    fprintf(stderr, "vmr_open: %s\n", vmr_last_error_message());
    exit(1);
  }
  return svc;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: bench_digest define ROOT NAME SIZE | run ROOT NAME RUNS\n");
    return 2;
  }
  vmr_service *svc = open_root(argv[2]);
  if (strcmp(argv[1], "define") == 0) {
    vmr_destroy_system(svc, argv[3]);
    char def[512];
    snprintf(def, sizeof def, "{\"name\": \"%s\", \"disks\": [%s]}", argv[3], argv[4]);
    vmr_instance *vm = NULL;
    char *path = NULL;
    if (vmr_define_system(svc, def, &vm) != VMR_OK || vmr_disk_path(svc, argv[3], 0, &path) != VMR_OK) {
      fprintf(stderr, "define: %s\n", vmr_last_error_message());
      return 1;
    }
    printf("%s\n", path);
    vmr_free(path);
    vmr_instance_release(vm);
    vmr_close(svc);
    return 0;
  }
  int runs = atoi(argv[4]);
  if (runs < 1 || runs > 100) runs = 5;
  double times[100];
  uint64_t bytes_read = 0;
  char *root = NULL;
  for (int r = 0; r < runs; ++r) {
    vmr_job *job = NULL;
    double t0 = now_s();
    if (vmr_compute_digest(svc, argv[3], &job) != VMR_JOB_STARTED || vmr_job_wait(job, -1) != VMR_OK ||
        vmr_job_error_code(job) != VMR_OK) {
      fprintf(stderr, "digest: %s\n", vmr_last_error_message());
      return 1;
    }
    times[r] = now_s() - t0;
    vmr_instance *p = NULL;
    vmr_job_get(job, &p);
    vmr_instance_get_u64(p, "BytesRead", &bytes_read);
    vmr_free(root);
    vmr_instance_get_string(p, "MerkleRoot", &root);
    vmr_instance_release(p);
    vmr_job_release(job);
  }
  qsort(times, (size_t)runs, sizeof times[0], cmp_double);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"best_s\": %.6f, \"median_s\": %.6f, \"bytes_read\": %llu, \"merkle_root\": \"%s\", "
         "\"peak_rss_bytes\": %lld}\n",
         times[0], times[runs / 2], (unsigned long long)bytes_read, root ? root : "",
         (long long)ru.ru_maxrss * 1024);
  vmr_free(root);
  vmr_close(svc);
  return 0;
}
