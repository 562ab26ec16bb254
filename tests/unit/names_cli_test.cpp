// Issue 12 §4 and §6 through the real binary: an index that finds a
// reserved name fails with one line and status is not green; an index-less
// restore of a file no receipt vouches for fails with one line.
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

// A file no receipt vouches for still comes back, but the command says so
// in one line and fails.
TEST(ReceiptNamesCli, ARestoreOfAFileNoReceiptVouchesForFails) {
  CliSandbox sb;
  ASSERT_NO_FATAL_FAILURE(synced_sandbox(sb));
  write_file(sb.root() / "usb" / "photos" / "stranger.jpg", "nobody vouches for me");
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(sb.db_path().string() + suffix);

  auto r = sb.run({"restore", "photos", "--to", (sb.root() / "out").string()});
  EXPECT_EQ(r.status, 1);
  ASSERT_EQ(r.error_lines().size(), 1u) << r.err;
  EXPECT_THAT(r.error_lines()[0], HasSubstr("restored 1 file(s) that no receipt vouches for"));
  EXPECT_EQ(read_file(sb.root() / "out" / "stranger.jpg"), "nobody vouches for me");
  EXPECT_THAT(r.out, HasSubstr("unnamed=1"));
}
