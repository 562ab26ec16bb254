// The one progress renderer draws planned phases with totals, a rate and
// an estimate. Nothing here depends on how long anything took.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/progress.hpp"

using namespace sq;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

namespace {

// ---- the renderer ----------------------------------------------------------------

TEST(ProgressText, APlannedPhaseShowsFilesAndBytesOfTheirTotalsARateAndAnEstimate) {
  auto line = cli::progress_text("restoring", {3, 10, 1 << 20, 4 << 20}, "dir/a.bin", 2.0);
  EXPECT_EQ(line, "restoring 3/10 files · 1.0 MiB of 4.0 MiB · 512.0 KiB/s · ETA 6s · dir/a.bin");
}

TEST(ProgressText, APlanWithoutBytesEstimatesFromTheFileCount) {
  auto line = cli::progress_text("verify usb: checking", {50, 200, 0, 0}, "v/a", 1.0);
  EXPECT_EQ(line, "verify usb: checking 50/200 files · 50 files/s · ETA 3s · v/a");
}

TEST(ProgressText, AFinishedPhaseHasNothingLeft) {
  auto line = cli::progress_text("offloading", {2, 2, 100, 100}, "b", 0.5);
  EXPECT_THAT(line, StartsWith("offloading 2/2 files · 100 B of 100 B · "));
  EXPECT_THAT(line, HasSubstr("ETA 0s"));
}

// The announcement of a phase: nothing done, no rate, no file yet.
TEST(ProgressText, NoRateYetMeansNoEstimateYet) {
  EXPECT_EQ(cli::progress_text("restoring", {0, 4, 0, 4096}, "", 0.0),
            "restoring 0/4 files · 0 B of 4.0 KiB · — /s · ETA —");
}

// index and audit discover as they go: no totals, no estimate (the line
// docs/cli.md shows for index).
TEST(ProgressText, AnUnplannedPhaseKeepsTheIndexLine) {
  auto line = cli::progress_text("indexing", {7, 0, 2048, 0}, "x/y", 1.0);
  EXPECT_EQ(line, "indexing: 7 files · 2.0 KiB · 2.0 KiB/s · x/y");
  EXPECT_THAT(line, Not(HasSubstr("ETA")));
}

}  // namespace
