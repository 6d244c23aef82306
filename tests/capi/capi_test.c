/*
 * The C ABI seen from C11: compiled against the installed header and library through
 * pkg-config (tests/capi/run_c_test.sh), exactly as a user builds. The failover test runs a
 * planned failover and reverse between two services on 127.0.0.1.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vmrepl/vmrepl.h>

static int failures = 0;
#define EXPECT(cond)                                                         \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: expected %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
              vmr_last_error_message());                                     \
      ++failures;                                                            \
    }                                                                        \
  } while (0)
#define EXPECT_MSG_HAS(text) EXPECT(strstr(vmr_last_error_message(), (text)) != NULL)

static int callbacks = 0;
static void on_change(vmr_job *job, void *ud) {
  (void)job;
  ++*(int *)ud;
}

static char *get_str(const vmr_instance *i, const char *name) {
  char *s = NULL;
  if (vmr_instance_get_string(i, name, &s) != VMR_OK) return NULL;
  return s;
}

static void test_library(void) {
  EXPECT(vmr_abi_version() == VMR_ABI_VERSION);
  EXPECT(strcmp(vmr_status_name(32775), "InvalidState") == 0);
  EXPECT(strcmp(vmr_status_name(4096), "JobStarted") == 0);
  EXPECT(strcmp(vmr_status_name(1234), "Unknown") == 0);
  EXPECT(vmr_last_error_message() != NULL);
  vmr_free(NULL);
  vmr_close(NULL);
  vmr_job_release(NULL);
  vmr_instance_release(NULL);
  vmr_list_release(NULL);
}

static void test_open_errors(const char *root) {
  vmr_service *s = NULL;
  EXPECT(vmr_open("bogus:/x", NULL, &s) == VMR_INVALID_PARAMETER);
  EXPECT(s == NULL);
  EXPECT_MSG_HAS("bogus");
  EXPECT(vmr_open("local:relative/path", NULL, &s) == VMR_INVALID_PARAMETER);
  EXPECT(vmr_open(NULL, NULL, &s) == VMR_INVALID_PARAMETER);
  char uri[4096];
  snprintf(uri, sizeof uri, "local:%s", root);
  EXPECT(vmr_open(uri, "{\"no_such_option\": 1}", &s) == VMR_INVALID_PARAMETER);
  EXPECT_MSG_HAS("no_such_option");
  EXPECT(vmr_open(uri, "{not json", &s) == VMR_INVALID_PARAMETER);
}

static void test_vms_and_digest(const char *root) {
  char uri[4096];
  snprintf(uri, sizeof uri, "local:%s", root);
  vmr_service *svc = NULL;
  EXPECT(vmr_open(uri, "{\"host_name\": \"hv-c\"}", &svc) == VMR_OK);
  if (!svc) return;

  vmr_instance *info = NULL;
  EXPECT(vmr_service_info(svc, &info) == VMR_OK);
  char *host = get_str(info, "HostName");
  EXPECT(host && strcmp(host, "hv-c") == 0);
  vmr_free(host);
  vmr_instance_release(info);

  vmr_instance *vm = NULL;
  EXPECT(vmr_define_system(svc, "{\"name\": \"c-vm\", \"disks\": [67108864, 4194304]}", &vm) == VMR_OK);
  char *guid = get_str(vm, "Name");
  EXPECT(guid && strlen(guid) == 36);
  EXPECT(strcmp(vmr_instance_class(vm), "Msvm_ComputerSystem") == 0);
  uint64_t st = 0;
  EXPECT(vmr_instance_get_u64(vm, "EnabledState", &st) == VMR_OK && st == 3);
  EXPECT(vmr_instance_get_u64(vm, "NoSuchProperty", &st) == VMR_INVALID_PARAMETER);
  EXPECT(vmr_instance_get_u64(vm, "ElementName", &st) == VMR_INCORRECT_DATA_TYPE);
  uint16_t type = 0;
  int is_array = -1, is_null = -1;
  EXPECT(vmr_instance_type(vm, "ElementName", &type, &is_array, &is_null) == VMR_OK);
  EXPECT(type == VMR_TYPE_STRING && is_array == 0 && is_null == 0);
  EXPECT(vmr_instance_count(vm) > 3);
  EXPECT(vmr_instance_name_at(vm, vmr_instance_count(vm)) == NULL);

  /* Bad definitions: the property is named. */
  vmr_instance *bad = NULL;
  EXPECT(vmr_define_system(svc, "{\"name\": \"../etc\", \"disks\": [4096]}", &bad) == VMR_INVALID_PARAMETER);
  EXPECT_MSG_HAS("ElementName");
  EXPECT(vmr_define_system(svc, "{\"name\": \"a/b\", \"disks\": [4096]}", &bad) == VMR_INVALID_PARAMETER);
  EXPECT(vmr_define_system(svc, "{\"name\": \"x\", \"disks\": [1000]}", &bad) == VMR_INVALID_PARAMETER);
  EXPECT(vmr_define_system(svc, "{\"name\": \"x\", \"disks\": \"big\"}", &bad) == VMR_INCORRECT_DATA_TYPE);
  EXPECT(vmr_define_system(svc, "{\"name\": \"c-vm\", \"disks\": [4096]}", &bad) == VMR_INVALID_PARAMETER);
  EXPECT(bad == NULL);

  /* Lookups by name, GUID and object path. */
  vmr_instance *g = NULL;
  EXPECT(vmr_get_system(svc, "c-vm", &g) == VMR_OK);
  vmr_instance_release(g);
  EXPECT(vmr_get_system(svc, guid, &g) == VMR_OK);
  vmr_instance_release(g);
  char path[512];
  snprintf(path, sizeof path,
           "\\\\hv-c\\root\\virtualization\\v2:Msvm_ComputerSystem.CreationClassName=\"Msvm_ComputerSystem\",Name=\"%s\"",
           guid);
  EXPECT(vmr_get_system(svc, path, &g) == VMR_OK);
  vmr_instance_release(g);
  EXPECT(vmr_get_system(svc, "no-such-vm", &g) == VMR_FILE_NOT_FOUND);
  EXPECT_MSG_HAS("no-such-vm");
  EXPECT(vmr_get_system(svc, "Msvm_ComputerSystem.Name=\"unterminated", &g) == VMR_INVALID_PARAMETER);

  vmr_list *list = NULL;
  EXPECT(vmr_list_systems(svc, &list) == VMR_OK);
  EXPECT(vmr_list_size(list) == 1);
  EXPECT(vmr_list_get(list, 0) != NULL && vmr_list_get(list, 1) == NULL);
  vmr_list_release(list);

  /* Power state. */
  vmr_job *pj = NULL;
  EXPECT(vmr_request_state_change(svc, "c-vm", 2, &pj) == VMR_OK && pj == NULL);
  EXPECT(vmr_get_system(svc, "c-vm", &g) == VMR_OK);
  EXPECT(vmr_instance_get_u64(g, "EnabledState", &st) == VMR_OK && st == 2);
  vmr_instance_release(g);
  EXPECT(vmr_destroy_system(svc, "c-vm") == VMR_SYSTEM_IN_USE);
  EXPECT(vmr_request_state_change(svc, "c-vm", 7, &pj) == VMR_INVALID_PARAMETER);
  EXPECT(vmr_request_state_change(svc, "c-vm", 3, &pj) == VMR_OK);

  /* Write into disk 0, then digest twice: same root; change one byte: another root. */
  char *disk = NULL;
  EXPECT(vmr_disk_path(svc, guid, 0, &disk) == VMR_OK);
  char *none = (char *)"unset";
  EXPECT(vmr_disk_path(svc, guid, 2, &none) == VMR_INVALID_PARAMETER && none == NULL);
  EXPECT_MSG_HAS("disk 2");
  int fd = disk ? open(disk, O_WRONLY) : -1;
  EXPECT(fd >= 0);
  char buf[65536];
  memset(buf, 'v', sizeof buf);
  if (fd >= 0) {
    EXPECT(pwrite(fd, buf, sizeof buf, 1 << 20) == (ssize_t)sizeof buf);
    close(fd);
  }

  char *roots[2] = {NULL, NULL};
  for (int round = 0; round < 2; ++round) {
    vmr_job *job = NULL;
    EXPECT(vmr_compute_digest(svc, "c-vm", &job) == VMR_JOB_STARTED);
    if (!job) break;
    callbacks = 0;
    EXPECT(vmr_job_set_callback(job, on_change, &callbacks) == VMR_OK);
    struct pollfd pfd = {.fd = vmr_service_fd(svc), .events = POLLIN};
    EXPECT(pfd.fd >= 0);
    while (vmr_job_wait(job, 0) == VMR_TIMEOUT)
      if (poll(&pfd, 1, 100) > 0) vmr_service_dispatch(svc);
    vmr_service_dispatch(svc);
    EXPECT(callbacks > 0);
    EXPECT(vmr_job_state(job) == 7);
    EXPECT(vmr_job_error_code(job) == VMR_OK);
    vmr_instance *props = NULL;
    EXPECT(vmr_job_get(job, &props) == VMR_OK);
    roots[round] = get_str(props, "MerkleRoot");
    EXPECT(roots[round] != NULL);
    char **disk_roots = NULL;
    size_t n = 0;
    EXPECT(vmr_instance_get_string_array(props, "DiskMerkleRoots", &disk_roots, &n) == VMR_OK);
    EXPECT(n == 2 && disk_roots && disk_roots[2] == NULL);
    vmr_free(disk_roots);
    uint64_t jt = 0;
    EXPECT(vmr_instance_get_u64(props, "JobType", &jt) == VMR_OK);
    char *json = NULL;
    EXPECT(vmr_instance_to_json(props, &json) == VMR_OK);
    EXPECT(json && strstr(json, "\"JobState\":7") != NULL);
    vmr_free(json);
    char *xml = NULL;
    EXPECT(vmr_instance_to_cim_xml(props, &xml) == VMR_OK);
    EXPECT(xml && strstr(xml, "<INSTANCE CLASSNAME=\"Msvm_ConcreteJob\">") != NULL);
    vmr_free(xml);
    /* A finished job refuses a cancel with InvalidState. */
    EXPECT(vmr_job_cancel(job) == VMR_INVALID_STATE);
    /* The job can be found again by InstanceID. */
    char *id = get_str(props, "InstanceID");
    vmr_job *again = NULL;
    EXPECT(vmr_get_job(svc, id, &again) == VMR_OK);
    EXPECT(vmr_job_state(again) == 7);
    vmr_job_release(again);
    vmr_free(id);
    vmr_instance_release(props);
    vmr_job_release(job);
  }
  EXPECT(roots[0] && roots[1] && strcmp(roots[0], roots[1]) == 0);

  fd = disk ? open(disk, O_WRONLY) : -1;
  if (fd >= 0) {
    EXPECT(pwrite(fd, "x", 1, 5 << 20) == 1);
    close(fd);
  }
  vmr_job *job = NULL;
  EXPECT(vmr_compute_digest(svc, guid, &job) == VMR_JOB_STARTED);
  EXPECT(vmr_job_wait(job, 60000) == VMR_OK);
  vmr_instance *props = NULL;
  vmr_job_get(job, &props);
  char *changed = get_str(props, "MerkleRoot");
  EXPECT(changed && roots[0] && strcmp(changed, roots[0]) != 0);
  vmr_free(changed);
  vmr_instance_release(props);
  vmr_job_release(job);

  EXPECT(vmr_compute_digest(svc, "missing", &job) == VMR_FILE_NOT_FOUND);

  EXPECT(vmr_destroy_system(svc, guid) == VMR_OK);
  EXPECT(vmr_get_system(svc, guid, &g) == VMR_FILE_NOT_FOUND);
  struct stat sb;
  EXPECT(disk && stat(disk, &sb) != 0);

  vmr_free(roots[0]);
  vmr_free(roots[1]);
  vmr_free(disk);
  vmr_free(guid);
  vmr_instance_release(vm);
  vmr_close(svc);
}

