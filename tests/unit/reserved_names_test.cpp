// Names squirrel reserves inside a volume (sync-offload-restore §1.5, issue
// 12 §4): the walk never records them as user data, reports each one it
// finds, and status counts them as unprotected, so a volume holding one is
// never green. Rows an older index recorded under such names retire, and
// the SQL every copy, gate and restore query uses agrees with the walk.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/reserved.hpp"
#include "core/text.hpp"
#include "engine/status.hpp"
#include "store/evidence.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using store::RunStatus;

namespace {

constexpr const char* kTemp = ".squirrel-restore-87-0123456789abcdef";  // exactly a restore's temp name

// Every entry squirrel reserves that one volume can hold, and user files
// that only resemble them.
void put_reserved_and_lookalikes(SyncSandbox& sb) {
  sb.write(".squirrel-index/run-3", "a user's own folder of that name");
  sb.write(".squirrel-staging/x", "S");
  sb.write(".squirrel-restore-history/run-2/photo.jpg", "moved aside by restore --in-place");
  sb.write(".squirrel-notes", "a root file under the reserved prefix");
  sb.write(std::string("sub/") + kTemp, "left by a killed restore");
  sb.write(kTemp, "left at the top by a killed restore");
  sb.write("sub/photo.jpg", "P");
  sb.write("sub/.squirrel-index/y", "reserved only at the top");
  sb.write("sub/.squirrel-restore-87-0123456789ABCDEF", "upper-case hex: not a temp name");
}

std::set<std::string> present_paths(SyncSandbox& sb) {
  std::set<std::string> out;
  for (const auto& [path, hash] : present_set(sb.db(), sb.vol_id())) out.insert(path);
  return out;
}

engine::VolumeStatus status_of(SyncSandbox& sb) {
  return engine::build_status(sb.cfg(), &sb.st(), std::string("v"), now_ns()).volumes.at(0);
}

// path -> warning message
engine::IndexReport index_collecting(SyncSandbox& sb, std::map<std::string, std::string>& warned) {
  return engine::run_index(sb.cfg(), sb.st(), "v", index_opts(), [&](const engine::IndexEvent& e) {
    if (e.type == engine::IndexEvent::Type::warning) warned[e.path] = e.message;
  });
}

}  // namespace

TEST(ReservedNames, TheWalkRecordsNoneAndReportsEachOne) {
  SyncSandbox sb;
  put_reserved_and_lookalikes(sb);
  std::map<std::string, std::string> warned;
  auto r = index_collecting(sb, warned);
  EXPECT_EQ(r.status, RunStatus::success) << "the walk itself was complete";
  EXPECT_EQ(r.reserved, 6);
  std::vector<std::string> paths;
  for (const auto& [path, message] : warned) paths.push_back(path);
  EXPECT_THAT(paths, ElementsAre(".squirrel-index", ".squirrel-notes", kTemp, ".squirrel-restore-history",
                                 ".squirrel-staging", std::string("sub/") + kTemp));
  EXPECT_THAT(warned[kTemp], HasSubstr("temp file of an interrupted restore"));
  EXPECT_THAT(warned[".squirrel-restore-history"], HasSubstr("move what you want to keep back into the volume"));
  EXPECT_THAT(warned[".squirrel-index"], HasSubstr("rename it"));
  EXPECT_EQ(present_paths(sb), (std::set<std::string>{"sub/.squirrel-index/y",
                                                      "sub/.squirrel-restore-87-0123456789ABCDEF", "sub/photo.jpg"}));
  auto notes = sb.db().query_rows("SELECT note FROM runs_audit WHERE run_id = ? AND transition = 'reserved-names'",
                                  {store::Value{r.run_id}});
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0][0], store::Value{std::string("6")});
}

// The report: every copy green, "1 files of 1 present", while four
// entries nothing copies sat in the volume.
TEST(ReservedNames, StatusCountsThemUnprotectedUntilTheyAreGone) {
  SyncSandbox sb;
  sb.write("photo.jpg", "P");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  ASSERT_EQ(status_of(sb).light, engine::Light::green);

  sb.write(".squirrel-index/x", "X");
  sb.write(".squirrel-staging/x", "S");
  sb.write(".squirrel-restore-history/run-1/photo.jpg", "old");
  sb.write(std::string("dir/") + kTemp, "T");
  ASSERT_EQ(sb.index().reserved, 4);
  ASSERT_EQ(sb.sync().status, RunStatus::success);
  auto s = status_of(sb);
  EXPECT_EQ(s.unprotected, 4);
  EXPECT_EQ(s.light, engine::Light::amber);
  EXPECT_THAT(s.reasons, testing::Contains(HasSubstr("4 entries of v under names squirrel reserves are never copied")));

  for (const char* p : {".squirrel-index", ".squirrel-staging", ".squirrel-restore-history", "dir"}) sb.remove(p);
  ASSERT_EQ(sb.index().reserved, 0);
  ASSERT_EQ(sb.sync().status, RunStatus::success);
  EXPECT_EQ(status_of(sb).unprotected, 0);
  EXPECT_EQ(status_of(sb).light, engine::Light::green);
}

