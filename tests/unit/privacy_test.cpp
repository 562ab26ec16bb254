// Private by default: the index, its -wal and -shm, its snapshots and `db
// backup` copies are created 0600 and the directories made for them 0700,
// whatever the umask; an existing file keeps its mode and is warned about
// by `config check` and `status`, as is a config that holds literal secrets
// and is readable by other accounts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/private_files.hpp"
#include "engine/privacy.hpp"
#include "loop_util.hpp"
#include "store/snapshots.hpp"
#include "store/store.hpp"
#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using sq::test::LoopSandbox;
using ::testing::HasSubstr;
using ::testing::Not;

// The usual umask for the length of a test; the squirrel binaries a test
// starts inherit it.
class UsualUmask {
 public:
  UsualUmask() : saved_(::umask(022)) {}
  ~UsualUmask() { ::umask(saved_); }
  UsualUmask(const UsualUmask&) = delete;
  UsualUmask& operator=(const UsualUmask&) = delete;

 private:
  mode_t saved_;
};

// The permission bits, or -1 when the file is not there.
int mode_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

void set_mode(const fs::path& p, mode_t mode) { ASSERT_EQ(::chmod(p.c_str(), mode), 0) << p; }

sq::store::Store open_store_at(const fs::path& db) {
  sq::store::StoreOptions o;
  o.node_name = "testnode";
  return sq::store::Store::open(db, o);
}

// ---- creation -------------------------------------------------------------------

TEST(Privacy, ANewDatabaseAndItsWalAndShmAreOwnerOnlyUnderUmask022) {
  UsualUmask usual_umask;
  sq::test::TempDir dir;
  auto db = dir / "index.db";
  auto store = open_store_at(db);  // open: the -wal and -shm exist
  EXPECT_EQ(mode_of(db), 0600);
  EXPECT_EQ(mode_of(db.string() + "-wal"), 0600);
  EXPECT_EQ(mode_of(db.string() + "-shm"), 0600);
}

TEST(Privacy, AnExistingDatabaseKeepsItsModeAndIsWarnedAbout) {
  UsualUmask usual_umask;
  sq::test::TempDir dir;
  auto db = dir / "index.db";
  { open_store_at(db); }
  EXPECT_EQ(sq::engine::exposed_database_warning(db), std::nullopt);
  set_mode(db, 0644);
  auto store = open_store_at(db);
  EXPECT_EQ(mode_of(db), 0644) << "opening must not change a mode the user chose";
  auto warning = sq::engine::exposed_database_warning(db);
  ASSERT_TRUE(warning);
  EXPECT_THAT(*warning, HasSubstr("index database " + db.string() + " is readable by other accounts (mode 0644)"));
  EXPECT_THAT(*warning, HasSubstr("chmod 600 " + db.string()));
}

TEST(Privacy, ASnapshotIsOwnerOnlyAndTheDirectoriesMadeForItAre0700) {
  UsualUmask usual_umask;
  sq::test::TempDir dir;
  set_mode(dir.path(), 0755);
  auto store = open_store_at(dir / "index.db");
  auto to = dir / "backups" / "deep" / "snap.db";
  sq::store::backup_to(store.db(), to);
  EXPECT_EQ(mode_of(to), 0600);
  EXPECT_EQ(mode_of(dir / "backups"), 0700);
  EXPECT_EQ(mode_of(dir / "backups" / "deep"), 0700);
  EXPECT_EQ(mode_of(dir.path()), 0755) << "a directory that was already there keeps its mode";
}

TEST(Privacy, APreMigrationSnapshotIsOwnerOnly) {
  UsualUmask usual_umask;
  sq::test::TempDir dir;
  static const std::vector<sq::store::Migration> v1_only{sq::store::migrations().at(0)};
  sq::store::StoreOptions old;
  old.node_name = "testnode";
  old.registry = &v1_only;
  { sq::store::Store::open(dir / "index.db", old); }
  sq::store::StoreOptions now;
  now.node_name = "testnode";
  now.snapshot_dir = dir / "snaps" / "pre";
  auto store = sq::store::Store::open(dir / "index.db", now);
  ASSERT_FALSE(store.migration().snapshot.empty());
  EXPECT_EQ(mode_of(store.migration().snapshot), 0600);
  EXPECT_EQ(mode_of(dir / "snaps"), 0700);
  EXPECT_EQ(mode_of(dir / "snaps" / "pre"), 0700);
}

