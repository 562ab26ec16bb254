// `destination reset` — store::reset_destination and the CLI around it —
// and the CLI contract of `status` (exit codes without an "Error:" line,
// --json, unknown volume). Both drive the real binary (index, sync --init)
// in a sandbox and then read or change the database directly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <optional>

#include "cli_util.hpp"
#include "core/error.hpp"
#include "store/alarms.hpp"
#include "store/artifacts.hpp"
#include "store/evidence.hpp"
#include "store/reset.hpp"
#include "store/runs.hpp"
#include "store/store.hpp"
#include "store/volumes.hpp"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

namespace {

using Rows = std::vector<std::vector<store::Value>>;

struct Recorded {
  std::int64_t paths = 0, vector = 0, freshness = 0;
  bool operator==(const Recorded&) const = default;
};

// Volume photos syncing to two local mirrors, d and e, under the sandbox.
class ResetTest : public ::testing::Test {
 protected:
  CliSandbox sb;

  void SetUp() override {
    sb.write_config("sync_to = ['d', 'e']\n\n[destinations.d]\ntype = 'local'\nroot = '" +
                    (sb.root() / "dest").string() + "'\n\n[destinations.e]\ntype = 'local'\nroot = '" +
                    (sb.root() / "dest2").string() + "'\n");
    sb.put("a.txt", "alpha");
    sb.put("dir/b.txt", "bravo");
  }

  void index_and_sync() {
    ASSERT_EQ(sb.run({"index", "photos"}).status, 0);
    auto synced = sb.run({"sync", "photos", "--init"});
    ASSERT_EQ(synced.status, 0) << synced.err;
  }

  // The CLI's own node name (the host's), so the same self node is used.
  store::Store& db_store() {
    if (!st_) {
      store::StoreOptions o;
      o.create = false;
      st_.emplace(store::Store::open(sb.db_path(), o));
    }
    return *st_;
  }
  store::Db& db() { return db_store().db(); }

  std::int64_t count(const std::string& sql, const std::string& dest = "") {
    return dest.empty() ? db().query_i64(sql).value_or(-1) : db().query_i64(sql, {store::Value{dest}}).value_or(-1);
  }

  Recorded recorded(const std::string& dest) {
    return {count("SELECT count(*) FROM remote_paths WHERE destination = ?", dest),
            count("SELECT count(*) FROM destination_run_ids WHERE destination = ?", dest),
            count("SELECT count(*) FROM destination_push_freshness WHERE destination = ?", dest)};
  }

  Rows table(const std::string& name) {
    auto rows = db().query_rows("SELECT * FROM \"" + name + "\"");
    std::sort(rows.begin(), rows.end());
    return rows;
  }

  // Every row of every table, to prove that nothing changed.
  Rows everything() {
    Rows out;
    for (const auto& t : db().query_rows("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")) {
      auto rows = table(std::get<std::string>(t[0]));
      out.insert(out.end(), rows.begin(), rows.end());
    }
    return out;
  }

  std::int64_t last_sync_run() { return count("SELECT max(id) FROM runs WHERE kind = 'sync'"); }

  void raise_alarm(const std::string& dest) {
    store::Tx tx(db());
    store::raise_alarm_in_tx(db(), dest, "verify-mismatch", "a.txt changed at the destination", last_sync_run());
    tx.commit();
  }

 private:
  std::optional<store::Store> st_;
};

}  // namespace

// ---- store::reset_destination ----------------------------------------------------