// An index older than the rule recorded them as present user files: status
// counts those rows as unprotected, and the next index retires them (their
// bytes stay where they are), after which the walk's report stands in.
TEST(ReservedNames, RowsAnOlderIndexRecordedRetireAndCountUntilThen) {
  SyncSandbox sb;
  sb.write("photo.jpg", "P");
  sb.write(".squirrel-index/x", "X");
  sb.write(std::string("dir/") + kTemp, "T");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto run = store::begin_run(sb.db(), {store::RunKind::index, sb.vol_id(), ""}).run_id;
  std::vector<store::Observation> old_rows{{".squirrel-index/x", blake3("X"), 1, 1, 1, false, true},
                                           {std::string("dir/") + kTemp, blake3("T"), 1, 1, 2, false, true}};
  store::apply_index_batch(sb.db(), sb.vol_id(), run, old_rows);
  store::finish_run(sb.db(), run, {RunStatus::success, "", 3, 2});
  EXPECT_EQ(status_of(sb).unprotected, 2) << "present rows under reserved names";

  auto r = sb.index();
  EXPECT_EQ(r.missing, 2);
  EXPECT_EQ(present_paths(sb), std::set<std::string>{"photo.jpg"});
  EXPECT_EQ(live_row_by_path(sb.db(), sb.vol_id(), std::string("dir/") + kTemp)->status, "missing");
  EXPECT_TRUE(fs::exists(sb.src() / "dir" / kTemp)) << "the index never touches bytes";
  EXPECT_EQ(status_of(sb).unprotected, 2) << "now from the walk's report";
}

// One rule, two spellings: the C++ predicate the walk uses and the SQL
// condition of every plan, gate and restore query.
TEST(ReservedNames, TheSqlConditionAndTheWalkAgreeOnEveryName) {
  TempDir dir;
  auto st = open_store(dir);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", ".squirrel-volume"},      {"", ".squirrel-index"},       {"", ".squirrel-"},
      {"", ".squirrelx"},            {"", "photo.jpg"},             {".squirrel-index", "run-3"},
      {".squirrel-history/a", "b"},  {"a/.squirrel-index", "x"},    {"a", ".squirrel-index"},
      {"a", kTemp},                  {"", kTemp},                   {"a", ".squirrel-restore-0-0123456789abcdef"},
      {"a", ".squirrel-restore-1-0123456789abcde"},                 {"a", ".squirrel-restore-1-0123456789abcdeF"},
      {"a", ".squirrel-restore-12-x-0123456789abcdef"},             {"a", ".squirrel-restore-1\xff-0123456789abcdef"},
      {"a", ".squirrel-restore-1-0123456789abcdef.jpg"},            {"a", "x.squirrel-restore-1-0123456789abcdef"},
      {"a", ".squirrel-restore-9x0123456789abcdef"},                {"a", ".squirrel-restore--0123456789abcdef"},
  };
  auto sql = std::string("SELECT ") + store::kOutsideReserved + " FROM (SELECT ?1 AS path) d, (SELECT ?2 AS name) f";
  for (const auto& [folder, name] : cases) {
    bool by_sql = st.db().query_i64(sql, {store::blob_of(folder), store::blob_of(name)}).value_or(-1) == 1;
    EXPECT_EQ(by_sql, store::outside_reserved(folder, name)) << escape_for_display(folder + "/" + name);
    EXPECT_EQ(store::outside_reserved(folder, name), !reserved_file(folder, name));
  }
  EXPECT_TRUE(restore_temp_like(kTemp));
  EXPECT_TRUE(restore_temp_like(".squirrel-restore-12-x-0123456789abcdef"));
  EXPECT_FALSE(restore_temp_like(".squirrel-restore-0-0123456789abcdef"));
  EXPECT_FALSE(restore_temp_like(".squirrel-restore-1-0123456789abcdeF"));
}