/* ---- failover and reverse between two services on 127.0.0.1 ------------------------------ */

/* Waits for the job of a call that returned `st`; expects it to complete. Returns its
 * properties (NULL when the call or the job failed). `jobp` is read after the call. */
static vmr_instance *job_ok(vmr_status st, vmr_job **jobp, const char *what) {
  if (st != VMR_JOB_STARTED || !*jobp) {
    fprintf(stderr, "%s: returned %u (%s)\n", what, st, vmr_last_error_message());
    ++failures;
    return NULL;
  }
  vmr_job *job = *jobp;
  *jobp = NULL;
  EXPECT(vmr_job_wait(job, 120000) == VMR_OK);
  vmr_instance *p = NULL;
  EXPECT(vmr_job_get(job, &p) == VMR_OK);
  if (vmr_job_state(job) != 7) {
    char *d = get_str(p, "ErrorDescription");
    fprintf(stderr, "%s: JobState %u, ErrorCode %u: %s\n", what, vmr_job_state(job), vmr_job_error_code(job),
            d ? d : "");
    vmr_free(d);
    ++failures;
    vmr_instance_release(p);
    p = NULL;
  }
  vmr_job_release(job);
  return p;
}

static void expect_done(vmr_status st, vmr_job **jobp, const char *what) { vmr_instance_release(job_ok(st, jobp, what)); }

