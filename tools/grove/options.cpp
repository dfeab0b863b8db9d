#include "options.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <regex>
#include <thread>

namespace grove::cli {

namespace {

constexpr const char* description = R"(grove: run shell jobs concurrently, and stop them correctly.

  grove [options] COMMAND [ARGS...] ::: INPUT...     one job per INPUT
  grove [options] COMMAND [ARGS...] :::: FILE...     one job per line of each FILE
  grove [options] COMMAND [ARGS...] < inputs         one job per line of stdin

COMMAND is a template: {} the input, {.} without extension, {/} basename,
{//} dirname, {/.} basename without extension, {#} the job number. Without a
placeholder the input is appended. It runs through /bin/sh -c when it has shell
syntax, and is exec'd directly otherwise.)";

constexpr const char* epilog = R"(
Shutdown: the first SIGINT, SIGTERM or SIGHUP starts no new job and sends the
same signal to every running job's process group, then SIGKILL after --grace;
a second signal sends SIGKILL at once. grove exits only after every job is
reaped, then dies by the first signal (a shell loop around it stops).

Exit status: 0 every job ok; 1-100 the number of failed or timed-out jobs
(101 for more); 2 bad usage (nothing started); 255 the --timeline page could
not be written; killed by the signal after an interrupt (130 for SIGINT in a
shell, 143 for SIGTERM).

Manual: docs/cli.md.)";

duration unit_of(const std::string& unit) {
  using namespace std::chrono;
  if (unit == "ms") return milliseconds(1);
  if (unit == "m") return minutes(1);
  if (unit == "h") return hours(1);
  return seconds(1);
}

std::vector<std::string> read_lines(std::istream& in) {
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

std::vector<std::string> read_file_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw usage_error("grove: cannot read " + path + ": " + std::strerror(errno));
  auto lines = read_lines(in);
  if (in.bad() || (lines.empty() && !in.eof()))  // a directory opens, then fails to read
    throw usage_error("grove: cannot read " + path + ": " + std::strerror(errno ? errno : EIO));
  return lines;
}

// What follows the first ::: or ::::, split off before CLI11 sees the rest.
struct input_source {
  enum class kind { stdin_lines, args, files };
  kind from = kind::stdin_lines;
  std::vector<std::string> words;
};

input_source split_inputs(std::vector<std::string>& args) {
  input_source src;
  auto sep = std::find_if(args.begin(), args.end(),
                          [](const std::string& a) { return a == ":::" || a == "::::"; });
  if (sep == args.end()) return src;
  src.from = *sep == "::::" ? input_source::kind::files : input_source::kind::args;
  src.words.assign(sep + 1, args.end());
  args.erase(sep, args.end());
  for (const auto& a : src.words)
    if (a == ":::" || a == "::::")
      throw usage_error("grove: only one input source (::: or ::::) is supported");
  if (src.from == input_source::kind::files && src.words.empty())
    throw usage_error("grove: :::: needs a file");
  return src;
}

// Reads every input before any job starts: a bad file is a usage error.
std::vector<std::string> load_inputs(input_source& src) {
  if (src.from == input_source::kind::args) return std::move(src.words);
  if (src.from == input_source::kind::files) {
    std::vector<std::string> all;
    for (const auto& f : src.words) {
      auto lines = read_file_lines(f);
      all.insert(all.end(), lines.begin(), lines.end());
    }
    return all;
  }
  if (::isatty(STDIN_FILENO))
    throw usage_error("grove: no inputs: give ::: INPUT..., :::: FILE, or pipe lines to stdin");
  return read_lines(std::cin);
}

}  // namespace

duration parse_duration(const std::string& text, const std::string& what) {
  static const std::regex form(R"(^([0-9]+(\.[0-9]+)?)(ms|s|m|h)?$)");
  std::smatch m;
  if (!std::regex_match(text, m, form))
    throw usage_error("grove: " + what + ": '" + text +
                      "' is not a duration (500ms, 3s, 2m, 1h, or seconds)");
  double count = std::strtod(m[1].str().c_str(), nullptr);  // inf when huge: refused below
  auto d = std::chrono::duration<double, std::nano>(unit_of(m[3].str())) * count;
  if (d > std::chrono::duration<double, std::nano>(std::chrono::hours(24 * 365 * 100)))
    throw usage_error("grove: " + what + ": '" + text + "' is too long");
  return std::chrono::duration_cast<duration>(d);
}

halt_policy parse_halt(const std::string& text) {
  static const std::regex form(R"(^(never|now|soon)?((^|,)fail=([0-9]+))?$)");
  std::smatch m;
  if (text.empty() || text[0] == ',' || !std::regex_match(text, m, form) ||
      (m[1].str() == "never" && m[2].matched))
    throw usage_error("grove: --halt: '" + text +
                      "' is not never, now, soon, now,fail=N or soon,fail=N");
  halt_policy h;
  std::string when = m[1].matched ? m[1].str() : "soon";
  h.mode = when == "never" ? halt_policy::when::never
           : when == "now" ? halt_policy::when::now
                           : halt_policy::when::soon;
  if (m[4].matched)
    h.failures = static_cast<int>(std::min(std::strtol(m[4].str().c_str(), nullptr, 10), 1000000L));
  if (h.failures < 1) throw usage_error("grove: --halt: fail=N needs N >= 1");
  return h;
}

std::optional<options> parse(std::vector<std::string> args) {
  options o;
  o.jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::string> cli_args = std::move(args);
  input_source src = split_inputs(cli_args);

  CLI::App app(description, "grove");
  app.footer(epilog);
  app.set_version_flag("--version", "grove 0.1.0");
  app.prefix_command();  // the command starts at the first word that is not an option
  std::string timeout, grace, halt, color = "auto";
  bool fail_fast = false;
  app.add_option("-j,--jobs", o.jobs, "jobs to run at once (default: the CPU count)");
  app.add_option("--timeout", timeout,
                 "a job running longer is stopped (SIGTERM, then SIGKILL after --grace)");
  app.add_option("--grace", grace, "from the stop signal to SIGKILL (default 10s)");
  app.add_option("--halt", halt, "never | soon[,fail=N] | now[,fail=N]: stop after N failures");
  app.add_flag("--fail-fast", fail_fast, "the same as --halt now,fail=1");
  app.add_flag("--dry-run", o.dry_run, "print the commands, run nothing");
  app.add_flag("-k,--keep-order", o.keep_order, "print outputs in input order");
  app.add_flag("--line-buffer", o.line_buffer, "print output lines as they come (not with -k)");
  app.add_flag("--tag", o.tag, "prefix each output line with the input and a tab");
  app.add_option("--joblog", o.joblog, "write a TSV line per job as it ends");
  app.add_option("--results", o.results, "write a JSON line per job (its output too)");
  app.add_option("--resume", o.resume, "skip the jobs already ok in this joblog");
  app.add_option("--timeline", o.timeline, "write the run as an HTML page (a bar per job)");
  app.add_option("--trace", o.trace,
                 "write grove's tasks as a Chrome trace-event file (Perfetto, chrome://tracing)");
  app.add_option("--color", color, "auto | always | never (NO_COLOR is respected)")
      ->check(CLI::IsMember({"auto", "always", "never"}));

  try {
    // CLI11 wants them in reverse.
    std::vector<std::string> rev(cli_args.rbegin(), cli_args.rend());
    app.parse(rev);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return std::nullopt;
  } catch (const CLI::CallForVersion&) {
    std::cout << "grove 0.1.0\n";
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    throw usage_error(std::string("grove: ") + e.what() + " (grove --help)");
  }
  std::vector<std::string> words = app.remaining();
  if (!words.empty() && words[0] == "--") words.erase(words.begin());  // grove -- cmd ...
  if (words.empty()) throw usage_error("grove: no command given (grove --help)");
  // prefix_command() hands an unknown option over as the command's first word.
  if (words[0].size() > 1 && words[0][0] == '-')
    throw usage_error("grove: unknown option " + words[0] + " (grove --help)");
  if (o.jobs < 1) throw usage_error("grove: -j/--jobs must be at least 1");
  for (const auto& w : words) o.command += (o.command.empty() ? "" : " ") + w;
  if (!timeout.empty()) o.timeout = parse_duration(timeout, "--timeout");
  if (o.timeout && *o.timeout <= duration::zero())
    throw usage_error("grove: --timeout must be more than 0");
  if (!grace.empty()) o.grace = parse_duration(grace, "--grace");
  if (!halt.empty()) o.halt = parse_halt(halt);
  if (fail_fast) o.halt = {halt_policy::when::now, 1};
  o.color = color == "always"  ? color_mode::always
            : color == "never" ? color_mode::never
                               : color_mode::automatic;
  o.inputs = load_inputs(src);
  // A missing --resume log means nothing is done yet (the first run can use
  // the same command line as the later ones); an unreadable one is an error.
  if (!o.resume.empty() && ::access(o.resume.c_str(), F_OK) == 0 &&
      ::access(o.resume.c_str(), R_OK) != 0)
    throw usage_error("grove: --resume: cannot read " + o.resume + ": " + std::strerror(errno));
  return o;
}

}  // namespace grove::cli
