// Restore brings back deleted files (issue 12 §2, §7): a file deleted by
// mistake, that the index now calls missing, comes back when named by path
// or folder and with --missing; a restore of the whole volume does not
// resurrect what the user deleted. Selectors that name nothing are an
// error, a dry run predicts the real run, and a killed restore --to can be
// run again as it is.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/restore/internal.hpp"
#include "loop_util.hpp"

namespace {

namespace fs = std::filesystem;
using sq::test::LoopSandbox;
using sq::test::read_file;
using sq::test::user_files;
using ::testing::HasSubstr;

class RestoreMissing : public ::testing::Test {
 protected:
  LoopSandbox sb;

  void SetUp() override {
    sb.put("a.txt", "alpha");
    sb.put("dir/b.txt", "bravo");
    sb.put("dir/c.txt", "charlie");
    sb.put("keep.txt", "kept");
    sb.ok({"index", "photos"});
    sb.ok({"sync", "--init"});
  }

  void delete_by_mistake(const std::vector<std::string>& rels) {
    for (const auto& r : rels) fs::remove(sb.vol(r));
    sb.ok({"index", "photos"});
    for (const auto& r : rels) ASSERT_EQ(sb.status_of(r), "missing") << r;
  }
};

TEST_F(RestoreMissing, AFileDeletedByMistakeComesBackByPathAndIsPresentAgain) {
  delete_by_mistake({"a.txt"});
  auto r = sb.json({"restore", "photos", "a.txt"});
  EXPECT_EQ(r.at("restored"), 1) << r.dump(2);
  EXPECT_EQ(r.at("revived"), 1);
  EXPECT_EQ(read_file(sb.vol("a.txt")), "alpha");
  EXPECT_EQ(sb.status_of("a.txt"), "present");
}

TEST_F(RestoreMissing, AFolderSelectorBringsBackItsDeletedFiles) {
  delete_by_mistake({"dir/b.txt", "dir/c.txt"});
  auto r = sb.json({"restore", "photos", "dir"});
  EXPECT_EQ(r.at("restored"), 2) << r.dump(2);
  EXPECT_EQ(read_file(sb.vol("dir/b.txt")), "bravo");
  EXPECT_EQ(read_file(sb.vol("dir/c.txt")), "charlie");
}

TEST_F(RestoreMissing, MissingFlagRestoresEveryMissingFileAndAPlainRestoreNone) {
  delete_by_mistake({"a.txt", "dir/b.txt"});
  auto plain = sb.json({"restore", "photos"});
  EXPECT_EQ(plain.at("restored"), 0) << "a whole-volume restore resurrected deleted files: " << plain.dump(2);
  EXPECT_FALSE(fs::exists(sb.vol("a.txt")));
  auto r = sb.json({"restore", "photos", "--missing"});
  EXPECT_EQ(r.at("restored"), 2) << r.dump(2);
  EXPECT_EQ(read_file(sb.vol("a.txt")), "alpha");
  EXPECT_EQ(read_file(sb.vol("dir/b.txt")), "bravo");
  EXPECT_EQ(sb.status_of("dir/b.txt"), "present");
}

TEST_F(RestoreMissing, SelectorsThatNameNothingOrLeaveTheVolumeAreErrorsThatChangeNothing) {
  auto runs_before = sb.runs().size();
  for (const std::string sel : {"../../etc", "/etc/passwd", "no/such"}) {
    auto r = sb.expect(1, {"restore", "photos", sel});
    EXPECT_THAT(r.err, HasSubstr(sel)) << r.err;
  }
  EXPECT_EQ(sb.runs().size(), runs_before);
}

TEST_F(RestoreMissing, ADryRunOnACompleteVolumePredictsWhatTheRealRunDoes) {
  auto dry = sb.json({"restore", "photos", "--dry-run"});
  auto real = sb.json({"restore", "photos"});
  EXPECT_EQ(dry.at("restored"), real.at("restored")) << dry.dump(2) << real.dump(2);
  EXPECT_EQ(dry.at("already_correct"), real.at("already_correct"));
  EXPECT_EQ(real.at("already_correct"), 4);
}

TEST_F(RestoreMissing, AKilledRestoreToADirectoryCanBeRunAgainAsItIs) {
  auto out = sb.root() / "out";
  fs::create_directories(out / "dir");
  sq::test::write_file(out / "dir" / sq::engine::restore_detail::temp_name(999, "b.txt"), "partial");
  auto r = sb.json({"restore", "photos", "--to", out.string()});
  EXPECT_EQ(r.at("restored"), 4) << r.dump(2);
  EXPECT_EQ(read_file(out / "dir" / "b.txt"), "bravo");
}

}  // namespace

namespace {

// Two index databases on one volume (issue 12 §7): the second is refused by
// the marker's index_db until `volumes adopt` moves the volume deliberately.
TEST(VolumeOwner, ASecondIndexDatabaseIsRefusedUntilItAdoptsTheVolume) {
  LoopSandbox sb;
  sb.put("a.txt", "alpha");
  sb.ok({"index", "photos"});
  auto marker = nlohmann::json::parse(read_file(sb.marker()));
  ASSERT_TRUE(marker.contains("index_db")) << marker.dump();
  auto other_db = (sb.root() / "db" / "other.db").string();
  auto with_other = [&](std::vector<std::string> args) {
    std::vector<std::string> all = {"--config", sb.config_path().string(), "--db", other_db};
    all.insert(all.end(), args.begin(), args.end());
    return sq::test::run_cli(all, sb.options());
  };
  auto refused = with_other({"index", "photos"});
  EXPECT_EQ(refused.status, 1);
  EXPECT_THAT(refused.err, HasSubstr("volumes adopt photos")) << refused.err;
  EXPECT_EQ(with_other({"volumes", "adopt", "photos"}).status, 0);
  EXPECT_EQ(with_other({"index", "photos"}).status, 0);
  auto first = sb.expect(1, {"index", "photos"});
  EXPECT_THAT(first.err, HasSubstr("another index database"));
}

}  // namespace
