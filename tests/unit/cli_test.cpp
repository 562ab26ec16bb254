// End-to-end tests of every squirrel command through the real binary, each
// in its own temp dir with its own HOME, config and database.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "core/hash.hpp"
#include "store/runs.hpp"
#include "store/store.hpp"
#include "store/volumes.hpp"

namespace {

namespace fs = std::filesystem;
using sq::test::CliResult;
using sq::test::CliSandbox;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string hex_of(const std::string& content) { return sq::to_hex(sq::blake3(content)); }

nlohmann::json json_of(const CliResult& r) { return nlohmann::json::parse(r.out); }

std::vector<std::int64_t> run_ids(const nlohmann::json& runs) {
  std::vector<std::int64_t> ids;
  for (const auto& r : runs) ids.push_back(r.at("id").get<std::int64_t>());
  return ids;
}

std::int64_t mtime_ns(const fs::path& p) { return sq::test::tree_entry(p).mtime_ns; }

// Rewrites a file with other bytes of the same size and puts its mtime back,
// so only a content hash can tell.
void rewrite_keeping_size_and_mtime(const fs::path& p, const std::string& text) {
  auto old = fs::last_write_time(p);
  ASSERT_EQ(sq::test::read_file(p).size(), text.size());
  sq::test::write_file(p, text);
  fs::last_write_time(p, old);
}

sq::store::Store open_existing(const fs::path& db) {
  sq::store::StoreOptions o;
  o.create = false;
  return sq::store::Store::open(db, o);
}

// Begins a run owned by this (live) test process, so it stays `running` and
// is never reaped while the test runs.
std::int64_t begin_running(const fs::path& db, const std::string& volume, sq::store::RunKind kind,
                           const std::string& destination = "") {
  auto st = open_existing(db);
  auto v = sq::store::find_volume(st.db(), volume);
  if (!v) throw std::runtime_error("volume not indexed: " + volume);
  auto begun = sq::store::begin_run(st.db(), {kind, v->id, destination});
  if (!begun.began()) throw std::runtime_error("could not begin a run");
  return begun.run_id;
}

class CliTest : public ::testing::Test {
 protected:
  CliSandbox sb;