TEST_F(ResetTest, ClearsExactlyTheThreeCategoriesOfThatDestination) {
  index_and_sync();
  raise_alarm("d");
  auto d_before = recorded("d"), e_before = recorded("e");
  ASSERT_GT(d_before.paths, 0);
  ASSERT_GT(d_before.vector, 0);
  ASSERT_GT(d_before.freshness, 0);
  auto history = table("destination_run_ids_history");
  auto files = table("files"), contents = table("contents"), alarms = table("destination_alarms");
  auto runs = count("SELECT count(*) FROM runs");
  auto audit = table("runs_audit");

  auto r = store::reset_destination(db(), "d", false, "alice");

  EXPECT_EQ((Recorded{r.counts.paths, r.counts.vector, r.counts.freshness}), d_before);
  EXPECT_GT(r.run_id, 0);
  EXPECT_EQ(recorded("d"), Recorded{});
  EXPECT_EQ(recorded("e"), e_before);
  EXPECT_EQ(table("destination_run_ids_history"), history);  // the advance log is never touched
  EXPECT_EQ(table("files"), files);
  EXPECT_EQ(table("contents"), contents);
  EXPECT_EQ(table("destination_alarms"), alarms);  // a person acknowledges an alarm
  EXPECT_EQ(count("SELECT count(*) FROM runs"), runs + 1);
  auto audit_after = table("runs_audit");
  EXPECT_TRUE(std::includes(audit_after.begin(), audit_after.end(), audit.begin(), audit.end()));
}

// Content-addressed and packed destinations record objects and packs; a
// reset forgets the destination's, keeps every other destination's and
// keeps the packs themselves (they belong to the index, not to one place).
TEST_F(ResetTest, ClearsTheObjectAndPackRecordsOfThatDestinationOnly) {
  index_and_sync();
  auto run = last_sync_run();
  auto content = count("SELECT min(id) FROM contents");
  for (const char* dest : {"d", "e"}) store::record_object(db(), content, dest, run, std::nullopt);
  db().execute("INSERT INTO packs(id, pack_key, size_bytes, member_count, created_run_id) VALUES (7, zeroblob(32), 10, "
               "1, ?)", {store::Value{run}});
  db().execute("INSERT INTO remote_packs(pack_id, destination, uploaded_run_id) VALUES (7, 'd', ?), (7, 'e', ?)",
               {store::Value{run}, store::Value{run}});
  auto preview = store::reset_destination(db(), "d", true);
  EXPECT_EQ(preview.counts.objects, 1);
  EXPECT_EQ(preview.counts.packs, 1);
  store::reset_destination(db(), "d", false);
  EXPECT_EQ(store::count_objects(db(), "d"), 0);
  EXPECT_EQ(store::count_remote_packs(db(), "d"), 0);
  EXPECT_EQ(store::count_objects(db(), "e"), 1);
  EXPECT_EQ(store::count_remote_packs(db(), "e"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM packs"), 1);
}

TEST_F(ResetTest, RecordsOneAuditedVolumelessRun) {
  index_and_sync();
  auto before = recorded("d");
  auto r = store::reset_destination(db(), "d", false, "alice");
  auto run = store::get_run(db(), r.run_id);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->kind, store::RunKind::verify);
  EXPECT_FALSE(run->volume_id);
  EXPECT_EQ(run->destination, "d");
  EXPECT_EQ(run->status, store::RunStatus::success);
  EXPECT_EQ(run->file_count, before.paths + before.vector + before.freshness);
  auto audit = store::audit_rows(db(), r.run_id);
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[0].transition, "reset-destination");
  EXPECT_EQ(audit[0].op, std::optional<std::string>("alice"));
  EXPECT_EQ(audit[0].note, "destination=\"d\" paths=" + std::to_string(before.paths) + " vector=" +
                               std::to_string(before.vector) + " freshness=" + std::to_string(before.freshness) +
                               " objects=0 packs=0");
  EXPECT_EQ(audit[1].transition, "finish");
  EXPECT_EQ(audit[1].note, "success");
}

TEST_F(ResetTest, ADryRunCountsAndChangesNothing) {
  index_and_sync();
  auto before = everything();
  auto r = store::reset_destination(db(), "d", true);
  EXPECT_EQ((Recorded{r.counts.paths, r.counts.vector, r.counts.freshness}), recorded("d"));
  EXPECT_GT(r.counts.total(), 0);
  EXPECT_EQ(r.run_id, 0);
  EXPECT_EQ(everything(), before);
}

