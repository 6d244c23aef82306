/*
 * vmrepl — VM disk replication on the Hyper-V Replica model: the stable C ABI.
 *
 * Conventions
 *  - Every call returns a vmr_status with the model's numbers: 0 done, 4096 job started (wait
 *    on the returned job), 32768..32779 errors. vmr_last_error_message() explains the last
 *    non-zero status of the calling thread.
 *  - Handles are opaque; every handle has a release function that accepts NULL.
 *  - Strings in are UTF-8; strings out are allocated and freed with vmr_free().
 *  - "computer_system" is an object path, a VM GUID or a VM name.
 *    "setting_data" is a CIM-XML embedded instance, MOF instance text or a JSON object.
 *  - Instances are read-only property bags read by name, so a new property never changes a
 *    signature.
 *  - All functions may be called from any thread. Job callbacks run only inside
 *    vmr_service_dispatch(), on the thread that calls it.
 */
#ifndef VMREPL_VMREPL_H
#define VMREPL_VMREPL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(VMREPL_BUILDING_LIBRARY)
#define VMR_EXTERN __attribute__((visibility("default")))
#else
#define VMR_EXTERN
#endif

/* Bumped whenever functions are added (compatibly: nothing is ever removed or changed within
 * SOVERSION 1); a program built against N runs on a library whose vmr_abi_version() >= N.
 * 1: library, service, VMs, digest, jobs, instances. 2: replication, authorization, feed.
 * 3: failover, test failover, reverse. 4: unix: (vmrepld) services, bandwidth limits. */
#define VMR_ABI_VERSION 4

typedef uint32_t vmr_status;

#define VMR_STATUS_MAP(X)                   \
  X(OK, 0)                                  \
  X(JOB_STARTED, 4096)                      \
  X(FAILED, 32768)                          \
  X(ACCESS_DENIED, 32769)                   \
  X(NOT_SUPPORTED, 32770)                   \
  X(UNKNOWN, 32771)                         \
  X(TIMEOUT, 32772)                         \
  X(INVALID_PARAMETER, 32773)               \
  X(SYSTEM_IN_USE, 32774)                   \
  X(INVALID_STATE, 32775)                   \
  X(INCORRECT_DATA_TYPE, 32776)             \
  X(SYSTEM_NOT_AVAILABLE, 32777)            \
  X(OUT_OF_MEMORY, 32778)                   \
  X(FILE_NOT_FOUND, 32779)

enum {
#define VMR_STATUS_ENUM(name, n) VMR_##name = n,
  VMR_STATUS_MAP(VMR_STATUS_ENUM)
#undef VMR_STATUS_ENUM
};

/* CIM types reported by vmr_instance_type(). */
enum {
  VMR_TYPE_BOOLEAN = 0, VMR_TYPE_UINT8, VMR_TYPE_SINT8, VMR_TYPE_UINT16, VMR_TYPE_SINT16,
  VMR_TYPE_UINT32, VMR_TYPE_SINT32, VMR_TYPE_UINT64, VMR_TYPE_SINT64, VMR_TYPE_REAL64,
  VMR_TYPE_STRING, VMR_TYPE_DATETIME, VMR_TYPE_REFERENCE
};

typedef struct vmr_service vmr_service;
typedef struct vmr_job vmr_job;
typedef struct vmr_instance vmr_instance;
typedef struct vmr_list vmr_list;

/* ---- library ------------------------------------------------------------------------- */

VMR_EXTERN uint32_t vmr_abi_version(void);
VMR_EXTERN const char *vmr_version(void);                /* "0.1.0" */
VMR_EXTERN const char *vmr_status_name(vmr_status s);    /* "InvalidState"; never NULL */
VMR_EXTERN const char *vmr_last_error_message(void);     /* thread-local; never NULL */
VMR_EXTERN void vmr_free(void *p);                       /* NULL-safe */

/* ---- service ------------------------------------------------------------------------- */

