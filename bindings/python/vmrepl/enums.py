"""The model's enumerations as IntEnums with the WMI numbers of the spec (never PowerShell's).

Each member compares equal to its number, so ``vm.ReplicationState == 3`` and
``vm.ReplicationState == ReplicationState.Replicating`` both hold.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "Status",
    "ReplicationState",
    "ReplicationMode",
    "ReplicationHealth",
    "JobState",
    "JobType",
    "RequestedState",
    "EnabledState",
    "InitialReplicationType",
    "ReplicationType",
    "AuthenticationType",
    "JobRequestedState",
    "CimType",
]


class Status(IntEnum):
    """Return codes of every method (spec §1)."""

    OK = 0
    JobStarted = 4096
    Failed = 32768
    AccessDenied = 32769
    NotSupported = 32770
    Unknown = 32771
    Timeout = 32772
    InvalidParameter = 32773
    SystemInUse = 32774
    InvalidState = 32775
    IncorrectDataType = 32776
    SystemNotAvailable = 32777
    OutOfMemory = 32778
    FileNotFound = 32779


class ReplicationState(IntEnum):
    """Msvm_ComputerSystem / Msvm_ReplicationRelationship ReplicationState (spec §5)."""

    Disabled = 0
    ReadyForReplication = 1
    WaitingToCompleteInitialReplication = 2
    Replicating = 3
    SyncedReplicationComplete = 4
    Recovered = 5
    Committed = 6
    Suspended = 7
    Critical = 8
    WaitingToStartResynchronization = 9
    Resynchronizing = 10
    ResynchronizationSuspended = 11
    FailoverInProgress = 12
    FailbackInProgress = 13
    FailbackComplete = 14
    DiskUpdateInProgress = 15
    DiskUpdateCritical = 16
    Unknown = 17
    RepurposeReplicationInProgress = 18
    PreparedForSyncReplication = 19
    PreparedForGroupReverseReplication = 20
    FiredrillInProgress = 21


class ReplicationMode(IntEnum):
    """Msvm_ComputerSystem.ReplicationMode (spec §5)."""

    None_ = 0
    Primary = 1
    Replica = 2
    TestReplica = 3
    ExtendedReplica = 4


class ReplicationHealth(IntEnum):
    """ReplicationHealth (spec §5, §6)."""

    NotApplicable = 0
    Ok = 1
    Warning = 2
    Critical = 3


class JobState(IntEnum):
    """CIM_ConcreteJob.JobState (spec §7). Final: Completed, Terminated, Killed, Exception."""

    New = 2
    Starting = 3
    Running = 4
    Suspended = 5
    ShuttingDown = 6
    Completed = 7
    Terminated = 8
    Killed = 9
    Exception = 10
    Service = 11
    QueryPending = 12

    @property
    def is_final(self) -> bool:
        return self in (JobState.Completed, JobState.Terminated, JobState.Killed, JobState.Exception)


class JobType(IntEnum):
    """Msvm_ConcreteJob.JobType, replication values (spec §7)."""

    ModifyReplicationServerSettings = 90
    CreateReplicationRelationship = 91
    ModifyReplicationRelationshipSettings = 92
    RemoveReplicationRelationship = 93
    StartInbandInitialReplication = 94
    ImportReplication = 95
    ReplicateStateChange = 96
    InitiateFailover = 97
    RevertFailover = 98
    CommitFailover = 99
    InitiateSyncedReplication = 100
    CancelSyncedReplication = 101
    InitiateTestReplica = 102
    RemoveTestReplica = 103
    ReverseReplication = 104
    ReplicationSendingDelta = 105
    ReplicationReceivingDelta = 106
    Resynchronizing = 107
    ApplyChangeLog = 108
    StopInitialReplication = 109
    StopResynchronizing = 110
    GetReplicaStatistics = 111
    ConsistencyCheckerPrepare = 112
    ConsistencyCheckerRun = 113
    ConsistencyCheckerStop = 114
    TestReplicationConnection = 115
    SendingInitialReplica = 116
    StartResyncInitialReplication = 117
    StartExportInitialReplication = 118
    ResetReplicaStatistics = 119
    ApplyRegisteredDeltas = 120
    ResynchronizingExtendedReplication = 121
    ReadingTestReplicaConfiguration = 122
    ChangeReplicationModeToPrimary = 123
    InitiateFailback = 124
    UpdateDiskSet = 125


class RequestedState(IntEnum):
    """RequestReplicationStateChange values (spec §2)."""

    Ready = 1
    WaitingToCompleteInitialReplication = 2
    Replicating = 3
    SyncedReplicationComplete = 4
    Suspend = 7
    CancelResynchronize = 9


class EnabledState(IntEnum):
    """Msvm_ComputerSystem.EnabledState, also the RequestStateChange values of a VM (spec §5)."""

    Unknown = 0
    Enabled = 2
    Disabled = 3
    EnabledButOffline = 6
    Quiesce = 9
    Starting = 10
    # Hyper-V Manager's words for the same numbers.
    Running = 2
    Off = 3
    Saved = 6
    Paused = 9


class InitialReplicationType(IntEnum):
    """StartReplication InitialReplicationType (spec §2)."""

    Network = 1
    Export = 2
    Seeded = 3


class ReplicationType(IntEnum):
    """FailedOverReplicationType / LastReplicationType (spec §5)."""

    None_ = 0
    Regular = 1
    ApplicationConsistent = 2
    Planned = 3


class AuthenticationType(IntEnum):
    """Msvm_ReplicationSettingData.AuthenticationType (spec §3; API.md for vmrepl's meaning)."""

    Kerberos = 1
    Certificate = 2


class JobRequestedState(IntEnum):
    """Msvm_ConcreteJob.RequestStateChange values (spec §7)."""

    Start = 2
    Suspend = 3
    Terminate = 4
    Kill = 5
    Service = 6


class CimType(IntEnum):
    """CIM types of instance properties (VMR_TYPE_* of vmrepl.h)."""

    Boolean = 0
    UInt8 = 1
    SInt8 = 2
    UInt16 = 3
    SInt16 = 4
    UInt32 = 5
    SInt32 = 6
    UInt64 = 7
    SInt64 = 8
    Real64 = 9
    String = 10
    DateTime = 11
    Reference = 12
