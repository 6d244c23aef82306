/*
 * Replication benchmarks through the C ABI: two in-process services on 127.0.0.1 (hv-a the
 * primary, hv-b the recovery server on a fixed port so the roots can be reopened between
 * steps). bench/run changes the primary's disk between steps and times rsync beside it.
 *
 *   bench_replication setup DIR PORT IMAGE [CERTS TLS_PORT]
 *                                            enable + initial replication of IMAGE; with CERTS
 *                                            (tools/mkcerts.sh DIR hv-a hv-b) over mutual TLS:
 *                                            AuthenticationType 2 to hv-b's tls_listen TLS_PORT
 *   bench_replication cycle DIR PORT         one cycle (replicate_now)
 *   bench_replication serve DIR PORT         the services stay up, as vmrepld's do, and take
 *                                            commands on stdin, one per line: "cycle" (one
 *                                            timed cycle) or "quit"
 * Each prints one JSON line: {"seconds", "blocks", "data_bytes", "wire_bytes" (sent by the
 * primary), "disk", "replica_image", "peak_rss_bytes", "cpu_s"} (cpu_s: both services' CPU time
 * during the job); a cycle adds "source" (change-feed or scan) and "wire_total_bytes" (both ways).
 *
 * Reverse benchmarks: hv-a listens on PORT_A as well and each host admits the other (hv-a stores
 * what hv-b sends under its own root), so a reverse on hv-b can turn hv-a into its replica.
 *   bench_replication rsetup DIR PORT PORT_A IMAGE FEED   enable + initial replication of IMAGE;
 *                                     FEED=1 attaches both hosts' change feeds first
 *   bench_replication write DIR PORT PORT_A HOST PCT SEED DATA_ONLY MARK
 *                                     the guest on HOST (a|b) overwrites PCT% of its disk (of its
 *                                     data extents with DATA_ONLY=1) in 64 KiB writes of random
 *                                     bytes at 4 KiB-aligned offsets, one per 128 KiB slot (as
 *                                     gen_image.py modify); MARK=1 reports each to the feed
 *   bench_replication rcycle DIR PORT PORT_A              one cycle hv-a -> hv-b, timed (as cycle)
 *   bench_replication rserve DIR PORT PORT_A              as serve, with "write HOST PCT SEED
 *                                     DATA_ONLY MARK", "planned", "unplanned" and "reverse VERIFY"
 *                                     (as the commands below) besides "cycle"
 *   bench_replication planned DIR PORT PORT_A             prepare on hv-a (4), failover on hv-b,
 *                                                         the VM runs on hv-b
 *   bench_replication unplanned DIR PORT PORT_A           failover on hv-b to the point before the
 *                                     latest, commit, the VM runs on hv-b; hv-a made a replica (2)
 *   bench_replication reverse DIR PORT PORT_A VERIFY      the reverse on hv-b, timed from the call to
 *                                     the job's end (VERIFY=1: VMR_REVERSE_VERIFY_FULL)
 * reverse prints {"seconds", "source", "common_point", "cycle", "blocks", "data_bytes",
 * "wire_sent_bytes", "wire_bytes", "old_primary_blocks", "new_primary_blocks", "disk",
 * "replica_image", "states", "peak_rss_bytes"}; the others print the disks' paths.
 */
#define _POSIX_C_SOURCE 200809L
#define _GNU_SOURCE /* SEEK_DATA, SEEK_HOLE */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vmrepl/vmrepl.h>

#include "bench_util.h"

/* CPU seconds (user + system) of this process, every thread. */
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static uint64_t u64(const vmr_instance *i, const char *n) {
  uint64_t v = 0;
  vmr_instance_get_u64(i, n, &v);
  return v;
}

/* tls: "" or more options, starting with a comma (the TLS ones). */
static vmr_service *open_host_tls(const char *dir, const char *name, const char *peer, const char *listen,
                                  const char *tls) {
  char uri[4096], opts[16384];
  snprintf(uri, sizeof uri, "local:%s/%s", dir, name);
  snprintf(opts, sizeof opts, "{\"host_name\": \"%s\", \"listen\": \"%s\", \"hosts\": {\"%s\": \"127.0.0.1\"}%s}", name,
           listen, peer, tls);
  vmr_service *s = NULL;
  vmr_status st = vmr_open(uri, opts, &s);
  if (st != VMR_OK) die(st, "open");
  return s;
}