TEST_F(ResetTest, NothingRecordedMintsNoRun) {
  ASSERT_EQ(sb.run({"index", "photos"}).status, 0);
  auto before = everything();
  auto r = store::reset_destination(db(), "d", false, "alice");
  EXPECT_EQ(r.counts.total(), 0);
  EXPECT_EQ(r.run_id, 0);
  EXPECT_EQ(everything(), before);
}

TEST_F(ResetTest, IsRefusedWhileARunUsesTheDestination) {
  index_and_sync();
  auto vol = store::find_volume(db(), "photos");
  ASSERT_TRUE(vol);
  auto begun = store::begin_run(db(), {store::RunKind::sync, vol->id, "d"});
  ASSERT_TRUE(begun.began());
  auto before = everything();
  try {
    store::reset_destination(db(), "d", false, "alice");
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::conflict);
    EXPECT_THAT(e.what(), HasSubstr("run " + std::to_string(begun.run_id)));
  }
  EXPECT_EQ(everything(), before);
  EXPECT_GT(store::reset_destination(db(), "e", false, "alice").run_id, 0);  // another destination is free
}

TEST_F(ResetTest, ASyncAfterTheResetRebuildsTheEvidence) {
  index_and_sync();
  auto dest_tree = snapshot_tree(sb.root() / "dest");
  auto cleared = sb.run({"destination", "reset", "d", "--yes"});
  ASSERT_EQ(cleared.status, 0) << cleared.err;
  EXPECT_EQ(snapshot_tree(sb.root() / "dest"), dest_tree) << "a reset touches no remote bytes";
  auto resynced = sb.run({"sync", "photos", "--to", "d"});
  ASSERT_EQ(resynced.status, 0) << resynced.err;
  EXPECT_GT(recorded("d").vector, 0);
  auto status = sb.run({"status", "photos"});
  EXPECT_EQ(status.status, 0) << status.out;
}

// ---- squirrel destination reset -----------------------------------------------------

TEST_F(ResetTest, CliRefusesAnUnknownDestination) {
  auto r = sb.run({"destination", "reset", "nope", "--yes"});
  EXPECT_EQ(r.status, 1);
  ASSERT_EQ(r.error_lines().size(), 1u) << r.err;
  EXPECT_THAT(r.error_lines()[0], HasSubstr("unknown destination \"nope\""));
}

