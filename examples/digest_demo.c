/*
 * The Foundation demo: open an in-process engine, define a VM with a 1 GiB sparse disk, write
 * some data into it, run the ComputeDigest job with a live progress line (driven by the
 * service fd + dispatch, as an event loop would), and print the job's result as JSON.
 *
 *   digest_demo [HOST_ROOT]      (default /tmp/vmrepl-demo)
 *
 * C11, header only: everything goes through <vmrepl/vmrepl.h>.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vmrepl/vmrepl.h>

static int check(vmr_status st, const char *what) {
  if (st == VMR_OK || st == VMR_JOB_STARTED) return 0;
  fprintf(stderr, "%s: %s (%u): %s\n", what, vmr_status_name(st), st, vmr_last_error_message());
  return 1;
}

static void on_job_change(vmr_job *job, void *userdata) {
  (void)userdata;
  vmr_instance *p = NULL;
  if (vmr_job_get(job, &p) != VMR_OK) return;
  uint64_t pct = 0, done = 0, total = 0, rate = 0;
  char *phase = NULL;
  vmr_instance_get_u64(p, "PercentComplete", &pct);
  vmr_instance_get_u64(p, "BytesDone", &done);
  vmr_instance_get_u64(p, "BytesTotal", &total);
  vmr_instance_get_u64(p, "RateBytesPerSecond", &rate);
  vmr_instance_get_string(p, "Phase", &phase);
  fprintf(stderr, "\r  digest: %3u%%  %6.1f / %6.1f MiB  %7.1f MiB/s  %-12s", (unsigned)pct,
          done / 1048576.0, total / 1048576.0, rate / 1048576.0, phase ? phase : "");
  vmr_free(phase);
  vmr_instance_release(p);
}

/* Writes `len` bytes of a deterministic pattern at `off`: half text, half pseudo-random. */
static int write_pattern(const char *path, uint64_t off, size_t len, uint32_t seed) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return -1;
  char *buf = malloc(len);
  uint32_t x = seed;
  for (size_t i = 0; i < len; ++i) {
    x = x * 1664525u + 1013904223u;
    buf[i] = (i / 65536) % 2 ? (char)(x >> 24) : "replicate the change, not the disk\n"[i % 35];
  }
  ssize_t n = pwrite(fd, buf, len, (off_t)off);
  free(buf);
  fsync(fd);
  close(fd);
  return n == (ssize_t)len ? 0 : -1;
}

int main(int argc, char **argv) {
  const char *root = argc > 1 ? argv[1] : "/tmp/vmrepl-demo";
  char uri[4096];
  snprintf(uri, sizeof uri, "local:%s", root);

  vmr_service *svc = NULL;
  if (check(vmr_open(uri, "{\"host_name\": \"hv-a\"}", &svc), "vmr_open")) return 1;
  printf("vmrepl %s (ABI %u), host root %s\n", vmr_version(), vmr_abi_version(), root);

  /* Start from a clean VM each run. */
  if (vmr_destroy_system(svc, "demo-vm") == VMR_OK) printf("removed the previous demo-vm\n");

  vmr_instance *vm = NULL;
  if (check(vmr_define_system(svc, "{\"name\": \"demo-vm\", \"disks\": [1073741824]}", &vm),
            "vmr_define_system"))
    return 1;
  char *guid = NULL;
  vmr_instance_get_string(vm, "Name", &guid);
  printf("defined demo-vm %s with a 1 GiB sparse disk\n", guid);

  char *disk = NULL;
  if (check(vmr_disk_path(svc, guid, 0, &disk), "vmr_disk_path")) return 1;
  /* Data in a few places; the rest of the disk stays a hole and is never read. */
  const uint64_t offsets[] = {0, 100u << 20, 512u << 20, 1000u << 20};
  for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; ++i) {
    if (write_pattern(disk, offsets[i], 16u << 20, (uint32_t)i + 1) != 0) {
      fprintf(stderr, "cannot write into %s\n", disk);
      return 1;
    }
  }
  printf("wrote 4 x 16 MiB into %s\n", disk);
  fflush(stdout);

  vmr_job *job = NULL;
  if (check(vmr_compute_digest(svc, guid, &job), "vmr_compute_digest")) return 1;
  vmr_job_set_callback(job, on_job_change, NULL);
  struct pollfd pfd = {.fd = vmr_service_fd(svc), .events = POLLIN};
  while (vmr_job_wait(job, 0) == VMR_TIMEOUT) {
    if (poll(&pfd, 1, 200) > 0) vmr_service_dispatch(svc);
  }
  vmr_service_dispatch(svc);
  fprintf(stderr, "\n");

  vmr_instance *props = NULL;
  vmr_job_get(job, &props);
  char *json = NULL;
  vmr_instance_to_json(props, &json);
  printf("%s\n", json);
  int rc = vmr_job_error_code(job) == VMR_OK ? 0 : 1;

  vmr_free(json);
  vmr_instance_release(props);
  vmr_job_release(job);
  vmr_free(disk);
  vmr_free(guid);
  vmr_instance_release(vm);
  vmr_close(svc);
  return rc;
}
