// grove's command templates (command.hpp).
#include "command.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <stdexcept>
#include <utility>

namespace grove::cli {
namespace {

constexpr std::string_view blanks = " \t";

// POSIX basename, except that an empty path stays empty (an empty argument
// should not turn into ".").
std::string_view base_name(std::string_view path) {
  if (path.empty()) return path;
  std::size_t end = path.find_last_not_of('/');
  if (end == std::string_view::npos) return "/";
  path = path.substr(0, end + 1);
  std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// POSIX dirname: "c.txt" -> ".", "/c" -> "/", "a/b/" -> "a".
std::string_view dir_name(std::string_view path) {
  std::size_t end = path.find_last_not_of('/');
  if (end == std::string_view::npos) return path.empty() ? "." : "/";
  std::size_t slash = path.rfind('/', end);
  if (slash == std::string_view::npos) return ".";
  std::size_t dir_end = path.find_last_not_of('/', slash);
  return dir_end == std::string_view::npos ? "/" : path.substr(0, dir_end + 1);
}

// Drops the last '.' of the last path component and what follows it, unless
// that '.' starts the component: a dotfile has no extension. "." and ".."
// name directories, not files with an extension.
std::string_view without_extension(std::string_view path) {
  std::size_t slash = path.rfind('/');
  std::size_t start = slash == std::string_view::npos ? 0 : slash + 1;
  std::string_view last = path.substr(start);
  std::size_t dot = last.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || last == "..") return path;
  return path.substr(0, start + dot);
}

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t i = text.find_first_not_of(blanks);
  while (i != std::string_view::npos) {
    std::size_t end = std::min(text.find_first_of(blanks, i), text.size());
    words.push_back(text.substr(i, end - i));
    i = text.find_first_not_of(blanks, end);
  }
  return words;
}

// Characters that mean something to sh, wherever they are: a '#' or '~'
// mid-word is harmless, but a shell for it costs only a fork, and a finer
// check could be wrong.
bool has_shell_syntax(std::string_view text) {
  return text.find_first_of("|&;<>()$`\\\"'*?[]#~{}\n") != std::string_view::npos;
}

// sh runs these itself, so exec'ing a program of that name (if one exists)
// would do something else. echo, printf, test, kill and the like are
// builtins too, but behave as their programs do for grove's purposes.
bool is_shell_word(std::string_view word) {
  static constexpr std::string_view words[] = {
      "if",      "then",  "else",  "elif",     "fi",       "for",    "while",   "until",
      "do",      "done",  "case",  "esac",     "function", "cd",     "export",  "set",
      "unset",   "exec",  "eval",  "source",   ".",        "alias",  "unalias", "read",
      "ulimit",  "umask", "trap",  "wait",     "exit",     "return", "shift",   "!",
      "[[",      ":",     "break", "continue", "readonly", "times",  "local",   "command",
      "getopts", "hash",  "type",  "jobs"};
  return std::ranges::find(words, word) != std::end(words);
}

}  // namespace

command_template::command_template(std::string text) : text_(std::move(text)) {
  if (text_.find_first_not_of(" \t\n\v\f\r") == std::string::npos)
    throw std::invalid_argument("grove: the command is empty");
  whole_ = parse(text_);
  for (std::string_view w : split_words(text_)) words_.push_back(parse(w));
  placeholders_ = has_placeholder(whole_);
  shell_ = needs_shell();
}

bool command_template::needs_shell() const {
  std::string bare;  // the text without its placeholders
  for (const piece& p : whole_) bare += p.literal;
  if (has_shell_syntax(bare)) return true;
  // A placeholder in the first word could bring an assignment or a
  // builtin's name with the value; only sh can tell what it becomes.
  const pieces& first = words_.front();
  if (has_placeholder(first)) return true;
  std::string_view word = first.front().literal;
  return word.find('=') != std::string_view::npos || is_shell_word(word);
}

// Unknown brace text ({foo}, {1}) stays literal, as GNU parallel leaves it.
command_template::pieces command_template::parse(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, placeholder>, 6> names = {{
      {"{}", placeholder::arg},
      {"{.}", placeholder::no_ext},
      {"{/}", placeholder::base},
      {"{//}", placeholder::dir},
      {"{/.}", placeholder::base_no_ext},
      {"{#}", placeholder::seq},
  }};
  pieces out;
  std::string literal;
  for (std::size_t i = 0; i < text.size();) {
    auto match = std::find_if(names.begin(), names.end(),
                              [&](const auto& n) { return text.substr(i).starts_with(n.first); });
    if (match == names.end()) {
      literal += text[i++];
      continue;
    }
    if (!literal.empty()) out.push_back({placeholder::none, std::exchange(literal, {})});
    out.push_back({match->second, {}});
    i += match->first.size();
  }
  if (!literal.empty()) out.push_back({placeholder::none, std::move(literal)});
  return out;
}

bool command_template::has_placeholder(const pieces& p) {
  return std::any_of(p.begin(), p.end(),
                     [](const piece& x) { return x.kind != placeholder::none; });
}

std::string command_template::value(placeholder kind, const job_input& in) {
  switch (kind) {
    case placeholder::none:
      break;
    case placeholder::arg:
      return in.arg;
    case placeholder::no_ext:
      return std::string(without_extension(in.arg));
    case placeholder::base:
      return std::string(base_name(in.arg));
    case placeholder::dir:
      return std::string(dir_name(in.arg));
    case placeholder::base_no_ext:
      return std::string(without_extension(base_name(in.arg)));
    case placeholder::seq:
      return std::to_string(in.seq);
  }
  return {};
}

std::string command_template::fill(const pieces& p, const job_input& in, bool quote) {
  std::string out;
  for (const piece& x : p) {
    if (x.kind == placeholder::none)
      out += x.literal;
    else
      out += quote ? shell_quote(value(x.kind, in)) : value(x.kind, in);
  }
  return out;
}

std::vector<std::string> command_template::argv_for(const job_input& in) const {
  if (shell_) return {"/bin/sh", "-c", text_for(in)};
  std::vector<std::string> argv;
  for (const pieces& w : words_) argv.push_back(fill(w, in, false));
  if (!placeholders_) argv.push_back(in.arg);
  return argv;
}

std::string command_template::text_for(const job_input& in) const {
  std::string out;
  if (shell_) {
    out = fill(whole_, in, true);
  } else {
    // Direct words are plain (no shell syntax), so only the values need quotes.
    for (const pieces& w : words_) out += (out.empty() ? "" : " ") + fill(w, in, true);
  }
  if (!placeholders_) out += " " + shell_quote(in.arg);
  return out;
}

std::string shell_quote(std::string_view s) {
  auto safe = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("_@%+=:,./-").find(c) != std::string_view::npos;
  };
  if (!s.empty() && std::all_of(s.begin(), s.end(), safe)) return std::string(s);
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace grove::cli
