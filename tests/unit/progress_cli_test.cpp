// `-P` through the real binary (issue 13 §2): restore, verify and offload
// draw their progress on stderr, and -P changes nothing on stdout. Two
// sandboxes run the same commands, one with -P and one without; their
// stdout, text and --json alike, must be identical once the sandbox path
// is taken out. Nothing here depends on how long anything took.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "loop_util.hpp"

namespace {

using sq::test::CliResult;
using sq::test::LoopSandbox;
using sq::test::noise;
using ::testing::HasSubstr;
using ::testing::Not;

class ProgressCli : public ::testing::Test {
 protected:
  LoopSandbox plain, with_p;

  void SetUp() override {
    for (auto* sb : {&plain, &with_p}) {
      sb->put("a.txt", "alpha");
      sb->put("dir/b.bin", noise(200000, 2));
      sb->put("dir/sub/c.txt", "charlie");
      sb->ok({"index", "photos"});
      sb->ok({"sync", "--init"});
    }
  }

  // The command in both sandboxes, -P only in one; their stdout must be
  // the same. Returns the stderr of the -P run.
  std::string same_stdout(const std::vector<std::string>& args) {
    auto a = plain.ok(args);
    auto progress_args = args;
    progress_args.push_back("-P");
    auto b = with_p.ok(progress_args);
    EXPECT_EQ(normal(a.out, plain), normal(b.out, with_p)) << ::testing::PrintToString(args);
    EXPECT_THAT(a.err, Not(HasSubstr("files ·"))) << "no -P on a pipe: no progress line";
    return b.err;
  }

  static std::string normal(std::string s, const LoopSandbox& sb) {
    const auto root = sb.root().string();
    for (auto at = s.find(root); at != std::string::npos; at = s.find(root)) s.replace(at, root.size(), "<root>");
    return s;
  }
};

}  // namespace

TEST_F(ProgressCli, VerifyShowsBothPhasesOnStderrAndLeavesStdoutAlone) {
  auto err = same_stdout({"verify", "usb", "--full"});
  EXPECT_THAT(err, HasSubstr("verify usb: checking 3/3 files"));
  EXPECT_THAT(err, HasSubstr("verify usb: re-hashing 3/3 files"));
  EXPECT_THAT(err, HasSubstr("ETA"));
  same_stdout({"verify", "usb", "--full", "--json"});
}

TEST_F(ProgressCli, OffloadShowsFilesBytesRateAndEtaOnStderrAndLeavesStdoutAlone) {
  auto err = same_stdout({"offload", "photos", "dir"});
  EXPECT_THAT(err, HasSubstr("offloading 2/2 files"));
  EXPECT_THAT(err, HasSubstr("/s"));
  EXPECT_THAT(err, HasSubstr("ETA"));
  same_stdout({"offload", "photos", ".", "--json"});
}

TEST_F(ProgressCli, RestoreShowsFilesBytesRateAndEtaOnStderrAndLeavesStdoutAlone) {
  for (auto* sb : {&plain, &with_p}) sb->ok({"offload", "photos", "."});
  auto err = same_stdout({"restore", "photos", "dir"});
  EXPECT_THAT(err, HasSubstr("restoring 2/2 files"));
  EXPECT_THAT(err, HasSubstr("ETA"));
  same_stdout({"restore", "photos", "--json"});
}