  CliResult ok(const std::vector<std::string>& args) {
    auto r = sb.run(args);
    EXPECT_EQ(r.status, 0) << "squirrel " << ::testing::PrintToString(args) << "\nstderr: " << r.err;
    return r;
  }
  CliResult fails(const std::vector<std::string>& args) {
    auto r = sb.run(args);
    EXPECT_EQ(r.status, 1) << "squirrel " << ::testing::PrintToString(args) << "\nstdout: " << r.out;
    EXPECT_EQ(r.error_lines().size(), 1u) << r.err;
    return r;
  }
  void put_three() {
    sb.put("a.txt", "alpha");
    sb.put("b.txt", "bravo");
    sb.put("sub/c.txt", "charlie");
  }
};

// ---- index -------------------------------------------------------------------

TEST_F(CliTest, IndexSummaryCountsAddedModifiedUnchangedMissing) {
  put_three();
  auto first = ok({"index", "photos"});
  EXPECT_THAT(first.out, StartsWith("photos: added=3 modified=0 unchanged=0 missing=0 errors=0"));
  sb.put("a.txt", "alpha, edited");
  fs::remove(sb.volume_dir() / "b.txt");
  sb.put("d.txt", "delta");
  auto second = ok({"index", "photos"});
  EXPECT_THAT(second.out, StartsWith("photos: added=1 modified=1 unchanged=1 missing=1 errors=0"));
  auto third = ok({"index", "photos"});
  EXPECT_THAT(third.out, StartsWith("photos: added=0 modified=0 unchanged=3 missing=0 errors=0"));
}

TEST_F(CliTest, IndexWarnsOnlyWhenAFirstIndexFindsNothing) {
  auto empty = ok({"index", "photos"});
  EXPECT_THAT(empty.err, HasSubstr("warning: no files found — new volume, empty directory, or wrong mount?"));
  auto again = ok({"index", "photos"});
  EXPECT_THAT(again.err, Not(HasSubstr("no files found")));

  CliSandbox full;
  full.put("a.txt", "alpha");
  auto r = full.run({"index", "photos"});
  EXPECT_EQ(r.status, 0);
  EXPECT_THAT(r.err, Not(HasSubstr("no files found")));
}

TEST_F(CliTest, IndexDryRunLeavesTheDatabaseByteIdenticalAndWritesNoMarker) {
  fs::create_directories(sb.volume_dir("other"));
  sb.put("a.txt", "alpha");
  sb.put("sub/b.txt", "bravo");
  sb.write_config("[volumes.other]\npath = \"" + sb.volume_dir("other").string() + "\"\n");
  ok({"index", "other"});  // creates the database
  auto db_before = sq::test::snapshot_tree(sb.db_path().parent_path());
  auto dry = ok({"index", "photos", "--dry-run"});
  EXPECT_EQ(dry.out, "(dry-run) photos: added=2 modified=0 unchanged=0 missing=0 errors=0\n");
  EXPECT_FALSE(fs::exists(sb.marker()));
  auto db_after = sq::test::snapshot_tree(sb.db_path().parent_path());
  EXPECT_EQ(db_before.at("index.db"), db_after.at("index.db"));
  db_before.erase(".");  // WAL files come and go; the directory's mtime may move
  db_after.erase(".");
  EXPECT_EQ(db_before, db_after) << sq::test::describe_diff(db_before, db_after);
  EXPECT_EQ(json_of(ok({"runs", "--json"})).size(), 1u);
  EXPECT_EQ(json_of(ok({"volumes", "--json"})).size(), 1u);
}

TEST_F(CliTest, IndexDryRunAfterChangesReportsThemWithoutRecording) {
  put_three();
  ok({"index", "photos"});
  auto before = sq::test::read_file(sb.db_path());
  sb.put("new.txt", "new");
  fs::remove(sb.volume_dir() / "a.txt");
  auto dry = ok({"index", "photos", "--dry-run", "--json"});
  auto j = json_of(dry);
  EXPECT_EQ(j.at("added"), 1);
  EXPECT_EQ(j.at("missing"), 1);
  EXPECT_EQ(j.at("dry_run"), true);
  EXPECT_EQ(j.at("run_id"), 0);
  EXPECT_EQ(sq::test::read_file(sb.db_path()), before);
}

TEST_F(CliTest, IndexJsonSummaryParses) {
  put_three();
  auto j = json_of(ok({"index", "photos", "--json"}));
  EXPECT_EQ(j.at("volume"), "photos");
  EXPECT_EQ(j.at("added"), 3);
  EXPECT_EQ(j.at("modified"), 0);
  EXPECT_EQ(j.at("errors"), 0);
  EXPECT_EQ(j.at("status"), "success");
  EXPECT_EQ(j.at("dry_run"), false);
  EXPECT_EQ(j.at("first_index"), true);
  EXPECT_GT(j.at("run_id").get<std::int64_t>(), 0);
  EXPECT_EQ(j.at("bytes_hashed"), 5 + 5 + 7);
}

TEST_F(CliTest, IndexShallowTrustsSizeAndMtimeAndFullIndexDoesNot) {
  put_three();
  ok({"index", "photos"});
  rewrite_keeping_size_and_mtime(sb.volume_dir() / "a.txt", "ALPHA");
  auto shallow = json_of(ok({"index", "photos", "--shallow", "--json"}));
  EXPECT_EQ(shallow.at("modified"), 0);
  EXPECT_EQ(shallow.at("unchanged"), 3);
  EXPECT_EQ(shallow.at("bytes_hashed"), 0);
  auto full = json_of(ok({"index", "photos", "--json"}));
  EXPECT_EQ(full.at("modified"), 1);
  EXPECT_EQ(full.at("unchanged"), 2);
}

TEST_F(CliTest, IndexWorkersAndProgressFlagsAreAccepted) {
  put_three();
  auto r = ok({"index", "photos", "--workers", "1", "-P"});
  EXPECT_THAT(r.out, StartsWith("photos: added=3 "));
  auto again = ok({"index", "photos", "--workers", "3", "--progress"});
  EXPECT_THAT(again.out, StartsWith("photos: added=0 modified=0 unchanged=3 "));
}

TEST_F(CliTest, IndexWritesTheMarkerOnceAndNeverRewritesIt) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  ASSERT_TRUE(fs::exists(sb.marker()));
  auto text = sq::test::read_file(sb.marker());
  auto marker = nlohmann::json::parse(text);
  EXPECT_EQ(marker.at("volume"), "photos");
  auto written_at = mtime_ns(sb.marker());
  sb.put("b.txt", "bravo");
  ok({"index", "photos"});
  ok({"index", "photos", "--shallow"});
  EXPECT_EQ(sq::test::read_file(sb.marker()), text);
  EXPECT_EQ(mtime_ns(sb.marker()), written_at);
  EXPECT_THAT(fails({"query", sb.marker().string()}).err, HasSubstr("no row for path"));  // never indexed
}

TEST_F(CliTest, IndexRefusesAMarkerNamingAnotherVolume) {
  const std::string foreign = "{\"volume\":\"other\",\"created_at_ns\":1}\n";
  sq::test::write_file(sb.marker(), foreign);
  sb.put("a.txt", "alpha");
  auto r = fails({"index", "photos"});
  EXPECT_THAT(r.err, HasSubstr("belongs to volume \"other\""));
  EXPECT_EQ(sq::test::read_file(sb.marker()), foreign);
  auto runs = json_of(ok({"runs", "--json"}));
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].at("status"), "refused");
  EXPECT_EQ(runs[0].at("kind"), "index");
  EXPECT_THAT(runs[0].at("error").get<std::string>(), HasSubstr("belongs to volume \"other\""));
}

