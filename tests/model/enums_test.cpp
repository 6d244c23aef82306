#include <boost/test/unit_test.hpp>

#include "core/model/enums.h"

using namespace vmrepl;

BOOST_AUTO_TEST_SUITE(enums_tests)

BOOST_AUTO_TEST_CASE(replication_state_uses_wmi_numbers_0_to_21) {
  BOOST_TEST(to_number(ReplicationState::Disabled) == 0);
  BOOST_TEST(to_number(ReplicationState::Replicating) == 3);
  BOOST_TEST(to_number(ReplicationState::SyncedReplicationComplete) == 4);
  BOOST_TEST(to_number(ReplicationState::Recovered) == 5);
  BOOST_TEST(to_number(ReplicationState::Committed) == 6);
  BOOST_TEST(to_number(ReplicationState::Suspended) == 7);
  BOOST_TEST(to_number(ReplicationState::WaitingToStartResynchronization) == 9);
  BOOST_TEST(to_number(ReplicationState::FailoverInProgress) == 12);
  BOOST_TEST(to_number(ReplicationState::FiredrillInProgress) == 21);
  for (unsigned n = 0; n <= 21; ++n) {
    auto s = ReplicationState_from_number(n);
    BOOST_REQUIRE(s.has_value());
    BOOST_TEST(to_number(*s) == n);
    BOOST_TEST(!to_string(*s).empty());
  }
  BOOST_TEST(!ReplicationState_from_number(22).has_value());
  BOOST_TEST(to_string(ReplicationState::Recovered) == "Recovered");
}

BOOST_AUTO_TEST_CASE(mode_health_and_types) {
  for (unsigned n = 0; n <= 4; ++n) BOOST_TEST(ReplicationMode_from_number(n).has_value());
  BOOST_TEST(!ReplicationMode_from_number(5).has_value());
  BOOST_TEST(to_string(ReplicationMode::TestReplica) == "Test Replica");
  for (unsigned n = 0; n <= 3; ++n) BOOST_TEST(ReplicationHealth_from_number(n).has_value());
  BOOST_TEST(!ReplicationHealth_from_number(4).has_value());
  BOOST_TEST(to_number(ReplicationType::Planned) == 3);
  BOOST_TEST(to_number(InitialReplicationType::Seeded) == 3);
  BOOST_TEST(to_number(AuthenticationType::Certificate) == 2);
}

BOOST_AUTO_TEST_CASE(job_states_2_to_12_and_finality) {
  BOOST_TEST(!JobState_from_number(1).has_value());
  for (unsigned n = 2; n <= 12; ++n) BOOST_TEST(JobState_from_number(n).has_value());
  BOOST_TEST(!JobState_from_number(13).has_value());
  BOOST_TEST(to_string(JobState::Completed) == "Completed");
  BOOST_TEST(job_state_is_final(JobState::Completed));
  BOOST_TEST(job_state_is_final(JobState::Exception));
  BOOST_TEST(job_state_is_final(JobState::Terminated));
  BOOST_TEST(!job_state_is_final(JobState::Running));
}

BOOST_AUTO_TEST_CASE(job_types_90_to_125) {
  for (unsigned n = 90; n <= 125; ++n) BOOST_TEST(JobType_from_number(n).has_value());
  BOOST_TEST(!JobType_from_number(89).has_value());
  BOOST_TEST(!JobType_from_number(126).has_value());
  BOOST_TEST(to_number(JobType::ReverseReplication) == 104);
  BOOST_TEST(to_string(JobType::ReverseReplication) == "Reverse Replication");
  BOOST_TEST(to_number(JobType::InitiateSyncedReplication) == 100);
}

BOOST_AUTO_TEST_CASE(requested_and_enabled_states) {
  BOOST_TEST(to_number(RequestedReplicationState::SyncedReplicationComplete) == 4);
  BOOST_TEST(to_number(RequestedReplicationState::Suspend) == 7);
  BOOST_TEST(!RequestedReplicationState_from_number(5).has_value());
  BOOST_TEST(to_number(EnabledState::Enabled) == 2);
  BOOST_TEST(to_number(EnabledState::Disabled) == 3);
  BOOST_TEST(to_string(EnabledState::Disabled) == "Off");
  BOOST_TEST(to_number(JobRequestedState::Terminate) == 4);
}

BOOST_AUTO_TEST_SUITE_END()
