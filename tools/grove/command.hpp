// grove's command templates: GNU parallel's placeholders ({}, {.}, {/},
// {//}, {/.}, {#}) filled in per job, run directly when /bin/sh would run
// exactly the same words and through it otherwise.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace grove::cli {

// One job's input: its sequence number (from 1) and its argument.
struct job_input {
  std::size_t seq = 0;
  std::string arg;
};

// A command template: the command words from the command line, joined with
// single spaces (as GNU parallel does).
class command_template {
 public:
  // Throws std::invalid_argument("grove: the command is empty") when the
  // text is empty or only whitespace.
  explicit command_template(std::string text);

  // True when the template needs /bin/sh: shell syntax, an assignment or a
  // shell keyword or builtin first, or a placeholder in the first word (the
  // value could be any of those).
  bool uses_shell() const noexcept { return shell_; }

  // What to exec for this job. Direct: the template's words, placeholders
  // replaced verbatim (a value with spaces stays one entry). Shell:
  // {"/bin/sh", "-c", text_for(in)}.
  std::vector<std::string> argv_for(const job_input& in) const;

  // The command line as shown to users (--dry-run, the joblog): values
  // shell-quoted where needed, so pasting it into sh runs the same command.
  std::string text_for(const job_input& in) const;

  const std::string& text() const noexcept { return text_; }

 private:
  enum class placeholder { none, arg, no_ext, base, dir, base_no_ext, seq };
  // Literal text, or one placeholder.
  struct piece {
    placeholder kind = placeholder::none;
    std::string literal;
  };
  using pieces = std::vector<piece>;

  static pieces parse(std::string_view text);
  bool needs_shell() const;
  static bool has_placeholder(const pieces& p);
  static std::string value(placeholder kind, const job_input& in);
  static std::string fill(const pieces& p, const job_input& in, bool quote);

  std::string text_;
  pieces whole_;               // the text as it is, for the shell
  std::vector<pieces> words_;  // split on blanks, for direct runs
  bool placeholders_ = false;
  bool shell_ = false;
};

// Quotes s for /bin/sh: unchanged if it consists only of
// [A-Za-z0-9_@%+=:,./-] and is non-empty; else in single quotes, each '
// written as '\''. Empty: ''.
std::string shell_quote(std::string_view s);

}  // namespace grove::cli
