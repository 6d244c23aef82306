/*
 * The C ABI seen from C11: compiled against the installed header and library through
 * pkg-config (tests/capi/run_c_test.sh), exactly as a user builds.
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

int main(int argc, char **argv) {
  const char *root = argc > 1 ? argv[1] : "/tmp/vmrepl-c-test";
  test_library();
  test_open_errors(root);
  test_vms_and_digest(root);
  if (failures) {
    fprintf(stderr, "%d expectation(s) failed\n", failures);
    return 1;
  }
  printf("C ABI test: all expectations met\n");
  return 0;
}