TEST_F(CliTest, IndexRefusesWhenTheConfiguredPathDiffersFromTheRecordedOne) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  auto elsewhere = sb.root() / "vol" / "elsewhere";
  sq::test::write_file(elsewhere / "z.txt", "zulu");
  sb.write_config_raw("[volumes.photos]\npath = \"" + elsewhere.string() + "\"\n");
  auto r = fails({"index", "photos"});
  EXPECT_THAT(r.err, HasSubstr("is indexed at " + sb.volume_dir().string()));
  EXPECT_THAT(r.err, HasSubstr("squirrel volumes move"));
  EXPECT_FALSE(fs::exists(elsewhere / ".squirrel-volume"));
  auto runs = json_of(ok({"runs", "--json"}));
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].at("status"), "refused");
  EXPECT_EQ(runs[0].at("volume"), "photos");
}

TEST_F(CliTest, RunGateRefusesConflictingRunsInBothDirections) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  auto running_index = begin_running(sb.db_path(), "photos", sq::store::RunKind::index);
  auto blocked = fails({"audit", "photos"});
  EXPECT_THAT(blocked.err, HasSubstr("already running (run=" + std::to_string(running_index) + ", index"));
  ok({"runs", "fail", std::to_string(running_index)});
  auto running_audit = begin_running(sb.db_path(), "photos", sq::store::RunKind::audit);
  auto blocked_index = fails({"index", "photos"});
  EXPECT_THAT(blocked_index.err, HasSubstr("already running (run=" + std::to_string(running_audit) + ", audit"));
  auto runs = json_of(ok({"runs", "--json", "--failed"}));
  int refused = 0;
  for (const auto& r : runs) refused += r.at("status") == "refused";
  EXPECT_EQ(refused, 2);
}

// ---- query -------------------------------------------------------------------

TEST_F(CliTest, QueryByPathPrintsTheRowAndByHashEveryPath) {
  put_three();
  ok({"index", "photos"});
  auto by_path = ok({"query", "vol/photos/a.txt"});  // relative to the working dir
  EXPECT_THAT(by_path.out, HasSubstr("volume:        photos\n"));
  EXPECT_THAT(by_path.out, HasSubstr("path:          a.txt\n"));
  EXPECT_THAT(by_path.out, HasSubstr("blake3:        " + hex_of("alpha") + "\n"));
  EXPECT_THAT(by_path.out, HasSubstr("status:        present\n"));
  auto by_hash = ok({"query", hex_of("charlie")});
  EXPECT_EQ(by_hash.out, "present\t" + (sb.volume_dir() / "sub/c.txt").string() + "\t7\t" + hex_of("charlie") + "\n");
}

TEST_F(CliTest, QueryHistoryListsEarlierContentOfAPath) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  sb.put("a.txt", "alpha two");
  ok({"index", "photos"});
  auto r = ok({"query", (sb.volume_dir() / "a.txt").string(), "--history"});
  EXPECT_THAT(r.out, HasSubstr("history:\n"));
  EXPECT_THAT(r.out, HasSubstr("superseded  " + hex_of("alpha")));
  EXPECT_THAT(r.out, HasSubstr("present     " + hex_of("alpha two")));
  auto j = json_of(ok({"query", (sb.volume_dir() / "a.txt").string(), "--history", "--json"}));
  EXPECT_EQ(j.at("blake3"), hex_of("alpha two"));
  ASSERT_EQ(j.at("history").size(), 2u);
}

TEST_F(CliTest, QueryListsDuplicatesAndMissingFiles) {
  sb.put("one.txt", "same");
  sb.put("sub/two.txt", "same");
  sb.put("uniq.txt", "unique");
  ok({"index", "photos"});
  EXPECT_EQ(ok({"query", "--missing"}).out, "");
  auto dups = ok({"query", "--duplicates"}).out;
  EXPECT_EQ(std::count(dups.begin(), dups.end(), '\n'), 2);
  EXPECT_THAT(dups, HasSubstr("one.txt\t4\t" + hex_of("same")));
  EXPECT_THAT(dups, HasSubstr("two.txt\t4\t" + hex_of("same")));
  EXPECT_THAT(dups, Not(HasSubstr("uniq")));
  fs::remove(sb.volume_dir() / "uniq.txt");
  ok({"index", "photos"});
  auto missing = ok({"query", "--missing"}).out;
  EXPECT_EQ(missing, "missing\t" + (sb.volume_dir() / "uniq.txt").string() + "\t6\t" + hex_of("unique") + "\n");
  auto j = json_of(ok({"query", "--missing", "--json"}));
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0].at("status"), "missing");
  EXPECT_EQ(j[0].at("path"), "uniq.txt");
}

TEST_F(CliTest, QueryJsonByHashIsAnArrayOfRows) {
  sb.put("one.txt", "same");
  sb.put("two.txt", "same");
  ok({"index", "photos"});
  auto j = json_of(ok({"query", hex_of("same"), "--json"}));
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  std::set<std::string> paths;
  for (const auto& row : j) {
    EXPECT_EQ(row.at("blake3"), hex_of("same"));
    EXPECT_EQ(row.at("size_bytes"), 4);
    EXPECT_EQ(row.at("volume"), "photos");
    paths.insert(row.at("path").get<std::string>());
  }
  EXPECT_EQ(paths, (std::set<std::string>{"one.txt", "two.txt"}));
}

