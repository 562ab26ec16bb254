// The index run (agent-peers-index-cli §3): classification and the run row,
// missing only after a clean walk, offloaded rows, shallow mode, dry run,
// the volume marker, what the walker skips, per-file errors, raw-byte
// names, determinism across worker counts and the run gate.
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>

#include "core/error.hpp"
#include "core/text.hpp"
#include "engine/hash_pool.hpp"
#include "engine/volume.hpp"
#include "engine/walk.hpp"
#include "index_util.hpp"
#include "store/runs.hpp"

using namespace sq;
using namespace sq::store;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
namespace fs = std::filesystem;

namespace {

fs::path made_dir(const fs::path& p) {
  fs::create_directories(p);
  return p;
}

class IndexTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  fs::path root = made_dir(dir / "vol");
  config::Config cfg = test::volume_config(root);
  std::optional<Store> store{test::open_store(dir)};

  Db& db() { return store->db(); }
  std::int64_t vol() { return test::volume_id(db()); }
  void put(const std::string& rel, const std::string& content) { test::write_file(root / rel, content); }

  engine::IndexReport index(const engine::IndexOptions& o = test::index_opts(),
                            const engine::IndexListener& listener = {}) {
    return engine::run_index(cfg, *store, "v", o, listener);
  }

  RunRow run_row(std::int64_t id) {
    auto r = get_run(db(), id);
    if (!r) throw std::runtime_error("no run " + std::to_string(id));
    return *r;
  }

  RunRow last_run() {
    auto id = db().query_i64("SELECT max(id) FROM runs");
    return run_row(id.value_or(0));
  }

  std::int64_t run_count() { return db().query_i64("SELECT count(*) FROM runs").value_or(-1); }

  void expect_consistent() {
    EXPECT_THAT(test::folder_problems(db(), vol()), IsEmpty());
    EXPECT_LE(test::max_live_rows_per_path(db()), 1);
  }

  void expect_live_equals_disk() { EXPECT_EQ(test::present_set(db(), vol()), test::disk_set(root)); }

  // A finished run of `kind` to stamp a manual store change with.
  std::int64_t manual_run(RunKind kind) {
    auto r = begin_run(db(), {kind, vol(), ""});
    finish_run(db(), r.run_id, {RunStatus::success, "", 0, std::nullopt});
    return r.run_id;
  }

  void offload(const std::string& rel) {
    auto row = live_row_by_path(db(), vol(), rel);
    ASSERT_TRUE(row);
    mark_offloaded(db(), vol(), rel, row->content_id, manual_run(RunKind::offload));
    fs::remove(root / rel);
  }
};

void expect_counts(const engine::IndexReport& r, std::int64_t added, std::int64_t modified, std::int64_t unchanged,
                   std::int64_t missing) {
  EXPECT_EQ(r.added, added);
  EXPECT_EQ(r.modified, modified);
  EXPECT_EQ(r.unchanged, unchanged);
  EXPECT_EQ(r.missing, missing);
}

Error index_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  return Error(ErrorKind::internal, "no error was thrown");
}

}  // namespace

TEST_F(IndexTest, CountsAndRunRowFollowEveryKindOfChange) {
  put("a", "A");
  put("b", "B");
  put("d/c", "C");
  auto r1 = index();
  expect_counts(r1, 3, 0, 0, 0);
  EXPECT_TRUE(r1.first_index);
  auto row = run_row(r1.run_id);
  EXPECT_EQ(row.kind, RunKind::index);
  EXPECT_EQ(row.status, RunStatus::success);
  EXPECT_EQ(row.file_count, 3);
  EXPECT_EQ(row.changed_count, 3);
  EXPECT_EQ(row.shallow, false);
  put("a", "A2");
  fs::remove(root / "b");
  put("d/e", "E");
  auto r2 = index();
  expect_counts(r2, 1, 1, 1, 1);
  EXPECT_FALSE(r2.first_index);
  row = run_row(r2.run_id);
  EXPECT_EQ(row.file_count, 3) << "added + modified + unchanged";
  EXPECT_EQ(row.changed_count, 3) << "added + modified + missing";
  auto r3 = index();
  expect_counts(r3, 0, 0, 3, 0);
  row = run_row(r3.run_id);
  EXPECT_EQ(row.changed_count, 0);
  EXPECT_TRUE(is_no_op(row));
  EXPECT_EQ(live_row_by_path(db(), vol(), "b")->status, "missing");
  expect_consistent();
  expect_live_equals_disk();
}

TEST_F(IndexTest, TheShallowFlagIsRecordedOnTheRun) {
  put("a", "A");
  EXPECT_EQ(run_row(index().run_id).shallow, false);
  EXPECT_EQ(run_row(index(test::index_opts(true)).run_id).shallow, true);
  auto audit = run_row(index(test::audit_opts(false)).run_id);
  EXPECT_EQ(audit.kind, RunKind::audit);
  EXPECT_EQ(audit.status, RunStatus::success);
}

