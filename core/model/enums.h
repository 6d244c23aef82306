// The model's enumerations with the WMI numbers of spec §5–§7 (never PowerShell's).
//
// Each enum has to_string() giving the WMI name, and *_from_number() to check a number read
// from a caller. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace vmrepl {

#define VMREPL_REPLICATION_STATE_MAP(X)                       \
  X(Disabled, 0, "Disabled")                                  \
  X(ReadyForReplication, 1, "Ready for replication")          \
  X(WaitingToCompleteInitialReplication, 2, "Waiting to complete initial replication") \
  X(Replicating, 3, "Replicating")                            \
  X(SyncedReplicationComplete, 4, "Synced replication complete") \
  X(Recovered, 5, "Recovered")                                \
  X(Committed, 6, "Committed")                                \
  X(Suspended, 7, "Suspended")                                \
  X(Critical, 8, "Critical")                                  \
  X(WaitingToStartResynchronization, 9, "Waiting to start resynchronization") \
  X(Resynchronizing, 10, "Resynchronizing")                   \
  X(ResynchronizationSuspended, 11, "Resynchronization suspended") \
  X(FailoverInProgress, 12, "Failover in progress")           \
  X(FailbackInProgress, 13, "Failback in progress")           \
  X(FailbackComplete, 14, "Failback complete")                \
  X(DiskUpdateInProgress, 15, "Disk update in progress")      \
  X(DiskUpdateCritical, 16, "Disk update critical")           \
  X(Unknown, 17, "Unknown")                                   \
  X(RepurposeReplicationInProgress, 18, "Repurpose replication in progress") \
  X(PreparedForSyncReplication, 19, "Prepared for sync replication") \
  X(PreparedForGroupReverseReplication, 20, "Prepared for group reverse replication") \
  X(FiredrillInProgress, 21, "Firedrill in progress")

#define VMREPL_REPLICATION_MODE_MAP(X) \
  X(None, 0, "None")                   \
  X(Primary, 1, "Primary")             \
  X(Replica, 2, "Replica")             \
  X(TestReplica, 3, "Test Replica")    \
  X(ExtendedReplica, 4, "Extended Replica")

#define VMREPL_REPLICATION_HEALTH_MAP(X) \
  X(NotApplicable, 0, "Not applicable")  \
  X(Ok, 1, "OK")                         \
  X(Warning, 2, "Warning")               \
  X(Critical, 3, "Critical")

#define VMREPL_JOB_STATE_MAP(X)       \
  X(New, 2, "New")                    \
  X(Starting, 3, "Starting")          \
  X(Running, 4, "Running")            \
  X(Suspended, 5, "Suspended")        \
  X(ShuttingDown, 6, "Shutting Down") \
  X(Completed, 7, "Completed")        \
  X(Terminated, 8, "Terminated")      \
  X(Killed, 9, "Killed")              \
  X(Exception, 10, "Exception")       \
  X(Service, 11, "Service")           \
  X(QueryPending, 12, "Query Pending")

#define VMREPL_JOB_TYPE_MAP(X)                                                  \
  X(ModifyReplicationServerSettings, 90, "Modify Replication Server Settings")  \
  X(CreateReplicationRelationship, 91, "Create Replication Relationship")       \
  X(ModifyReplicationRelationshipSettings, 92, "Modify Replication Relationship Settings") \
  X(RemoveReplicationRelationship, 93, "Remove Replication Relationship")       \
  X(StartInbandInitialReplication, 94, "Start Inband Initial Replication")      \
  X(ImportReplication, 95, "Import Replication")                                \
  X(ReplicateStateChange, 96, "Replicate State Change")                         \
  X(InitiateFailover, 97, "Initiate Failover")                                  \
  X(RevertFailover, 98, "Revert Failover")                                      \
  X(CommitFailover, 99, "Commit Failover")                                      \
  X(InitiateSyncedReplication, 100, "Initiate Synced Replication")              \
  X(CancelSyncedReplication, 101, "Cancel Synced Replication")                  \
  X(InitiateTestReplica, 102, "Initiate Test Replica")                          \
  X(RemoveTestReplica, 103, "Remove Test Replica")                              \
  X(ReverseReplication, 104, "Reverse Replication")                             \
  X(ReplicationSendingDelta, 105, "Replication Sending Delta")                  \
  X(ReplicationReceivingDelta, 106, "Replication Receiving Delta")              \
  X(Resynchronizing, 107, "Resynchronizing")                                    \
  X(ApplyChangeLog, 108, "Apply change log")                                    \
  X(StopInitialReplication, 109, "Stop Initial Replication")                    \
  X(StopResynchronizing, 110, "Stop Resynchronizing")                           \
  X(GetReplicaStatistics, 111, "Get Replica statistics")                        \
  X(ConsistencyCheckerPrepare, 112, "Consistency Checker (prepare)")            \
  X(ConsistencyCheckerRun, 113, "Consistency Checker (run)")                    \
  X(ConsistencyCheckerStop, 114, "Consistency Checker (stop)")                  \
  X(TestReplicationConnection, 115, "Test Replication Connection")              \
  X(SendingInitialReplica, 116, "Sending Initial Replica")                      \
  X(StartResyncInitialReplication, 117, "Start Resync Initial Replication")     \
  X(StartExportInitialReplication, 118, "Start Export Initial Replication")     \
  X(ResetReplicaStatistics, 119, "Reset Replica Statistics")                    \
  X(ApplyRegisteredDeltas, 120, "Apply Registered Deltas")                      \
  X(ResynchronizingExtendedReplication, 121, "Resynchronizing Extended Replication") \
  X(ReadingTestReplicaConfiguration, 122, "Reading Test Replica Configuration") \
  X(ChangeReplicationModeToPrimary, 123, "Change the replication mode to primary") \
  X(InitiateFailback, 124, "Initiate Failback")                                 \
  X(UpdateDiskSet, 125, "Update Disk Set")