TEST(Privacy, ARestoredDatabaseIsOwnerOnlyWhateverTheSnapshotsMode) {
  UsualUmask usual_umask;
  sq::test::TempDir dir;
  auto live = dir / "index.db";
  auto snapshot = dir / "snap.db";
  {
    auto store = open_store_at(live);
    sq::store::backup_to(store.db(), snapshot);
  }
  set_mode(snapshot, 0644);
  sq::store::restore_snapshot(snapshot, live);
  EXPECT_EQ(mode_of(live), 0600);
  EXPECT_EQ(sq::test::read_file(live), sq::test::read_file(snapshot));
}

TEST(Privacy, CreatePrivateFileLeavesWhatIsThereAlone) {
  UsualUmask usual_umask;
  sq::test::TempDir dir;
  auto file = dir / "taken";
  sq::test::write_file(file, "mine");
  set_mode(file, 0644);
  EXPECT_FALSE(sq::create_private_file(file));
  EXPECT_EQ(mode_of(file), 0644);
  EXPECT_EQ(sq::test::read_file(file), "mine");
}

TEST(Privacy, LiteralSecretsAreListedByKeyPathAndSecretsFromTheEnvironmentAreNot) {
  ::setenv("SQ_PRIVACY_TEST_TOKEN", "from-env", 1);
  auto cfg = sq::config::parse(R"(
[destinations.box]
type = "sftp"
root = "r"
host = "h"
user = "u"
password = ""

[nodes.desk]
endpoint = "https://desk:7777"
auth.bearer = "literal"

[nodes.lap]
endpoint = "https://lap:7777"
auth.bearer = { env = "SQ_PRIVACY_TEST_TOKEN" }
)",
                               "/nonexistent/config.toml");
  EXPECT_EQ(cfg.literal_secrets, std::vector<std::string>{"nodes.desk.auth.bearer"})
      << "an empty literal sets no secret; an env one is not in the file";
}

// ---- through the binary ---------------------------------------------------------

TEST(PrivacyCli, DbBackupFilesAndTheirNewDirectoriesAreOwnerOnly) {
  UsualUmask usual_umask;
  LoopSandbox sb;
  sb.put("a.txt", "alpha");
  sb.ok({"index", "photos"});
  EXPECT_EQ(mode_of(sb.db_path()), 0600);
  sb.ok({"db", "backup"});
  auto backups = sb.db_path().parent_path() / "backups";
  EXPECT_EQ(mode_of(backups), 0700);
  for (const auto& e : fs::directory_iterator(backups)) EXPECT_EQ(mode_of(e.path()), 0600) << e.path();
  auto to = sb.root() / "elsewhere" / "deep" / "copy.db";
  sb.ok({"db", "backup", "--to", to.string()});
  EXPECT_EQ(mode_of(to), 0600);
  EXPECT_EQ(mode_of(sb.root() / "elsewhere"), 0700);
  EXPECT_EQ(mode_of(sb.root() / "elsewhere" / "deep"), 0700);
}

TEST(PrivacyCli, TheIndexSnapshotASyncTakesAlongIsOwnerOnly) {
  UsualUmask usual_umask;
  LoopSandbox sb;
  sb.put("a.txt", "alpha");
  sb.ok({"index", "photos"});
  sb.ok({"sync", "--init"});
  auto backups = sb.db_path().parent_path() / "backups";
  EXPECT_EQ(mode_of(backups), 0700);
  int snapshots = 0;
  for (const auto& e : fs::directory_iterator(backups)) {
    ++snapshots;
    EXPECT_EQ(mode_of(e.path()), 0600) << e.path();
  }
  EXPECT_EQ(snapshots, 1);
}

TEST(PrivacyCli, TheDefaultDatabaseDirectoryIsMadeOwnerOnly) {
  UsualUmask usual_umask;
  LoopSandbox sb;
  sb.put("a.txt", "alpha");
  auto r = sq::test::run_cli({"--config", sb.config_path().string(), "index", "photos"}, sb.options());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(mode_of(sb.home() / ".squirrel"), 0700);
  EXPECT_EQ(mode_of(sb.home() / ".squirrel" / "index.db"), 0600);
}

