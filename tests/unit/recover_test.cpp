// Disaster recovery that carries on (issue 14 §1): after the machine (its
// database and the volume's files) is lost, `recover --from <dest>` brings
// the index back from the snapshot the syncs left there, and `restore`,
// then `sync` to the same destination simply work. A mirror squirrel has no
// ledger for (a volume restored on a fresh machine) is adopted copy by copy:
// receipt + index + read-back, never on trust. Through the real binary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "loop_util.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using sq::test::LoopSandbox;
using sq::test::read_file;
using sq::test::user_files;
using sq::test::write_file;

class Recover : public ::testing::Test {
 protected:
  LoopSandbox sb;

  void SetUp() override {
    write_file(sb.vol("2019/a.jpg"), "alpha bytes");
    write_file(sb.vol("2019/b.jpg"), "bravo bytes");
    write_file(sb.vol("2020/c.jpg"), "charlie bytes");
    write_file(sb.vol("notes.txt"), "delta");
    sb.ok({"index", "photos"});
    sb.ok({"sync", "--init"});
  }

  // The machine is gone: its database (with the local snapshots beside it)
  // and everything in the volume folder, which stays as an empty folder.
  void lose_the_machine() {
    fs::remove_all(sb.db_path().parent_path());
    fs::create_directories(sb.db_path().parent_path());
    for (const auto& e : fs::directory_iterator(sb.volume_dir())) fs::remove_all(e.path());
  }

  std::int64_t highest_run() { return sb.runs().back().at("id").get<std::int64_t>(); }
};

TEST_F(Recover, TheWholeStoryEndsByteIdenticalOnTheSameDestination) {
  sb.ok({"offload", "photos", "2019"});
  ASSERT_FALSE(fs::exists(sb.vol("2019/a.jpg")));
  auto before = user_files(sb.vdest());
  lose_the_machine();

  sb.ok({"recover", "--from", "usb", "--execute"});
  EXPECT_TRUE(fs::exists(sb.marker()));
  sb.ok({"restore", "photos"});
  EXPECT_EQ(user_files(sb.volume_dir()), before);

  write_file(sb.vol("notes.txt"), "delta, edited after the recovery");
  write_file(sb.vol("2021/new.jpg"), "echo bytes");
  sb.ok({"backup"});
  auto verify = sb.json({"verify", "usb", "--full"});
  EXPECT_TRUE(verify[0].at("findings").empty()) << verify.dump();
  EXPECT_EQ(user_files(sb.vdest()), user_files(sb.volume_dir()));
  EXPECT_EQ(read_file(sb.vdest() / "notes.txt"), "delta, edited after the recovery");
  EXPECT_EQ(sb.json({"status"}).at("overall"), "green");
}

TEST_F(Recover, ListingChangesNothingAndShowsTheNewestSnapshotFirst) {
  write_file(sb.vol("later.txt"), "foxtrot");
  sb.ok({"index", "photos"});
  sb.ok({"sync", "photos"});
  auto state = sq::test::db_state(sb.db_path());
  auto runs = sb.runs().size();
  auto plan = sb.json({"recover", "--from", "usb"});
  ASSERT_EQ(plan.at("snapshots").size(), 2u) << plan.dump();
  EXPECT_GT(plan["snapshots"][0].at("run_id").get<std::int64_t>(), plan["snapshots"][1].at("run_id").get<std::int64_t>());
  EXPECT_EQ(plan["snapshots"][0].at("number"), 1);
  EXPECT_EQ(sq::test::db_state(sb.db_path()), state);
  EXPECT_EQ(sb.runs().size(), runs);
}