TEST_F(ResetTest, CliSaysNothingToResetWithoutRecordedState) {
  auto no_db = sb.run({"destination", "reset", "d", "--yes"});
  EXPECT_EQ(no_db.status, 0) << no_db.err;
  EXPECT_THAT(no_db.out, HasSubstr("nothing to reset"));
  EXPECT_FALSE(fs::exists(sb.db_path()));
  ASSERT_EQ(sb.run({"index", "photos"}).status, 0);
  auto runs = count("SELECT count(*) FROM runs");
  auto r = sb.run({"destination", "reset", "d", "--yes"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("nothing to reset"));
  EXPECT_EQ(count("SELECT count(*) FROM runs"), runs);
}

TEST_F(ResetTest, CliDryRunCountsAndChangesNothing) {
  index_and_sync();
  auto before = everything();
  auto r = sb.run({"destination", "reset", "d", "--dry-run"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("reset would clear"));
  EXPECT_THAT(r.err, Not(HasSubstr("Error:")));
  EXPECT_EQ(everything(), before);
}

TEST_F(ResetTest, CliWithoutYesPreviewsAndRefuses) {
  index_and_sync();
  auto before = everything();
  auto r = sb.run({"destination", "reset", "d"});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.out, HasSubstr("this will clear"));
  ASSERT_EQ(r.error_lines().size(), 1u) << r.err;
  EXPECT_THAT(r.error_lines()[0], HasSubstr("--yes"));
  EXPECT_EQ(everything(), before);
}

TEST_F(ResetTest, CliWithYesClearsAndNamesTheRun) {
  index_and_sync();
  auto r = sb.run({"destination", "reset", "d", "--yes"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto run = count("SELECT max(id) FROM runs");
  EXPECT_THAT(r.out, HasSubstr("reset destination \"d\" (run " + std::to_string(run) + ")"));
  EXPECT_EQ(recorded("d"), Recorded{});
  EXPECT_GT(recorded("e").vector, 0);
}

TEST_F(ResetTest, CliDryRunAndYesExcludeEachOther) {
  index_and_sync();
  auto r = sb.run({"destination", "reset", "d", "--dry-run", "--yes"});
  EXPECT_EQ(r.status, 1);
  EXPECT_GT(recorded("d").vector, 0);
}

TEST_F(ResetTest, CliDestinationAlonePrintsItsHelp) {
  auto r = sb.run({"destination"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("reset"));
}

// ---- squirrel status -----------------------------------------------------------------

TEST_F(ResetTest, StatusCliNeverSyncedIsAmberWithoutAnErrorLine) {
  ASSERT_EQ(sb.run({"index", "photos"}).status, 0);
  auto r = sb.run({"status"});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("never"));
  EXPECT_THAT(r.out, HasSubstr("overall: amber"));
  EXPECT_THAT(r.err, Not(HasSubstr("Error:")));
}

TEST_F(ResetTest, StatusCliAfterASyncIsGreen) {
  index_and_sync();
  auto r = sb.run({"status", "photos"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("overall: green"));
  EXPECT_THAT(r.out, HasSubstr("TARGET"));
  EXPECT_THAT(r.out, HasSubstr("fingerprint-verified"));
  EXPECT_THAT(r.err, IsEmpty());
}

TEST_F(ResetTest, StatusCliAlarmIsRedExitTwo) {
  index_and_sync();
  raise_alarm("d");
  auto r = sb.run({"status", "photos"});
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("ALARM d"));
  EXPECT_THAT(r.out, HasSubstr("overall: red"));
  EXPECT_THAT(r.err, Not(HasSubstr("Error:")));
}

TEST_F(ResetTest, StatusCliJsonPrintsTheWholeModel) {
  index_and_sync();
  auto r = sb.run({"status", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["overall"], "green");
  EXPECT_EQ(j["exit_code"], 0);
  ASSERT_EQ(j["volumes"].size(), 1u);
  const auto& v = j["volumes"][0];
  EXPECT_EQ(v["name"], "photos");
  EXPECT_EQ(v["last_index"]["status"], "success");
  ASSERT_EQ(v["targets"].size(), 2u);
  EXPECT_EQ(v["targets"][0]["name"], "d");
  EXPECT_EQ(v["targets"][0]["state"], "ok");
  EXPECT_EQ(v["targets"][0]["durable"], true);
  EXPECT_EQ(v["targets"][0]["evidence"]["stale"], false);
  EXPECT_EQ(v["offload"]["present_files"], 2);
}

TEST_F(ResetTest, StatusCliUnknownVolumeIsAnError) {
  auto r = sb.run({"status", "nope"});
  EXPECT_EQ(r.status, 1);
  ASSERT_EQ(r.error_lines().size(), 1u) << r.err;
  EXPECT_THAT(r.error_lines()[0], HasSubstr("unknown volume \"nope\""));
}

TEST_F(ResetTest, StatusCliNeedsAConfigButNoDatabase) {
  auto r = sb.run({"status"});
  EXPECT_EQ(r.status, 1) << r.err;  // never indexed: amber
  EXPECT_THAT(r.out, HasSubstr("index: never"));
  EXPECT_FALSE(fs::exists(sb.db_path())) << "a question never creates the index";
  fs::remove(sb.config_path());
  auto missing = sb.run({"status"});
  EXPECT_EQ(missing.status, 1);
  ASSERT_EQ(missing.error_lines().size(), 1u) << missing.err;
  EXPECT_THAT(missing.error_lines()[0], HasSubstr("no config"));
}