/* uri: "local:<absolute host root>" runs an in-process engine (the root is created if
 * missing). options_json (may be NULL): {"host_name": "hv-a", "listen": "127.0.0.1:0",
 * "hosts": {"hv-b": "127.0.0.1"}, "job_retention_s": 300, "block_size": 65536,
 * "hash": "xxh3-128"|"sha256", "zstd_level": 1, "connect_timeout_ms": 5000,
 * "io_timeout_ms": 30000, "cycle_interval_override_s": 0 (tests), "tls_certificate",
 * "tls_key", "tls_ca" (PEM files of this host, for AuthenticationType 2 relationships),
 * "tls_listen": "host:port" (the mutual-TLS replication listener)}. Unknown options -> 32773.
 * Plaintext replication (AuthenticationType 1) never leaves the host: "listen" must be a
 * loopback address (else 32773), and a primary refuses to send plaintext to another address
 * (the job fails with 32769); between hosts use tls_listen and AuthenticationType 2.
 * uri: "unix:<absolute socket path>" talks to a vmrepld over its admin socket; the service
 * behaves exactly as a local: one (same methods, codes, job events through the fd).
 * options_json: {"connect_timeout_ms": 5000, "call_timeout_ms": 60000}. No daemon listening
 * -> 32777; a call unanswered within call_timeout_ms -> 32772; a connection lost while a call
 * awaited its answer fails that call with 32771 (it may or may not have taken effect: check
 * before retrying), and later calls and unfinished job waits with 32777.
 * uri: "vmrepl://host:port" talks to a vmrepld's management listener over mutual TLS 1.3;
 * options_json adds "tls_certificate", "tls_key" (this client's PEM files), "tls_ca" (the CA
 * of the daemon's certificate) and optionally "server_thumbprint" (pins the daemon's
 * certificate, SHA-1 or SHA-256 hex). A certificate refused either way, or one the daemon has
 * not pinned for management, -> 32769 and nothing can be called. */
VMR_EXTERN vmr_status vmr_open(const char *uri, const char *options_json, vmr_service **out);
/* Cancels running jobs, waits for them to stop at a safe point, releases everything.
 * Job handles stay readable afterwards. NULL-safe. */
VMR_EXTERN void vmr_close(vmr_service *svc);
/* Msvm_ReplicationService-like instance: HostName, HostRoot, Version, ... */
VMR_EXTERN vmr_status vmr_service_info(vmr_service *svc, vmr_instance **out);

/* Event-loop embedding: the descriptor becomes readable when job events are pending for
 * this service; vmr_service_dispatch() then runs the job callbacks on the calling thread
 * and makes the descriptor unreadable again. */
VMR_EXTERN int vmr_service_fd(vmr_service *svc);
VMR_EXTERN vmr_status vmr_service_dispatch(vmr_service *svc);

/* ---- virtual machines (Msvm_ComputerSystem) ------------------------------------------ */

/* definition_json: {"name": "web01", "id": "<GUID>" (optional), "disks": [bytes, ...]}.
 * Disks are raw images, created sparse. */
VMR_EXTERN vmr_status vmr_define_system(vmr_service *svc, const char *definition_json,
                                        vmr_instance **vm);
VMR_EXTERN vmr_status vmr_get_system(vmr_service *svc, const char *computer_system,
                                     vmr_instance **vm);
VMR_EXTERN vmr_status vmr_list_systems(vmr_service *svc, vmr_list **vms);
/* Deletes the VM and its disks. The VM must be off (else 32774). */
VMR_EXTERN vmr_status vmr_destroy_system(vmr_service *svc, const char *computer_system);
/* RequestStateChange on the VM: 2 running, 3 off. Completes at once (returns 0, *job NULL). */
VMR_EXTERN vmr_status vmr_request_state_change(vmr_service *svc, const char *computer_system,
                                               uint16_t requested_state, vmr_job **job);
/* Path of the raw image of disk `disk` (0-based); free with vmr_free. It is the disk the VM
 * runs from: on a replica (ReplicationMode 2) it holds the data only after a failover; what
 * has been replicated so far is <Folder>/replica/disk<N>.img, Folder being the VM instance's
 * property. */
