// Bandwidth limits: the token bucket and the rate meter alone, then limited replications
// between two services (relationship and service-wide limits, a change and a cancel while a
// transfer runs, the limit across a restart). Time is asserted with lower bounds (a limit
// holds) and loose upper bounds only: the machine is shared.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "core/engine/bandwidth.h"
#include "core/service/replication_service.h"
#include "tests/service/two_hosts.h"

using namespace vmrepl;
using namespace vmrepl::test;
using namespace std::chrono_literals;
namespace sfs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t KiB = 1024, MiB = 1024 * 1024;

uint32_t n(Code c) { return static_cast<uint32_t>(c); }

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Acquires `total` bytes in `chunk`s; the seconds it took.
double pump(TokenBucket& b, uint64_t total, uint64_t chunk) {
  const auto t0 = Clock::now();
  for (uint64_t done = 0; done < total; done += chunk) BOOST_REQUIRE(b.acquire(chunk).ok());
  return since(t0);
}

// A 16 MiB mixed image (about 60% data), made once for the suite: making it takes seconds.
const std::string& mixed_image() {
  static struct Image {
    std::string dir, path;
    Image() {
      char tmpl[] = "/tmp/vmrepl-bw-XXXXXX";
      dir = ::mkdtemp(tmpl);
      path = dir + "/src.img";
      gen("mixed " + path + " 16 5");
    }
    ~Image() { sfs::remove_all(dir); }
  } image;
  return image.path;
}