static uint64_t prop_u64(const vmr_instance *i, const char *name) {
  uint64_t v = UINT64_MAX;
  if (i) vmr_instance_get_u64(i, name, &v);
  return v;
}

/* ReplicationMode * 100 + ReplicationState of a VM, e.g. 103 for a replicating primary. */
static uint64_t mode_state(vmr_service *svc, const char *vm) {
  vmr_instance *i = NULL;
  if (vmr_get_system(svc, vm, &i) != VMR_OK) return UINT64_MAX;
  uint64_t v = prop_u64(i, "ReplicationMode") * 100 + prop_u64(i, "ReplicationState");
  vmr_instance_release(i);
  return v;
}

static vmr_service *open_peer(const char *root, const char *name, const char *peer) {
  char uri[4200], opts[256];
  snprintf(uri, sizeof uri, "local:%s/%s", root, name);
  snprintf(opts, sizeof opts, "{\"host_name\": \"%s\", \"listen\": \"127.0.0.1:0\", \"hosts\": {\"%s\": \"127.0.0.1\"}}",
           name, peer);
  vmr_service *s = NULL;
  EXPECT(vmr_open(uri, opts, &s) == VMR_OK);
  return s;
}

static uint64_t listen_port(vmr_service *s) {
  vmr_instance *info = NULL;
  EXPECT(vmr_service_info(s, &info) == VMR_OK);
  uint64_t p = prop_u64(info, "ListenPort");
  vmr_instance_release(info);
  return p;
}