VMR_EXTERN vmr_status vmr_disk_path(vmr_service *svc, const char *computer_system, uint32_t disk,
                                    char **path);
/* The change feed: reports a write to [offset, offset+length) of a disk. Returns 0 once the
 * range is durable (a crash after this call cannot lose it); concurrent callers share one
 * fsync. The first call attaches the feed: later cycles send the reported blocks without
 * scanning the disk (after one scan cycle that establishes the feed), and of a block only
 * the 4 KiB units reported (from the first to the last). 32773 names a bad disk, offset or
 * length. */
VMR_EXTERN vmr_status vmr_disk_mark_dirty(vmr_service *svc, const char *computer_system, uint32_t disk,
                                          uint64_t offset, uint64_t length);
/* ComputeDigest: index + Merkle root of every disk. Returns 4096 and a job whose instance
 * carries MerkleRoot, DiskMerkleRoots[], BlockSize, BlockCount, ZeroBlocks, BytesRead. */
/* Bandwidth limit in bytes/s (0 = none) for the relationship of computer_system, or for the
 * whole service when computer_system is NULL. A relationship's limit is kept with it; both
 * apply at once to transfers in progress, and the smaller non-zero one wins. A limit is 0 or
 * at least the block size (65536 by default): else 32773. A VM without a relationship: 32775. */
VMR_EXTERN vmr_status vmr_set_bandwidth_limit(vmr_service *svc, const char *computer_system, uint64_t bytes_per_s);
VMR_EXTERN vmr_status vmr_get_bandwidth_limit(vmr_service *svc, const char *computer_system, uint64_t *bytes_per_s);

VMR_EXTERN vmr_status vmr_compute_digest(vmr_service *svc, const char *computer_system,
                                         vmr_job **job);

/* ---- replication (Msvm_ReplicationService) ------------------------------------------- */

/* Each returns 4096 with a job, or an error at once (validation): 32773 naming the property,
 * 32775 naming the state found, 32779 for an unknown VM. */
VMR_EXTERN vmr_status vmr_create_replication_relationship(vmr_service *svc, const char *computer_system,
                                                          const char *setting_data, vmr_job **job);
/* type: 1 network, 3 seeded (the replica VM's disks hold a copy: only differences are sent).
 * export_location and start_time may be NULL (start now). */
VMR_EXTERN vmr_status vmr_start_replication(vmr_service *svc, const char *computer_system, uint16_t type,
                                            const char *export_location, const char *start_time, vmr_job **job);
VMR_EXTERN vmr_status vmr_modify_replication_settings(vmr_service *svc, const char *computer_system,
                                                      const char *setting_data, vmr_job **job);
VMR_EXTERN vmr_status vmr_remove_replication_relationship(vmr_service *svc, const char *computer_system,
                                                          vmr_job **job);
/* RequestReplicationStateChange: 7 suspend, 3 resume, 4 prepare a planned failover (primary,
 * VM off: a final cycle, then the VM stays off), 2 make an old primary a replica after an
 * unplanned failover (VM off), 9 cancel a resynchronization. */
VMR_EXTERN vmr_status vmr_request_replication_state_change(vmr_service *svc, const char *computer_system,
                                                           uint16_t requested_state, vmr_job **job);
/* Compares both sides' disks and sends only the blocks that differ (state 9 -> 10 -> 3). */
VMR_EXTERN vmr_status vmr_resynchronize(vmr_service *svc, const char *computer_system, const char *start_time,
                                        vmr_job **job);
/* One cycle now (besides the ReplicationInterval timer). */
VMR_EXTERN vmr_status vmr_replicate_now(vmr_service *svc, const char *computer_system, vmr_job **job);
VMR_EXTERN vmr_status vmr_test_replication_connection(vmr_service *svc, const char *recovery_connection_point,
                                                      uint16_t port, uint16_t authentication_type,
                                                      const char *certificate_thumbprint, vmr_job **job);