// The index reports a `.squirrel-history` folder at the root (a reserved
// name) before it looks at anything below; the listener uses that moment
// to remove a folder, an error that happens even to root. Depending on how
// far the walker thread has read ahead, the folder itself or the file in
// it is the one entry that fails. The error spares only that path: a file
// gone from a folder the walk did list is flagged missing in the same run.
TEST_F(IndexTest, MissingIsFlaggedEverywhereButBeneathAWalkError) {
  put(".squirrel-history/h", "H");
  put("keep", "K");
  put("gone", "G");
  put("zz/inner", "I");
  expect_counts(index(), 3, 0, 0, 0);
  fs::remove(root / "gone");
  std::vector<std::string> errors;
  auto listener = [&](const engine::IndexEvent& e) {
    if (e.type == engine::IndexEvent::Type::warning) fs::remove_all(root / "zz");
    if (e.type == engine::IndexEvent::Type::file_error) errors.push_back(e.path);
  };
  auto r = index(test::index_opts(), listener);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::AnyOf("zz", "zz/inner"));
  EXPECT_EQ(r.errors, 1);
  EXPECT_EQ(r.status, RunStatus::partial);
  EXPECT_EQ(r.missing, 1);
  auto row = run_row(r.run_id);
  EXPECT_EQ(row.status, RunStatus::partial);
  EXPECT_THAT(row.error, HasSubstr("1 file error"));
  EXPECT_EQ(live_row_by_path(db(), vol(), "gone")->status, "missing") << "its folder was listed in full";
  EXPECT_EQ(live_row_by_path(db(), vol(), "zz/inner")->status, "present") << "the error's path is spared";
  auto clean = index();
  EXPECT_EQ(clean.missing, 1);
  EXPECT_EQ(clean.status, RunStatus::success);
  EXPECT_EQ(live_row_by_path(db(), vol(), "zz/inner")->status, "missing");
  expect_consistent();
}

TEST_F(IndexTest, OffloadedRowsAreNeverMissingAndReturnKeepingFirstSeen) {
  put("a", "AAA");
  put("b", "B");
  auto first = index().run_id;
  offload("a");
  auto r = index();
  expect_counts(r, 0, 0, 1, 0);
  EXPECT_EQ(r.status, RunStatus::success);
  EXPECT_EQ(live_row_by_path(db(), vol(), "a")->status, "offloaded");
  expect_consistent();
  put("a", "AAA");
  auto back = index();
  expect_counts(back, 0, 1, 1, 0);
  auto a = live_row_by_path(db(), vol(), "a");
  EXPECT_EQ(a->status, "present");
  EXPECT_EQ(a->first_seen_run, first);
  EXPECT_EQ(a->status_changed_run, back.run_id);
  EXPECT_EQ(history_by_path(db(), vol(), "a").size(), 1u);
  offload("b");
  put("b", "other bytes");
  expect_counts(index(), 0, 1, 1, 0);
  auto hist = history_by_path(db(), vol(), "b");
  ASSERT_EQ(hist.size(), 2u);
  EXPECT_EQ(hist[0].status, "superseded") << "the offloaded content stays in the history";
  expect_consistent();
  expect_live_equals_disk();
}

// A restore (or a move away and back) keeps the mtime: shallow mode must
// still hash a file whose row is not present, or the row would stay
// missing or offloaded while the bytes are back.
TEST_F(IndexTest, ShallowRevivesMissingAndOffloadedRowsWhoseBytesReturnWithTheirMtime) {
  put("moved", "M");
  put("off", "OFF");
  put("stay", "S");
  index();
  auto moved_mtime = test::mtime_ns(root / "moved"), off_mtime = test::mtime_ns(root / "off");
  fs::rename(root / "moved", dir / "elsewhere");
  expect_counts(index(), 0, 0, 2, 1);
  offload("off");
  fs::rename(dir / "elsewhere", root / "moved");
  put("off", "OFF");
  test::set_mtime_ns(root / "off", off_mtime);
  ASSERT_EQ(test::mtime_ns(root / "moved"), moved_mtime);
  auto r = index(test::index_opts(true));
  expect_counts(r, 0, 2, 1, 0);
  EXPECT_EQ(live_row_by_path(db(), vol(), "moved")->status, "present");
  EXPECT_EQ(live_row_by_path(db(), vol(), "off")->status, "present");
  EXPECT_EQ(live_row_by_path(db(), vol(), "off")->status_changed_run, r.run_id);
  expect_consistent();
  expect_live_equals_disk();
}

TEST_F(IndexTest, ShallowOverAnUnchangedTreeIsANoOp) {
  for (int i = 0; i < 20; ++i) put(fmt::format("d{}/f{}", i % 3, i), std::string(i, 'x'));
  index();
  auto tables = [&] {
    return db().query_rows(
        "SELECT 'f', folder_id, name, content_id, mtime_ns, inode, status, first_seen_run_id, status_changed_run_id "
        "FROM files UNION ALL SELECT 'd', id, path, shallow_blake3, deep_blake3, last_changed_run_id, file_count, "
        "cumulative_size, NULL FROM folders UNION ALL SELECT 'c', id, blake3, size_bytes, NULL, NULL, NULL, NULL, "
        "NULL FROM contents ORDER BY 1, 2, 3");
  };
  auto before = tables();
  auto r = index(test::index_opts(true));
  expect_counts(r, 0, 0, 20, 0);
  EXPECT_EQ(r.bytes_hashed, 0);
  EXPECT_TRUE(is_no_op(run_row(r.run_id)));
  EXPECT_EQ(tables(), before);
}

