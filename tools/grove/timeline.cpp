#include "timeline.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <grove/process.hpp>
#include <string_view>
#include <system_error>

#include "console.hpp"

namespace grove::cli {

namespace {

// The chart, in SVG units (the SVG scales to the window's width).
constexpr double plot_left = 76;  // the slot labels
constexpr double plot_width = 1000;
constexpr double plot_right = 24;
constexpr double marks_height = 34;  // the marks' labels, on two rows over the lanes
constexpr double axis_height = 30;   // the time axis under them, then the skipped row
constexpr double min_bar_width = 3;  // a 1 ms job in a long run is still seen

// Bar colours: Okabe and Ito's palette, told apart with colour blindness too.
constexpr const char* style = R"(
body{font:14px/1.45 system-ui,sans-serif;margin:16px 24px;color:#222;background:#fff}
h1{font-size:18px;margin:0 0 6px}
p{margin:4px 0}
code,#details{font:13px ui-monospace,monospace}
.summary{font-weight:600}
.legend{list-style:none;padding:0;margin:10px 0;display:flex;flex-wrap:wrap;gap:4px 20px}
.swatch{display:inline-block;width:12px;height:12px;margin-right:6px;vertical-align:-1px;border-radius:2px}
.swatch.mark{width:0;height:14px;border-left:2px dashed #000;border-radius:0}
svg{display:block;width:100%;max-width:1100px;height:auto}
.ok{fill:#009e73;background:#009e73}
.failed{fill:#d55e00;background:#d55e00}
.timeout{fill:#e69f00;background:#e69f00}
.cancelled{fill:#cc79a7;background:#cc79a7}
.skipped{fill:#e4e4e4;background:#e4e4e4;stroke:#888;stroke-dasharray:2 2}
.swatch.skipped{border:1px dashed #888;width:10px;height:10px}
.bar:hover{stroke:#000;stroke-width:2;stroke-dasharray:none}
.row{fill:#f6f6f6}
.grid{stroke:#ddd}
.lane,.tick{font-size:11px;fill:#555}
.name{font-size:11px;fill:#fff;pointer-events:none}
.name.dark{fill:#222}
.mark line{stroke:#000;stroke-width:1.5;stroke-dasharray:5 3}
.mark line.hit{stroke:transparent;stroke-width:9;stroke-dasharray:none}
.flag{font-size:11px;font-weight:600}
#details{white-space:pre-wrap;background:#f4f4f4;border:1px solid #ddd;padding:8px;margin:10px 0;
  position:sticky;bottom:0;min-height:5.8em;max-width:1084px}
)";

// Hover shows a bar's <title> in the details box too (a tooltip comes
// late and cannot be copied). The last two lines say the script ran whole.
constexpr const char* script = R"(
"use strict";
(function () {
  var details = document.getElementById("details");
  document.querySelector("svg.timeline").addEventListener("mouseover", function (e) {
    var item = e.target.closest(".bar, .mark");
    if (item) details.textContent = item.querySelector("title").textContent;
  });
  document.body.dataset.bars = document.querySelectorAll(".bar").length;
  document.body.dataset.ready = "yes";
})();
)";

// For text and attribute values alike. A control character is not allowed
// in HTML: it is shown as U+FFFD.
std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto u = static_cast<unsigned char>(ch);
    if (ch == '&')
      out += "&amp;";
    else if (ch == '<')
      out += "&lt;";
    else if (ch == '>')
      out += "&gt;";
    else if (ch == '"')
      out += "&quot;";
    else if (ch == '\'')
      out += "&#39;";
    else if ((u < 0x20 && ch != '\n' && ch != '\t') || u == 0x7f)
      out += "\xEF\xBF\xBD";
    else
      out += ch;
  }
  return out;
}

std::string decimals(double v, int n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", n, v);
  return buf;
}

std::string coord(double v) {
  return decimals(v, 1);
}
std::string secs(double v) {
  return decimals(v, 3) + " s";
}

std::string local_time(double epoch) {
  std::time_t t = static_cast<std::time_t>(epoch);
  std::tm tm{};
  char buf[64];
  if (!::localtime_r(&t, &tm) || !std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm))
    return "?";
  return buf;
}

// About `count` ticks over `total` seconds: 1, 2 or 5 times a power of ten
// up to 50 s, whole minutes and hours beyond.
double tick_step(double total, int count) {
  double rough = total / count;
  if (rough <= 50) {
    double power = std::pow(10, std::floor(std::log10(rough)));
    for (double m : {1, 2, 5})
      if (m * power >= rough) return m * power;
    return 10 * power;
  }
  for (double s : {60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200})
    if (s >= rough) return s;
  return std::ceil(rough / 86400) * 86400;
}

std::string tick_label(double t, double step) {
  if (step >= 3600) return decimals(t / 3600, 0) + " h";
  if (step >= 60) return decimals(t / 60, 0) + " min";
  int n = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  return decimals(t, n) + " s";
}

// Rows: one per slot; under the time axis, one for the jobs that never
// started (it has no time).
struct geometry {
  double total = 1;  // seconds across the plot
  std::size_t lanes = 1;
  bool skipped_row = false;
  double row = 26;

  double x(double t) const { return plot_left + t / total * plot_width; }
  double y(std::size_t lane) const { return marks_height + row * static_cast<double>(lane); }
  double lanes_bottom() const { return y(lanes); }
  double skipped_y() const { return lanes_bottom() + axis_height; }
  double height() const { return skipped_row ? skipped_y() + row + 4 : skipped_y(); }
};

geometry measure(const timeline_run& run) {
  geometry g;
  double end = run.seconds;
  for (const job_record* r : run.jobs) {
    g.lanes = std::max(g.lanes, r->slot);
    g.skipped_row = g.skipped_row || r->state == job_state::skipped;
    end = std::max(end, r->start_offset + r->runtime);
  }
  g.total = std::max(end, 0.001);
  double rows = static_cast<double>(g.lanes + (g.skipped_row ? 1 : 0));
  g.row = std::clamp(420 / rows, 6.0, 26.0);
  return g;
}

std::string outcome(const job_record& r) {
  if (!r.error.empty()) return "could not start: " + r.error;
  if (r.signal != 0) return "killed by " + signal_name(r.signal);
  return "exit " + std::to_string(r.exit_value);
}

// The hover text: what the joblog says of the job, in words.
std::string details(const job_record& r) {
  std::string s = "#" + std::to_string(r.seq) + " " + to_string(r.state);
  if (r.state == job_state::skipped) return s + ": never started\n" + r.command;
  s += " in slot " + std::to_string(r.slot) + ": " + outcome(r) + "\n";
  s += "started at " + secs(r.start_offset) + ", ran " + secs(r.runtime) + ", ended at " +
       secs(r.start_offset + r.runtime) + "\n";
  return s + r.command;
}

std::string rect(const std::string& cls, double x, double y, double w, double h) {
  return "<rect class=\"" + cls + "\" x=\"" + coord(x) + "\" y=\"" + coord(y) + "\" width=\"" +
         coord(w) + "\" height=\"" + coord(h) + "\"";
}

std::string text(const std::string& cls, double x, double y, const char* anchor,
                 const std::string& s) {
  return "<text class=\"" + cls + "\" x=\"" + coord(x) + "\" y=\"" + coord(y) +
         "\" text-anchor=\"" + anchor + "\">" + escape(s) + "</text>\n";
}

std::string bar(const job_record& r, double x, double y, double w, double h) {
  std::string s = rect(std::string("bar ") + to_string(r.state), x, y, w, h) + " data-seq=\"" +
                  std::to_string(r.seq) + "\"><title>" + escape(details(r)) + "</title></rect>\n";
  std::string name = "#" + std::to_string(r.seq);
  bool dark = r.state != job_state::ok && r.state != job_state::failed;  // light colours
  if (h >= 12 && w >= 10 + 7 * static_cast<double>(name.size()))
    s += text(dark ? "name dark" : "name", x + 5, y + h / 2 + 4, "start", name);
  return s;
}

double bar_height(const geometry& g) {
  return g.row - (g.row >= 12 ? 4 : 1);
}

std::string started_bar(const job_record& r, const geometry& g) {
  double x = g.x(r.start_offset);
  double w = g.x(r.start_offset + r.runtime) - x;
  w = w > min_bar_width + 1 ? w - 1 : min_bar_width;  // a gap before the slot's next job
  double y = g.y(std::max<std::size_t>(r.slot, 1) - 1) + (g.row - bar_height(g)) / 2;
  return bar(r, x, y, w, bar_height(g));
}

// The never-started jobs share the last row, in Seq order: their place
// there is not a time.
std::string skipped_bars(const timeline_run& run, const geometry& g) {
  std::vector<const job_record*> skipped;
  for (const job_record* r : run.jobs)
    if (r->state == job_state::skipped) skipped.push_back(r);
  double cell = plot_width / static_cast<double>(skipped.size());
  double gap = cell >= 6 ? 2 : 0;
  double y = g.skipped_y() + (g.row - bar_height(g)) / 2;
  std::string s;
  for (std::size_t i = 0; i < skipped.size(); ++i)
    s += bar(*skipped[i], plot_left + cell * static_cast<double>(i), y, cell - gap, bar_height(g));
  return s;
}

// Row backgrounds and labels, the time grid and its labels.
std::string frame(const geometry& g) {
  std::string s;
  bool every_label = g.row >= 12;
  for (std::size_t lane = 1; lane <= g.lanes; ++lane) {
    if (lane % 2 == 1) s += rect("row", plot_left, g.y(lane - 1), plot_width, g.row) + "/>\n";
    if (every_label || lane == 1 || lane % 10 == 0)
      s += text("lane", plot_left - 8, g.y(lane - 1) + g.row / 2 + 4, "end",
                "slot " + std::to_string(lane));
  }
  if (g.skipped_row)
    s += text("lane", plot_left - 8, g.skipped_y() + g.row / 2 + 4, "end", "skipped");
  double step = tick_step(g.total, 8);
  for (int i = 0; i * step <= g.total + step * 1e-6; ++i) {  // not t += step: no drift
    double t = i * step;
    s += "<line class=\"grid\" x1=\"" + coord(g.x(t)) + "\" x2=\"" + coord(g.x(t)) + "\" y1=\"" +
         coord(marks_height) + "\" y2=\"" + coord(g.lanes_bottom() + 4) + "\"/>\n";
    s += text("tick", g.x(t), g.lanes_bottom() + 18, "middle", tick_label(t, step));
  }
  return s;
}

std::string mark(const timeline_mark& m, std::size_t index, const geometry& g) {
  std::string x = coord(g.x(m.at));
  std::string line = "<line x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + coord(index % 2 ? 18 : 4) +
                     "\" y2=\"" + coord(g.lanes_bottom()) + "\"";
  const char* anchor = g.x(m.at) > plot_left + plot_width - 50 ? "end" : "start";
  return "<g class=\"mark\"><title>" + escape(m.label + " at " + secs(m.at) + "\n" + m.what) +
         "</title>" + line + "/>" + line + " class=\"hit\"/>\n" +
         text("flag", g.x(m.at) + (*anchor == 'e' ? -4 : 4), index % 2 ? 28 : 14, anchor, m.label) +
         "</g>\n";
}

std::string chart(const timeline_run& run) {
  geometry g = measure(run);
  double width = plot_left + plot_width + plot_right;
  double height = g.height();
  std::string s = "<svg class=\"timeline\" viewBox=\"0 0 " + coord(width) + " " + coord(height) +
                  "\" width=\"" + coord(width) + "\" height=\"" + coord(height) +
                  "\" role=\"img\" aria-label=\"one bar per job\">\n" + frame(g);
  // The shortest last, on top: a bar widened to min_bar_width may overlap
  // the next job's, and must stay seen.
  std::vector<const job_record*> started;
  for (const job_record* r : run.jobs)
    if (r->state != job_state::skipped) started.push_back(r);
  std::sort(started.begin(), started.end(), [](const job_record* a, const job_record* b) {
    return a->runtime != b->runtime ? a->runtime > b->runtime : a->seq < b->seq;
  });
  for (const job_record* r : started) s += started_bar(*r, g);
  if (g.skipped_row) s += skipped_bars(run, g);
  for (std::size_t i = 0; i < run.marks.size(); ++i) s += mark(run.marks[i], i, g);
  return s + "</svg>\n";
}

std::string legend(const timeline_run& run) {
  constexpr std::array states{job_state::ok, job_state::failed, job_state::timeout,
                              job_state::cancelled, job_state::skipped};
  std::string s = "<ul class=\"legend\">\n";
  for (job_state st : states) {
    auto n = std::count_if(run.jobs.begin(), run.jobs.end(),
                           [st](const job_record* r) { return r->state == st; });
    s += "<li><span class=\"swatch " + std::string(to_string(st)) + "\"></span>" + to_string(st) +
         " " + std::to_string(n) + "</li>\n";
  }
  return s + "<li><span class=\"swatch mark\"></span>grove was signalled or halted</li>\n</ul>\n";
}

std::string page(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
         "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n"
         "<meta name=\"viewport\" content=\"width=device-width\">\n<title>" +
         escape(title) + "</title>\n<style>" + style + "</style>\n</head>\n<body>\n" + body +
         "</body>\n</html>\n";
}

}  // namespace

std::string timeline_html(const timeline_run& run) {
  std::string body = "<h1>grove timeline</h1>\n<p><code>" + escape(run.command) +
                     "</code></p>\n<p class=\"summary\">" + escape(run.summary) +
                     "</p>\n<p>started " + local_time(run.start_epoch) + ", at most " +
                     std::to_string(run.jobs_at_once) +
                     " at once (--jobs): a row per slot, a bar per job from its start to its "
                     "reap</p>\n" +
                     legend(run) + chart(run) +
                     "<pre id=\"details\">Point at a bar for its job, at a dashed line for what "
                     "grove did then.</pre>\n<script>" +
                     script + "</script>\n";
  return page("grove: " + run.command, body);
}

std::string timeline_unfinished_html(const std::string& command, double start_epoch) {
  return page("grove: " + command + " (unfinished)",
              "<h1>grove timeline</h1>\n<p><code>" + escape(command) +
                  "</code></p>\n<p>grove started this run at " + local_time(start_epoch) +
                  " and writes its timeline here when the run ends. If grove is no longer "
                  "running, it was killed before it could (by SIGKILL, or by a third shutdown "
                  "signal); a --joblog has every job that had ended.</p>\n");
}

void write_timeline(const std::string& path, const std::string& html) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::system_error(errno, std::generic_category(), "grove: --timeline: open " + path);
  bool written = write_fully(fd, html);
  int error = errno;
  // close can report a write-back error (NFS, a full disk) the writes did not.
  if (::close(fd) != 0 && written) {
    written = false;
    error = errno;
  }
  if (!written)
    throw std::system_error(error, std::generic_category(), "grove: --timeline: write " + path);
}

}  // namespace grove::cli
