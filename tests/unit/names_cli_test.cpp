// Issue 12 §4 through the real binary: an index that finds a reserved name
// fails with one line and status is not green.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_util.hpp"

using namespace sq::test;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

// A CLI sandbox whose volume `photos` syncs to a local mirror `usb`, with
// one file indexed and synced.
void synced_sandbox(const CliSandbox& sb) {
  auto dest = sb.root() / "usb";
  fs::create_directories(dest);
  sb.write_config("sync_to = [\"usb\"]\n\n[destinations.usb]\ntype = \"local\"\nroot = \"" + dest.string() + "\"\n");
  sb.put("photo.jpg", "P");
  ASSERT_EQ(sb.run({"index", "photos"}).status, 0);
  ASSERT_EQ(sb.run({"sync", "photos", "--init"}).status, 0);
}

}  // namespace

// The warning names the entry, the command fails with one line, and
// `status --json` counts it.
TEST(ReservedNamesCli, IndexFailsWithOneLineAndStatusIsNotGreen) {
  CliSandbox sb;
  ASSERT_NO_FATAL_FAILURE(synced_sandbox(sb));
  ASSERT_EQ(sb.run({"status", "photos"}).status, 0);

  sb.put(".squirrel-staging/x", "S");
  auto index = sb.run({"index", "photos"});
  EXPECT_EQ(index.status, 1);
  EXPECT_THAT(index.err, HasSubstr("warning: .squirrel-staging: squirrel reserves this name"));
  EXPECT_THAT(index.out, HasSubstr("reserved=1"));
  ASSERT_EQ(index.error_lines().size(), 1u) << index.err;
  EXPECT_THAT(index.error_lines()[0], HasSubstr("1 entry under names squirrel reserves"));
  auto status = sb.run({"status", "photos", "--json"});
  EXPECT_EQ(status.status, 1);
  auto j = nlohmann::json::parse(status.out);
  EXPECT_EQ(j["volumes"][0]["unprotected"], 1);
  EXPECT_EQ(j["volumes"][0]["light"], "amber");
}
