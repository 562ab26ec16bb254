// Bad input of every kind: exactly one `Error: ` line on stderr that names
// what is wrong and what to do, exit status 1, nothing on stdout, and not a
// byte changed on disk.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "cli_util.hpp"

namespace {

namespace fs = std::filesystem;
using sq::test::CliResult;
using sq::test::CliSandbox;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// What one bad invocation must say: `what` names the problem, `todo` the
// next step.
struct Expect {
  std::string what;
  std::string todo;
};

class CliErrorTest : public ::testing::Test {
 protected:
  CliSandbox sb;

  void SetUp() override {
    sb.put("a.txt", "alpha");
    sb.put("sub/b.txt", "bravo");
  }

  // Runs squirrel with exactly `args` (no implied global flags) and checks
  // the whole contract, including that the sandbox tree is unchanged.
  CliResult expect_clean_error(const std::vector<std::string>& args, const Expect& e,
                               const sq::test::CliOptions* opts = nullptr) {
    auto before = sq::test::snapshot_tree(sb.root());
    auto r = sq::test::run_cli(args, opts ? *opts : sb.options());
    auto after = sq::test::snapshot_tree(sb.root());
    auto shown = "squirrel " + ::testing::PrintToString(args);
    EXPECT_EQ(r.status, 1) << shown;
    EXPECT_EQ(r.out, "") << shown;
    auto lines = r.err_lines();
    EXPECT_EQ(lines.size(), 1u) << shown << "\nstderr:\n" << r.err;
    if (!lines.empty()) {
      EXPECT_THAT(lines[0], StartsWith("Error: ")) << shown;
      EXPECT_THAT(lines[0], HasSubstr(e.what)) << shown;
      EXPECT_THAT(lines[0], HasSubstr(e.todo)) << shown;
    }
    EXPECT_EQ(before, after) << shown << "\n" << sq::test::describe_diff(before, after);
    return r;
  }
  // With `--config X --db Y` in front.
  CliResult expect_clean_error_g(const std::vector<std::string>& args, const Expect& e) {
    auto all = sb.global_args();
    all.insert(all.end(), args.begin(), args.end());
    return expect_clean_error(all, e);
  }
  std::vector<std::string> with_db(const std::string& db, const std::vector<std::string>& args) const {
    std::vector<std::string> all{"--config", sb.config_path().string(), "--db", db};
    all.insert(all.end(), args.begin(), args.end());
    return all;
  }
};

// The "nothing changed on disk" check is only as good as the snapshot.
TEST_F(CliErrorTest, TreeSnapshotSeesEveryKindOfChange) {
  auto base = sq::test::snapshot_tree(sb.root());
  auto file = sb.volume_dir() / "a.txt";
  auto old_time = fs::last_write_time(file);
  sq::test::write_file(file, "ALPHA");  // same size, new bytes
  fs::last_write_time(file, old_time);
  EXPECT_NE(sq::test::snapshot_tree(sb.root()), base);
  EXPECT_THAT(sq::test::describe_diff(base, sq::test::snapshot_tree(sb.root())), HasSubstr("changed: vol/photos/a.txt"));
  sq::test::write_file(file, "alpha");
  fs::last_write_time(file, old_time);
  auto restored = sq::test::snapshot_tree(sb.root());
  EXPECT_EQ(restored.at("vol/photos/a.txt"), base.at("vol/photos/a.txt"));
  fs::last_write_time(file, old_time + std::chrono::seconds(1));  // mtime only
  EXPECT_NE(sq::test::snapshot_tree(sb.root()).at("vol/photos/a.txt"), base.at("vol/photos/a.txt"));
  sq::test::write_file(sb.root() / "db" / "index.db-wal", "");
  EXPECT_THAT(sq::test::describe_diff(base, sq::test::snapshot_tree(sb.root())), HasSubstr("added: db/index.db-wal"));
}

// ---- config ------------------------------------------------------------------

TEST_F(CliErrorTest, MalformedTomlNamesFileLineAndColumn) {
  sb.write_config_raw("[volumes.photos\npath = \"/tmp\"\n");
  expect_clean_error_g({"index", "photos"}, {sb.config_path().string() + ":1:", "— fix the TOML syntax"});
}

TEST_F(CliErrorTest, UnknownConfigKeyIsNamedWithItsLine) {
  sb.write_config_raw("bogus = 1\n[volumes.photos]\npath = \"" + sb.volume_dir().string() + "\"\n");
  expect_clean_error_g({"index", "photos"},
                       {sb.config_path().string() + ":1: bogus: unknown key", "— remove it or check the spelling"});
}

TEST_F(CliErrorTest, UnknownKeyInsideAVolume) {
  sb.write_config_raw("[volumes.photos]\npath = \"" + sb.volume_dir().string() + "\"\npth = \"x\"\n");
  expect_clean_error_g({"config", "check"}, {":3: volumes.photos.pth: unknown key", "— remove it"});
}

TEST_F(CliErrorTest, BadVolumeName) {
  sb.write_config_raw("[volumes.\"bad name\"]\npath = \"" + sb.volume_dir().string() + "\"\n");
  expect_clean_error_g({"config", "check"}, {"volumes.\"bad name\": invalid name", "— use only letters, digits"});
}

TEST_F(CliErrorTest, UnsetEnvironmentSecret) {
  sb.write_config("[destinations.vault]\ntype = \"kopia\"\nroot = \"" + (sb.root() / "kopia").string() +
                  "\"\npassword = { env = \"NOPE_UNSET\" }\n");
  expect_clean_error_g({"index", "photos"},
                       {"destinations.vault.password: environment variable NOPE_UNSET is not set",
                        "— export NOPE_UNSET before running squirrel"});
}

TEST_F(CliErrorTest, MissingConfigFile) {
  auto missing = (sb.root() / "missing.toml").string();
  expect_clean_error({"--config", missing, "index", "photos"},
                     {"no config at " + missing, "— create one (see docs/configuration.md)"});
  expect_clean_error({"--config", missing, "runs"}, {"no config at " + missing, "— create one"});
}

TEST_F(CliErrorTest, MissingDefaultConfigFile) {
  expect_clean_error({"index", "photos"},
                     {"no config at " + (sb.home() / ".squirrel" / "config.toml").string(), "— create one"});
}

TEST_F(CliErrorTest, ConfigPathIsADirectory) {
  expect_clean_error({"--config", sb.root().string(), "config", "check"},
                     {"is a directory", "— point at the config.toml file inside it"});
}

// ---- command line ------------------------------------------------------------

TEST_F(CliErrorTest, UnknownFlag) {
  expect_clean_error_g({"index", "--bogus", "photos"}, {"--bogus", "— run `squirrel --help` for usage"});
}

TEST_F(CliErrorTest, UnknownCommand) {
  expect_clean_error_g({"frobnicate"}, {"frobnicate", "— run `squirrel --help` for usage"});
}

TEST_F(CliErrorTest, MissingRequiredArguments) {
  expect_clean_error_g({"index"}, {"volume is required", "— run `squirrel --help`"});
  expect_clean_error_g({"runs", "fail"}, {"id is required", "— run `squirrel --help`"});
  expect_clean_error_g({"db", "restore"}, {"snapshot is required", "— run `squirrel --help`"});
  expect_clean_error_g({"volumes", "move", "photos"}, {"new-path is required", "— run `squirrel --help`"});
}

// Parent commands print their help (spec: features §2.1), change nothing.
TEST_F(CliErrorTest, ParentCommandsWithoutSubcommandPrintHelp) {
  for (const char* parent : {"config", "db"}) {
    auto r = sb.run({parent});
    EXPECT_EQ(r.status, 0) << parent;
    EXPECT_NE(r.out.find("Subcommands"), std::string::npos) << parent << ": " << r.out;
  }
  EXPECT_FALSE(std::filesystem::exists(sb.db_path())) << "printing help must not create the database";
}

// One wording for the same mistake, whatever the command.
TEST_F(CliErrorTest, UnknownVolumeReadsTheSameInEveryCommand) {
  ASSERT_EQ(sb.run({"index", "photos"}).status, 0);  // runs and hooks look the name up in the database
  const std::string line = "Error: unknown volume \"nope\" — declare it in " + sb.config_path().string() +
                           " (see `squirrel volumes`)\n";
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"index", "nope"}, {"audit", "nope"}, {"sync", "nope"}, {"offload", "nope"}, {"restore", "nope"},
           {"status", "nope"}, {"backup", "nope"}, {"runs", "--volume", "nope"}, {"hooks", "--volume", "nope"}}) {
    auto r = sb.run(args);
    EXPECT_EQ(r.status, 1) << ::testing::PrintToString(args);
    EXPECT_EQ(r.err, line) << ::testing::PrintToString(args);
  }
}