// RequestReplicationStateChange values (spec §2).
#define VMREPL_REQUESTED_REPLICATION_STATE_MAP(X)                  \
  X(Ready, 1, "Ready")                                             \
  X(WaitingToCompleteInitialReplication, 2, "Waiting to complete IR") \
  X(Replicating, 3, "Replicating")                                 \
  X(SyncedReplicationComplete, 4, "Synced replication complete")   \
  X(Suspend, 7, "Suspend")                                         \
  X(CancelResynchronize, 9, "Cancel resynchronize")

// Msvm_ComputerSystem.EnabledState (spec §5).
#define VMREPL_ENABLED_STATE_MAP(X)          \
  X(Unknown, 0, "Unknown")                   \
  X(Enabled, 2, "Running")                   \
  X(Disabled, 3, "Off")                      \
  X(EnabledButOffline, 6, "Saved")           \
  X(Quiesce, 9, "Paused")                    \
  X(Starting, 10, "Starting")

// Msvm_ConcreteJob.RequestStateChange values (spec §7).
#define VMREPL_JOB_REQUESTED_STATE_MAP(X) \
  X(Start, 2, "Start")                    \
  X(Suspend, 3, "Suspend")                \
  X(Terminate, 4, "Terminate")            \
  X(Kill, 5, "Kill")                      \
  X(Service, 6, "Service")

#define VMREPL_INITIAL_REPLICATION_TYPE_MAP(X) \
  X(Network, 1, "Network")                     \
  X(Export, 2, "Export")                       \
  X(Seeded, 3, "Seeded")

// FailedOverReplicationType / LastReplicationType.
#define VMREPL_REPLICATION_TYPE_MAP(X)                  \
  X(None, 0, "None")                                    \
  X(Regular, 1, "Regular")                              \
  X(ApplicationConsistent, 2, "Application consistent") \
  X(Planned, 3, "Planned")

#define VMREPL_AUTHENTICATION_TYPE_MAP(X) \
  X(Kerberos, 1, "Kerberos")              \
  X(Certificate, 2, "Certificate")

#define VMREPL_DECLARE_ENUM(Type, MAP)                                \
  enum class Type : uint16_t { MAP(VMREPL_ENUM_ITEM) };               \
  std::string_view to_string(Type v);                                 \
  std::optional<Type> Type##_from_number(uint64_t n);
#define VMREPL_ENUM_ITEM(e, n, s) e = n,

VMREPL_DECLARE_ENUM(ReplicationState, VMREPL_REPLICATION_STATE_MAP)
VMREPL_DECLARE_ENUM(ReplicationMode, VMREPL_REPLICATION_MODE_MAP)
VMREPL_DECLARE_ENUM(ReplicationHealth, VMREPL_REPLICATION_HEALTH_MAP)
VMREPL_DECLARE_ENUM(JobState, VMREPL_JOB_STATE_MAP)
VMREPL_DECLARE_ENUM(JobType, VMREPL_JOB_TYPE_MAP)
VMREPL_DECLARE_ENUM(RequestedReplicationState, VMREPL_REQUESTED_REPLICATION_STATE_MAP)
VMREPL_DECLARE_ENUM(EnabledState, VMREPL_ENABLED_STATE_MAP)
VMREPL_DECLARE_ENUM(JobRequestedState, VMREPL_JOB_REQUESTED_STATE_MAP)
VMREPL_DECLARE_ENUM(InitialReplicationType, VMREPL_INITIAL_REPLICATION_TYPE_MAP)
VMREPL_DECLARE_ENUM(ReplicationType, VMREPL_REPLICATION_TYPE_MAP)
VMREPL_DECLARE_ENUM(AuthenticationType, VMREPL_AUTHENTICATION_TYPE_MAP)

#undef VMREPL_DECLARE_ENUM

// A job in one of these states will not change again.
inline bool job_state_is_final(JobState s) {
  return s == JobState::Completed || s == JobState::Terminated || s == JobState::Killed ||
         s == JobState::Exception;
}

template <class E>
constexpr uint16_t to_number(E e) {
  return static_cast<uint16_t>(e);
}

}  // namespace vmrepl
