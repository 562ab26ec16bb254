// The schema golden file: src/store/schema.sql is the DDL a fresh database
// gets from this binary's registry. Regenerate it after a deliberate
// schema change with
//   SQUIRREL_UPDATE_SCHEMA=1 squirrel_unit --gtest_filter='Schema*'
// and review the diff.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "store/migrations.hpp"
#include "test_util.hpp"

using namespace sq;
using namespace sq::store;

namespace fs = std::filesystem;

namespace {

const fs::path kGolden = fs::path(SQUIRREL_SOURCE_DIR) / "src" / "store" / "schema.sql";

bool updating() {
  const char* v = std::getenv("SQUIRREL_UPDATE_SCHEMA");
  return v && std::string(v) == "1";
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The first line where the two texts part, for a readable failure.
std::string first_difference(const std::string& golden, const std::string& fresh) {
  std::istringstream a(golden), b(fresh);
  std::string la, lb;
  for (int line = 1;; ++line) {
    bool ha = static_cast<bool>(std::getline(a, la)), hb = static_cast<bool>(std::getline(b, lb));
    if (!ha && !hb) return "they differ only in the final newline";
    if (!ha || !hb || la != lb)
      return "line " + std::to_string(line) + " is\n  " + (ha ? la : "<end of file>") + "\nbut the binary makes\n  " +
             (hb ? lb : "<end of schema>");
  }
}

}  // namespace

TEST(Schema, FreshSchemaEqualsTheCheckedInGoldenFile) {
  const std::string fresh = fresh_schema();
  ASSERT_NE(fresh.find("CREATE TABLE runs"), std::string::npos);
  if (updating()) {
    std::ofstream out(kGolden, std::ios::binary | std::ios::trunc);
    out << fresh;
    out.close();
    ASSERT_TRUE(out) << "cannot write " << kGolden;
  }
  ASSERT_TRUE(fs::exists(kGolden)) << kGolden << " is missing — run with SQUIRREL_UPDATE_SCHEMA=1 to generate it";
  const std::string golden = read_bytes(kGolden);
  EXPECT_TRUE(golden == fresh) << kGolden << " is out of date: " << first_difference(golden, fresh)
                               << "\nIf the schema change is deliberate, regenerate it with SQUIRREL_UPDATE_SCHEMA=1 "
                               << "and review the diff.";
}

TEST(Schema, FreshSchemaIsStable) {
  EXPECT_EQ(fresh_schema(), fresh_schema());
}

TEST(Schema, AMigratedDatabaseOnDiskHasTheFreshSchema) {
  test::TempDir dir;
  {
    auto s = test::open_store(dir);
    EXPECT_EQ(dump_schema(s.db()), fresh_schema());
  }
  // Reopened (no step runs), and after data was written, still the same DDL.
  auto s = test::open_store(dir);
  s.db().execute("INSERT INTO volumes(name, path, created_at_ns) VALUES ('v', '/v', 1)");
  EXPECT_EQ(dump_schema(s.db()), fresh_schema());
}

TEST(Schema, EveryOlderVersionMigratedForwardOnDiskHasTheFreshSchema) {
  // Build a database with each prefix of the real registry, then let the
  // full registry carry it forward: the result must be indistinguishable
  // from a fresh database.
  const auto& all = migrations();
  for (std::size_t n = 1; n < all.size(); ++n) {
    test::TempDir dir;
    const std::vector<Migration> prefix(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
    {
      store::StoreOptions o;
      o.node_name = "testnode";
      o.registry = &prefix;
      auto old = Store::open(dir / "index.db", o);
      ASSERT_EQ(schema_version(old.db()), prefix.back().version);
    }
    auto s = test::open_store(dir);
    EXPECT_EQ(s.migration().from, prefix.back().version);
    EXPECT_FALSE(s.migration().snapshot.empty()) << "an existing database is snapshotted first";
    EXPECT_EQ(schema_version(s.db()), current_schema_version());
    EXPECT_EQ(dump_schema(s.db()), fresh_schema()) << "from v" << prefix.back().version;
  }
}

TEST(Schema, DumpListsTablesThenIndexesThenTriggersAndSkipsSQLiteInternals) {
  const std::string dump = fresh_schema();
  auto last_table = dump.rfind("CREATE TABLE");
  auto first_index = dump.find("CREATE INDEX");
  auto first_unique = dump.find("CREATE UNIQUE INDEX");
  auto last_index = std::max(dump.rfind("CREATE INDEX"), dump.rfind("CREATE UNIQUE INDEX"));
  auto first_trigger = dump.find("CREATE TRIGGER");
  ASSERT_NE(first_index, std::string::npos);
  ASSERT_NE(first_unique, std::string::npos);
  ASSERT_NE(first_trigger, std::string::npos);
  EXPECT_LT(last_table, std::min(first_index, first_unique));
  EXPECT_LT(last_index, first_trigger);
  EXPECT_EQ(dump.find("sqlite_"), std::string::npos);
  EXPECT_NE(dump.find("CREATE TABLE schema_version"), std::string::npos);
}