TEST_F(IndexTest, ShallowMissesASameSizeSameMtimeRewriteButADeepAuditCatchesIt) {
  put("a", "hello");
  put("b", "bbb");
  index();
  auto mt = test::mtime_ns(root / "a");
  put("a", "jello");
  test::set_mtime_ns(root / "a", mt);
  auto shallow = index(test::index_opts(true));
  expect_counts(shallow, 0, 0, 2, 0);
  EXPECT_EQ(live_row_by_path(db(), vol(), "a")->hash, blake3("hello"));
  EXPECT_EQ(index(test::audit_opts(false)).modified, 0) << "size+mtime audit cannot see it either";
  std::vector<std::string> findings;
  auto deep = index(test::audit_opts(true), [&](const engine::IndexEvent& e) {
    if (e.type == engine::IndexEvent::Type::finding) findings.push_back(e.path + ":" + e.message);
  });
  EXPECT_EQ(deep.modified, 1);
  EXPECT_EQ(findings, std::vector<std::string>{"a:modified"});
  EXPECT_EQ(run_row(deep.run_id).kind, RunKind::audit);
  EXPECT_EQ(live_row_by_path(db(), vol(), "a")->hash, blake3("hello")) << "an audit records nothing";
  expect_counts(index(), 0, 1, 1, 0);
  EXPECT_EQ(live_row_by_path(db(), vol(), "a")->hash, blake3("jello"));
}

TEST_F(IndexTest, DryRunWritesNothingAndCountsMissingIncludingVanishedFolders) {
  for (auto p : {"keep", "mod", "gone", "old/x", "old/sub/y", "old/sub/deeper/z", "stay/w"}) put(p, p);
  index();
  put("mod", "changed");
  fs::remove(root / "gone");
  fs::remove_all(root / "old");
  put("new/n", "N");
  auto db_path = dir / "index.db";
  store.reset();
  auto bytes = test::read_bytes(db_path);
  store.emplace(test::open_store(dir));
  auto everything = test::dump_everything(db());
  std::vector<std::string> events;
  auto r = index(test::index_opts(false, true), [&](const engine::IndexEvent& e) {
    if (e.type != engine::IndexEvent::Type::progress) events.push_back(e.path);
  });
  expect_counts(r, 1, 1, 2, 4);
  EXPECT_EQ(r.run_id, 0);
  EXPECT_TRUE(r.dry_run);
  EXPECT_THAT(events, IsEmpty());
  EXPECT_EQ(test::dump_everything(db()), everything);
  store.reset();
  EXPECT_EQ(test::read_bytes(db_path), bytes) << "the database file is byte-identical";
  EXPECT_FALSE(fs::exists(dir / "index.db-wal") && fs::file_size(dir / "index.db-wal") > 0);
}

TEST_F(IndexTest, DryRunOfANewVolumeCreatesNoMarkerNoVolumeAndNoRun) {
  put("a", "A");
  put("s/b", "B");
  auto r = index(test::index_opts(false, true));
  expect_counts(r, 2, 0, 0, 0);
  EXPECT_TRUE(r.first_index);
  EXPECT_FALSE(fs::exists(root / ".squirrel-volume"));
  EXPECT_FALSE(find_volume(db(), "v"));
  EXPECT_EQ(run_count(), 0);
  EXPECT_EQ(db().query_i64("SELECT count(*) FROM files").value_or(-1), 0);
}

TEST_F(IndexTest, TheMarkerIsWrittenOnceAndNeverRewritten) {
  put("a", "A");
  index();
  auto marker = root / ".squirrel-volume";
  ASSERT_TRUE(fs::is_regular_file(marker));
  auto text = test::read_bytes(marker);
  auto m = engine::parse_marker(text);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->volume, "v");
  EXPECT_GT(m->created_at_ns, 0);
  auto mt = test::mtime_ns(marker);
  put("b", "B");
  index();
  index(test::index_opts(true));
  EXPECT_EQ(test::read_bytes(marker), text);
  EXPECT_EQ(test::mtime_ns(marker), mt);
}

TEST_F(IndexTest, AMarkerNamingAnotherVolumeRefusesWithARefusedRun) {
  put("a", "A");
  put(".squirrel-volume", engine::render_marker({"other", 1}));
  auto e = index_error([&] { index(); });
  EXPECT_EQ(e.kind(), ErrorKind::refused);
  EXPECT_THAT(e.what(), HasSubstr("other"));
  auto refused = last_run();
  EXPECT_EQ(refused.status, RunStatus::refused);
  EXPECT_EQ(refused.kind, RunKind::index);
  EXPECT_FALSE(find_volume(db(), "v")) << "nothing is adopted";
  EXPECT_EQ(engine::parse_marker(test::read_bytes(root / ".squirrel-volume"))->volume, "other");
  fs::remove(root / ".squirrel-volume");
  index();
  auto before = test::dump_index_tables(db());
  fs::remove(root / ".squirrel-volume");
  put(".squirrel-volume", engine::render_marker({"other", 1}));
  EXPECT_EQ(index_error([&] { index(); }).kind(), ErrorKind::refused);
  EXPECT_EQ(last_run().volume_id, vol());
  EXPECT_EQ(last_run().status, RunStatus::refused);
  auto after = test::dump_index_tables(db());
  after.pop_back();  // the refused run row is the only addition
  EXPECT_EQ(after, before);
}