static vmr_service *open_host(const char *dir, const char *name, const char *peer, const char *listen) {
  return open_host_tls(dir, name, peer, listen, "");
}

/* The SHA-1 thumbprint of CERTS/NAME.pem, from the NAME.thumbprint file mkcerts.sh writes. */
static void thumbprint(const char *certs, const char *name, char out[65]) {
  char path[4200], alg[16];
  snprintf(path, sizeof path, "%s/%s.thumbprint", certs, name);
  FILE *f = fopen(path, "r");
  if (!f) die(VMR_FILE_NOT_FOUND, path);
  out[0] = 0;
  while (fscanf(f, "%15s %64s", alg, out) == 2 && strcmp(alg, "sha1") != 0) out[0] = 0;
  fclose(f);
  if (!out[0]) die(VMR_FILE_NOT_FOUND, "sha1 thumbprint");
}

static void tls_options(char *out, size_t n, const char *certs, const char *name, const char *tls_listen) {
  int k = snprintf(out, n, ", \"tls_certificate\": \"%s/%s.pem\", \"tls_key\": \"%s/%s.key\", \"tls_ca\": \"%s/ca.pem\"",
                   certs, name, certs, name, certs);
  if (k < 0 || (size_t)k >= n) die(VMR_INVALID_PARAMETER, "certificate paths too long");
  if (tls_listen) snprintf(out + k, n - (size_t)k, ", \"tls_listen\": \"%s\"", tls_listen);
}

/* ---- reverse benchmarks ------------------------------------------------------------------ */

static void admit(vmr_service *s, const char *peer, const char *storage) {
  char entry[4400];
  vmr_job *job = NULL;
  vmr_instance_release(finish(vmr_modify_service_settings(s, "{\"__CLASS\": \"Msvm_ReplicationServiceSettingData\", \"RecoveryServerEnabled\": true, \"AllowedAuthenticationType\": 1}", &job), &job, "settings"));
  snprintf(entry, sizeof entry, "{\"__CLASS\": \"Msvm_ReplicationAuthorizationSettingData\", \"AllowedPrimaryHostSystem\": \"%s\", \"TrustGroup\": \"DEFAULT\", \"ReplicaStorageLocation\": \"%s\"}", peer, storage);
  vmr_instance_release(finish(vmr_add_authorization_entry(s, entry, &job), &job, "entry"));
}

static char *disk_of(vmr_service *s) {
  char *disk = NULL;
  vmr_status st = vmr_disk_path(s, "bench", 0, &disk);
  if (st != VMR_OK) die(st, "disk_path");
  return disk;
}

static char *folder_of(vmr_service *s) {
  vmr_instance *vm = NULL;
  char *folder = NULL;
  vmr_status st = vmr_get_system(s, "bench", &vm);
  if (st != VMR_OK) die(st, "get_system");
  vmr_instance_get_string(vm, "Folder", &folder);
  vmr_instance_release(vm);
  return folder;
}

static uint64_t mode_state(vmr_service *s) {
  vmr_instance *vm = NULL;
  if (vmr_get_system(s, "bench", &vm) != VMR_OK) return 0;
  uint64_t v = u64(vm, "ReplicationMode") * 100 + u64(vm, "ReplicationState");
  vmr_instance_release(vm);
  return v;
}

static void power(vmr_service *s, uint16_t state) {
  vmr_job *none = NULL;
  vmr_status st = vmr_request_state_change(s, "bench", state, &none);
  if (st != VMR_OK) die(st, "RequestStateChange");
}

static void print_disks(vmr_service *a, vmr_service *b) {
  char *da = disk_of(a), *db = disk_of(b), *fa = folder_of(a);
  printf("{\"disk_a\": \"%s\", \"disk_b\": \"%s\", \"folder_a\": \"%s\", \"states\": [%llu, %llu]}\n", da, db, fa,
         (unsigned long long)mode_state(a), (unsigned long long)mode_state(b));
  vmr_free(da);
  vmr_free(db);
  vmr_free(fa);
}

