#include <algorithm>
#include <grove/run_tasks.hpp>
#include <grove/settle.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace grove {

struct detail_run_tasks_access {
  static std::vector<job_result>& jobs(run_report& r) { return r.jobs_; }
  static void started(run_report& r, time_point t) { r.started_at_ = t; }
  static void ended(run_report& r, time_point t) { r.ended_at_ = t; }
};

namespace {

using access = detail_run_tasks_access;

struct run_state {
  std::vector<job> jobs;
  run_report report;
  run_tasks_options options;
  std::size_t next = 0;
  task_group* group = nullptr;
};

// Marks the job cancelled if the worker's frame is destroyed while it runs.
struct running_job {
  job_result& result;
  bool finished = false;
  explicit running_job(job_result& r) noexcept : result(r) {}
  running_job(const running_job&) = delete;
  running_job& operator=(const running_job&) = delete;
  ~running_job() {
    if (finished) return;
    result.state = job_state::cancelled;
    if (event_loop* loop = event_loop::current()) result.ended = loop->iteration_time();
  }
};

void job_ended(run_state& st, std::size_t i) {
  if (st.options.on_job_done) st.options.on_job_done(i, access::jobs(st.report)[i]);
}

// One slot: takes the next queued job, runs it to its very end (cleanup
// included), then takes the next.
task<void> worker(run_state& st) {
  auto& results = access::jobs(st.report);
  while (st.next < st.jobs.size()) {
    if (co_await cancellation_requested()) co_return;  // queued jobs never start
    std::size_t i = st.next++;
    job_result& r = results[i];
    event_loop& loop = *event_loop::current();
    r.started = loop.iteration_time();
    {
      running_job guard{r};
      try {
        co_await st.jobs[i]();
        r.state = job_state::completed;
      } catch (...) {
        r.state = job_state::failed;
        r.error = std::current_exception();
      }
      guard.finished = true;
    }
    r.ended = loop.iteration_time();
    st.jobs[i] = nullptr;  // the callable's captures go as soon as it is done
    job_ended(st, i);
    if (r.state == job_state::failed && st.options.fail_fast) st.group->cancel();
  }
}

task<run_report> run_all(run_state st, std::size_t slots) {
  access::started(st.report, now());
  if (st.jobs.empty()) {  // nothing to run: no group, no suspension
    access::ended(st.report, st.report.started_at());
    co_return std::move(st.report);
  }
  outcome<void> o = co_await settle(with_task_group([&](task_group& g) -> task<void> {
    st.group = &g;
    for (std::size_t w = 0; w < slots; ++w) g.spawn(worker, std::ref(st));
    co_return;
  }));
  access::ended(st.report, now());
  // Workers catch every job error, so a group error is grove's own (e.g.
  // std::bad_alloc): report it rather than a partial report.
  if (o.has_error()) std::rethrow_exception(o.error());
  if (st.options.on_job_done) {
    auto& results = access::jobs(st.report);
    for (std::size_t i = 0; i < results.size(); ++i)
      if (results[i].state == job_state::cancelled) job_ended(st, i);
  }
  co_return std::move(st.report);
}

nlohmann::json ms_since(time_point start, const std::optional<time_point>& t) {
  if (!t) return nullptr;
  return std::chrono::duration<double, std::milli>(*t - start).count();
}

}  // namespace

const char* to_string(job_state s) noexcept {
  switch (s) {
    case job_state::not_started:
      return "not_started";
    case job_state::completed:
      return "completed";
    case job_state::failed:
      return "failed";
    case job_state::cancelled:
      return "cancelled";
  }
  return "unknown";
}

task<run_report> run_tasks(std::vector<job> jobs, int max_concurrent, run_tasks_options options) {
  if (max_concurrent <= 0)
    throw std::invalid_argument("grove::run_tasks: max_concurrent must be at least 1, got " +
                                std::to_string(max_concurrent));
  run_state st;
  std::size_t slots = std::min(jobs.size(), static_cast<std::size_t>(max_concurrent));
  access::jobs(st.report).resize(jobs.size());
  st.jobs = std::move(jobs);
  st.options = std::move(options);
  return always_start(run_all(std::move(st), slots));
}

std::size_t run_report::count(job_state s) const noexcept {
  return static_cast<std::size_t>(
      std::count_if(jobs_.begin(), jobs_.end(), [s](const job_result& r) { return r.state == s; }));
}

bool run_report::interrupted() const noexcept {
  return count(job_state::cancelled) + count(job_state::not_started) > 0;
}

std::string run_report::summary() const {
  std::string out = std::to_string(size()) + (size() == 1 ? " job: " : " jobs: ") +
                    std::to_string(count(job_state::completed)) + " completed, " +
                    std::to_string(count(job_state::failed)) + " failed, " +
                    std::to_string(count(job_state::cancelled)) + " cancelled, " +
                    std::to_string(count(job_state::not_started)) + " not started";
  if (interrupted()) out += " (interrupted)";
  out += '\n';
  for (std::size_t i = 0; i < jobs_.size(); ++i)
    if (jobs_[i].state == job_state::failed)
      out += "  job " + std::to_string(i) + " failed: " + describe_exception(jobs_[i].error) + '\n';
  return out;
}

std::string run_report::to_json() const {
  nlohmann::json doc;
  auto& list = doc["jobs"] = nlohmann::json::array();
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    const job_result& r = jobs_[i];
    nlohmann::json j{{"index", i}, {"state", to_string(r.state)}};
    j["start_ms"] = ms_since(started_at_, r.started);
    j["end_ms"] = ms_since(started_at_, r.ended);
    if (r.error) j["error"] = describe_exception(r.error);
    list.push_back(std::move(j));
  }
  for (job_state s :
       {job_state::completed, job_state::failed, job_state::cancelled, job_state::not_started})
    doc["counts"][to_string(s)] = count(s);
  doc["interrupted"] = interrupted();
  doc["elapsed_ms"] = ms_since(started_at_, ended_at_);
  return doc.dump();
}

}  // namespace grove