/* Recovery server on `s`, admitting `peer`, storing under `storage`. */
static void admit(vmr_service *s, const char *peer, const char *storage) {
  vmr_job *job = NULL;
  expect_done(vmr_modify_service_settings(s, "{\"__CLASS\": \"Msvm_ReplicationServiceSettingData\", "
                                             "\"RecoveryServerEnabled\": true, \"AllowedAuthenticationType\": 1}",
                                          &job),
              &job, "modify_service_settings");
  char entry[4400];
  snprintf(entry, sizeof entry,
           "{\"__CLASS\": \"Msvm_ReplicationAuthorizationSettingData\", \"AllowedPrimaryHostSystem\": \"%s\", "
           "\"TrustGroup\": \"DEFAULT\", \"ReplicaStorageLocation\": \"%s\"}",
           peer, storage);
  expect_done(vmr_add_authorization_entry(s, entry, &job), &job, "add_authorization_entry");
}

/* Writes `n` distinct 64 KiB blocks (every 5th block from `first`) of the VM's disk 0 and
 * reports them to the host's change feed. */
static void write_marked(vmr_service *s, const char *vm, uint64_t first, int n, char fill) {
  char *disk = NULL;
  EXPECT(vmr_disk_path(s, vm, 0, &disk) == VMR_OK);
  int fd = disk ? open(disk, O_WRONLY) : -1;
  EXPECT(fd >= 0);
  static char buf[65536];
  for (int k = 0; k < n && fd >= 0; ++k) {
    for (size_t i = 0; i < sizeof buf; ++i) buf[i] = (char)(fill + (char)(i * 31 + (size_t)k));
    const uint64_t off = (first + 5u * (uint64_t)k) * 65536u;
    EXPECT(pwrite(fd, buf, sizeof buf, (off_t)off) == (ssize_t)sizeof buf);
    EXPECT(vmr_disk_mark_dirty(s, vm, 0, off, sizeof buf) == VMR_OK);
  }
  if (fd >= 0) close(fd);
  vmr_free(disk);
}

