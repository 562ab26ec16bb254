// The usual conventions (issue 14 §5): --version, `help <command>`, a "did
// you mean" for a mistyped command, bash completion generated from the
// command tree, and `volumes forget` for a volume that left the config.
// Through the real binary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include "loop_util.hpp"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using sq::test::CliSandbox;
using sq::test::LoopSandbox;

TEST(Conventions, VersionFlagPrintsTheVersion) {
  CliSandbox sb;
  auto r = sb.run_bare({"--version"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, std::string("squirrel v") + SQUIRREL_VERSION + "\n");
}

TEST(Conventions, HelpOfACommandIsItsOwnHelp) {
  CliSandbox sb;
  auto help = sb.run_bare({"help", "db", "restore"});
  auto flag = sb.run_bare({"db", "restore", "--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_EQ(help.out, flag.out);
  EXPECT_THAT(help.out, HasSubstr("--force"));
}

TEST(Conventions, AMistypedCommandGetsASuggestion) {
  CliSandbox sb;
  auto r = sb.run_bare({"indx", "photos"});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("did you mean `squirrel index`?"));
  r = sb.run_bare({"help", "sycn"});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("did you mean `squirrel sync`?"));
  r = sb.run_bare({"frobnicate"});
  EXPECT_THAT(r.err, Not(HasSubstr("did you mean")));
}

// Runs the generated completion in bash as the shell would: the words typed
// so far, then what it offers.
std::string complete(const std::string& words, int cword) {
  std::string script = "source <(\"$0\" completion bash) && COMP_WORDS=(" + words + ") && COMP_CWORD=" +
                       std::to_string(cword) + " && _squirrel && echo \"${COMPREPLY[*]}\"";
  int out[2];
  EXPECT_EQ(::pipe(out), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::execl("/bin/bash", "bash", "-c", script.c_str(), sq::test::squirrel_bin().c_str(), nullptr);
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return text;
}

TEST(Conventions, BashCompletesCommandsSubcommandsAndFlags) {
  EXPECT_EQ(complete("squirrel sy", 1), "sync\n");
  EXPECT_EQ(complete("squirrel db re", 2), "restore\n");
  EXPECT_EQ(complete("squirrel sync --in", 2), "--init\n");
  EXPECT_EQ(complete("squirrel --db x recover --exe", 4), "--execute\n");
}

TEST(Conventions, ForgetDropsAVolumeThatLeftTheConfigAndKeepsItsHistory) {
  LoopSandbox sb;
  sq::test::write_file(sb.vol("a.txt"), "alpha");
  sb.ok({"index", "photos"});
  auto refused = sb.expect(1, {"volumes", "forget", "photos"});
  EXPECT_THAT(refused.err, HasSubstr("still declared in"));
  sb.write_config_raw("");  // the volume left the config
  auto r = sb.ok({"volumes", "forget", "photos"});
  EXPECT_THAT(r.out, HasSubstr("forgotten"));
  EXPECT_TRUE(sb.json({"volumes"}).empty());
  auto all = sb.json({"volumes", "--all"});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_FALSE(all[0].at("forgotten_run").is_null());
  EXPECT_EQ(sb.status_of("a.txt"), "present");  // its history still answers
  EXPECT_THAT(sb.ok({"volumes", "forget", "photos"}).out, HasSubstr("already forgotten"));
  sb.configure("");  // back in the config: the next index makes it active again
  sb.ok({"index", "photos"});
  EXPECT_EQ(sb.json({"volumes"}).size(), 1u);
}

}  // namespace