static uint64_t rng_state;
static uint64_t rng(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static int cmp_u64(const void *x, const void *y) {
  uint64_t p = *(const uint64_t *)x, q = *(const uint64_t *)y;
  return p < q ? -1 : p > q;
}

/* The guest's writes: see the header. */
static void guest_writes(vmr_service *s, double pct, uint64_t seed, int data_only, int mark) {
  enum { BLK = 65536, SLOT = 131072 };
  char *path = disk_of(s);
  int fd = open(path, O_RDWR);
  if (fd < 0) die(VMR_FILE_NOT_FOUND, path);
  struct stat sb;
  fstat(fd, &sb);
  uint64_t *slots = NULL, nslots = 0, cap = 0, total = 0;
  off_t off = 0;
  while (off < sb.st_size) {
    off_t d = 0, h = sb.st_size;
    if (data_only) {
      d = lseek(fd, off, SEEK_DATA);
      if (d < 0) break;
      h = lseek(fd, d, SEEK_HOLE);
    }
    total += (uint64_t)(h - d);
    for (uint64_t i = 0; i < (uint64_t)(h - d) / SLOT; ++i) {
      if (nslots == cap) slots = realloc(slots, (cap = cap ? cap * 2 : 4096) * sizeof *slots);
      slots[nslots++] = (uint64_t)d + i * SLOT;
    }
    off = h;
  }
  uint64_t n = (uint64_t)((double)total * pct / 100.0) / BLK;
  if (n > nslots) n = nslots;
  rng_state = seed;
  for (uint64_t i = 0; i < n; ++i) { /* a partial Fisher-Yates: n distinct slots */
    uint64_t j = i + rng() % (nslots - i), t = slots[i];
    slots[i] = slots[j];
    slots[j] = t;
  }
  qsort(slots, n, sizeof *slots, cmp_u64);
  uint64_t *buf = malloc(BLK);
  for (uint64_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < BLK / 8; ++k) buf[k] = rng();
    const uint64_t at = slots[i] + 4096 * (rng() % 16);
    if (pwrite(fd, buf, BLK, (off_t)at) != BLK) die(VMR_FAILED, "pwrite");
    if (mark) {
      vmr_status st = vmr_disk_mark_dirty(s, "bench", 0, at, BLK);
      if (st != VMR_OK) die(st, "disk_mark_dirty");
    }
  }
  fdatasync(fd);
  close(fd);
  printf("{\"writes\": %llu, \"bytes\": %llu, \"of_bytes\": %llu, \"marked\": %d}\n", (unsigned long long)n,
         (unsigned long long)n * BLK, (unsigned long long)total, mark);
  free(buf);
  free(slots);
  vmr_free(path);
}

/* One cycle hv-a -> hv-b, timed from the call to the job's end; the change source says feed or
 * scan, cpu_s is both services' CPU time during the job. */
static void timed_cycle(vmr_service *a, vmr_service *b) {
  vmr_job *job = NULL;
  double c0 = cpu_s(), t0 = now_s();
  vmr_instance *p = finish(vmr_replicate_now(a, "bench", &job), &job, "cycle");
  double t1 = now_s(), c1 = cpu_s();
  char *src = NULL;
  vmr_instance_get_string(p, "ChangeSource", &src);
  char *da = disk_of(a), *fb = folder_of(b);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"seconds\": %.6f, \"source\": \"%s\", \"blocks\": %llu, \"data_bytes\": %llu, \"wire_bytes\": %llu, "
         "\"wire_total_bytes\": %llu, \"disk\": \"%s\", \"replica_image\": \"%s/replica/disk0.img\", "
         "\"peak_rss_bytes\": %lld, \"cpu_s\": %.3f}\n",
         t1 - t0, src ? src : "", (unsigned long long)u64(p, "BlocksSent"), (unsigned long long)u64(p, "DataBytesSent"),
         (unsigned long long)u64(p, "WireBytesSent"), (unsigned long long)u64(p, "WireBytes"), da, fb, (long long)ru.ru_maxrss * 1024, c1 - c0);
  fflush(stdout);
  vmr_free(src);
  vmr_free(da);
  vmr_free(fb);
  vmr_instance_release(p);
}

/* Prepare on hv-a (4), failover on hv-b: the VM runs on hv-b. */
static void planned(vmr_service *a, vmr_service *b) {
  vmr_job *job = NULL;
  power(a, 3);
  vmr_instance_release(finish(vmr_request_replication_state_change(a, "bench", 4, &job), &job, "prepare (4)"));
  vmr_instance_release(finish(vmr_initiate_failover(b, "bench", NULL, &job), &job, "failover"));
  power(b, 2);
  print_disks(a, b);
}