TEST_F(CliErrorTest, DeepAndFoldersTogether) {
  expect_clean_error_g({"audit", "--deep", "--folders"}, {"--deep and --folders cannot be combined", "— pick one"});
}

TEST_F(CliErrorTest, NegativeOrHugeWorkerCount) {
  expect_clean_error_g({"index", "photos", "--workers", "-1"}, {"--workers", "must be between 1 and 256"});
  expect_clean_error_g({"index", "photos", "--workers", "100000"}, {"--workers", "must be between 1 and 256"});
  expect_clean_error_g({"index", "photos", "--workers", "many"}, {"many", "— run `squirrel --help`"});
}

TEST_F(CliErrorTest, NonPositiveLimitsAndKeeps) {
  expect_clean_error_g({"runs", "--limit", "-1"}, {"--limit", "cannot be negative"});
  expect_clean_error_g({"hooks", "--limit", "-3"}, {"--limit", "cannot be negative"});
  expect_clean_error_g({"db", "backup", "--keep", "-1"}, {"--keep", "must be 0 (keep all) or a positive number"});
}

TEST_F(CliErrorTest, BadRunId) {
  expect_clean_error_g({"runs", "fail", "abc"}, {"invalid run id \"abc\"", "— pass the number shown by `squirrel runs`"});
  expect_clean_error_g({"runs", "fail", "-4"}, {"invalid run id", "— pass the number"});
}

