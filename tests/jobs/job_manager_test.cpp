#include <boost/test/unit_test.hpp>

#include <atomic>
#include <thread>

#include "core/jobs/job_manager.h"

using namespace vmrepl;
using namespace std::chrono_literals;

namespace {

// A body that advances in `steps` timer ticks of `tick` ms on the loop, reporting progress,
// and stops at the next tick once cancelled.
struct TickingBody {
  EventLoop* loop;
  int steps;
  uint64_t tick_ms;
  void operator()(const JobContext& ctx) const {
    struct State {
      JobContext ctx;
      int steps, done = 0;
      uv_timer_t timer;
    };
    auto* s = new State{ctx, steps, 0, {}};
    uv_timer_init(loop->uv(), &s->timer);
    s->timer.data = s;
    ctx.phase("ticking");
    uv_timer_start(
        &s->timer,
        [](uv_timer_t* t) {
          auto* st = static_cast<State*>(t->data);
          auto finish = [st](Status status) {
            st->ctx.finish(std::move(status));
            uv_timer_stop(&st->timer);
            uv_close(reinterpret_cast<uv_handle_t*>(&st->timer),
                     [](uv_handle_t* h) { delete static_cast<State*>(h->data); });
          };
          if (st->ctx.cancelled()) return finish(Status::Failed("cancelled at step " + std::to_string(st->done)));
          ++st->done;
          st->ctx.progress(static_cast<uint64_t>(st->done) * 100, static_cast<uint64_t>(st->steps) * 100);
          if (st->done == st->steps) {
            st->ctx.result(Property{"Answer", CimType::UInt32, false, std::vector<Scalar>{uint64_t{42}}});
            finish(Status::OK());
          }
        },
        tick_ms, tick_ms);
  }
};

struct Fixture {
  EventLoop loop;
  std::unique_ptr<JobManager> mgr;
  Fixture() { mgr = std::make_unique<JobManager>(loop, JobManager::Options{std::chrono::seconds(1)}); }
  ~Fixture() { mgr->shutdown(5s); }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(job_manager_tests, Fixture)

BOOST_AUTO_TEST_CASE(job_runs_to_completed_with_cim_properties) {
  // Listener state outlives the test body: listeners live as long as the manager.
  auto seen_p = std::make_shared<std::vector<uint16_t>>();
  auto mu_p = std::make_shared<std::mutex>();
  auto& seen = *seen_p;
  auto& mu = *mu_p;
  mgr->add_listener([seen_p, mu_p](const std::shared_ptr<Job>& j) {
    std::lock_guard<std::mutex> lk(*mu_p);
    if (seen_p->empty() || seen_p->back() != to_number(j->state())) seen_p->push_back(to_number(j->state()));
  });
  auto job = mgr->submit(JobType::ConsistencyCheckerRun, "Tick", true, TickingBody{&loop, 5, 2});
  BOOST_TEST(job->wait(10s).ok());
  BOOST_TEST(to_number(job->state()) == 7);
  Instance i = job->snapshot();
  BOOST_TEST(i.class_name() == "Msvm_ConcreteJob");
  BOOST_TEST(*i.get_u64("JobState") == 7u);
  BOOST_TEST(*i.get_u64("JobType") == 113u);
  BOOST_TEST(*i.get_u64("PercentComplete") == 100u);
  BOOST_TEST(*i.get_u64("ErrorCode") == 0u);
  BOOST_TEST(*i.get_u64("BytesDone") == 500u);
  BOOST_TEST(*i.get_u64("Answer") == 42u);
  BOOST_TEST(*i.get_string("InstanceID") == job->id().to_string());
  BOOST_TEST(*i.get_string("TimeBeforeRemoval") == "00000000000001.000000:000");
  BOOST_TEST(*i.get_bool("Cancellable"));
  BOOST_TEST(i.get_string("StartTime").ok());
  BOOST_TEST(*i.get_string("Phase") == "ticking");
  std::lock_guard<std::mutex> lk(mu);
  BOOST_TEST(seen.front() == 4);  // Running is visible to listeners
  BOOST_TEST(seen.back() == 7);
}

BOOST_AUTO_TEST_CASE(progress_is_monotonic) {
  auto done_p = std::make_shared<std::vector<uint64_t>>();
  auto mu_p = std::make_shared<std::mutex>();
  auto& done = *done_p;
  auto& mu = *mu_p;
  mgr->add_listener([done_p, mu_p](const std::shared_ptr<Job>& j) {
    std::lock_guard<std::mutex> lk(*mu_p);
    done_p->push_back(j->progress().bytes_done);
  });
  auto job = mgr->submit(JobType::ConsistencyCheckerRun, "Tick", true, TickingBody{&loop, 10, 1});
  BOOST_REQUIRE(job->wait(10s).ok());
  std::lock_guard<std::mutex> lk(mu);
  for (size_t k = 1; k < done.size(); ++k) BOOST_TEST(done[k] >= done[k - 1]);
  BOOST_TEST(done.back() == 1000u);
}

BOOST_AUTO_TEST_CASE(cancel_ends_in_terminated_with_error) {
  auto job = mgr->submit(JobType::ConsistencyCheckerRun, "Slow", true, TickingBody{&loop, 10000, 1});
  while (job->progress().bytes_done < 300) std::this_thread::sleep_for(1ms);
  BOOST_TEST(job->request_state_change(4).ok());
  BOOST_TEST(job->wait(10s).ok());
  BOOST_TEST(to_number(job->state()) == 8);
  Instance i = job->snapshot();
  BOOST_TEST(*i.get_u64("ErrorCode") == 32768u);
  BOOST_TEST(i.get_string("ErrorDescription")->find("cancelled at step") != std::string::npos);
  BOOST_TEST(*i.get_u64("PercentComplete") < 100u);
  // A final job refuses another change.
  Status again = job->request_state_change(4);
  BOOST_TEST(again.number() == 32775u);
  BOOST_TEST(again.message().find("Terminated") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(only_terminate_and_kill_are_offered) {
  auto job = mgr->submit(JobType::ConsistencyCheckerRun, "Tick", true, TickingBody{&loop, 3, 5});
  BOOST_TEST(job->request_state_change(3).number() == 32773u);
  BOOST_TEST(job->request_state_change(2).number() == 32773u);
  BOOST_TEST(job->wait(10s).ok());
  BOOST_TEST(to_number(job->state()) == 7);
}

BOOST_AUTO_TEST_CASE(not_cancellable_job_refuses_cancel) {
  auto job = mgr->submit(JobType::ConsistencyCheckerRun, "Fixed", false, TickingBody{&loop, 5, 5});
  Status s = job->request_state_change(4);
  BOOST_TEST(s.number() == 32775u);
  BOOST_TEST(job->wait(10s).ok());
  BOOST_TEST(to_number(job->state()) == 7);
}

BOOST_AUTO_TEST_CASE(wait_times_out_with_32772) {
  auto job = mgr->submit(JobType::ConsistencyCheckerRun, "Slow", true, TickingBody{&loop, 100000, 5});
  Status s = job->wait(20ms);
  BOOST_TEST(s.number() == 32772u);
  BOOST_TEST(s.message().find("Running") != std::string::npos);
  job->request_state_change(5);
  BOOST_TEST(job->wait(10s).ok());
  BOOST_TEST(to_number(job->state()) == 8);
}

BOOST_AUTO_TEST_CASE(failure_ends_in_exception_with_code_and_description) {
  auto job = mgr->submit(JobType::ConsistencyCheckerRun, "Fails", true,
                         [](const JobContext& ctx) { ctx.finish(Status::FileNotFound("disk0.img is gone")); });
  BOOST_TEST(job->wait(10s).ok());
  BOOST_TEST(to_number(job->state()) == 10);
  Instance i = job->snapshot();
  BOOST_TEST(*i.get_u64("ErrorCode") == 32779u);
  BOOST_TEST(*i.get_string("ErrorDescription") == "disk0.img is gone");
  BOOST_TEST(job->outcome().number() == 32779u);
}

BOOST_AUTO_TEST_CASE(finished_jobs_are_kept_for_the_retention_then_dropped) {
  auto finals_p = std::make_shared<std::atomic<int>>(0);
  auto& finals = *finals_p;
  mgr->set_on_final([finals_p](const Job&) { ++*finals_p; });
  auto job = mgr->submit(JobType::ConsistencyCheckerRun, "Quick", true, [](const JobContext& ctx) { ctx.finish(Status::OK()); });
  BOOST_TEST(job->wait(10s).ok());
  BOOST_TEST(mgr->find(job->id()) != nullptr);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (mgr->find(job->id()) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
  BOOST_TEST(mgr->find(job->id()) == nullptr);
  BOOST_TEST(finals.load() == 1);
  // The caller's handle still reads the final properties.
  BOOST_TEST(*job->snapshot().get_u64("JobState") == 7u);
}

BOOST_AUTO_TEST_CASE(shutdown_cancels_running_jobs) {
  auto job = mgr->submit(JobType::ConsistencyCheckerRun, "Forever", true, TickingBody{&loop, 1000000, 1});
  while (to_number(job->state()) != 4) std::this_thread::sleep_for(1ms);
  mgr->shutdown(5s);
  BOOST_TEST(to_number(job->state()) == 8);
}

BOOST_AUTO_TEST_CASE(event_loop_run_sync_and_post_order) {
  std::vector<int> order;
  for (int k = 0; k < 100; ++k) loop.post([&order, k] { order.push_back(k); });
  int n = loop.run_sync([&] { return static_cast<int>(order.size()); });
  BOOST_TEST(n == 100);
  for (int k = 0; k < 100; ++k) BOOST_TEST(order[k] == k);
  BOOST_TEST(!loop.in_loop_thread());
  BOOST_TEST(loop.run_sync([&] { return loop.in_loop_thread(); }));
}

BOOST_AUTO_TEST_SUITE_END()