TEST_F(CliTest, QueryForUnknownContentFails) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  auto r = fails({"query", hex_of("never indexed")});
  EXPECT_THAT(r.err, HasSubstr("no rows for blake3 " + hex_of("never indexed")));
  auto p = fails({"query", (sb.volume_dir() / "nope.txt").string()});
  EXPECT_THAT(p.err, HasSubstr("no row for path"));
}

// ---- volumes -------------------------------------------------------------------

TEST_F(CliTest, VolumesListsIndexedVolumesOnly) {
  EXPECT_EQ(json_of(ok({"volumes", "--json"})), nlohmann::json::array());
  EXPECT_EQ(ok({"volumes"}).out, "");
  EXPECT_FALSE(fs::exists(sb.db_path()));
  put_three();
  ok({"index", "photos"});
  auto j = json_of(ok({"volumes", "--json"}));
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0].at("name"), "photos");
  EXPECT_EQ(j[0].at("path"), sb.volume_dir().string());
  EXPECT_EQ(j[0].at("files"), 3);
  auto text = ok({"volumes"}).out;
  EXPECT_EQ(text, "1\tphotos\t" + sb.volume_dir().string() + "\t3 files\n");
}

TEST_F(CliTest, VolumesMoveRepointsAVolumeWhoseMarkerMovedWithIt) {
  put_three();
  ok({"index", "photos"});
  auto empty = sb.root() / "vol" / "empty";
  fs::create_directories(empty);
  auto refused = fails({"volumes", "move", "photos", empty.string()});
  EXPECT_THAT(refused.err, HasSubstr("has no .squirrel-volume marker"));
  auto moved = sb.root() / "vol" / "moved";
  fs::rename(sb.volume_dir(), moved);
  auto r = ok({"volumes", "move", "photos", moved.string()});
  EXPECT_THAT(r.out, HasSubstr("moved volume \"photos\" from " + sb.volume_dir().string() + " to " + moved.string()));
  EXPECT_THAT(r.err, HasSubstr("warning: the config still says"));
  EXPECT_EQ(json_of(ok({"volumes", "--json"}))[0].at("path"), moved.string());
  sb.write_config_raw("[volumes.photos]\npath = \"" + moved.string() + "\"\n");
  EXPECT_THAT(ok({"index", "photos"}).out, StartsWith("photos: added=0 modified=0 unchanged=3 missing=0 "));
}

// ---- audit -------------------------------------------------------------------

TEST_F(CliTest, AuditExitsZeroWhenCleanAndOneOnAnyFinding) {
  put_three();
  ok({"index", "photos"});
  auto clean = ok({"audit"});
  EXPECT_THAT(clean.out, HasSubstr("audit photos: run="));
  EXPECT_THAT(clean.out, HasSubstr(" added=0 modified=0 unchanged=3 missing=0 errors=0\n"));
  sb.put("new.txt", "new");
  auto drift = sb.run({"audit", "photos"});
  EXPECT_EQ(drift.status, 1);
  EXPECT_THAT(drift.out, HasSubstr(" added=1 modified=0 unchanged=3 missing=0 errors=0\n"));
  EXPECT_THAT(drift.err, HasSubstr("drift: new.txt: added"));
  EXPECT_TRUE(drift.error_lines().empty()) << "a finding is not an error: " << drift.err;
  auto j = nlohmann::json::parse(sb.run({"audit", "photos", "--json"}).out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0].at("added"), 1);
  EXPECT_EQ(json_of(ok({"runs", "--json", "--limit", "1"}))[0].at("kind"), "audit");
}

TEST_F(CliTest, AuditDeepCatchesARewriteThatKeepsSizeAndMtime) {
  put_three();
  ok({"index", "photos"});
  rewrite_keeping_size_and_mtime(sb.volume_dir() / "sub/c.txt", "CHARLIE");
  ok({"audit", "photos"});
  auto deep = sb.run({"audit", "photos", "--deep"});
  EXPECT_EQ(deep.status, 1);
  EXPECT_THAT(deep.err, HasSubstr("drift: sub/c.txt: modified"));
  EXPECT_THAT(deep.out, HasSubstr(" modified=1 unchanged=2 "));
}

TEST_F(CliTest, AuditFoldersReportsConsistencyAndDivergence) {
  put_three();
  ok({"index", "photos"});
  EXPECT_THAT(ok({"audit", "photos", "--folders"}).out, StartsWith("audit photos --folders: consistent (run "));
  auto j = json_of(ok({"audit", "--folders", "--json"}));
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0].at("divergences"), nlohmann::json::array());
  {
    auto st = open_existing(sb.db_path());
    st.db().execute("UPDATE folders SET file_count = file_count + 1 WHERE path = X''");
  }
  auto bad = sb.run({"audit", "photos", "--folders"});
  EXPECT_EQ(bad.status, 1);
  EXPECT_THAT(bad.out, HasSubstr("audit photos --folders: (root): file_count"));
}

// ---- runs --------------------------------------------------------------------