/* Failover on hv-b to the point before the latest, commit; hv-a made a replica (2). */
static void unplanned(vmr_service *a, vmr_service *b) {
  vmr_job *job = NULL;
  power(a, 3);
  vmr_list *pts = NULL;
  vmr_status st = vmr_list_recovery_points(b, "bench", &pts);
  if (st != VMR_OK || vmr_list_size(pts) < 2) die(st ? st : VMR_INVALID_STATE, "recovery points");
  char *older = NULL;
  vmr_instance_get_string(vmr_list_get(pts, vmr_list_size(pts) - 2), "InstanceID", &older);
  vmr_instance_release(finish(vmr_initiate_failover(b, "bench", older, &job), &job, "failover"));
  vmr_instance_release(finish(vmr_commit_failover(b, "bench", &job), &job, "commit"));
  vmr_free(older);
  vmr_list_release(pts);
  power(b, 2);
  vmr_instance_release(finish(vmr_request_replication_state_change(a, "bench", 2, &job), &job, "make replica (2)"));
  print_disks(a, b);
}

/* The reverse on hv-b, timed from the call to the job's end. */
static void reverse(vmr_service *a, vmr_service *b, const char *port_a, int verify) {
  vmr_job *job = NULL;
  char rsd[512];
  snprintf(rsd, sizeof rsd, "{\"RecoveryConnectionPoint\": \"hv-a\", \"RecoveryServerPortNumber\": %s, \"AuthenticationType\": 1, \"ReplicationInterval\": 300, \"RecoveryHistory\": 2, \"CompressionEnabled\": %s}",
           port_a, getenv("BENCH_COMPRESS") ? "true" : "false");
  const uint32_t flags = verify ? VMR_REVERSE_VERIFY_FULL : 0;
  double t0 = now_s();
  vmr_instance *p = finish(vmr_reverse_replication_relationship_ex(b, "bench", rsd, flags, &job), &job, "reverse");
  double t1 = now_s();
  char *source = NULL, *disk = disk_of(b), *fa = folder_of(a);
  vmr_instance_get_string(p, "ChangeSource", &source);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"seconds\": %.6f, \"source\": \"%s\", \"common_point\": %llu, \"cycle\": %llu, \"blocks\": %llu, "
         "\"data_bytes\": %llu, \"wire_sent_bytes\": %llu, \"wire_bytes\": %llu, \"old_primary_blocks\": %llu, "
         "\"new_primary_blocks\": %llu, \"disk\": \"%s\", \"replica_image\": \"%s/replica/disk0.img\", "
         "\"states\": [%llu, %llu], \"peak_rss_bytes\": %lld}\n",
         t1 - t0, source ? source : "", (unsigned long long)u64(p, "CommonPoint"), (unsigned long long)u64(p, "CycleId"),
         (unsigned long long)u64(p, "BlocksSent"), (unsigned long long)u64(p, "DataBytesSent"),
         (unsigned long long)u64(p, "WireBytesSent"), (unsigned long long)u64(p, "WireBytes"),
         (unsigned long long)u64(p, "OldPrimaryChangedBlocks"), (unsigned long long)u64(p, "NewPrimaryChangedBlocks"),
         disk, fa, (unsigned long long)mode_state(a), (unsigned long long)mode_state(b), (long long)ru.ru_maxrss * 1024);
  vmr_free(source);
  vmr_free(disk);
  vmr_free(fa);
  vmr_instance_release(p);
}

/* Commands from stdin while both services stay up (serve, rserve). */
static void serve(vmr_service *a, vmr_service *b, const char *port_a) {
  char line[256], host[8];
  double pct;
  unsigned long long seed;
  int data_only, mark, verify;
  while (fgets(line, sizeof line, stdin)) {
    if (strcmp(line, "cycle\n") == 0) {
      timed_cycle(a, b);
    } else if (port_a && strcmp(line, "planned\n") == 0) {
      planned(a, b);
    } else if (port_a && strcmp(line, "unplanned\n") == 0) {
      unplanned(a, b);
    } else if (port_a && sscanf(line, "reverse %d", &verify) == 1) {
      reverse(a, b, port_a, verify);
    } else if (sscanf(line, "write %7s %lf %llu %d %d", host, &pct, &seed, &data_only, &mark) == 5) {
      guest_writes(strcmp(host, "a") == 0 ? a : b, pct, seed, data_only, mark);
    } else if (strcmp(line, "quit\n") == 0) {
      break;
    } else {
      die(VMR_INVALID_PARAMETER, line);
    }
    fflush(stdout);
  }
}

