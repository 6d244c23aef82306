/* Helpers shared by the C benchmark programs, which use only the C ABI (as a user does). */
#ifndef VMREPL_BENCH_UTIL_H
#define VMREPL_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <vmrepl/vmrepl.h>

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* A call that failed ends the benchmark with the engine's explanation. */
static inline void die(vmr_status st, const char *what) {
  fprintf(stderr, "%s: %s (%u): %s\n", what, vmr_status_name(st), st, vmr_last_error_message());
  exit(1);
}

/* Waits for the job a call started and returns its final instance; a failed job ends the
 * benchmark. Takes the job by address: *jobp is read after the call that set it has run. */
static inline vmr_instance *finish(vmr_status st, vmr_job **jobp, const char *what) {
  if (st != VMR_JOB_STARTED) die(st, what);
  vmr_job *job = *jobp;
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

static inline void job_ok(vmr_status st, vmr_job **jobp, const char *what) {
  vmr_instance_release(finish(st, jobp, what));
}

#endif