TEST_F(Recover, AskingWithoutATerminalReplacesNothing) {
  auto state = sq::test::db_state(sb.db_path());
  auto r = sb.expect(1, {"recover", "--from", "usb", "--execute"});
  EXPECT_THAT(r.err, HasSubstr("--yes"));
  EXPECT_EQ(sq::test::db_state(sb.db_path()), state);
  int kept = 0;
  for (const auto& e : fs::directory_iterator(sb.db_path().parent_path()))
    kept += e.path().filename().string().find("pre-restore") != std::string::npos;
  EXPECT_EQ(kept, 0);
}

TEST_F(Recover, ReplacingALiveDatabaseKeepsTheOldFile) {
  write_file(sb.vol("later.txt"), "foxtrot");
  sb.ok({"index", "photos"});  // the live database knows more than the snapshot
  auto r = sb.ok({"recover", "--from", "usb", "--execute", "--yes"});
  EXPECT_THAT(r.out, HasSubstr("previous database kept at"));
  int kept = 0;
  for (const auto& e : fs::directory_iterator(sb.db_path().parent_path()))
    kept += e.path().filename().string().find("index.db.pre-restore-") == 0;
  EXPECT_EQ(kept, 1);
  sb.expect(1, {"query", sb.vol("later.txt").string()});  // the snapshot's index is the live one now
}

TEST_F(Recover, AFolderThatHoldsFilesGetsNoMarker) {
  lose_the_machine();
  write_file(sb.vol("stray.txt"), "not the volume");
  auto r = sb.expect(1, {"recover", "--from", "usb", "--execute"});
  EXPECT_THAT(r.out, HasSubstr("holds-files"));
  EXPECT_FALSE(fs::exists(sb.marker()));
}

TEST_F(Recover, AMissingFolderIsNotCreated) {
  lose_the_machine();
  fs::remove(sb.volume_dir());
  auto r = sb.expect(1, {"recover", "--from", "usb", "--execute"});
  EXPECT_THAT(r.out, HasSubstr("folder-missing"));
  EXPECT_FALSE(fs::exists(sb.volume_dir()));
}

TEST_F(Recover, AChosenSnapshotThatIsNotADatabaseIsRefused) {
  lose_the_machine();
  write_file(sb.vdest() / ".squirrel-index" / "index-20991231T000000.000Z-run-99.db", "not sqlite");
  auto r = sb.expect(1, {"recover", "--from", "usb", "--execute", "--snapshot", "1"});
  EXPECT_THAT(r.err, HasSubstr("cannot be installed"));
  EXPECT_FALSE(fs::exists(sb.db_path()));
  // Without a choice the damaged newest one is skipped, loudly.
  r = sb.ok({"recover", "--from", "usb", "--execute"});
  EXPECT_THAT(r.err, HasSubstr("skipped"));
  EXPECT_TRUE(fs::exists(sb.marker()));
}

TEST_F(Recover, RunsContinueAboveEveryRunTheDestinationNames) {
  write_file(sb.vol("later.txt"), "foxtrot");
  sb.ok({"index", "photos"});
  sb.ok({"sync", "photos"});
  auto named = highest_run();
  // Only the first snapshot survives: the later push is unknown to it.
  for (const auto& e : fs::directory_iterator(sb.vdest() / ".squirrel-index"))
    if (e.path().filename().string().find("-run-" + std::to_string(named) + ".db") != std::string::npos)
      fs::remove(e.path());
  lose_the_machine();
  auto r = sb.ok({"recover", "--from", "usb", "--execute"});
  EXPECT_THAT(r.out, HasSubstr("newer than any push this index knows"));
  EXPECT_GT(highest_run(), named);
}

// ---- adoption ---------------------------------------------------------------

class Adopt : public Recover {
 protected:
  // The guide's fresh-machine path: no database, restore reads the mirror
  // and its receipts, then a first index.
  void restore_on_a_fresh_machine(int restore_status = 0) {
    lose_the_machine();
    sb.expect(restore_status, {"restore", "photos"});
    sb.ok({"index", "photos"});
  }
};

