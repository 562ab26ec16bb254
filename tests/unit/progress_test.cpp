// `-P` progress (issue 13 §2): restore, verify and offload report files
// and bytes done of a plan made before the first file, and every phase
// ends with done equal to total whatever became of each file. The one
// renderer draws planned phases with totals, a rate and an estimate.
// Nothing here depends on how long anything took.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <numeric>

#include "cli/progress.hpp"
#include "engine/offload/offload.hpp"
#include "engine/restore/restore.hpp"
#include "engine/sync/verify.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;
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

// ---- the engines -----------------------------------------------------------------

struct Counts {
  std::int64_t files_done, files_total, bytes_done, bytes_total;
  bool operator==(const Counts&) const = default;
};
void PrintTo(const Counts& c, std::ostream* os) {
  *os << c.files_done << "/" << c.files_total << " files, " << c.bytes_done << "/" << c.bytes_total << " bytes";
}

// One phase as heard: announced with nothing done, totals fixed, done
// never going back; returns the last counts.
Counts phase_end(const std::vector<Counts>& heard, const std::string& what) {
  if (heard.empty()) {
    ADD_FAILURE() << what << ": no progress heard";
    return {};
  }
  EXPECT_EQ(heard.front().files_done, 0) << what << ": the plan is announced before the first file";
  EXPECT_EQ(heard.front().bytes_done, 0) << what;
  for (std::size_t i = 1; i < heard.size(); ++i) {
    EXPECT_EQ(heard[i].files_total, heard[0].files_total) << what;
    EXPECT_EQ(heard[i].bytes_total, heard[0].bytes_total) << what;
    EXPECT_GE(heard[i].files_done, heard[i - 1].files_done) << what;
    EXPECT_GE(heard[i].bytes_done, heard[i - 1].bytes_done) << what;
  }
  return heard.back();
}

const std::map<std::string, std::string> kFiles = {{"a.txt", "alpha"},
                                                   {"dir/b.bin", std::string(70000, 'b')},
                                                   {"dir/sub/c.bin", std::string(300001, 'c')},
                                                   {"empty", ""},
                                                   {"z.txt", "zulu"}};

std::int64_t bytes_of(const std::set<std::string>& paths) {
  std::int64_t n = 0;
  for (const auto& p : paths) n += static_cast<std::int64_t>(kFiles.at(p).size());
  return n;
}
std::int64_t all_bytes() {
  return std::accumulate(kFiles.begin(), kFiles.end(), std::int64_t{0},
                         [](std::int64_t n, const auto& kv) { return n + static_cast<std::int64_t>(kv.second.size()); });
}
const std::int64_t kCount = static_cast<std::int64_t>(kFiles.size());

class EngineProgress : public ::testing::Test {
 protected:
  // On the real disk: offload trusts only evidence from a durable filesystem.
  SyncSandbox sb{"", fs::temp_directory_path()};
  std::map<std::string, std::vector<Counts>> heard;  // stage -> counts, in order

  void SetUp() override {
    auto text = SyncSandbox::config_text(sb.src(), sb.dest_root());
    sb.set_config(text.replace(text.find("sync_to = ['d']\n"), 16, "sync_to = ['d']\noffload_requires = ['d']\n"));
    for (const auto& [rel, bytes] : kFiles) sb.write(rel, bytes);
    ASSERT_EQ(sb.index().status, store::RunStatus::success);
    ASSERT_EQ(sb.sync_init().status, store::RunStatus::success);
  }

  engine::ProgressListener listener() {
    return [this](const engine::ProgressEvent& e) {
      heard[e.stage].push_back({e.files_done, e.files_total, e.bytes_done, e.bytes_total});
    };
  }

  engine::OffloadReport offload(const std::vector<std::string>& selectors, bool dry_run = false) {
    engine::OffloadOptions o;
    o.selectors = selectors;
    o.dry_run = dry_run;
    return engine::run_offload(sb.cfg(), sb.st(), "v", o, listener());
  }