TEST_F(CliErrorTest, QueryNeedsExactlyOneMode) {
  expect_clean_error_g({"query"}, {"give a BLAKE3 hash or a path", "or one of --duplicates, --missing, --from NODE"});
  expect_clean_error_g({"query", "--duplicates", "--missing"}, {"cannot be combined", "--duplicates, --missing"});
  expect_clean_error_g({"query", "--missing", "x.txt"}, {"take no hash or path argument", "--missing"});
}

TEST_F(CliErrorTest, QueryBeforeAnyIndex) {
  expect_clean_error_g({"query", "--missing"}, {"the index is empty", "— run `squirrel index <volume>` first"});
}

// ---- database ------------------------------------------------------------------

TEST_F(CliErrorTest, DbPathThatIsASqliteUri) {
  expect_clean_error(with_db("file:x?mode=ro", {"runs"}),
                     {"the db path is a SQLite URI (file:)", "— write a plain file path"});
}

TEST_F(CliErrorTest, DbPathWithAQuestionMark) {
  expect_clean_error(with_db((sb.root() / "db" / "x?y.db").string(), {"index", "photos"}),
                     {"contains '?' or '#'", "— choose a file path without '?' and '#'"});
}

TEST_F(CliErrorTest, DbFileThatIsNotSqlite) {
  sq::test::write_file(sb.db_path(), "this is not a database, just some garbage bytes\n");
  expect_clean_error_g({"runs"}, {"is not a squirrel database (not an SQLite file)", "— check --db"});
  expect_clean_error_g({"index", "photos"}, {"is not a squirrel database", "— check --db"});
}

TEST_F(CliErrorTest, DbPathIsADirectory) {
  expect_clean_error(with_db((sb.root() / "db").string(), {"index", "photos"}),
                     {"is a directory", "— point --db at a file"});
}

// Permission bits do not stop root (CI runs as root), so use a place where
// nobody can create a file. Root and other users get different wording.
TEST_F(CliErrorTest, DbInAnUnwritablePlace) {
  expect_clean_error(with_db("/proc/squirrel-test.db", {"index", "photos"}), {"/proc", "writable"});
  expect_clean_error(with_db("/proc/squirrel-test.db", {"index", "photos"}), {"database", "— "});
}

TEST_F(CliErrorTest, ReadCommandsNeedAnExistingDatabase) {
  expect_clean_error_g({"db", "check"}, {"no database at " + sb.db_path().string(), "— run `squirrel index <volume>`"});
  expect_clean_error_g({"db", "backup"}, {"no database at", "— run `squirrel index <volume>`"});
  expect_clean_error_g({"runs", "fail", "1"}, {"no database at", "— run `squirrel index <volume>`"});
}

}  // namespace
