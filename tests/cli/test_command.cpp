// Command templates (tools/grove/command.hpp): every placeholder, the
// argument appended when there is none, quoting, when the shell is needed,
// and real runs through /bin/sh showing that a hostile value stays a value.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "command.hpp"

namespace grove::cli {
namespace {

using strings = std::vector<std::string>;

struct run_result {
  int status = -1;
  std::string out;
};

// Runs argv (argv[0] searched in PATH) and collects its stdout.
run_result run(const strings& args) {
  strings copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  run_result r;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    r.out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  ::waitpid(pid, &r.status, 0);
  return r;
}

std::string arg_of(const std::string& tmpl, std::string arg, std::size_t seq = 1) {
  command_template t(tmpl);
  strings argv = t.argv_for({seq, std::move(arg)});
  EXPECT_FALSE(t.uses_shell()) << tmpl;
  EXPECT_EQ(argv.size(), 2u) << tmpl;
  return argv.size() == 2 ? argv[1] : "";
}

// Values that would do something if the shell saw them unquoted.
const strings hostile = {
    "$(echo pwned)",
    "`echo pwned`",
    "a b",
    "it's",
    "'; echo pwned; '",
    "\"$HOME\"",
    "*",
    "x\ny",
    "a\\b",
    "",
    "-n",
    "~",
    "{}",
    "#c",
    "a;b|c&d>e<f",
    "'\\''",
    "é",
};

TEST(command_template, an_empty_or_blank_command_is_refused) {
  for (const char* text : {"", " ", "\t \n"}) {
    try {
      command_template t(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_STREQ(e.what(), "grove: the command is empty");
    }
  }
}

TEST(command_template, text_is_the_template_as_given) {
  EXPECT_EQ(command_template("echo  {} | cat").text(), "echo  {} | cat");
}

TEST(command_template, braces_are_the_argument_verbatim_in_one_entry) {
  command_template t("echo {}");
  EXPECT_FALSE(t.uses_shell());
  EXPECT_EQ(t.argv_for({1, "a b"}), (strings{"echo", "a b"}));
  EXPECT_EQ(t.argv_for({1, "$HOME *"}), (strings{"echo", "$HOME *"}));
  EXPECT_EQ(t.argv_for({1, ""}), (strings{"echo", ""}));
}

TEST(command_template, dot_drops_the_extension_of_the_last_component) {
  EXPECT_EQ(arg_of("x {.}", "a/b.tar.gz"), "a/b.tar");
  EXPECT_EQ(arg_of("x {.}", "c.txt"), "c");
  EXPECT_EQ(arg_of("x {.}", "dir.d/file"), "dir.d/file");
  EXPECT_EQ(arg_of("x {.}", ".bashrc"), ".bashrc");
  EXPECT_EQ(arg_of("x {.}", "a/.bashrc"), "a/.bashrc");
  EXPECT_EQ(arg_of("x {.}", "a."), "a");
  EXPECT_EQ(arg_of("x {.}", ".."), "..");
  EXPECT_EQ(arg_of("x {.}", "a/b/"), "a/b/");
  EXPECT_EQ(arg_of("x {.}", ""), "");
}

TEST(command_template, slash_is_the_posix_basename) {
  EXPECT_EQ(arg_of("x {/}", "a/b/c.txt"), "c.txt");
  EXPECT_EQ(arg_of("x {/}", "c"), "c");
  EXPECT_EQ(arg_of("x {/}", "a/b/"), "b");
  EXPECT_EQ(arg_of("x {/}", "a/b//"), "b");
  EXPECT_EQ(arg_of("x {/}", "/c"), "c");
  EXPECT_EQ(arg_of("x {/}", "/"), "/");
  EXPECT_EQ(arg_of("x {/}", "//"), "/");
  EXPECT_EQ(arg_of("x {/}", ""), "");
}

TEST(command_template, double_slash_is_the_posix_dirname) {
  EXPECT_EQ(arg_of("x {//}", "a/b/c.txt"), "a/b");
  EXPECT_EQ(arg_of("x {//}", "c.txt"), ".");
  EXPECT_EQ(arg_of("x {//}", "/c"), "/");
  EXPECT_EQ(arg_of("x {//}", "a/b/"), "a");
  EXPECT_EQ(arg_of("x {//}", "a//b"), "a");
  EXPECT_EQ(arg_of("x {//}", "/"), "/");
  EXPECT_EQ(arg_of("x {//}", ""), ".");
}

TEST(command_template, slash_dot_is_the_basename_without_extension) {
  EXPECT_EQ(arg_of("x {/.}", "a/b/c.tar.gz"), "c.tar");
  EXPECT_EQ(arg_of("x {/.}", "dir.d/file"), "file");
  EXPECT_EQ(arg_of("x {/.}", "x/.bashrc"), ".bashrc");
  EXPECT_EQ(arg_of("x {/.}", "x/c.txt/"), "c");
}

TEST(command_template, hash_is_the_sequence_number) {
  command_template t("echo {#} {}");
  EXPECT_EQ(t.argv_for({1, "a"}), (strings{"echo", "1", "a"}));
  EXPECT_EQ(t.argv_for({2, "b"}), (strings{"echo", "2", "b"}));
  EXPECT_EQ(t.argv_for({1234, "c"}), (strings{"echo", "1234", "c"}));
  EXPECT_EQ(t.text_for({7, "d"}), "echo 7 d");
}

TEST(command_template, placeholders_combine_within_a_word) {
  command_template t("mv {} {//}/new-{/.}.{#}.bak");
  EXPECT_FALSE(t.uses_shell());
  EXPECT_EQ(t.argv_for({3, "my dir/f.txt"}), (strings{"mv", "my dir/f.txt", "my dir/new-f.3.bak"}));
  EXPECT_EQ(t.text_for({3, "my dir/f.txt"}), "mv 'my dir/f.txt' 'my dir'/new-f.3.bak");
}

TEST(command_template, without_a_placeholder_the_argument_is_appended_directly) {
  command_template t("echo");
  EXPECT_FALSE(t.uses_shell());
  EXPECT_EQ(t.argv_for({1, "a b"}), (strings{"echo", "a b"}));
  EXPECT_EQ(t.text_for({1, "a b"}), "echo 'a b'");
  EXPECT_EQ(t.argv_for({1, ""}), (strings{"echo", ""}));
  EXPECT_EQ(t.text_for({1, ""}), "echo ''");
}

TEST(command_template, without_a_placeholder_the_argument_is_appended_quoted_for_the_shell) {
  command_template t("cd /tmp && ls");
  ASSERT_TRUE(t.uses_shell());
  EXPECT_EQ(t.text_for({1, "a b"}), "cd /tmp && ls 'a b'");
  EXPECT_EQ(t.argv_for({1, "a b"}), (strings{"/bin/sh", "-c", "cd /tmp && ls 'a b'"}));
}

TEST(command_template, unknown_braces_are_literal_and_are_not_placeholders) {
  command_template t("echo {foo} {1} {}x{");
  ASSERT_TRUE(t.uses_shell());  // a brace left over means sh syntax
  EXPECT_EQ(t.text_for({1, "v"}), "echo {foo} {1} vx{");

  command_template none("echo {foo} {1}");
  EXPECT_TRUE(none.uses_shell());
  EXPECT_EQ(none.text_for({1, "a b"}), "echo {foo} {1} 'a b'");
  EXPECT_EQ(run(none.argv_for({1, "a b"})).out, "{foo} {1} a b\n");
}

TEST(command_template, direct_words_split_on_runs_of_blanks_only) {
  command_template t("  gzip \t -9\t{}  ");
  EXPECT_FALSE(t.uses_shell());
  EXPECT_EQ(t.argv_for({1, "my file"}), (strings{"gzip", "-9", "my file"}));
  EXPECT_EQ(t.text_for({1, "my file"}), "gzip -9 'my file'");
  EXPECT_EQ(command_template("a\rb {}").argv_for({1, "x"}), (strings{"a\rb", "x"}));
}

TEST(command_template, shell_text_keeps_the_template_and_quotes_every_value) {
  command_template t("echo  {}  {/} > out");
  ASSERT_TRUE(t.uses_shell());
  EXPECT_EQ(t.text_for({1, "d/a b"}), "echo  'd/a b'  'a b' > out");
  EXPECT_EQ(t.text_for({1, "plain"}), "echo  plain  plain > out");
  EXPECT_EQ(t.text_for({1, "it's"}), "echo  'it'\\''s'  'it'\\''s' > out");
  EXPECT_EQ(t.text_for({1, ""}), "echo  ''  '' > out");
}

TEST(shell_quote, leaves_safe_text_alone) {
  EXPECT_EQ(shell_quote("abcXYZ019_@%+=:,./-"), "abcXYZ019_@%+=:,./-");
}

TEST(shell_quote, wraps_everything_else_in_single_quotes) {
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("'"), "''\\'''");
  EXPECT_EQ(shell_quote("x\ny"), "'x\ny'");
  EXPECT_EQ(shell_quote("$HOME"), "'$HOME'");
  EXPECT_EQ(shell_quote("~"), "'~'");
  EXPECT_EQ(shell_quote("*"), "'*'");
  EXPECT_EQ(shell_quote("\xc3\xa9"), "'\xc3\xa9'");
}

TEST(shell_quote, round_trips_through_sh) {
  for (const std::string& v : hostile) {
    run_result r = run({"/bin/sh", "-c", "printf '%s|' " + shell_quote(v)});
    EXPECT_EQ(r.status, 0) << v;
    EXPECT_EQ(r.out, v + "|") << v;
  }
}

TEST(command_template, needs_no_shell_for_plain_words) {
  for (const char* text : {"echo {}", "gzip -9 {}", "echo", "cp {} {//}/backup-{/}",
                           "printf %s, {}", "ls -la", "/usr/bin/env", "a@b %c +d :e ,f"}) {
    EXPECT_FALSE(command_template(text).uses_shell()) << text;
  }
}

TEST(command_template, needs_the_shell_for_shell_syntax) {
  for (const char* text :
       {"echo {} > out", "cd /tmp && ls", "sh -c 'x'",  "echo \"{}\"", "a | b",
        "a; b",          "a & b",         "a < in",     "(a)",         "echo $HOME",
        "echo `a`",      "echo a\\ b",    "ls *",       "ls ?",        "ls [ab]",
        "echo # c",      "ls ~",          "echo {a,b}", "echo a\nls",  "echo {foo}"}) {
    EXPECT_TRUE(command_template(text).uses_shell()) << text;
  }
}

TEST(command_template, needs_the_shell_for_assignments_and_shell_words_first) {
  for (const char* text :
       {"FOO=1 env", "A=1 B=2 cmd {}", "cd /tmp", "export A", "exec ls", ". ./rc", "source rc",
        "if", "! true", "[[", "exit 1", "eval ls", "ulimit -n 10", "umask 022", "for", "while",
        "read x", ": {}", "shift"}) {
    EXPECT_TRUE(command_template(text).uses_shell()) << text;
  }
  // Only the first word counts.
  EXPECT_FALSE(command_template("env A=1 {}").uses_shell());
  EXPECT_FALSE(command_template("echo cd if").uses_shell());
  EXPECT_FALSE(command_template("ifconfig").uses_shell());
}

// The value could be an assignment or a builtin's name: only sh can tell.
TEST(command_template, needs_the_shell_for_a_placeholder_in_the_first_word) {
  for (const char* text : {"{}", "{} --version", "{//}/run.sh {}", "./{/}"}) {
    EXPECT_TRUE(command_template(text).uses_shell()) << text;
  }
  EXPECT_EQ(run(command_template("{} x").argv_for({1, "echo"})).out, "x\n");
}

TEST(command_template, a_hostile_value_stays_a_value_in_the_shell) {
  command_template t("printf '%s|' {} {/} | cat");
  ASSERT_TRUE(t.uses_shell());
  for (const std::string& v : hostile) {
    std::string base = v.find('/') == std::string::npos ? v : v.substr(v.rfind('/') + 1);
    run_result r = run(t.argv_for({1, v}));
    EXPECT_EQ(r.status, 0) << v;
    EXPECT_EQ(r.out, v + "|" + base + "|") << v;
  }
}

TEST(command_template, a_hostile_value_runs_nothing) {
  char dir[] = "/tmp/grove_command_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string mark = std::string(dir) + "/pwned";
  command_template t("echo {} ; true");
  for (const std::string& v : {"$(touch " + mark + ")", "`touch " + mark + "`", "x; touch " + mark,
                               "'; touch " + mark + "; '"}) {
    EXPECT_EQ(run(t.argv_for({1, v})).out, v + "\n") << v;
  }
  command_template appended("printf '%s\\n'");  // no placeholder: the value is appended
  EXPECT_TRUE(appended.uses_shell());
  std::string v = "; touch " + mark;
  EXPECT_EQ(run(appended.argv_for({1, v})).out, v + "\n");
  struct stat st{};
  EXPECT_NE(::stat(mark.c_str(), &st), 0) << "a value was run as a command";
  ::unlink(mark.c_str());
  ::rmdir(dir);
}

// The point of running directly: it must be what sh would run.
TEST(command_template, a_direct_run_matches_its_text_through_sh) {
  command_template t("printf %s, {} {/} {//} {.} {/.} {#}");
  ASSERT_FALSE(t.uses_shell());
  std::size_t seq = 0;
  for (const std::string& v : hostile) {
    job_input in{++seq, v};
    run_result direct = run(t.argv_for(in));
    run_result shell = run({"/bin/sh", "-c", t.text_for(in)});
    EXPECT_EQ(direct.status, 0) << v;
    EXPECT_EQ(direct.out, shell.out) << v;
  }
  command_template append("printf %s,");
  run_result direct = run(append.argv_for({1, "$(x) 'y'"}));
  EXPECT_EQ(direct.out, "$(x) 'y',");
  EXPECT_EQ(run({"/bin/sh", "-c", append.text_for({1, "$(x) 'y'"})}).out, direct.out);
}

}  // namespace
}  // namespace grove::cli