/* Msvm_ReplicationStatistics of the VM's relationship (returns 0). */
VMR_EXTERN vmr_status vmr_get_replication_statistics(vmr_service *svc, const char *computer_system,
                                                     vmr_instance **statistics);
/* The VM's Msvm_ReplicationSettingData (returns 0). */
VMR_EXTERN vmr_status vmr_get_replication_settings(vmr_service *svc, const char *computer_system,
                                                   vmr_instance **settings);
/* Replica side: the recovery points (Msvm_VirtualSystemSettingData), oldest first. */
VMR_EXTERN vmr_status vmr_list_recovery_points(vmr_service *svc, const char *computer_system, vmr_list **points);

/* ---- failover and reverse (spec 8-10) -------------------------------------------------
 * "snapshot": a recovery point (its InstanceID from vmr_list_recovery_points, or the bare
 * sequence number); NULL or "" = the latest. */
/* Replica, VM off: the point becomes the VM's disks (12 -> 5). Refused in the job (32774)
 * while the primary is reachable and its VM runs. */
VMR_EXTERN vmr_status vmr_initiate_failover(vmr_service *svc, const char *computer_system, const char *snapshot,
                                            vmr_job **job);
/* Replica in 5: the failover disks are dropped, replication goes on (3). Primary in 4: the
 * prepared failover is cancelled (3). */
VMR_EXTERN vmr_status vmr_revert_failover(vmr_service *svc, const char *computer_system, vmr_job **job);
/* Replica in 5: the failover point becomes the only one (6). */
VMR_EXTERN vmr_status vmr_commit_failover(vmr_service *svc, const char *computer_system, vmr_job **job);
/* Replica in 3 or 7: a separate VM "<name> - Test" (mode 3) from a point while replication
 * goes on; its GUID is the job's ResultingSystem property. Removed with vmr_destroy_system. */
VMR_EXTERN vmr_status vmr_test_replica_system(vmr_service *svc, const char *computer_system, const char *snapshot,
                                              vmr_job **job);
/* On the failed-over replica (mode 2, state 5 or 6): the old primary, named by the setting
 * data's RecoveryConnectionPoint and RecoveryServerPortNumber, becomes its replica and is sent
 * only the blocks either side changed since their common point; both sides agree on the
 * Merkle roots before either commits. Planned: this VM ends mode 1 state 3; unplanned: state 1,
 * and vmr_start_replication then sends what changed since the reverse. Job properties:
 * ChangeSource, CommonPoint, BlocksSent, DataBytesSent, WireBytes, DiskMerkleRoots... */
VMR_EXTERN vmr_status vmr_reverse_replication_relationship(vmr_service *svc, const char *computer_system,
                                                           const char *setting_data, vmr_job **job);
/* The same with options: VMR_REVERSE_VERIFY_FULL re-reads and re-hashes both sides' disks
 * before the commit. Unknown flag bits -> 32773. */
#define VMR_REVERSE_VERIFY_FULL 1u
VMR_EXTERN vmr_status vmr_reverse_replication_relationship_ex(vmr_service *svc, const char *computer_system,
                                                              const char *setting_data, uint32_t flags,
                                                              vmr_job **job);

/* Recovery-server settings (Msvm_ReplicationServiceSettingData) and authorization entries
 * (Msvm_ReplicationAuthorizationSettingData), as CIM-XML, MOF or JSON text. */
VMR_EXTERN vmr_status vmr_modify_service_settings(vmr_service *svc, const char *setting_data, vmr_job **job);
VMR_EXTERN vmr_status vmr_get_service_settings(vmr_service *svc, vmr_instance **settings);
VMR_EXTERN vmr_status vmr_add_authorization_entry(vmr_service *svc, const char *entry, vmr_job **job);
VMR_EXTERN vmr_status vmr_modify_authorization_entry(vmr_service *svc, const char *entry, vmr_job **job);
VMR_EXTERN vmr_status vmr_remove_authorization_entry(vmr_service *svc, const char *allowed_primary_host_system,
                                                     vmr_job **job);