TEST_F(IndexTest, AConfiguredPathOtherThanTheRecordedOneRefuses) {
  put("a", "A");
  index();
  auto elsewhere = made_dir(dir / "copy");
  fs::copy(root, elsewhere, fs::copy_options::recursive);
  auto moved = test::volume_config(elsewhere);
  auto runs = run_count();
  auto e = index_error([&] { engine::run_index(moved, *store, "v", test::index_opts()); });
  EXPECT_EQ(e.kind(), ErrorKind::refused);
  EXPECT_THAT(e.what(), HasSubstr("volumes move"));
  EXPECT_EQ(run_count(), runs + 1);
  EXPECT_EQ(last_run().status, RunStatus::refused);
  EXPECT_EQ(last_run().volume_id, vol());
  EXPECT_EQ(find_volume(db(), "v")->path, root.string());
}

TEST_F(IndexTest, AnUnreadableOrAbsentMarkerRefuses) {
  put("a", "A");
  fs::create_directory(root / ".squirrel-volume");
  auto e = index_error([&] { index(); });
  EXPECT_EQ(e.kind(), ErrorKind::refused);
  EXPECT_EQ(last_run().status, RunStatus::refused);
  EXPECT_FALSE(find_volume(db(), "v"));
  fs::remove(root / ".squirrel-volume");
  index();
  fs::remove(root / ".squirrel-volume");
  EXPECT_EQ(index_error([&] { index(); }).kind(), ErrorKind::refused) << "an indexed volume without its marker";
  EXPECT_FALSE(fs::exists(root / ".squirrel-volume")) << "never re-created behind the user's back";
  fs::create_directory(root / ".squirrel-volume");
  EXPECT_EQ(index_error([&] { index(); }).kind(), ErrorKind::refused);
  EXPECT_EQ(last_run().volume_id, vol());
  EXPECT_EQ(live_row_by_path(db(), vol(), "a")->status, "present");
}

TEST_F(IndexTest, TheRootMarkerIsNeverIndexedButAnyOtherFileOfThatNameIs) {
  put("a", "A");
  put("sub/.squirrel-volume", "not a marker");
  expect_counts(index(), 2, 0, 0, 0);
  EXPECT_FALSE(live_row_by_path(db(), vol(), ".squirrel-volume"));
  EXPECT_TRUE(live_row_by_path(db(), vol(), "sub/.squirrel-volume"));
  expect_counts(index(), 0, 0, 2, 0);
  EXPECT_EQ(count_live(db(), vol()), 2);
}

TEST_F(IndexTest, SymlinksAndFifosAreSkippedCountedAndNeverFollowed) {
  put("real", "R");
  test::write_file(dir / "outside" / "secret", "S");
  fs::create_symlink("real", root / "to-file");
  fs::create_directory_symlink(dir / "outside", root / "to-dir");
  fs::create_symlink("nowhere", root / "dangling");
  fs::create_symlink("loop", root / "loop");
  fs::create_symlink("ping", root / "pong");
  fs::create_symlink("pong", root / "ping");
  fs::create_directory_symlink("..", made_dir(root / "sub") / "up");
  ASSERT_EQ(::mkfifo((root / "fifo").c_str(), 0644), 0);
  auto r = index();
  expect_counts(r, 1, 0, 0, 0);
  EXPECT_EQ(r.skipped_special, 8);
  EXPECT_EQ(r.errors, 0);
  EXPECT_EQ(r.status, RunStatus::success);
  EXPECT_EQ(test::live_set(db(), vol()).size(), 1u);
  EXPECT_TRUE(rows_by_hash(db(), blake3("S")).empty()) << "a symlinked folder is never entered";
  EXPECT_EQ(index().skipped_special, 8);
}

TEST_F(IndexTest, AFolderReplacedByAFileAndBack) {
  put("d/a", "A");
  put("d/b", "B");
  index();
  fs::remove_all(root / "d");
  put("d", "now a file");
  expect_counts(index(test::index_opts(false, true)), 1, 0, 0, 2);
  expect_counts(index(), 1, 0, 0, 2);
  EXPECT_EQ(live_row_by_path(db(), vol(), "d")->status, "present");
  EXPECT_EQ(live_row_by_path(db(), vol(), "d/a")->status, "missing");
  expect_consistent();
  expect_live_equals_disk();
  fs::remove(root / "d");
  put("d/a", "A");
  expect_counts(index(test::index_opts(false, true)), 0, 1, 0, 1);
  expect_counts(index(), 0, 1, 0, 1);
  EXPECT_EQ(live_row_by_path(db(), vol(), "d")->status, "missing");
  EXPECT_EQ(live_row_by_path(db(), vol(), "d/a")->status, "present");
  expect_consistent();
  expect_live_equals_disk();
}

TEST_F(IndexTest, NamesWithNewlinesAndInvalidUtf8RoundTripAsBytes) {
  const std::string newline = "new\nline.txt", invalid = "bad\xff\xfe.bin", folder = "dir\x80\n";
  const std::string nested = folder + "/in\tside\xc3";
  put(newline, "1");
  put(invalid, "2");
  put(nested, "3");
  expect_counts(index(), 3, 0, 0, 0);
  for (const auto& [path, content] : std::map<std::string, std::string>{{newline, "1"}, {invalid, "2"}, {nested, "3"}}) {
    auto row = live_row_by_path(db(), vol(), path);
    ASSERT_TRUE(row) << escape_for_display(path);
    EXPECT_EQ(row->path, path);
    EXPECT_EQ(row->hash, blake3(content));
  }
  expect_live_equals_disk();
  expect_consistent();
  fs::remove(root / nested);
  expect_counts(index(), 0, 0, 2, 1);
  EXPECT_EQ(live_row_by_path(db(), vol(), nested)->status, "missing");
}