  engine::RestoreReport restore(engine::RestoreOptions o = {}) {
    return engine::run_restore(sb.cfg(), sb.st(), "v", o, [this](const engine::RestoreEvent& e) {
      if (e.type == engine::RestoreEvent::Type::progress)
        heard["restore"].push_back({e.files_done, e.files_total, e.bytes_done, e.bytes_total});
    });
  }
};

}  // namespace

TEST_F(EngineProgress, VerifyFullChecksThenReHashesEveryCopyToTheLastByte) {
  engine::sync::VerifyOptions o;
  o.full = true;
  auto r = engine::sync::run_verify(sb.cfg(), sb.st(), "d", o, listener());
  ASSERT_TRUE(r.findings.empty());
  EXPECT_EQ(phase_end(heard["checking"], "checking"), (Counts{kCount, kCount, 0, 0}));
  EXPECT_EQ(phase_end(heard["re-hashing"], "re-hashing"), (Counts{kCount, kCount, all_bytes(), all_bytes()}));
  EXPECT_EQ(r.rehashed, kCount);
  EXPECT_EQ(r.bytes_rehashed, all_bytes());
}

// A partial pass plans its share before the first read; the plan is what
// it then re-hashes, no more and no less.
TEST_F(EngineProgress, APartialVerifyReachesTheTotalOfItsOwnPlan) {
  auto r = engine::sync::run_verify(sb.cfg(), sb.st(), "d", {}, listener());
  ASSERT_TRUE(r.findings.empty());
  EXPECT_EQ(phase_end(heard["checking"], "checking"), (Counts{kCount, kCount, 0, 0}));
  auto end = phase_end(heard["re-hashing"], "re-hashing");
  EXPECT_EQ(end, (Counts{r.rehashed, r.rehashed, r.bytes_rehashed, r.bytes_rehashed}));
  EXPECT_LT(r.rehashed, kCount);
}

// Offload of part of the volume, then a restore of the whole volume into
// itself: the restore's plan holds files already there (hashed, not
// fetched) and offloaded ones (fetched); both count to the total.
TEST_F(EngineProgress, OffloadAndRestoreCountEveryFileOnceWhateverBecameOfIt) {
  auto off = offload({"dir"});
  ASSERT_EQ(off.offloaded, 2);
  std::int64_t dir_bytes = bytes_of({"dir/b.bin", "dir/sub/c.bin"});
  EXPECT_EQ(phase_end(heard["offloading"], "offloading"), (Counts{2, 2, dir_bytes, dir_bytes}));

  auto rest = restore();
  ASSERT_EQ(rest.status, store::RunStatus::success);
  EXPECT_EQ(rest.restored, 2);
  EXPECT_EQ(rest.already_correct, kCount - 2);
  EXPECT_EQ(phase_end(heard["restore"], "restore"), (Counts{kCount, kCount, all_bytes(), all_bytes()}));
}

// Files the look at the destination keeps (a copy went missing after the
// sync, which latches the alarm for the rest of the run) are still done
// once each: the phase reaches its total.
TEST_F(EngineProgress, FilesKeptBecauseACopyWentMissingStillCountAsDone) {
  fs::remove(sb.vdest() / "a.txt");
  auto off = offload({"."});
  EXPECT_TRUE(fs::exists(sb.src() / "a.txt"));
  EXPECT_LT(off.offloaded, kCount);
  EXPECT_EQ(phase_end(heard["offloading"], "offloading"), (Counts{kCount, kCount, all_bytes(), all_bytes()}));
}

TEST_F(EngineProgress, ADryRunOffloadReadsNothingAndReportsNoProgress) {
  auto off = offload({"."}, true);
  EXPECT_EQ(off.offloaded, kCount);
  EXPECT_TRUE(heard.empty());
}

TEST_F(EngineProgress, ARestoreWithoutAnIndexCountsTheMirrorsFiles) {
  sb.close();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(sb.db_path().string() + suffix);
  sb.open();
  engine::RestoreOptions o;
  o.to = (sb.tmp() / "out").string();
  auto rest = restore(o);
  ASSERT_TRUE(rest.without_index);
  EXPECT_EQ(rest.restored, kCount);
  EXPECT_EQ(phase_end(heard["restore"], "restore"), (Counts{kCount, kCount, all_bytes(), all_bytes()}));
}
