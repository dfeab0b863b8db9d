// run_process: spawn, feed stdin, collect stdout and stderr, wait, check.
#include <array>
#include <grove/cancel.hpp>
#include <grove/process.hpp>
#include <grove/task_group.hpp>
#include <span>
#include <string>
#include <system_error>
#include <utility>

namespace grove {

namespace {

std::string describe_failure(const std::vector<std::string>& argv, const completed_process& r) {
  std::string what = "grove: ";
  what += argv.empty() ? std::string("process") : argv[0];
  what += " " + r.status.describe();
  return what;
}

// A child that stops reading (or exits) before taking all of its input is
// not an error: what it did not read is dropped, as Trio and subprocess do.
task<void> feed(stream& in, const std::string& input) {
  try {
    co_await in.write_all(std::as_bytes(std::span(input)));
  } catch (const std::system_error& e) {
    if (e.code() != std::errc::broken_pipe) throw;
  }
  in.close();
}

task<void> collect(stream& from, std::string& into) {
  std::array<std::byte, 16384> buf;
  while (std::size_t n = co_await from.read_some(buf))
    into.append(reinterpret_cast<const char*>(buf.data()), n);
}

task<void> pump(process& p, const run_process_options& o, completed_process& r) {
  co_await with_task_group([&](task_group& g) -> task<void> {
    if (!o.input.empty()) g.spawn(feed, std::ref(p.stdin_stream()), std::cref(o.input));
    if (o.capture_stdout) g.spawn(collect, std::ref(p.stdout_stream()), std::ref(r.out));
    if (o.capture_stderr) g.spawn(collect, std::ref(p.stderr_stream()), std::ref(r.err));
    co_return;
  });
}

}  // namespace

process_error::process_error(std::vector<std::string> argv, completed_process result)
    : std::runtime_error(describe_failure(argv, result)),
      argv_(std::move(argv)),
      result_(std::move(result)) {}

task<completed_process> run_process(std::vector<std::string> argv, run_process_options o) {
  process_options po;
  po.argv = argv;
  po.env = o.env;
  po.cwd = o.cwd;
  po.stdin_ = o.input.empty() ? stdio::null : stdio::pipe;
  po.stdout_ = o.capture_stdout ? stdio::pipe : stdio::inherit;
  po.stderr_ = o.capture_stderr ? stdio::pipe : stdio::inherit;
  po.kill_grace = o.kill_grace;
  process p = process::spawn(std::move(po));

  completed_process r;
  cancel_scope drain;
  co_await with_task_group([&](task_group& g) -> task<void> {
    g.spawn([&]() -> task<void> { co_await drain.run(pump(p, o, r)); });
    r.status = co_await p.wait();
    drain.set_deadline(add_saturating(now(), o.drain_timeout));
  });
  if (o.check && !r.status.ok()) throw process_error(std::move(argv), std::move(r));
  co_return r;
}

task<completed_process> run_process(std::vector<std::string> argv) {
  return run_process(std::move(argv), run_process_options());
}

}  // namespace grove