TEST_F(IndexTest, ASecondIndexIsRefusedWhileOneIsRunning) {
  put("a", "A");
  index();
  auto held = begin_run(db(), {RunKind::index, vol(), ""});
  ASSERT_TRUE(held.began());
  auto e = index_error([&] { index(); });
  EXPECT_EQ(e.kind(), ErrorKind::conflict);
  EXPECT_THAT(e.what(), HasSubstr("run=" + std::to_string(held.run_id)));
  EXPECT_EQ(last_run().status, RunStatus::refused);
  EXPECT_EQ(index_error([&] { index(test::audit_opts(true)); }).kind(), ErrorKind::conflict);
  EXPECT_EQ(last_run().kind, RunKind::audit);
  EXPECT_EQ(index(test::index_opts(false, true)).unchanged, 1) << "a dry run takes no gate";
  finish_run(db(), held.run_id, {RunStatus::success, "", 0, std::nullopt});
  EXPECT_EQ(index().unchanged, 1);
}

// ---- per-file errors under a real user --------------------------------

namespace {

void write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

// Root reads everything whatever the permission bits, so `body` runs in a
// forked child that has dropped to nobody (uid/gid 65534) when it was root.
// The parent holds no database connection while it forks.
std::string in_child_as_nobody(const std::function<std::string()>& body) {
  int p[2];
  if (::pipe(p) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    std::string out;
    try {
      if (::geteuid() == 0 && (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0))
        out = "cannot drop privileges";
      else
        out = body();
    } catch (const std::exception& e) {
      out = std::string("error: ") + e.what();
    }
    write_all(p[1], out);
    ::_exit(0);
  }
  ::close(p[1]);
  std::string out = read_all(p[0]);
  ::close(p[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

class IndexAsUser : public ::testing::Test {
 protected:
  test::TempDir dir;
  fs::path root = made_dir(dir / "vol");
  fs::path db_dir = made_dir(dir / "db");

  void SetUp() override {
    using P = fs::perms;
    fs::permissions(dir.path(), P::owner_all | P::group_read | P::group_exec | P::others_read | P::others_exec);
    fs::permissions(root, P::all);
    fs::permissions(db_dir, P::all);
  }

  void put(const std::string& rel, const std::string& content) { test::write_file(root / rel, content); }

  // One index as nobody: its counts, the sorted paths of its file errors,
  // its status and the live status of each of `paths` afterwards.
  std::string index_as_nobody(const std::vector<std::string>& paths = {}) {
    return in_child_as_nobody([&] {
      StoreOptions o;
      o.node_name = "testnode";
      auto st = Store::open(db_dir / "index.db", o);
      std::vector<std::string> errors;
      auto r = engine::run_index(test::volume_config(root), st, "v", test::index_opts(),
                                 [&](const engine::IndexEvent& e) {
                                   if (e.type == engine::IndexEvent::Type::file_error) errors.push_back(e.path);
                                 });
      std::sort(errors.begin(), errors.end());
      std::string out = fmt::format("added={} modified={} unchanged={} missing={} errors={} [{}] {}", r.added,
                                    r.modified, r.unchanged, r.missing, r.errors, fmt::join(errors, " "),
                                    to_string(r.status));
      for (const auto& p : paths) {
        auto row = live_row_by_path(st.db(), test::volume_id(st.db()), p);
        out += " " + p + "=" + (row ? row->status : "none");
      }
      return out;
    });
  }
};

}  // namespace

TEST_F(IndexAsUser, AnUnreadableFileAndFolderAreErrorsAndOnlyTheyAreSpared) {
  for (auto p : {"ok", "secret", "gone", "locked/inner", "open/x"}) put(p, p);
  EXPECT_EQ(index_as_nobody(), "added=5 modified=0 unchanged=0 missing=0 errors=0 [] success");
  fs::permissions(root / "secret", fs::perms::none);
  fs::permissions(root / "locked", fs::perms::none);
  fs::remove(root / "gone");
  EXPECT_EQ(index_as_nobody({"gone", "secret", "locked/inner"}),
            "added=0 modified=0 unchanged=2 missing=1 errors=2 [locked secret] partial gone=missing "
            "secret=present locked/inner=present");
  fs::permissions(root / "secret", fs::perms::owner_read | fs::perms::others_read);
  fs::permissions(root / "locked", fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  EXPECT_EQ(index_as_nobody({"gone"}), "added=0 modified=0 unchanged=4 missing=0 errors=0 [] success gone=missing");
  auto st = test::open_store(dir, "db/index.db");
  auto runs = st.db().query_rows("SELECT status, error FROM runs ORDER BY id");
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[1][0], Value{std::string("partial")});
  EXPECT_EQ(runs[1][1], Value{std::string("2 file error(s)")});
  EXPECT_THAT(test::folder_problems(st.db(), test::volume_id(st.db())), IsEmpty());
  EXPECT_EQ(test::present_set(st.db(), test::volume_id(st.db())), test::disk_set(root));
}

// "last_seen advances on observation": a partial walk stamps what it saw
// unchanged in folders it listed in full, and nothing it did not observe.
TEST_F(IndexAsUser, APartialWalkStampsWhatItSawAndNothingElse) {
  for (auto p : {"ok", "secret", "gone", "locked/inner", "open/x"}) put(p, p);
  EXPECT_EQ(index_as_nobody(), "added=5 modified=0 unchanged=0 missing=0 errors=0 [] success");
  fs::permissions(root / "secret", fs::perms::none);
  fs::permissions(root / "locked", fs::perms::none);
  fs::remove(root / "gone");
  EXPECT_THAT(index_as_nobody(), HasSubstr("errors=2 [locked secret] partial"));
  auto st = test::open_store(dir, "db/index.db");
  auto partial = st.db().query_i64("SELECT max(id) FROM runs").value_or(0);
  auto last_seen = [&](const std::string& folder, const std::string& name) {
    return st.db().query_i64("SELECT f.last_seen_run_id FROM files f JOIN folders d ON d.id = f.folder_id WHERE "
                             "d.path = ? AND f.name = ?", {store::blob_of(folder), store::blob_of(name)}).value_or(-1);
  };
  EXPECT_EQ(last_seen("", "ok"), partial);
  EXPECT_EQ(last_seen("open", "x"), partial);
  EXPECT_LT(last_seen("", "secret"), partial) << "unreadable: not observed";
  EXPECT_EQ(last_seen("", "gone"), partial) << "absent from a full listing: flagged missing by this run";
  EXPECT_LT(last_seen("locked", "inner"), partial) << "in a folder that could not be listed";
}

// A folder that may be listed but not searched: every entry fails its stat.
// Each is an error of its own; the folder itself was read.
TEST_F(IndexAsUser, EntriesThatCannotBeStatedAreErrorsEachAndTheFolderIsNot) {
  put("ok", "ok");
  put("ronly/a", "a");
  put("ronly/b", "b");
  fs::permissions(root / "ronly", fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  auto listing = in_child_as_nobody([&] {
    auto fd = open_root(root);
    auto l = engine::list_directory(fd.get(), "ronly");
    std::vector<std::string> failed;
    for (const auto& [name, msg] : l.errors) failed.push_back(name);
    std::sort(failed.begin(), failed.end());
    return fmt::format("entries={} error='{}' failed={}", l.entries.size(), l.error, fmt::join(failed, ","));
  });
  EXPECT_EQ(listing, "entries=0 error='' failed=a,b");
  EXPECT_EQ(index_as_nobody(), "added=1 modified=0 unchanged=0 missing=0 errors=2 [ronly/a ronly/b] partial");
}

// ---- hashing ------------------------------------------------------------

TEST(IndexHashFile, AStableFileHashesToItsBytesAndSymlinksAreRefused) {
  test::TempDir dir;
  test::write_file(dir / "f", "some bytes");
  fs::create_symlink("f", dir / "link");
  auto root = open_root(dir.path());
  std::vector<char> buffer(1 << 16);
  engine::HashJob job;
  job.path = "f";
  auto r = engine::hash_file(root.get(), job, buffer);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_FALSE(r.changed_while_hashed);
  EXPECT_EQ(r.hash, blake3("some bytes"));
  EXPECT_EQ(r.stat.size, 10);
  job.path = "link";
  EXPECT_FALSE(engine::hash_file(root.get(), job, buffer).ok);
  job.path = "absent";
  auto absent = engine::hash_file(root.get(), job, buffer);
  EXPECT_FALSE(absent.ok);
  EXPECT_FALSE(absent.error.empty());
}

// /proc files report size 0 and read as text: a deterministic case of bytes
// read disagreeing with the size.
TEST(IndexHashFile, BytesReadThatDisagreeWithTheSizeAreFlagged) {
  auto root = open_root("/proc/self");
  std::vector<char> buffer(1 << 16);
  engine::HashJob job;
  job.path = "status";
  auto r = engine::hash_file(root.get(), job, buffer);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.stat.size, 0);
  EXPECT_TRUE(r.changed_while_hashed);
}

// Whatever the interleaving, a result is either flagged or its size is
// exactly the number of bytes its hash covers.
TEST(IndexHashFile, AFileGrowingWhileHashedIsFlaggedOrRecordedWithTheSizeItHashed) {
  test::TempDir dir;
  auto root = open_root(dir.path());
  std::vector<char> buffer(1 << 12);
  engine::HashJob job;
  job.path = "grow";
  for (int round = 0; round < 20; ++round) {
    test::write_file(dir / "grow", std::string(1 << 20, static_cast<char>('a' + round)));
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      int fd = ::open((dir / "grow").c_str(), O_WRONLY | O_APPEND);
      while (!stop.load()) write_all(fd, "0123456789abcdef");
      ::close(fd);
    });
    auto r = engine::hash_file(root.get(), job, buffer);
    stop = true;
    writer.join();
    ASSERT_TRUE(r.ok) << r.error;
    if (r.changed_while_hashed) continue;
    auto bytes = test::read_bytes(dir / "grow");
    ASSERT_LE(r.stat.size, static_cast<std::int64_t>(bytes.size()));
    EXPECT_EQ(r.hash, blake3(std::string_view(bytes).substr(0, static_cast<std::size_t>(r.stat.size))));
  }
}

// A file replaced by a FIFO between the walk and the hash must not block
// the worker forever. The child's alarm only turns a hang into a failure.
TEST(IndexHashFile, AFifoInPlaceOfAFileIsRefusedWithoutBlocking) {
  test::TempDir dir;
  ASSERT_EQ(::mkfifo((dir / "pipe").c_str(), 0644), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(120);
    auto root = open_root(dir.path());
    std::vector<char> buffer(4096);
    engine::HashJob job;
    job.path = "pipe";
    auto r = engine::hash_file(root.get(), job, buffer);
    ::_exit(!r.ok && !r.error.empty() ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "signal " << WTERMSIG(status) << " (SIGALRM: opening the FIFO blocked)";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// ---- determinism across worker counts -----------------------------------

namespace {

std::string summary(const engine::IndexReport& r) {
  return fmt::format("a={} m={} u={} x={} e={} s={} b={}", r.added, r.modified, r.unchanged, r.missing, r.errors,
                     r.skipped_special, r.bytes_hashed);
}

void expect_same_index(const config::Config& cfg, Store& one, Store& eight, const engine::IndexOptions& base) {
  auto o1 = base, o8 = base;
  o1.workers = 1;
  o8.workers = 8;
  auto r1 = engine::run_index(cfg, one, "v", o1);
  auto r8 = engine::run_index(cfg, eight, "v", o8);
  EXPECT_EQ(summary(r1), summary(r8));
  EXPECT_EQ(r1.errors, 0);
  auto d1 = test::dump_index_tables(one.db()), d8 = test::dump_index_tables(eight.db());
  EXPECT_EQ(d1.size(), d8.size());
  EXPECT_TRUE(d1 == d8) << "the databases differ";
}

}  // namespace

TEST(IndexWorkers, OneAndEightWorkersBuildTheSameDatabase) {
  test::TempDir dir;
  auto root = made_dir(dir / "vol");
  for (int i = 0; i < 10000; ++i)
    test::write_file(root / fmt::format("d{:02}/s{}/f{:04}", i % 40, i % 3, i), fmt::format("content-{}", i % 2500));
  auto cfg = test::volume_config(root);
  auto one = test::open_store(dir, "one.db"), eight = test::open_store(dir, "eight.db");
  // Both index the same tree in turns: one owner as far as the marker goes.
  eight.db().execute("UPDATE database_identity SET id = ?", {store::Value{store::database_identity(one.db())}});
  expect_same_index(cfg, one, eight, test::index_opts());
  for (int i = 0; i < 10000; i += 37) test::write_file(root / fmt::format("d{:02}/s{}/f{:04}", i % 40, i % 3, i), "m");
  for (int i = 5; i < 10000; i += 101) fs::remove(root / fmt::format("d{:02}/s{}/f{:04}", i % 40, i % 3, i));
  for (int i = 0; i < 60; ++i) test::write_file(root / fmt::format("new/n{}", i), fmt::format("content-{}", i * 7));
  fs::remove_all(root / "d07");
  expect_same_index(cfg, one, eight, test::index_opts());
  for (int i = 1; i < 10000; i += 53) test::write_file(root / fmt::format("d{:02}/s{}/f{:04}", i % 40, i % 3, i), "z");
  expect_same_index(cfg, one, eight, test::index_opts(true));
  auto vol = test::volume_id(one.db());
  EXPECT_THAT(test::folder_problems(one.db(), vol), IsEmpty());
  EXPECT_EQ(test::present_set(one.db(), vol), test::disk_set(root));
}

// ---- the exclusive create behind the marker ------------------------------

// A reader racing the create sees nothing or the whole content, never a
// prefix; the create leaves no temporary file and never replaces.
TEST(CreateFileExclusive, ReadersSeeNothingOrEverythingAndNothingIsLeftBehind) {
  const std::string content = engine::render_marker({"photos", 1234}) + std::string(3000, ' ');
  for (int round = 0; round < 50; ++round) {
    test::TempDir dir;
    auto root = open_root(dir.path());
    std::atomic<bool> done{false};
    std::vector<std::string> partial;
    std::thread reader([&] {
      while (!done.load()) {
        auto got = read_small_file(root.get(), ".squirrel-volume");
        if (got && *got != content) partial.push_back(*got);
      }
    });
    create_file_exclusive(root.get(), ".squirrel-volume", content);
    done = true;
    reader.join();
    EXPECT_THAT(partial, IsEmpty());
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename().string());
    EXPECT_EQ(names, std::vector<std::string>{".squirrel-volume"});
    EXPECT_THROW(create_file_exclusive(root.get(), ".squirrel-volume", "other"), Error);
    EXPECT_EQ(test::read_bytes(dir / ".squirrel-volume"), content);
  }
}

// ---- large files: hashed through a mapping -------------------------------

TEST(IndexHashFile, ALargeFileHashesToItsBytesThroughTheMapping) {
  test::TempDir dir;
  std::string bytes(17 << 20, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  test::write_file(dir / "big", bytes);
  auto root = open_root(dir.path());
  std::vector<char> buffer(1 << 16);
  engine::HashJob job;
  job.path = "big";
  auto r = engine::hash_file(root.get(), job, buffer);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_FALSE(r.changed_while_hashed);
  EXPECT_EQ(r.hash, blake3(bytes));
}

// A mapping that runs past the end of its file is what a file truncated
// while hashed looks like: the SIGBUS is caught and reported, every time.
TEST(IndexHashFile, AMappingPastTheEndOfItsFileIsCaughtNotFatal) {
  test::TempDir dir;
  test::write_file(dir / "short", std::string(1 << 20, 'x'));
  Fd fd(::open((dir / "short").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  for (int round = 0; round < 3; ++round) {
    Hasher h;
    EXPECT_EQ(engine::hash_mapped(fd.get(), 32 << 20, h), engine::Mapped::truncated);
  }
  Hasher whole;
  EXPECT_EQ(engine::hash_mapped(fd.get(), 1 << 20, whole), engine::Mapped::hashed);
  EXPECT_EQ(whole.finalize(), blake3(std::string(1 << 20, 'x')));
}

// Whatever the interleaving with a truncation, a large file is flagged or
// recorded with exactly the bytes its hash covers: the whole file (the
// truncation came after) or the 4 KiB left (it came before). A hash of a
// part recorded with another size fails. The process survives.
TEST(IndexHashFile, ALargeFileTruncatedWhileHashedIsFlagged) {
  test::TempDir dir;
  auto root = open_root(dir.path());
  std::vector<char> buffer(1 << 16);
  engine::HashJob job;
  job.path = "shrinking";
  for (int round = 0; round < 10; ++round) {
    const std::string original(24 << 20, static_cast<char>('a' + round));
    test::write_file(dir / "shrinking", original);
    std::thread cutter([&] { ::truncate((dir / "shrinking").c_str(), 4096); });
    auto r = engine::hash_file(root.get(), job, buffer);
    cutter.join();
    ASSERT_TRUE(r.ok) << r.error;
    if (r.changed_while_hashed) continue;
    ASSERT_TRUE(r.stat.size == static_cast<std::int64_t>(original.size()) || r.stat.size == 4096) << r.stat.size;
    EXPECT_EQ(r.hash, blake3(original.substr(0, static_cast<std::size_t>(r.stat.size))));
  }
}

// ---- a first index leaves regular files to the hash workers' fstat -------

TEST(IndexWalk, WithoutFileStatsRegularFilesAreLeftUnstatedAndEverythingElseIsTyped) {
  test::TempDir dir;
  test::write_file(dir / "file", "12345");
  fs::create_directory(dir / "sub");
  fs::create_symlink("file", dir / "link");
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0644), 0);
  auto root = open_root(dir.path());
  auto by_name = [](const engine::DirListing& l) {
    std::map<std::string, engine::DirEntry> out;
    for (const auto& e : l.entries) out.emplace(e.name, e);
    return out;
  };
  auto lazy = by_name(engine::list_directory(root.get(), "", false));
  ASSERT_EQ(lazy.size(), 4u);
  EXPECT_EQ(lazy["file"].type, engine::DirEntry::Type::file);
  EXPECT_FALSE(lazy["file"].stat_known);
  EXPECT_EQ(lazy["sub"].type, engine::DirEntry::Type::directory);
  EXPECT_EQ(lazy["link"].type, engine::DirEntry::Type::special) << "a symlink to a file is never taken for one";
  EXPECT_EQ(lazy["fifo"].type, engine::DirEntry::Type::special);
  auto full = by_name(engine::list_directory(root.get(), ""));
  EXPECT_TRUE(full["file"].stat_known);
  EXPECT_EQ(full["file"].stat.size, 5);
}

// Jobs the walk did not size are chunked as if empty; workers that open a
// large one hand the rest of their chunk back. Every result still arrives
// once, in submission order, with the right bytes and size.
TEST(IndexHashPool, LargeFilesTheWalkDidNotSizeAreEachHashedOnceInOrder) {
  test::TempDir dir;
  std::vector<std::string> contents;
  for (int i = 0; i < 12; ++i) {
    std::size_t size = i % 3 == 0 ? std::size_t{9} << 20 : std::size_t(100 + i);
    contents.emplace_back(size, static_cast<char>('a' + i));
    test::write_file(dir / fmt::format("f{:02}", i), contents.back());
  }
  auto root = open_root(dir.path());
  engine::HashPool pool(root.get(), 3, 64);
  for (int i = 0; i < 12; ++i) {
    engine::HashJob job;
    job.path = fmt::format("f{:02}", i);
    pool.submit(std::move(job));
  }
  for (int i = 0; i < 12; ++i) {
    auto r = pool.next_ready(true);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->job.path, fmt::format("f{:02}", i));
    ASSERT_TRUE(r->ok) << r->error;
    EXPECT_EQ(r->hash, blake3(contents[static_cast<std::size_t>(i)]));
    EXPECT_EQ(r->stat.size, static_cast<std::int64_t>(contents[static_cast<std::size_t>(i)].size()));
  }
  EXPECT_TRUE(pool.idle());
}

TEST_F(IndexTest, AFirstIndexWithoutWalkStatsRecordsWhatAShallowReindexTrusts) {
  for (int i = 0; i < 40; ++i) put(fmt::format("d{}/f{}", i % 4, i), std::string(static_cast<std::size_t>(i), 'x'));
  auto first = index();
  expect_counts(first, 40, 0, 0, 0);
  auto shallow = index(test::index_opts(true));
  expect_counts(shallow, 0, 0, 40, 0);
  EXPECT_EQ(shallow.bytes_hashed, 0) << "size, mtime and inode came from the opened files";
  for (const auto& r : db().query_rows("SELECT d.path, f.name, f.inode, f.mtime_ns FROM files f JOIN folders d ON "
                                       "d.id = f.folder_id")) {
    auto folder = std::get<Blob>(r[0]);
    auto name = std::get<Blob>(r[1]);
    struct stat st {};
    auto path = root / std::string(folder.begin(), folder.end()) / std::string(name.begin(), name.end());
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(std::get<std::int64_t>(r[2]), static_cast<std::int64_t>(st.st_ino));
    EXPECT_EQ(std::get<std::int64_t>(r[3]), static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
  }
}