TEST_F(CliTest, RunsListsNewestFirstAndFilters) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});  // 1: changed one file
  ok({"index", "photos"});  // 2: changed nothing
  sb.write_config_raw("[volumes.photos]\npath = \"" + (sb.root() / "vol").string() + "\"\n");
  fails({"index", "photos"});  // 3: refused
  EXPECT_EQ(run_ids(json_of(ok({"runs", "--json"}))), (std::vector<std::int64_t>{3, 2, 1}));
  EXPECT_EQ(run_ids(json_of(ok({"runs", "--json", "--limit", "2"}))), (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(run_ids(json_of(ok({"runs", "--json", "--failed"}))), (std::vector<std::int64_t>{3}));
  EXPECT_EQ(run_ids(json_of(ok({"runs", "--json", "--changes"}))), (std::vector<std::int64_t>{3, 1}));
  EXPECT_EQ(run_ids(json_of(ok({"runs", "--json", "--volume", "photos"}))), (std::vector<std::int64_t>{3, 2, 1}));
  auto table = ok({"runs"}).out;
  EXPECT_THAT(table, StartsWith("ID  KIND   VOLUME  DESTINATION  STARTED"));
  EXPECT_THAT(table, HasSubstr("refused"));
  auto j = json_of(ok({"runs", "--json"}));
  EXPECT_EQ(j[2].at("file_count"), 1);
  EXPECT_EQ(j[2].at("changed_count"), 1);
  EXPECT_TRUE(j[2].at("destination").is_null());
}

TEST_F(CliTest, RunsWithoutADatabaseSaysSoAndCreatesNothing) {
  EXPECT_EQ(ok({"runs"}).out, "no runs yet — the index database does not exist\n");
  EXPECT_EQ(json_of(ok({"runs", "--json"})), nlohmann::json::array());
  EXPECT_FALSE(fs::exists(sb.db_path()));
}

TEST_F(CliTest, RunsFailRejectsUnknownInvalidAndFinishedRuns) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  auto before = ok({"runs", "--json"}).out;
  EXPECT_THAT(fails({"runs", "fail", "999"}).err, HasSubstr("no run with id 999"));
  EXPECT_THAT(fails({"runs", "fail", "abc"}).err, HasSubstr("invalid run id \"abc\""));
  EXPECT_THAT(fails({"runs", "fail", "1"}).err, HasSubstr("run 1 is already success, refusing to overwrite"));
  EXPECT_EQ(ok({"runs", "--json"}).out, before);
}

TEST_F(CliTest, RunsFailMarksARunningRunFailed) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  auto id = begin_running(sb.db_path(), "photos", sq::store::RunKind::index);
  EXPECT_EQ(json_of(ok({"runs", "--json", "--limit", "1"}))[0].at("status"), "running");
  auto r = ok({"runs", "fail", std::to_string(id)});
  EXPECT_EQ(r.out, "marked run " + std::to_string(id) + " as failed\n");
  auto run = json_of(ok({"runs", "--json", "--limit", "1"}))[0];
  EXPECT_EQ(run.at("id"), id);
  EXPECT_EQ(run.at("status"), "failed");
  EXPECT_THAT(run.at("error").get<std::string>(), StartsWith("marked failed manually at "));
  EXPECT_THAT(fails({"runs", "fail", std::to_string(id)}).err, HasSubstr("is already failed"));
}

// With a database, naming an unknown volume is an error that writes nothing.
TEST_F(CliTest, UnknownVolumeIsAnErrorOnceTheIndexExists) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  auto before = sq::test::read_file(sb.db_path());
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"runs", "--volume", "nope"}, {"hooks", "--volume", "nope"}, {"audit", "nope"}, {"index", "nope"}}) {
    auto r = fails(args);
    EXPECT_THAT(r.err, HasSubstr("unknown volume \"nope\"")) << ::testing::PrintToString(args);
  }
  EXPECT_THAT(fails({"runs", "--volume", "nope"}).err, HasSubstr("(see `squirrel volumes`)"));
  EXPECT_EQ(sq::test::read_file(sb.db_path()), before);
}

// ---- hooks -------------------------------------------------------------------

TEST_F(CliTest, HooksListIsEmptyUntilTheAgentRunsHooks) {
  EXPECT_EQ(json_of(ok({"hooks", "--json"})), nlohmann::json::array());
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  EXPECT_EQ(json_of(ok({"hooks", "--json", "--volume", "photos", "--limit", "5"})), nlohmann::json::array());
  EXPECT_THAT(ok({"hooks"}).out, StartsWith("ID  VOLUME  TRIGGER  RUN  CHANGED  STARTED  DURATION  STATUS  EXIT  ERROR"));
}

// ---- version, help -------------------------------------------------------------

TEST_F(CliTest, VersionPrintsVersionAndBuildFacts) {
  auto r = ok({"version"});
  EXPECT_THAT(r.out, StartsWith(std::string("squirrel v") + SQUIRREL_VERSION + "\n"));
  EXPECT_THAT(r.out, HasSubstr("\n  schema: v"));
  EXPECT_THAT(r.out, HasSubstr("\n  sqlite: 3."));
  EXPECT_THAT(r.out, HasSubstr("\n  platform: linux/"));
  EXPECT_FALSE(fs::exists(sb.db_path()));
}

