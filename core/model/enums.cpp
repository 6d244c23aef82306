#include "core/model/enums.h"

namespace vmrepl {

#define VMREPL_TO_STRING_CASE(e, n, s) \
  case n:                              \
    return s;
#define VMREPL_FROM_NUMBER_CASE(e, n, s) case n:
#define VMREPL_DEFINE_ENUM(Type, MAP)                            \
  std::string_view to_string(Type v) {                           \
    switch (static_cast<uint16_t>(v)) { MAP(VMREPL_TO_STRING_CASE) } \
    return "Unknown";                                            \
  }                                                              \
  std::optional<Type> Type##_from_number(uint64_t n) {           \
    switch (n) {                                                 \
      MAP(VMREPL_FROM_NUMBER_CASE)                               \
      return static_cast<Type>(n);                               \
      default:                                                   \
        return std::nullopt;                                     \
    }                                                            \
  }

VMREPL_DEFINE_ENUM(ReplicationState, VMREPL_REPLICATION_STATE_MAP)
VMREPL_DEFINE_ENUM(ReplicationMode, VMREPL_REPLICATION_MODE_MAP)
VMREPL_DEFINE_ENUM(ReplicationHealth, VMREPL_REPLICATION_HEALTH_MAP)
VMREPL_DEFINE_ENUM(JobState, VMREPL_JOB_STATE_MAP)
VMREPL_DEFINE_ENUM(JobType, VMREPL_JOB_TYPE_MAP)
VMREPL_DEFINE_ENUM(RequestedReplicationState, VMREPL_REQUESTED_REPLICATION_STATE_MAP)
VMREPL_DEFINE_ENUM(EnabledState, VMREPL_ENABLED_STATE_MAP)
VMREPL_DEFINE_ENUM(JobRequestedState, VMREPL_JOB_REQUESTED_STATE_MAP)
VMREPL_DEFINE_ENUM(InitialReplicationType, VMREPL_INITIAL_REPLICATION_TYPE_MAP)
VMREPL_DEFINE_ENUM(ReplicationType, VMREPL_REPLICATION_TYPE_MAP)
VMREPL_DEFINE_ENUM(AuthenticationType, VMREPL_AUTHENTICATION_TYPE_MAP)

}  // namespace vmrepl