TEST_F(Adopt, TheDiskAVolumeWasRestoredFromTakesTheNextSync) {
  restore_on_a_fresh_machine();
  auto dry = sb.json({"sync", "--dry-run"});
  EXPECT_EQ(dry[0].at("planned"), 0) << dry.dump();
  EXPECT_EQ(dry[0].at("adopted"), 4);
  auto real = sb.json({"sync"});
  EXPECT_EQ(real[0].at("status"), "success") << real.dump();
  EXPECT_EQ(real[0].at("adopted"), 4);
  EXPECT_EQ(real[0].at("written"), 0);
  EXPECT_EQ(real[0].at("method"), "fingerprint-verified");
  EXPECT_TRUE(sb.json({"verify", "usb", "--full"})[0].at("findings").empty());
}

TEST_F(Adopt, ACopyThatDoesNotHoldWhatItsReceiptVouchesForStaysForeign) {
  restore_on_a_fresh_machine();
  sq::test::rewrite_same_size_and_mtime(sb.vdest() / "2019/a.jpg", "ALPHA BYTES");
  auto real = sb.json({"sync"});
  EXPECT_EQ(real[0].at("status"), "success") << real.dump();
  EXPECT_EQ(real[0].at("adopted"), 3);
  EXPECT_EQ(real[0].at("written"), 1);
  EXPECT_EQ(real[0].at("displaced_unrecorded"), 1);  // kept in history, never deleted
  EXPECT_EQ(read_file(sb.vdest() / "2019/a.jpg"), "alpha bytes");
  auto run = std::to_string(real[0].at("run_id").get<std::int64_t>());
  EXPECT_EQ(read_file(sb.vdest() / ".squirrel-history" / ("run-" + run) / "2019/a.jpg"), "ALPHA BYTES");
}

TEST_F(Adopt, ASyncKilledWhileAdoptingGoesOnWhereItStopped) {
  restore_on_a_fresh_machine();
  ASSERT_EQ(sb.json({"sync"})[0].at("adopted"), 4);
  {  // what a kill -9 after the first batch leaves: some copies recorded, no successful push
    auto db = sq::store::Db::open(sb.db_path(), {.create = false, .read_only = false});
    db.exec("UPDATE runs SET status = 'aborted' WHERE kind = 'sync'");
    db.exec("DELETE FROM remote_paths WHERE id IN (SELECT id FROM remote_paths ORDER BY id LIMIT 2)");
  }
  auto again = sb.json({"sync"});
  EXPECT_EQ(again[0].at("status"), "success") << again.dump();
  EXPECT_EQ(again[0].at("adopted"), 2);
  EXPECT_EQ(again[0].at("written"), 0);
  EXPECT_EQ(again[0].at("displaced_unrecorded"), 0);  // the rest are not mistaken for foreign files
}

TEST_F(Adopt, ATreeWithoutReceiptsIsRefusedAndTheDryRunSaysSoToo) {
  fs::remove_all(sb.vdest() / ".squirrel-index");
  restore_on_a_fresh_machine(1);  // restored, but nothing vouches for the bytes
  auto state = sq::test::db_state(sb.db_path());
  auto dry = sb.expect(1, {"sync", "--dry-run"});
  EXPECT_THAT(dry.err, HasSubstr("a mirror does not adopt a foreign tree"));
  auto real = sb.expect(1, {"sync"});
  EXPECT_THAT(real.err, HasSubstr("a mirror does not adopt a foreign tree"));
  EXPECT_EQ(sq::test::db_state(sb.db_path()), state);
}

TEST_F(Adopt, ANewDatabaseNeverReusesARunIdTheMirrorNames) {
  auto named = highest_run();
  restore_on_a_fresh_machine();
  auto real = sb.json({"sync"});
  EXPECT_GT(real[0].at("run_id").get<std::int64_t>(), named);
  EXPECT_GT(sb.runs().front().at("id").get<std::int64_t>(), named);  // the restore's run already
}

}  // namespace