TEST_F(CliTest, BareSquirrelPrintsHelp) {
  auto r = sb.run_bare({});
  EXPECT_EQ(r.status, 0);
  EXPECT_THAT(r.out, HasSubstr("Subcommands:"));
  EXPECT_THAT(r.out, HasSubstr("index"));
  EXPECT_EQ(r.err, "");
}

// ---- db ----------------------------------------------------------------------

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool is_sqlite_file(const fs::path& p) {
  return sq::test::read_file(p).rfind(std::string("SQLite format 3\0", 16), 0) == 0;
}

TEST_F(CliTest, DbBackupWritesASnapshotIntoTheBackupsDir) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  auto r = ok({"db", "backup"});
  auto dir = sb.db_path().parent_path() / "backups";
  EXPECT_THAT(r.out, StartsWith("backup written to " + (dir / "index-").string()));
  auto names = names_in(dir);
  ASSERT_EQ(names.size(), 1u);
  EXPECT_TRUE(is_sqlite_file(dir / names[0]));
  auto to = sb.root() / "elsewhere" / "copy.db";
  EXPECT_EQ(ok({"db", "backup", "--to", to.string()}).out, "backup written to " + to.string() + "\n");
  EXPECT_TRUE(is_sqlite_file(to));
  auto copy = sq::test::read_file(to);
  EXPECT_THAT(fails({"db", "backup", "--to", to.string()}).err, HasSubstr("already exists"));
  EXPECT_EQ(sq::test::read_file(to), copy);
}

TEST_F(CliTest, DbBackupKeepRotatesOnlyRoutineSnapshots) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  auto dir = sb.db_path().parent_path() / "backups";
  const std::vector<std::string> foreign = {"pre-migration-v1-to-v2-20000101T000000.000Z.db", "notes.txt",
                                            "index-old.db"};
  for (const auto& n : foreign) sq::test::write_file(dir / n, "keep me: " + n);
  sq::test::write_file(dir / "index-20000101T000000.000Z.db", "old routine 1");
  sq::test::write_file(dir / "index-20000102T000000.000Z.db", "old routine 2");
  auto r = ok({"db", "backup", "--keep", "1"});
  EXPECT_THAT(r.out, HasSubstr("rotated out " + (dir / "index-20000101T000000.000Z.db").string() + "\n"));
  EXPECT_THAT(r.out, HasSubstr("rotated out " + (dir / "index-20000102T000000.000Z.db").string() + "\n"));
  auto names = names_in(dir);
  ASSERT_EQ(names.size(), 4u) << ::testing::PrintToString(names);
  for (const auto& n : foreign) EXPECT_EQ(sq::test::read_file(dir / n), "keep me: " + n);
  auto it = std::find_if(names.begin(), names.end(), [](const std::string& n) { return n.starts_with("index-2"); });
  ASSERT_NE(it, names.end());
  EXPECT_TRUE(is_sqlite_file(dir / *it));
}

TEST_F(CliTest, DbCheckPrintsOk) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  EXPECT_EQ(ok({"db", "check"}).out, "ok\n");
}

TEST_F(CliTest, DbSchemaPrintsTheDdlWithOrWithoutADatabase) {
  auto fresh = ok({"db", "schema"}).out;
  EXPECT_FALSE(fs::exists(sb.db_path()));
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  auto live = ok({"db", "schema"}).out;
  for (const auto* ddl : {&fresh, &live}) {
    EXPECT_THAT(*ddl, HasSubstr("CREATE TABLE volumes"));
    EXPECT_THAT(*ddl, HasSubstr("uniq_files_live_per_path"));
  }
}

TEST_F(CliTest, DbRestoreRefusesTheLiveDatabase) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  auto before = sq::test::read_file(sb.db_path());
  auto r = fails({"db", "restore", sb.db_path().string()});
  EXPECT_THAT(r.err, HasSubstr("the snapshot is the live database"));
  EXPECT_EQ(sq::test::read_file(sb.db_path()), before);
  EXPECT_THAT(fails({"db", "restore", (sb.root() / "nope.db").string()}).err, HasSubstr("no snapshot file at"));
}

fs::path displaced_db(const fs::path& dir) {
  for (const auto& n : names_in(dir))
    if (n.starts_with("index.db.pre-restore-") && !n.ends_with("-wal") && !n.ends_with("-shm")) return dir / n;
  return {};
}

TEST_F(CliTest, DbRestoreWithoutALiveDatabaseNamesNoKeptFile) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  auto snap = sb.root() / "snap.db";
  ok({"db", "backup", "--to", snap.string()});
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(sb.db_path().string() + suffix);
  auto r = ok({"db", "restore", snap.string()});
  EXPECT_THAT(r.out, HasSubstr("(there was no previous database)")) << r.out;
  EXPECT_TRUE(displaced_db(sb.db_path().parent_path()).empty()) << "no file was announced, none exists";
}