// A VM on A with the mixed image, related to B without compression, so the wire carries the
// data as it is; not started.
struct Limited : Hosts {
  std::string id;
  Guid vm;
  Limited() {
    id = define("bw01", mixed_image());
    wait_ok(a->create_replication_relationship("bw01", settings(0, false)));
    auto g = Guid::parse(id);
    BOOST_REQUIRE(g.ok());
    vm = *g;
  }
  Replicator& repl() { return a->replicator(); }
  // What a transfer of `wire` bytes must take under `limit`, at least: the bucket may hold
  // one burst when the first batch goes.
  static double throttled_s(uint64_t wire, uint64_t limit) {
    const double burst = static_cast<double>(limit) * 0.25;
    return (static_cast<double>(wire) - burst) / static_cast<double>(limit);
  }
  void restart_a() {
    a.reset();
    a = open("hv-a", dir + "/a", "{\"hosts\": {\"hv-b\": \"127.0.0.1\"}}");
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(bandwidth_tests)

// ---- TokenBucket and RateMeter ----

BOOST_AUTO_TEST_CASE(a_rate_of_r_over_n_bytes_takes_about_n_over_r) {
  TokenBucket b(4 * MiB);
  const double s = pump(b, 2 * MiB, 64 * KiB);
  BOOST_TEST(s >= 0.8 * 0.5);
  BOOST_TEST(s <= 5.0 * 0.5);
  // Unlimited: no wait at all.
  TokenBucket free(0);
  BOOST_TEST(pump(free, 1024 * MiB, 64 * KiB) < 0.5);
}

BOOST_AUTO_TEST_CASE(setting_the_rate_to_zero_wakes_a_waiter_at_once) {
  TokenBucket b(64 * KiB);  // a burst of 16 KiB
  BOOST_REQUIRE(b.acquire(1 * MiB).ok());  // passes into debt: the next waits about 16 s
  std::atomic<bool> done{false};
  Status got = Status::Failed("not run");
  std::thread waiter([&] {
    got = b.acquire(64 * KiB);
    done = true;
  });
  std::this_thread::sleep_for(200ms);
  BOOST_TEST(!done.load());
  const auto t0 = Clock::now();
  b.set_rate(0);
  waiter.join();
  BOOST_TEST(since(t0) < 0.5);
  BOOST_TEST(got.ok());
  BOOST_TEST(b.rate() == 0u);
}

BOOST_AUTO_TEST_CASE(raising_the_rate_re_computes_a_waiters_wait) {
  TokenBucket b(64 * KiB);
  BOOST_REQUIRE(b.acquire(1 * MiB).ok());
  std::thread waiter([&] { BOOST_CHECK(b.acquire(64 * KiB).ok()); });
  std::this_thread::sleep_for(200ms);
  const auto t0 = Clock::now();
  b.set_rate(256 * MiB);  // the debt is gone in about 4 ms
  waiter.join();
  BOOST_TEST(since(t0) < 0.5);
}

BOOST_AUTO_TEST_CASE(a_cancel_wakes_a_waiter_within_a_poll) {
  TokenBucket b(64 * KiB);
  BOOST_REQUIRE(b.acquire(1 * MiB).ok());
  std::atomic<bool> cancel{false};
  Status got;
  std::thread waiter([&] { got = b.acquire(64 * KiB, [&] { return cancel.load(); }); });
  std::this_thread::sleep_for(200ms);
  const auto t0 = Clock::now();
  cancel = true;
  waiter.join();
  BOOST_TEST(since(t0) < 5 * 0.1);
  BOOST_TEST(got.number() == n(Code::Failed));
  BOOST_TEST(got.message() == "cancelled");
}

BOOST_AUTO_TEST_CASE(a_batch_larger_than_the_burst_passes_and_the_next_waits_out_the_debt) {
  TokenBucket b(2 * MiB);  // a burst of 512 KiB
  auto t0 = Clock::now();
  BOOST_REQUIRE(b.acquire(1 * MiB).ok());  // waits for a full bucket (0.25 s), then passes
  BOOST_TEST(since(t0) <= 5 * 0.25);
  t0 = Clock::now();
  BOOST_REQUIRE(b.acquire(1).ok());  // 512 KiB of debt first
  BOOST_TEST(since(t0) >= 0.8 * 0.25);
  BOOST_TEST(since(t0) <= 5 * 0.25);
}

BOOST_AUTO_TEST_CASE(rate_meter_gives_the_last_second_and_the_average) {
  const auto t0 = RateMeter::Clock::now();
  RateMeter m(100, t0);
  BOOST_TEST(m.recent() == 0u);
  m.add(100 + 10 * MiB, t0 + 1s);
  m.add(100 + 11 * MiB, t0 + 2s);
  BOOST_TEST(m.recent() == 1 * MiB);
  BOOST_TEST(m.average() == 11 * MiB / 2);
}

// ---- limits on replication ----

BOOST_AUTO_TEST_CASE(a_relationship_limit_throttles_initial_replication_and_shows_in_the_job) {
  Limited h;
  const uint64_t limit = 4 * MiB;
  BOOST_REQUIRE(h.repl().set_bandwidth_limit(h.vm, limit).ok());
  BOOST_TEST(h.repl().bandwidth_limit(h.vm) == limit);
  BOOST_TEST(h.repl().bandwidth_limit(std::nullopt) == 0u);

  const auto t0 = Clock::now();
  auto job = h.a->start_replication("bw01", 1, "", "");
  BOOST_REQUIRE(job.ok());
  // Mid-transfer, the job's rate is the limited wire rate.
  std::this_thread::sleep_for(1200ms);
  Instance mid = (*job)->snapshot();
  BOOST_REQUIRE_MESSAGE(*mid.get_u64("JobState") == 4u, "job not running at 1.2 s: " << (*job)->outcome().ToString());
  BOOST_TEST(*mid.get_string("Phase") == "sending");
  BOOST_TEST(*mid.get_u64("BandwidthLimit") == limit);
  const uint64_t rate = *mid.get_u64("RateBytesPerSecond");
  BOOST_TEST(rate >= limit / 2, "rate " << rate);
  BOOST_TEST(rate <= 2 * limit, "rate " << rate);

  Instance done = wait_ok(job);
  const double took = since(t0);
  const uint64_t wire = *done.get_u64("WireBytesSent");
  BOOST_TEST(wire >= 8 * MiB);  // the image's data: the limit had something to hold back
  BOOST_TEST(took >= 0.8 * Limited::throttled_s(wire, limit), "took " << took << " s for " << wire << " bytes");
  BOOST_TEST(took <= 5.0 * static_cast<double>(wire) / static_cast<double>(limit));
  BOOST_TEST(*done.get_u64("BandwidthLimit") == limit);
  const uint64_t avg = *done.get_u64("RateBytesPerSecond");
  BOOST_TEST(avg >= limit / 2, "average rate " << avg);
  BOOST_TEST(avg <= 2 * limit, "average rate " << avg);
  BOOST_TEST(read_file(h.primary_disk("bw01")) == read_file(h.replica_image("bw01")));
}

BOOST_AUTO_TEST_CASE(lifting_the_limit_mid_transfer_lets_the_job_finish_quickly_and_stays_lifted) {
  Limited h;
  const uint64_t limit = 1 * MiB;  // about 10 s for the image's data
  BOOST_REQUIRE(h.repl().set_bandwidth_limit(h.vm, limit).ok());
  const auto t0 = Clock::now();
  auto job = h.a->start_replication("bw01", 1, "", "");
  BOOST_REQUIRE(job.ok());
  std::thread lift([&] {
    std::this_thread::sleep_for(500ms);
    BOOST_CHECK(h.repl().set_bandwidth_limit(h.vm, 0).ok());
  });
  Instance done = wait_ok(job);
  lift.join();
  const double took = since(t0);
  const uint64_t wire = *done.get_u64("WireBytesSent");
  BOOST_TEST(took < 0.8 * static_cast<double>(wire) / static_cast<double>(limit), "took " << took << " s");
  BOOST_TEST(*done.get_u64("BandwidthLimit") == 0u);
  BOOST_TEST(read_file(h.primary_disk("bw01")) == read_file(h.replica_image("bw01")));
  // The cycle wrote its relationship record at the end from the copy it read at the start:
  // the limit lifted meanwhile stays lifted, also after a restart.
  BOOST_TEST(h.repl().bandwidth_limit(h.vm) == 0u);
  h.restart_a();
  BOOST_TEST(h.repl().bandwidth_limit(h.vm) == 0u);
}

BOOST_AUTO_TEST_CASE(the_service_limit_applies_to_a_relationship_without_its_own) {
  Limited h;
  const uint64_t limit = 8 * MiB;
  BOOST_REQUIRE(h.repl().set_bandwidth_limit(std::nullopt, limit).ok());
  BOOST_TEST(h.repl().bandwidth_limit(std::nullopt) == limit);
  BOOST_TEST(h.repl().bandwidth_limit(h.vm) == 0u);
  const auto t0 = Clock::now();
  Instance done = wait_ok(h.a->start_replication("bw01", 1, "", ""));
  const double took = since(t0);
  const uint64_t wire = *done.get_u64("WireBytesSent");
  BOOST_TEST(took >= 0.8 * Limited::throttled_s(wire, limit), "took " << took << " s for " << wire << " bytes");
  BOOST_TEST(*done.get_u64("BandwidthLimit") == limit);
  BOOST_TEST(read_file(h.primary_disk("bw01")) == read_file(h.replica_image("bw01")));

  // Both limits: the smaller one holds; without the service's, the relationship's.
  BOOST_REQUIRE(h.repl().set_bandwidth_limit(h.vm, 16 * MiB).ok());
  gen("modify " + h.primary_disk("bw01") + " 1 7");
  BOOST_TEST(*wait_ok(h.a->replicate_now("bw01")).get_u64("BandwidthLimit") == limit);
  BOOST_REQUIRE(h.repl().set_bandwidth_limit(std::nullopt, 0).ok());
  gen("modify " + h.primary_disk("bw01") + " 1 8");
  BOOST_TEST(*wait_ok(h.a->replicate_now("bw01")).get_u64("BandwidthLimit") == 16 * MiB);
  BOOST_TEST(read_file(h.primary_disk("bw01")) == read_file(h.replica_image("bw01")));
}

BOOST_AUTO_TEST_CASE(a_relationship_limit_survives_a_restart_and_goes_with_the_relationship) {
  Limited h;
  BOOST_REQUIRE(h.repl().set_bandwidth_limit(h.vm, 3 * MiB).ok());
  h.restart_a();
  BOOST_TEST(h.repl().bandwidth_limit(h.vm) == 3 * MiB);
  // Other writes of the record keep it (a settings change rewrites the whole record).
  wait_ok(h.a->modify_replication_settings("bw01", h.settings(1, false)));
  h.restart_a();
  BOOST_TEST(h.repl().bandwidth_limit(h.vm) == 3 * MiB);
  // Removing the relationship removes its limit.
  wait_ok(h.a->remove_replication_relationship("bw01"));
  BOOST_TEST(h.repl().bandwidth_limit(h.vm) == 0u);
  Status st = h.repl().set_bandwidth_limit(h.vm, 3 * MiB);
  BOOST_TEST(st.number() == n(Code::InvalidState), st.ToString());
  BOOST_TEST(st.message().find("ReplicationState") != std::string::npos, st.message());
}

BOOST_AUTO_TEST_CASE(limits_are_refused_for_unknown_vms_vms_without_a_relationship_and_bad_rates) {
  Limited h;
  Status st = h.repl().set_bandwidth_limit(Guid::generate(), 4 * MiB);
  BOOST_TEST(st.number() == n(Code::FileNotFound), st.ToString());
  auto other = h.a->define_system(VmDefinition{"norel", std::nullopt, {1 * MiB}});
  BOOST_REQUIRE(other.ok());
  auto other_id = Guid::parse(*other->get_string("Name"));
  BOOST_REQUIRE(other_id.ok());
  st = h.repl().set_bandwidth_limit(*other_id, 4 * MiB);
  BOOST_TEST(st.number() == n(Code::InvalidState), st.ToString());
  BOOST_TEST(st.message().find("ReplicationState 0") != std::string::npos, st.message());
  // Below one block per second a receiver would wait too long between batches.
  for (auto vm : {std::optional<Guid>(h.vm), std::optional<Guid>()}) {
    st = h.repl().set_bandwidth_limit(vm, 65535);
    BOOST_TEST(st.number() == n(Code::InvalidParameter), st.ToString());
    BOOST_TEST(h.repl().set_bandwidth_limit(vm, 65536).ok());
    BOOST_TEST(h.repl().bandwidth_limit(vm) == 65536u);
  }
}

BOOST_AUTO_TEST_CASE(a_cancel_during_a_throttled_transfer_ends_the_job_promptly) {
  Limited h;
  BOOST_REQUIRE(h.repl().set_bandwidth_limit(h.vm, 1 * MiB).ok());
  auto job = h.a->start_replication("bw01", 1, "", "");
  BOOST_REQUIRE(job.ok());
  std::this_thread::sleep_for(700ms);
  BOOST_REQUIRE(*(*job)->snapshot().get_u64("JobState") == 4u);
  const auto t0 = Clock::now();
  BOOST_REQUIRE((*job)->request_state_change(4).ok());
  BOOST_REQUIRE((*job)->wait(30s).ok());
  BOOST_TEST(since(t0) < 2.0);
  BOOST_TEST(to_number((*job)->state()) == 8u);  // Terminated
  // Back to "ready": the initial replication can be started again.
  BOOST_TEST(*h.a->get_system("bw01")->get_u64("ReplicationState") == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