// ---- warnings -------------------------------------------------------------------

constexpr const char* kExposed = "is readable by other accounts";

TEST(PrivacyCli, AWorldReadableDatabaseIsWarnedAboutByConfigCheckAndStatusAndKeepsItsMode) {
  LoopSandbox sb;
  sb.put("a.txt", "alpha");
  sb.ok({"index", "photos"});
  EXPECT_THAT(sb.ok({"config", "check"}).out, Not(HasSubstr(kExposed)));
  EXPECT_THAT(sb.run({"status"}).out, Not(HasSubstr(kExposed)));
  set_mode(sb.db_path(), 0644);
  auto db = sb.db_path().string();
  auto want = "index database " + db + " is readable by other accounts (mode 0644), and it names every file of "
              "your volumes — run `chmod 600 " + db + "`";
  auto check = sb.ok({"config", "check"});
  EXPECT_THAT(check.out, HasSubstr("\nprivacy (1)\n  warn  database  " + want + "\n"));
  auto status = sb.run({"status"});
  EXPECT_THAT(status.out, HasSubstr("warning: " + want + "\n"));
  auto json = nlohmann::json::parse(sb.run({"status", "--json"}).out);
  EXPECT_EQ(json.at("warnings"), nlohmann::json::array({want}));
  EXPECT_EQ(mode_of(sb.db_path()), 0644) << "a warning, never a silent chmod";
}

// A node whose bearer token is `bearer` (TOML), beside the sandbox's volume.
void configure_with_bearer(const LoopSandbox& sb, const std::string& bearer) {
  sb.configure("");
  auto text = sq::test::read_file(sb.config_path());
  sb.write_config_raw(text + "\n[nodes.desk]\nendpoint = \"https://desk:7777\"\nauth.bearer = " + bearer + "\n");
}

std::string config_warning(const LoopSandbox& sb) {
  auto file = sb.config_path().string();
  return "config " + file + " holds secrets (nodes.desk.auth.bearer) and is readable by other accounts (mode 0644) "
         "— run `chmod 600 " + file + "`, or read each secret with { env = \"VAR\" }";
}

TEST(PrivacyCli, AConfigWithALiteralSecretReadableByOthersIsWarnedAbout) {
  LoopSandbox sb;
  configure_with_bearer(sb, "\"hunter2\"");
  set_mode(sb.config_path(), 0644);
  auto check = sb.ok({"config", "check"});
  EXPECT_THAT(check.out, HasSubstr("  warn  config  " + config_warning(sb) + "\n"));
  EXPECT_THAT(check.out + check.err, Not(HasSubstr("hunter2")));
  auto status = sb.run({"status"});
  EXPECT_THAT(status.out, HasSubstr("warning: " + config_warning(sb) + "\n"));
}

TEST(PrivacyCli, AConfigWithALiteralSecretReadableOnlyByItsOwnerIsNotWarnedAbout) {
  LoopSandbox sb;
  configure_with_bearer(sb, "\"hunter2\"");
  set_mode(sb.config_path(), 0600);
  EXPECT_THAT(sb.ok({"config", "check"}).out, Not(HasSubstr(kExposed)));
  EXPECT_THAT(sb.run({"status"}).out, Not(HasSubstr(kExposed)));
}

TEST(PrivacyCli, AConfigThatReadsItsSecretsFromTheEnvironmentIsNotWarnedAbout) {
  LoopSandbox sb;
  configure_with_bearer(sb, "{ env = \"DESK_BEARER\" }");
  set_mode(sb.config_path(), 0644);
  auto o = sb.options();
  o.env.push_back({"DESK_BEARER", "hunter2"});
  auto check = sq::test::run_cli({"--config", sb.config_path().string(), "--db", sb.db_path().string(), "config",
                                  "check"},
                                 o);
  EXPECT_EQ(check.status, 0) << check.err;
  EXPECT_THAT(check.out, HasSubstr("desk"));
  EXPECT_THAT(check.out, Not(HasSubstr(kExposed)));
}

}  // namespace