TEST_F(CliTest, DbRestoreInstallsASnapshotAndKeepsTheDisplacedDatabase) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  auto snap = sb.root() / "snap.db";
  ok({"db", "backup", "--to", snap.string()});
  auto snap_bytes = sq::test::read_file(snap);
  sb.put("b.txt", "bravo");
  ok({"index", "photos"});
  auto r = ok({"db", "restore", snap.string()});
  EXPECT_THAT(r.out, StartsWith("restored " + sb.db_path().string() + " from " + snap.string()));
  EXPECT_THAT(r.out, HasSubstr("(previous database kept at "));
  EXPECT_EQ(run_ids(json_of(ok({"runs", "--json"}))), (std::vector<std::int64_t>{1}));
  EXPECT_EQ(sq::test::read_file(snap), snap_bytes);
  auto old = displaced_db(sb.db_path().parent_path());
  ASSERT_FALSE(old.empty());
  auto kept = sq::test::run_cli({"--db", old.string(), "runs", "--json"}, sb.options());
  EXPECT_EQ(run_ids(nlohmann::json::parse(kept.out)), (std::vector<std::int64_t>{2, 1}));
}

TEST_F(CliTest, DbRestoreRefusesWhileARunIsRunningUnlessForced) {
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  auto snap = sb.root() / "snap.db";
  ok({"db", "backup", "--to", snap.string()});
  auto id = begin_running(sb.db_path(), "photos", sq::store::RunKind::index);
  auto r = fails({"db", "restore", snap.string()});
  EXPECT_THAT(r.err, HasSubstr("run " + std::to_string(id) + " is still running"));
  EXPECT_TRUE(displaced_db(sb.db_path().parent_path()).empty());
  ok({"db", "restore", snap.string(), "--force"});
  EXPECT_FALSE(displaced_db(sb.db_path().parent_path()).empty());
}

// ---- config check ------------------------------------------------------------

TEST_F(CliTest, ConfigCheckPassesAValidConfigAndCreatesNothing) {
  sb.put("a.txt", "alpha");
  auto r = ok({"config", "check"});
  EXPECT_THAT(r.out, StartsWith("config: " + sb.config_path().string() + "\n"));
  EXPECT_THAT(r.out, HasSubstr("  ok    photos  " + sb.volume_dir().string() + "\n"));
  EXPECT_THAT(r.out, HasSubstr("1 volumes, 0 destinations, 0 nodes — all resolvable\n"));
  EXPECT_FALSE(fs::exists(sb.db_path()));
  EXPECT_FALSE(fs::exists(sb.marker()));
}

TEST_F(CliTest, ConfigCheckFailsForAMissingVolumePath) {
  sb.put("a.txt", "alpha");
  sb.write_config("[volumes.gone]\npath = \"" + (sb.root() / "gone").string() + "\"\n");
  auto r = sb.run({"config", "check"});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.out, HasSubstr("  FAIL  gone  " + (sb.root() / "gone").string() + " does not exist\n"));
  EXPECT_THAT(r.out, HasSubstr("— 1 problem(s), 0 warning(s)\n"));
  EXPECT_FALSE(fs::exists(sb.root() / "gone"));
}

TEST_F(CliTest, ConfigCheckJson) {
  sb.put("a.txt", "alpha");
  auto good = json_of(ok({"config", "check", "--json"}));
  EXPECT_EQ(good.at("ok"), true);
  EXPECT_EQ(good.at("config"), sb.config_path().string());
  ASSERT_EQ(good.at("checks").size(), 1u);
  EXPECT_EQ(good.at("checks")[0].at("level"), "ok");
  sb.write_config("[volumes.gone]\npath = \"" + (sb.root() / "gone").string() + "\"\n");
  auto r = sb.run({"config", "check", "--json"});
  EXPECT_EQ(r.status, 1);
  auto bad = nlohmann::json::parse(r.out);
  EXPECT_EQ(bad.at("ok"), false);
  int fails_seen = 0;
  for (const auto& c : bad.at("checks")) fails_seen += c.at("level") == "FAIL" && c.at("name") == "gone";
  EXPECT_EQ(fails_seen, 1);
}

// ---- global flags --------------------------------------------------------------

TEST_F(CliTest, DbPrecedenceIsFlagThenConfigThenHome) {
  sb.put("a.txt", "alpha");
  auto cfg_db = sb.root() / "cfgdb" / "index.db";
  auto flag_db = sb.root() / "flagdb" / "index.db";
  auto home_db = sb.home() / ".squirrel" / "index.db";
  auto volume = "[volumes.photos]\npath = \"" + sb.volume_dir().string() + "\"\n";
  sb.write_config_raw("db = \"" + cfg_db.string() + "\"\n" + volume);
  auto cfg = sb.config_path().string();
  EXPECT_EQ(sq::test::run_cli({"--config", cfg, "--db", flag_db.string(), "index", "photos"}, sb.options()).status, 0);
  EXPECT_TRUE(fs::exists(flag_db));
  EXPECT_FALSE(fs::exists(cfg_db));
  // Each database takes the volume over deliberately (the marker names its owner).
  EXPECT_EQ(sq::test::run_cli({"--config", cfg, "volumes", "adopt", "photos"}, sb.options()).status, 0);
  EXPECT_TRUE(fs::exists(cfg_db));
  EXPECT_FALSE(fs::exists(home_db));
  sb.write_config_raw(volume);
  EXPECT_EQ(sq::test::run_cli({"--config", cfg, "volumes", "adopt", "photos"}, sb.options()).status, 0);
  EXPECT_TRUE(fs::exists(home_db));
}