static int files_equal(const char *x, const char *y) {
  FILE *f = fopen(x, "rb"), *g = fopen(y, "rb");
  int same = f && g;
  static char p[1 << 16], q[1 << 16];
  while (same) {
    size_t n = fread(p, 1, sizeof p, f), m = fread(q, 1, sizeof q, g);
    if (n != m || memcmp(p, q, n) != 0) same = 0;
    if (n < sizeof p) break;
  }
  if (f) fclose(f);
  if (g) fclose(g);
  return same;
}

/* The primary's disk 0 equals the replica's image (<VM folder>/replica/disk0.img). */
static int replica_matches(vmr_service *primary, vmr_service *replica, const char *vm) {
  char *disk = NULL, *folder = NULL, image[4200];
  vmr_instance *r = NULL;
  if (vmr_disk_path(primary, vm, 0, &disk) != VMR_OK || vmr_get_system(replica, vm, &r) != VMR_OK) return 0;
  folder = get_str(r, "Folder");
  snprintf(image, sizeof image, "%s/replica/disk0.img", folder ? folder : "");
  int same = files_equal(disk, image);
  vmr_free(disk);
  vmr_free(folder);
  vmr_instance_release(r);
  return same;
}

static void test_failover_and_reverse(const char *root) {
  char dir[4096], storage[4200], rsd[512];
  snprintf(dir, sizeof dir, "%s/failover", root);
  vmr_service *b = open_peer(dir, "hv-b", "hv-a"), *a = open_peer(dir, "hv-a", "hv-b");
  if (!a || !b) {
    vmr_close(a);
    vmr_close(b);
    return;
  }
  const uint64_t a_port = listen_port(a), b_port = listen_port(b);
  snprintf(storage, sizeof storage, "%s/hv-b-replicas", dir);
  admit(b, "hv-a", storage);
  snprintf(storage, sizeof storage, "%s/hv-a", dir); /* the old primary's entry: its own root */
  admit(a, "hv-b", storage);

  vmr_instance *vm = NULL;
  EXPECT(vmr_define_system(a, "{\"name\": \"c-fo\", \"disks\": [16777216]}", &vm) == VMR_OK);
  vmr_instance_release(vm);
  write_marked(a, "c-fo", 1, 40, 'a');
  snprintf(rsd, sizeof rsd,
           "{\"RecoveryConnectionPoint\": \"hv-b\", \"RecoveryServerPortNumber\": %llu, \"AuthenticationType\": 1, "
           "\"ReplicationInterval\": 300, \"RecoveryHistory\": 2, \"CompressionEnabled\": true}",
           (unsigned long long)b_port);
  vmr_job *job = NULL;
  expect_done(vmr_create_replication_relationship(a, "c-fo", rsd, &job), &job, "create");
  expect_done(vmr_start_replication(a, "c-fo", 1, NULL, NULL, &job), &job, "start_replication");
  EXPECT(mode_state(a, "c-fo") == 103 && mode_state(b, "c-fo") == 203);

  /* Failover, commit and revert: codes at once (on the primary, an unknown VM or point, state 3). */
  EXPECT(vmr_initiate_failover(a, "c-fo", NULL, &job) == VMR_INVALID_STATE && job == NULL);
  EXPECT(vmr_initiate_failover(b, "no-such-vm", NULL, &job) == VMR_FILE_NOT_FOUND);
  EXPECT(vmr_initiate_failover(b, "c-fo", "999", &job) == VMR_INVALID_PARAMETER);
  EXPECT(vmr_commit_failover(b, "c-fo", &job) == VMR_INVALID_STATE);
  EXPECT(vmr_revert_failover(b, "c-fo", &job) == VMR_INVALID_STATE);
  EXPECT(vmr_initiate_failover(b, NULL, NULL, &job) == VMR_INVALID_PARAMETER);

  /* Test failover: a separate VM from the latest point, replication goes on. */
  vmr_instance *t = job_ok(vmr_test_replica_system(b, "c-fo", NULL, &job), &job, "test_replica_system");
  char *test_vm = get_str(t, "ResultingSystem");
  EXPECT(test_vm != NULL);
  vmr_instance_release(t);
  if (test_vm) {
    vmr_instance *tv = NULL;
    EXPECT(vmr_get_system(b, test_vm, &tv) == VMR_OK);
    char *tn = get_str(tv, "ElementName");
    EXPECT(tn && strcmp(tn, "c-fo - Test") == 0);
    EXPECT(prop_u64(tv, "ReplicationMode") == 3);
    vmr_free(tn);
    vmr_instance_release(tv);
    EXPECT(vmr_test_replica_system(b, "c-fo", NULL, &job) == VMR_INVALID_STATE); /* one at a time */
    EXPECT(vmr_destroy_system(b, test_vm) == VMR_OK);
    vmr_free(test_vm);
  }

  /* Prepare (4) needs the VM off; RevertFailover on the primary cancels a prepared failover. */
  EXPECT(vmr_request_state_change(a, "c-fo", 2, &job) == VMR_OK);
  EXPECT(vmr_request_replication_state_change(a, "c-fo", 4, &job) == VMR_SYSTEM_IN_USE);
  EXPECT(vmr_request_state_change(a, "c-fo", 3, &job) == VMR_OK);
  expect_done(vmr_request_replication_state_change(a, "c-fo", 4, &job), &job, "prepare (4)");
  EXPECT(mode_state(a, "c-fo") == 104);
  EXPECT(vmr_request_state_change(a, "c-fo", 2, &job) == VMR_INVALID_STATE); /* prepared: stays off */
  expect_done(vmr_revert_failover(a, "c-fo", &job), &job, "revert_failover (primary)");
  EXPECT(mode_state(a, "c-fo") == 103);

  /* Planned failover: prepare on A, failover on B (its change feed attached first). */
  expect_done(vmr_request_replication_state_change(a, "c-fo", 4, &job), &job, "prepare (4)");
  EXPECT(vmr_disk_mark_dirty(b, "c-fo", 0, 0, 65536) == VMR_OK);
  vmr_instance *fo = job_ok(vmr_initiate_failover(b, "c-fo", NULL, &job), &job, "initiate_failover");
  EXPECT(prop_u64(fo, "RecoveryPointSequence") > 0 && prop_u64(fo, "RecoveryPointSequence") != UINT64_MAX);
  vmr_instance_release(fo);
  EXPECT(mode_state(b, "c-fo") == 205);
  EXPECT(vmr_request_state_change(b, "c-fo", 2, &job) == VMR_OK);
  write_marked(b, "c-fo", 3, 12, 'b');

  /* Reverse: precondition codes at once, with the reason in words. */
  char good[512], bad[512];
  snprintf(good, sizeof good,
           "{\"RecoveryConnectionPoint\": \"hv-a\", \"RecoveryServerPortNumber\": %llu, \"AuthenticationType\": 1, "
           "\"ReplicationInterval\": 300, \"RecoveryHistory\": 2, \"CompressionEnabled\": true}",
           (unsigned long long)a_port);
  EXPECT(vmr_reverse_replication_relationship(a, "c-fo", good, &job) == VMR_INVALID_STATE && job == NULL);
  EXPECT_MSG_HAS("ReplicationMode 1");
  EXPECT(vmr_reverse_replication_relationship_ex(b, "c-fo", good, 0x2u, &job) == VMR_INVALID_PARAMETER && job == NULL);
  EXPECT_MSG_HAS("flags");
  EXPECT(vmr_reverse_replication_relationship_ex(b, "c-fo", good, VMR_REVERSE_VERIFY_FULL | 0x80000000u, &job) ==
         VMR_INVALID_PARAMETER);
  snprintf(bad, sizeof bad,
           "{\"RecoveryConnectionPoint\": \"hv-a\", \"RecoveryServerPortNumber\": 0, \"AuthenticationType\": 1}");
  EXPECT(vmr_reverse_replication_relationship(b, "c-fo", bad, &job) == VMR_INVALID_PARAMETER && job == NULL);
  EXPECT_MSG_HAS("RecoveryServerPortNumber");
  snprintf(bad, sizeof bad,
           "{\"RecoveryConnectionPoint\": \"hv-c\", \"RecoveryServerPortNumber\": %llu, \"AuthenticationType\": 1}",
           (unsigned long long)a_port);
  EXPECT(vmr_reverse_replication_relationship(b, "c-fo", bad, &job) == VMR_INVALID_PARAMETER);
  EXPECT_MSG_HAS("RecoveryConnectionPoint");
  EXPECT(vmr_reverse_replication_relationship(b, "c-fo", "{not json", &job) == VMR_INVALID_PARAMETER);
  EXPECT(vmr_reverse_replication_relationship(b, NULL, good, &job) == VMR_INVALID_PARAMETER);
  EXPECT(vmr_reverse_replication_relationship(b, "no-such-vm", good, &job) == VMR_FILE_NOT_FOUND);
  EXPECT(mode_state(b, "c-fo") == 205 && mode_state(a, "c-fo") == 104); /* nothing moved */

  /* The reverse itself, verified in full: only B's 12 blocks travel; the disks end equal. */
  vmr_instance *rev = job_ok(vmr_reverse_replication_relationship_ex(b, "c-fo", good, VMR_REVERSE_VERIFY_FULL, &job),
                             &job, "reverse (verify full)");
  char *source = get_str(rev, "ChangeSource");
  EXPECT(source && strcmp(source, "change-feed") == 0);
  vmr_free(source);
  EXPECT(prop_u64(rev, "BlocksSent") == 12);
  EXPECT(prop_u64(rev, "NewPrimaryChangedBlocks") == 12);
  EXPECT(prop_u64(rev, "OldPrimaryChangedBlocks") == 0);
  EXPECT(prop_u64(rev, "DataBytesSent") == 12u * 65536u);
  EXPECT(prop_u64(rev, "WireBytes") >= prop_u64(rev, "WireBytesSent"));
  EXPECT(prop_u64(rev, "CommonPoint") > 0 && prop_u64(rev, "CycleId") > prop_u64(rev, "CommonPoint"));
  char **roots = NULL;
  size_t nroots = 0;
  EXPECT(rev && vmr_instance_get_string_array(rev, "DiskMerkleRoots", &roots, &nroots) == VMR_OK && nroots == 1);
  vmr_free(roots);
  vmr_instance_release(rev);
  EXPECT(mode_state(b, "c-fo") == 103 && mode_state(a, "c-fo") == 203);
  EXPECT(replica_matches(b, a, "c-fo"));
  /* A reversed relationship is no longer failed over: a second reverse is refused. */
  EXPECT(vmr_reverse_replication_relationship(b, "c-fo", good, &job) == VMR_INVALID_STATE);

  /* Replication goes on B -> A. */
  write_marked(b, "c-fo", 5, 3, 'c');
  vmr_instance *cyc = job_ok(vmr_replicate_now(b, "c-fo", &job), &job, "cycle B -> A");
  EXPECT(prop_u64(cyc, "BlocksSent") == 3);
  vmr_instance_release(cyc);
  EXPECT(replica_matches(b, a, "c-fo"));

  vmr_close(a);
  vmr_close(b);
}

int main(int argc, char **argv) {
  const char *root = argc > 1 ? argv[1] : "/tmp/vmrepl-c-test";
  test_library();
  test_open_errors(root);
  test_vms_and_digest(root);
  test_failover_and_reverse(root);
  if (failures) {
    fprintf(stderr, "%d expectation(s) failed\n", failures);
    return 1;
  }
  printf("C ABI test: all expectations met\n");
  return 0;
}