static int reverse_main(int argc, char **argv) {
  const char *cmd = argv[1], *dir = argv[2];
  char lb[64], la[64], storage[4200];
  snprintf(lb, sizeof lb, "127.0.0.1:%s", argv[3]);
  snprintf(la, sizeof la, "127.0.0.1:%s", argv[4]);
  vmr_service *b = open_host(dir, "hv-b", "hv-a", lb);
  vmr_service *a = open_host(dir, "hv-a", "hv-b", la);
  vmr_job *job = NULL;
  if (strcmp(cmd, "rsetup") == 0 && argc == 7) {
    snprintf(storage, sizeof storage, "%s/replicas", dir);
    admit(b, "hv-a", storage);
    snprintf(storage, sizeof storage, "%s/hv-a", dir);
    admit(a, "hv-b", storage);
    struct stat sb;
    if (stat(argv[5], &sb) != 0) die(VMR_FILE_NOT_FOUND, "image");
    char def[256], cp[8400], rsd[512];
    snprintf(def, sizeof def, "{\"name\": \"bench\", \"disks\": [%lld]}", (long long)sb.st_size);
    vmr_instance *vm = NULL;
    vmr_status st = vmr_define_system(a, def, &vm);
    if (st != VMR_OK) die(st, "define");
    vmr_instance_release(vm);
    char *disk = disk_of(a);
    snprintf(cp, sizeof cp, "cp --sparse=always '%s' '%s' && sync", argv[5], disk);
    if (system(cp) != 0) die(VMR_FAILED, "copy image");
    vmr_free(disk);
    const int feed = atoi(argv[6]);
    if (feed && (st = vmr_disk_mark_dirty(a, "bench", 0, 0, 65536)) != VMR_OK) die(st, "attach feed on hv-a");
    snprintf(rsd, sizeof rsd, "{\"RecoveryConnectionPoint\": \"hv-b\", \"RecoveryServerPortNumber\": %s, \"AuthenticationType\": 1, \"RecoveryHistory\": 2, \"CompressionEnabled\": %s}",
             argv[3], getenv("BENCH_COMPRESS") ? "true" : "false");
    vmr_instance_release(finish(vmr_create_replication_relationship(a, "bench", rsd, &job), &job, "create"));
    vmr_instance_release(finish(vmr_start_replication(a, "bench", 1, NULL, NULL, &job), &job, "start"));
    /* hv-b's feed for the replica VM: the failover re-establishes it at the recovery point. */
    if (feed && (st = vmr_disk_mark_dirty(b, "bench", 0, 0, 65536)) != VMR_OK) die(st, "attach feed on hv-b");
    print_disks(a, b);
  } else if (strcmp(cmd, "write") == 0 && argc == 10) {
    guest_writes(strcmp(argv[5], "a") == 0 ? a : b, atof(argv[6]), strtoull(argv[7], NULL, 10), atoi(argv[8]),
                 atoi(argv[9]));
  } else if (strcmp(cmd, "rcycle") == 0) {
    timed_cycle(a, b);
  } else if (strcmp(cmd, "rserve") == 0) {
    serve(a, b, argv[4]);
  } else if (strcmp(cmd, "planned") == 0) {
    planned(a, b);
  } else if (strcmp(cmd, "unplanned") == 0) {
    unplanned(a, b);
  } else if (strcmp(cmd, "reverse") == 0 && argc == 6) {
    reverse(a, b, argv[4], atoi(argv[5]));
  } else {
    fprintf(stderr, "bench_replication: bad arguments for %s\n", cmd);
    return 2;
  }
  vmr_close(a);
  vmr_close(b);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 5 && (strcmp(argv[1], "rsetup") == 0 || strcmp(argv[1], "write") == 0 || strcmp(argv[1], "rcycle") == 0 || strcmp(argv[1], "rserve") == 0 ||
                    strcmp(argv[1], "planned") == 0 || strcmp(argv[1], "unplanned") == 0 ||
                    strcmp(argv[1], "reverse") == 0))
    return reverse_main(argc, argv);
  if (argc < 4) {
    fprintf(stderr, "usage: bench_replication setup DIR PORT IMAGE [CERTS TLS_PORT] | cycle|serve DIR PORT | rsetup|write|rcycle|rserve|planned|unplanned|reverse DIR PORT PORT_A ... (see the source)\n");
    return 2;
  }
  const char *dir = argv[2];
  /* setup with CERTS TLS_PORT: both hosts hold their certificates, hv-b listens for TLS too. */
  const int tls = strcmp(argv[1], "setup") == 0 && argc == 7;
  const char *certs = tls ? argv[5] : NULL;
  char listen[64], tls_listen[64], tls_a[8600] = "", tls_b[8600] = "", thumb_a[65] = "", thumb_b[65] = "";
  snprintf(listen, sizeof listen, "127.0.0.1:%s", argv[3]);
  if (tls) {
    snprintf(tls_listen, sizeof tls_listen, "127.0.0.1:%s", argv[6]);
    tls_options(tls_a, sizeof tls_a, certs, "hv-a", NULL);
    tls_options(tls_b, sizeof tls_b, certs, "hv-b", tls_listen);
    thumbprint(certs, "hv-a", thumb_a);
    thumbprint(certs, "hv-b", thumb_b);
  }
  vmr_service *b = open_host_tls(dir, "hv-b", "hv-a", listen, tls_b);
  vmr_service *a = open_host_tls(dir, "hv-a", "hv-b", "127.0.0.1:0", tls_a);
  vmr_job *job = NULL;
  vmr_instance *p = NULL;
  double t0, t1, c0 = 0, c1 = 0;
  if (strcmp(argv[1], "setup") == 0 && (argc == 5 || tls)) {
    char entry[1024], rsd[768], def[256], cmd[8192], server[512];
    if (tls)
      snprintf(server, sizeof server, "{\"__CLASS\": \"Msvm_ReplicationServiceSettingData\", \"RecoveryServerEnabled\": true, \"AllowedAuthenticationType\": 2, \"CertificateThumbPrint\": \"%s\"}", thumb_b);
    else
      snprintf(server, sizeof server, "{\"__CLASS\": \"Msvm_ReplicationServiceSettingData\", \"RecoveryServerEnabled\": true, \"AllowedAuthenticationType\": 1}");
    vmr_instance_release(finish(vmr_modify_service_settings(b, server, &job), &job, "settings"));
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
    if (tls)
      snprintf(rsd, sizeof rsd, "{\"RecoveryConnectionPoint\": \"hv-b\", \"RecoveryServerPortNumber\": %s, \"AuthenticationType\": 2, \"CertificateThumbPrint\": \"%s\", \"RecoveryHistory\": 2, \"CompressionEnabled\": %s}",
               argv[6], thumb_a, getenv("BENCH_COMPRESS") ? "true" : "false");
    else
      snprintf(rsd, sizeof rsd, "{\"RecoveryConnectionPoint\": \"hv-b\", \"RecoveryServerPortNumber\": %s, \"AuthenticationType\": 1, \"RecoveryHistory\": 2, \"CompressionEnabled\": %s}",
               argv[3], getenv("BENCH_COMPRESS") ? "true" : "false");
    vmr_instance_release(finish(vmr_create_replication_relationship(a, "bench", rsd, &job), &job, "create"));
    c0 = cpu_s();
    t0 = now_s();
    p = finish(vmr_start_replication(a, "bench", 1, NULL, NULL, &job), &job, "start");
    t1 = now_s();
    c1 = cpu_s();
  } else if (strcmp(argv[1], "serve") == 0) {
    serve(a, b, NULL);
    vmr_close(a);
    vmr_close(b);
    return 0;
  } else if (strcmp(argv[1], "cycle") == 0) {
    timed_cycle(a, b);
    vmr_close(a);
    vmr_close(b);
    return 0;
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
         "\"replica_image\": \"%s/replica/disk0.img\", \"peak_rss_bytes\": %lld, \"cpu_s\": %.3f}\n",
         t1 - t0, (unsigned long long)u64(p, "BlocksSent"), (unsigned long long)u64(p, "DataBytesSent"),
         (unsigned long long)u64(p, "WireBytesSent"), disk, folder, (long long)ru.ru_maxrss * 1024, c1 - c0);
  vmr_free(disk);
  vmr_free(folder);
  vmr_instance_release(vb);
  vmr_instance_release(p);
  vmr_close(a);
  vmr_close(b);
  return 0;
}