TEST_F(CliTest, ConfigPrecedenceIsFlagThenEnvThenHome) {
  auto declare = [&](const fs::path& file, const std::string& name) {
    fs::create_directories(sb.volume_dir(name));
    sq::test::write_file(file, "[volumes." + name + "]\npath = \"" + sb.volume_dir(name).string() + "\"\n");
  };
  auto env_cfg = sb.root() / "env.toml";
  declare(env_cfg, "fromenv");
  declare(sb.home() / ".squirrel" / "config.toml", "fromhome");
  auto opts = sb.options();
  opts.env = {{"SQUIRREL_CONFIG", env_cfg.string()}};
  auto flag = sq::test::run_cli({"--config", sb.config_path().string(), "config", "check"}, opts);
  EXPECT_THAT(flag.out, HasSubstr(" photos "));
  EXPECT_THAT(sq::test::run_cli({"config", "check"}, opts).out, HasSubstr(" fromenv "));
  opts.env = {{"SQUIRREL_CONFIG", ""}};
  EXPECT_THAT(sq::test::run_cli({"config", "check"}, opts).out, HasSubstr(" fromhome "));
  EXPECT_THAT(sq::test::run_cli({"config", "check"}, sb.options()).out, HasSubstr(" fromhome "));
}

TEST_F(CliTest, GlobalFlagsMayFollowTheCommand) {
  sb.put("a.txt", "alpha");
  auto r = sq::test::run_cli({"index", "photos", "--config", sb.config_path().string(), "--db",
                              sb.db_path().string()}, sb.options());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(sb.db_path()));
}

}  // namespace

// -P on a pipe still draws the progress line (on stderr); for sync it ends
// with an estimate of the time left.
TEST_F(CliTest, SyncProgressShowsFilesBytesRateAndEta) {
  sb.write_config("sync_to = [\"usb\"]\n[destinations.usb]\ntype = \"local\"\nroot = \"" +
                  (sb.root() / "usb").string() + "\"\n");
  fs::create_directories(sb.root() / "usb");
  sb.put("a.txt", std::string(5000, 'a'));
  sb.put("b/c.txt", "c");
  ok({"index", "photos"});
  auto r = ok({"sync", "photos", "--init", "-P"});
  EXPECT_THAT(r.err, HasSubstr("syncing 2/2 files"));
  EXPECT_THAT(r.err, HasSubstr("ETA"));
  EXPECT_THAT(r.err, HasSubstr("/s"));
  auto quiet = ok({"sync", "photos"});
  EXPECT_THAT(quiet.err, Not(HasSubstr("ETA"))) << "no -P on a pipe: no progress line";
}

// Seed property 1 through the real commands: while an offload of a volume
// runs, index, sync, verify and restore of it are refused, and an offload
// is refused while any of them runs.
TEST_F(CliTest, OffloadAndEveryOtherKindOnItsVolumeRefuseEachOtherBothWays) {
  using sq::store::RunKind;
  sb.write_config("sync_to = [\"usb\"]\noffload_requires = [\"usb\"]\n[destinations.usb]\ntype = \"local\"\nroot = \"" +
                  (sb.root() / "usb").string() + "\"\n");
  fs::create_directories(sb.root() / "usb");
  sb.put("a.txt", "alpha");
  ok({"index", "photos"});
  ok({"sync", "photos", "--init"});
  const std::vector<std::pair<std::vector<std::string>, std::pair<RunKind, std::string>>> others = {
      {{"index", "photos"}, {RunKind::index, ""}},
      {{"sync", "photos"}, {RunKind::sync, "usb"}},
      {{"verify", "usb"}, {RunKind::verify, "usb"}},
      {{"restore", "photos", "--to", (sb.root() / "out").string()}, {RunKind::restore, "usb"}},
  };
  auto offload = begin_running(sb.db_path(), "photos", RunKind::offload);
  for (const auto& [args, subject] : others) {
    auto r = fails(args);
    EXPECT_THAT(r.err, HasSubstr("already running (run=" + std::to_string(offload) + ", offload")) << args[0];
  }
  ok({"runs", "fail", std::to_string(offload)});
  for (const auto& [args, subject] : others) {
    auto running = begin_running(sb.db_path(), "photos", subject.first, subject.second);
    auto r = fails({"offload", "photos", "."});
    EXPECT_THAT(r.err, HasSubstr("already running (run=" + std::to_string(running) + ", " + args[0])) << args[0];
    ok({"runs", "fail", std::to_string(running)});
  }
  EXPECT_TRUE(fs::exists(sb.volume_dir() / "a.txt")) << "no refused offload removed anything";
  EXPECT_FALSE(fs::exists(sb.root() / "out")) << "the refused restore wrote nothing";
}