VMR_EXTERN vmr_status vmr_list_authorization_entries(vmr_service *svc, vmr_list **entries);

/* ---- jobs (Msvm_ConcreteJob) --------------------------------------------------------- */

typedef void (*vmr_job_callback)(vmr_job *job, void *userdata);

/* A snapshot of the job's properties (JobState, PercentComplete, ErrorCode, ...). */
VMR_EXTERN vmr_status vmr_job_get(vmr_job *job, vmr_instance **props);
/* 0 once the job is final (whatever its outcome), 32772 when timeout_ms passed first.
 * A negative timeout waits forever. */
VMR_EXTERN vmr_status vmr_job_wait(vmr_job *job, int64_t timeout_ms);
/* RequestStateChange(4) on the job: asks for cancellation. 32775 when already final. */
VMR_EXTERN vmr_status vmr_job_cancel(vmr_job *job);
/* JobState number (2..12) and, once final, the job's ErrorCode (0 on success). */
VMR_EXTERN uint16_t vmr_job_state(vmr_job *job);
VMR_EXTERN vmr_status vmr_job_error_code(vmr_job *job);
/* Calls cb from vmr_service_dispatch() after each change of the job (NULL cb removes). */
VMR_EXTERN vmr_status vmr_job_set_callback(vmr_job *job, vmr_job_callback cb, void *userdata);
/* Finds a job of this service by InstanceID (jobs are kept for job_retention_s). */
VMR_EXTERN vmr_status vmr_get_job(vmr_service *svc, const char *instance_id, vmr_job **job);
VMR_EXTERN vmr_status vmr_list_jobs(vmr_service *svc, vmr_list **jobs);
VMR_EXTERN void vmr_job_release(vmr_job *job);

/* ---- instances ----------------------------------------------------------------------- */

VMR_EXTERN const char *vmr_instance_class(const vmr_instance *inst);
VMR_EXTERN size_t vmr_instance_count(const vmr_instance *inst);
/* Name of property i (0-based), valid while inst lives; NULL past the end. */
VMR_EXTERN const char *vmr_instance_name_at(const vmr_instance *inst, size_t i);
/* Type (VMR_TYPE_*), array flag and null flag of a property; 32773 for an unknown name. */
VMR_EXTERN vmr_status vmr_instance_type(const vmr_instance *inst, const char *name,
                                        uint16_t *cim_type, int *is_array, int *is_null);
/* Unknown name -> 32773; null or another type -> 32776. */
VMR_EXTERN vmr_status vmr_instance_get_u64(const vmr_instance *inst, const char *name, uint64_t *out);
VMR_EXTERN vmr_status vmr_instance_get_i64(const vmr_instance *inst, const char *name, int64_t *out);
VMR_EXTERN vmr_status vmr_instance_get_bool(const vmr_instance *inst, const char *name, int *out);
VMR_EXTERN vmr_status vmr_instance_get_string(const vmr_instance *inst, const char *name, char **out);
/* A NULL-terminated array of strings in one allocation: one vmr_free releases it all. */
VMR_EXTERN vmr_status vmr_instance_get_string_array(const vmr_instance *inst, const char *name,
                                                    char ***out, size_t *count);
VMR_EXTERN vmr_status vmr_instance_to_json(const vmr_instance *inst, char **out);
VMR_EXTERN vmr_status vmr_instance_to_cim_xml(const vmr_instance *inst, char **out);
VMR_EXTERN vmr_status vmr_instance_to_mof(const vmr_instance *inst, char **out);
VMR_EXTERN void vmr_instance_release(vmr_instance *inst);

VMR_EXTERN size_t vmr_list_size(const vmr_list *list);
/* Borrowed: valid while the list lives. NULL past the end. */
VMR_EXTERN const vmr_instance *vmr_list_get(const vmr_list *list, size_t i);
VMR_EXTERN void vmr_list_release(vmr_list *list);

#ifdef __cplusplus
}
#endif

#endif /* VMREPL_VMREPL_H */
