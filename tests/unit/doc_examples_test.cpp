// Docs that are checked, not hoped (issue 14 §7): every example of command
// output in docs/ carries a `<!-- example: <id> -->` marker, and a story
// below runs the real binary through the same situation and compares its
// output with the block (doc_util.hpp normalises both sides). A changed
// output fails here until the docs follow. The few examples no test can
// produce are marked `illustrative`; their `squirrel ...` lines must still
// name real commands and flags.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "doc_util.hpp"
#include "help_util.hpp"
#include "store/runs.hpp"
#include "store/store.hpp"
#include "store/volumes.hpp"

namespace {

namespace fs = std::filesystem;
using sq::test::CliResult;
using sq::test::DocBlock;
using sq::test::read_file;
using sq::test::Session;
using sq::test::split_lines;
using sq::test::trim;
using sq::test::write_file;

// performance.md is left out: its blocks are timings measured by
// bench/, which no test can reproduce.
const std::vector<std::string> kDocFiles = {"cli.md", "guide.md", "configuration.md", "schema.md"};

// Every id a story below checks.
// clang-format off
const std::set<std::string> kKnownIds = {
    "cli-errors", "cli-progress", "cli-usage-error", "cli-version", "cli-init", "cli-index", "cli-index-json",
    "cli-backup", "cli-sync", "cli-verify", "cli-verify-alarm", "cli-offload", "cli-restore", "cli-restore-unindexed",
    "cli-recover-list", "cli-recover-execute", "cli-destination-check", "cli-audit", "cli-audit-folders",
    "cli-query-hash", "cli-query-path", "cli-volumes", "cli-volumes-move", "cli-volumes-adopt", "cli-volumes-forget", "cli-runs",
    "cli-runs-fail", "cli-config-check",
    "cli-db-restore", "guide-marker", "guide-already-running", "guide-config-check", "guide-config-error",
    "guide-index-first", "guide-index-shallow", "guide-audit", "guide-history", "guide-receipts", "guide-moved-error",
    "guide-runs-fail", "guide-db-backup", "guide-db-check", "guide-db-restore", "guide-privacy", "config-errors",
    "illustrative",
};
// clang-format on

std::vector<DocBlock> all_blocks() {
  std::vector<DocBlock> blocks;
  for (const auto& f : kDocFiles) {
    auto more = sq::test::fenced_blocks(f, read_file(sq::test::source_dir() / "docs" / f));
    blocks.insert(blocks.end(), more.begin(), more.end());
  }
  return blocks;
}

// Compares every block marked `id` with `real`; there must be one.
void expect_example(const std::string& id, const sq::test::Session& real) {
  ASSERT_TRUE(kKnownIds.count(id)) << "add " << id << " to kKnownIds";
  int found = 0;
  for (const auto& b : all_blocks()) {
    if (b.marker != id) continue;
    ++found;
    auto mismatch = sq::test::compare_block(b, real);
    EXPECT_TRUE(mismatch.empty()) << mismatch;
  }
  EXPECT_EQ(found, 1) << "blocks marked <!-- example: " << id << " -->";
}

// An example of what a command printed on stdout (or of a file's text).
void expect_example(const std::string& id, const std::string& real_stdout) {
  expect_example(id, sq::test::stdout_text(real_stdout));
}

// ---- command lines in the docs --------------------------------------------------------

// Words of a `squirrel ...` line, without a trailing `# comment`.
std::vector<std::string> command_words(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line.substr(0, line.find(" #")));
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// What is wrong with a `squirrel ...` line: a command that does not exist
// or a flag its command does not take.
std::vector<std::string> command_line_problems(const std::string& line) {
  auto words = command_words(line);
  const sq::test::Command* best = nullptr;
  const sq::test::Command* root = nullptr;
  for (const auto& c : sq::test::commands()) {
    if (c.path.empty()) root = &c;
    auto path = command_words(c.path);
    if (path.size() + 1 <= words.size() && std::equal(path.begin(), path.end(), words.begin() + 1) &&
        (!best || path.size() > command_words(best->path).size()))
      best = &c;
  }
  if (!best || !root) return {"no such command: " + line};
  std::vector<std::string> problems;
  // A word after a command that only has subcommands must be one of them.
  auto next = command_words(best->path).size() + 1;
  if (!best->help.subcommands.empty() && best->help.positionals.empty() && words.size() > next && words[next][0] != '-')
    problems.push_back("no such command: " + line);
  for (const auto& w : words) {
    if (w.size() < 2 || w[0] != '-') continue;
    auto flag = w.substr(0, w.find('='));
    auto takes = [&](const sq::test::Command* c) {
      return std::find(c->help.options.begin(), c->help.options.end(), flag) != c->help.options.end();
    };
    if (!takes(best) && !takes(root)) problems.push_back(flag + " is no flag of `" + line + "`");
  }
  return problems;
}

// Every `squirrel ...` command line of a block (after a `$ `, or a whole
// line of an illustrative block).
std::vector<std::string> command_lines(const DocBlock& b) {
  std::vector<std::string> out;
  for (const auto& raw : b.lines) {
    auto l = trim(raw);
    if (l.rfind("$ squirrel ", 0) == 0)
      out.push_back(l.substr(2));
    else if (b.marker == "illustrative" && l.rfind("squirrel ", 0) == 0)
      out.push_back(l);
  }
  return out;
}

TEST(DocExamples, EveryOutputBlockIsMarkedWithAKnownId) {
  std::vector<std::string> problems;
  std::map<std::string, int> marked;
  for (const auto& b : all_blocks()) {
    if (sq::test::is_output_example(b) && b.marker.empty())
      problems.push_back(b.where() + ": output example without <!-- example: id -->");
    if (!b.marker.empty() && !kKnownIds.count(b.marker))
      problems.push_back(b.where() + ": no test knows the example id " + b.marker);
    ++marked[b.marker];
  }
  // A story whose example left the docs would check nothing.
  for (const auto& id : kKnownIds)
    if (id != "illustrative" && marked[id] != 1)
      problems.push_back(id + " marks " + std::to_string(marked[id]) + " blocks, not 1");
  EXPECT_THAT(problems, ::testing::IsEmpty());
}

// An output shown inline ("**Output:** `...`") cannot be checked: it must
// be a marked block.
TEST(DocExamples, NoOutputIsShownInline) {
  for (const auto& f : kDocFiles) {
    auto lines = split_lines(read_file(sq::test::source_dir() / "docs" / f));
    for (std::size_t i = 0; i < lines.size(); ++i)
      EXPECT_NE(lines[i].rfind("**Output:** `", 0), 0u) << f << ":" << i + 1 << ": make it a marked block";
  }
}

TEST(DocExamples, EveryCommandLineNamesARealCommandAndFlags) {
  std::vector<std::string> problems;
  int checked = 0;
  for (const auto& b : all_blocks())
    for (const auto& l : command_lines(b)) {
      ++checked;
      for (const auto& p : command_line_problems(l)) problems.push_back(b.where() + ": " + p);
    }
  EXPECT_GT(checked, 40);
  EXPECT_THAT(problems, ::testing::IsEmpty());
}

// The checks themselves must be able to fail.
TEST(DocExamples, TheCheckersCatchADriftedExample) {
  DocBlock b{"x.md", 1, "", "cli-audit", {"audit photos: run=8 added=0 modified=1 unchanged=122 missing=0 errors=0"}};
  EXPECT_EQ(sq::test::compare_block(b, "audit photos: run=3 added=2 modified=0 unchanged=7 missing=0 errors=0\n"), "");
  EXPECT_NE(sq::test::compare_block(b, "audit photos: run=3 added=2 changed=0 unchanged=7 missing=0 errors=0\n"), "");
  EXPECT_NE(sq::test::compare_block(b, "audit photos: run=3 added=2 modified=0 unchanged=7 errors=0\n"), "");
  EXPECT_NE(sq::test::compare_block(b, "audit photos: run=3 added=2 modified=0 unchanged=7 missing=0 errors=0\nmore\n"),
            "");
  DocBlock skip{"x.md", 1, "", "x", {"first /home/you/a 2025-01-31T09:15:00Z", "…", "last 1.5 MiB 3h ago"}};
  EXPECT_EQ(sq::test::compare_block(skip, "first /tmp/q/a 2026-12-05T17:28:38.5Z\nx\ny\nlast 75 B 0s ago\n"), "");
  EXPECT_NE(sq::test::compare_block(skip, "first /tmp/q/a 2026-12-05T17:28:38.5Z\nx\nlast but one\n"), "");
  EXPECT_THAT(command_line_problems("squirrel restore photos --missing"), ::testing::IsEmpty());
  EXPECT_THAT(command_line_problems("squirrel restore photos --bogus"), ::testing::SizeIs(1));
  EXPECT_THAT(command_line_problems("squirrel restor photos"), ::testing::SizeIs(1));
  EXPECT_THAT(command_line_problems("squirrel db chek"), ::testing::SizeIs(1));
  EXPECT_THAT(command_line_problems("squirrel verify nas --full"), ::testing::IsEmpty());
  DocBlock unmarked{"x.md", 1, "", "", {"$ squirrel audit", "audit photos: run=3"}};
  EXPECT_TRUE(sq::test::is_output_example(unmarked));
  EXPECT_FALSE(sq::test::is_output_example(DocBlock{"x.md", 1, "", "", {"$ squirrel audit", "$ squirrel runs"}}));
}

// ---- a world laid out as the docs describe it -------------------------------------------

// HOME is <tmp>/home/you, the config and the database are squirrel's
// defaults under ~/.squirrel, the volume `photos` is ~/Pictures and the
// destinations `usb` and `nas` are local folders under <tmp>/mnt. Commands
// are run as the docs write them: "squirrel index photos".
class DocWorld {
 public:
  DocWorld() { fs::create_directories(pictures()); }
  fs::path home() const { return dir_ / "home" / "you"; }
  fs::path pictures() const { return home() / "Pictures"; }
  fs::path dot() const { return home() / ".squirrel"; }
  fs::path config() const { return dot() / "config.toml"; }
  fs::path db() const { return dot() / "index.db"; }
  fs::path mnt(const std::string& name) const { return dir_ / "mnt" / name; }
  // The database and everything in the volume are gone; the config (and
  // the empty volume folder) are back.
  void lose_the_machine() const {
    for (const auto& e : fs::directory_iterator(dot()))
      if (e.path() != config()) fs::remove_all(e.path());
    fs::remove_all(pictures());
    fs::create_directories(pictures());
  }
  void put(const std::string& rel, const std::string& text) const { write_file(pictures() / rel, text); }

  void write_config(const std::string& toml) const { write_file(config(), "node_name = \"laptop\"\n" + toml); }
  void volume_only() const { write_config("[volumes.photos]\npath = \"~/Pictures\"\n"); }
  // photos syncs to `sync_to` (TOML list items) and needs usb for offload.
  void with_destinations(const std::string& sync_to, const std::string& more_volumes = "") const {
    write_config("[volumes.photos]\npath = \"~/Pictures\"\nsync_to = [" + sync_to +
                 "]\noffload_requires = [\"usb\"]\n" + more_volumes +
                 "\n[destinations.usb]\ntype = \"local\"\nroot = \"" + mnt("usb").string() +
                 "\"\n\n[destinations.nas]\ntype = \"local\"\nroot = \"" + mnt("nas").string() + "\"\n");
  }

  std::vector<std::string> args(const std::string& cmdline) const {
    auto words = command_words(cmdline);
    if (words.empty() || words[0] != "squirrel") throw std::runtime_error("not a squirrel command: " + cmdline);
    words.erase(words.begin());
    for (auto& w : words)
      if (w.rfind("~/", 0) == 0) w = (home() / w.substr(2)).string();
    return words;
  }
  sq::test::CliOptions options() const { return {{}, dir_.path(), home()}; }
  CliResult run(const std::string& cmdline) const { return sq::test::run_cli(args(cmdline), options()); }
  // What the command printed, on stdout and stderr.
  Session said(const std::string& cmdline) const { return printed(run(cmdline)); }
  // "$ <cmdline>" and what it printed, as the docs show a session.
  Session transcript(const std::string& cmdline) const { return typed(cmdline) + said(cmdline); }
  static Session typed(const std::string& line) { return {{{"$ " + line}, {}}}; }
  static Session printed(const CliResult& r) {
    return {{sq::test::without_trailing_blanks(split_lines(r.out)), sq::test::without_trailing_blanks(r.err_lines())}};
  }

 private:
  sq::test::TempDir dir_;
};

// Lines of `text` that start with `prefix`, each with its newline.
std::string lines_starting(const std::string& text, const std::string& prefix) {
  std::string out;
  for (const auto& l : split_lines(text))
    if (l.rfind(prefix, 0) == 0) out += l + "\n";
  return out;
}

// A run owned by this (live) test process, so it stays `running`.
std::int64_t begin_running(const fs::path& db, const std::string& volume, sq::store::RunKind kind) {
  sq::store::StoreOptions o;
  o.create = false;
  auto st = sq::store::Store::open(db, o);
  auto v = sq::store::find_volume(st.db(), volume);
  if (!v) throw std::runtime_error("volume not indexed: " + volume);
  auto begun = sq::store::begin_run(st.db(), {kind, v->id, ""});
  if (!begun.began()) throw std::runtime_error("could not begin a run");
  return begun.run_id;
}

std::string hash_of(const DocWorld& w, const std::string& rel) {
  auto r = w.run("squirrel query ~/Pictures/" + rel + " --json");
  return nlohmann::json::parse(r.out).at("blake3").get<std::string>();
}

}  // namespace

// ---- the stories ---------------------------------------------------------------------------

TEST(DocExamples, TheCommandReferenceBasics) {
  DocWorld w;
  expect_example("cli-version", w.said("squirrel version"));
  DocWorld fresh;
  expect_example("cli-init", fresh.said("squirrel init"));
  w.volume_only();
  w.put("a.jpg", "alpha");
  w.run("squirrel index photos");
  expect_example("cli-errors",
                 w.said("squirrel runs --volume nope") + w.said("squirrel audit photos --deep --folders"));
  expect_example("cli-usage-error", w.said("squirrel audit --bogus"));
  w.write_config("[volumes.gone]\npath = \"" + w.mnt("old").string() +
                 "\"\n\n[volumes.photos]\npath = \"~/Pictures\"\n");
  expect_example("cli-config-check", w.said("squirrel config check"));
}

TEST(DocExamples, TheGuidesFirstSteps) {
  DocWorld w;
  w.volume_only();
  for (const char* f : {"2024/beach.jpg", "2024/dune.jpg", "2023/a.jpg", "2023/b.jpg", "notes.txt"}) w.put(f, f);
  expect_example("guide-config-check", w.transcript("squirrel config check"));
  w.write_config("[volumes.photos]\npath = \"~/Pictures\"\npth = \"~/Pictures\"\n");
  expect_example("guide-config-error", w.said("squirrel index photos"));
  w.volume_only();
  expect_example("guide-index-first", w.transcript("squirrel index photos"));
  expect_example("guide-marker", read_file(w.pictures() / ".squirrel-volume"));
  for (const char* f : {"2025/c.jpg", "2025/d.jpg", "2025/e.jpg"}) w.put(f, f);
  w.put("notes.txt", "notes, longer now");
  fs::remove(w.pictures() / "2023/a.jpg");
  fs::remove(w.pictures() / "2023/b.jpg");
  expect_example("guide-index-shallow", w.transcript("squirrel index photos --shallow"));
  expect_example("cli-runs", w.said("squirrel runs"));
  auto audit = w.run("squirrel audit");
  expect_example("guide-audit", DocWorld::typed("squirrel audit") + DocWorld::printed(audit) +
                                    DocWorld::typed("echo $?") + sq::test::stdout_text(std::to_string(audit.status)));
}

TEST(DocExamples, IndexAuditQueryAndVolumes) {
  DocWorld w;
  w.volume_only();
  for (const char* f : {"a.jpg", "b.jpg", "c.jpg"}) w.put(f, f);
  w.run("squirrel index photos");
  w.put("d.jpg", "delta");
  w.put("a.jpg", "alpha, longer");
  auto changed = w.run("squirrel index photos --dry-run");
  auto real = w.run("squirrel index photos");
  w.put(".squirrel-staging/x", "S");
  auto reserved = w.run("squirrel index photos");
  expect_example("cli-index", real.out + changed.out + reserved.out);
  fs::remove_all(w.pictures() / ".squirrel-staging");
  w.put("e.jpg", "echo");
  expect_example("cli-index-json", w.run("squirrel index photos --json").out);
  w.put("b.jpg", "bravo, longer");
  expect_example("cli-audit", w.run("squirrel audit photos").out);
  w.run("squirrel index photos");
  expect_example("cli-audit-folders", w.run("squirrel audit photos --folders").out);
  expect_example("cli-query-hash", w.run("squirrel query " + hash_of(w, "c.jpg")).out);
  expect_example("cli-query-path", w.run("squirrel query ~/Pictures/a.jpg").out);
  expect_example("cli-volumes", w.run("squirrel volumes").out);
  w.write_config("");  // photos left the config
  expect_example("cli-volumes-forget", w.said("squirrel volumes forget photos"));
}

TEST(DocExamples, RunsDatabaseAndAMovedVolume) {
  DocWorld w;
  w.volume_only();
  w.put("a.jpg", "alpha");
  w.run("squirrel index photos");
  auto running = begin_running(w.db(), "photos", sq::store::RunKind::index);
  expect_example("guide-already-running", w.said("squirrel index photos"));
  auto failed = w.run("squirrel runs fail " + std::to_string(running));
  expect_example("guide-runs-fail",
                 DocWorld::typed("squirrel runs fail " + std::to_string(running)) + DocWorld::printed(failed));
  expect_example("cli-runs-fail", DocWorld::printed(failed));
  auto backup = w.run("squirrel db backup");
  auto snapshot = trim(backup.out.substr(backup.out.rfind(' ')));
  expect_example("guide-db-backup", DocWorld::typed("squirrel db backup") + DocWorld::printed(backup) +
                                        w.transcript("squirrel db backup --keep 7") +
                                        w.transcript("squirrel db backup --to " + w.mnt("usb").string() + "/index.db"));
  expect_example("guide-db-check", w.transcript("squirrel db check"));
  expect_example("guide-db-restore", w.transcript("squirrel db restore " + snapshot));
  expect_example("cli-db-restore", w.said("squirrel db restore " + snapshot));
  fs::rename(w.pictures(), w.home() / "Photos");
  w.write_config("[volumes.photos]\npath = \"~/Photos\"\n");
  expect_example("guide-moved-error", w.said("squirrel index photos"));
  expect_example("cli-volumes-move", w.said("squirrel volumes move photos ~/Photos"));
  // The volume moves to a new database.
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(w.db().string() + suffix);
  expect_example("cli-volumes-adopt", w.said("squirrel volumes adopt photos"));
}

TEST(DocExamples, PrivacyWarnings) {
  DocWorld w;
  w.volume_only();
  w.put("a.jpg", "alpha");
  w.run("squirrel index photos");
  w.write_config(
      "[volumes.photos]\npath = \"~/Pictures\"\n\n[destinations.nas]\ntype = \"sftp\"\nhost = \"nas.local\"\n"
      "user = \"you\"\nroot = \"squirrel\"\npassword = \"hunter2\"\n");
  fs::permissions(w.config(), fs::perms(0644));
  fs::permissions(w.db(), fs::perms(0644));
  auto status = w.run("squirrel status");
  expect_example("guide-privacy", lines_starting(status.out, "warning:"));
}

// A mirror `usb` and a second one `nas`; then the machine is lost and the
// volume comes back from usb without an index.
TEST(DocExamples, TheTrustLoop) {
  DocWorld w;
  w.with_destinations("\"usb\"");
  for (const char* f : {"b.jpg", "x.jpg", "2019/c.jpg", "2019/d.jpg"}) w.put(f, f);
  w.run("squirrel backup --init");
  w.put("new.jpg", "four");
  expect_example("cli-destination-check", w.said("squirrel destination check usb"));
  expect_example("cli-backup", w.said("squirrel backup photos"));
  fs::remove(w.pictures() / "b.jpg");
  w.run("squirrel index photos");
  expect_example("cli-restore", w.said("squirrel restore photos"));

  w.with_destinations("\"usb\", \"nas\"");
  w.run("squirrel sync photos --to nas --init");
  w.put("a.jpg", "alpha");
  w.run("squirrel index photos");
  auto sync_nas = w.run("squirrel sync photos --to nas").out;
  expect_example("cli-verify", w.said("squirrel verify nas"));
  for (const char* f : {"f.jpg", "g.jpg", "h.jpg"}) w.put(f, f);
  w.run("squirrel index photos");
  auto dry_nas = w.run("squirrel sync photos --to nas --dry-run").out;
  w.run("squirrel sync photos --to nas");
  expect_example("cli-offload", w.said("squirrel offload photos ."));
  write_file(w.mnt("nas") / "photos" / "a.jpg", "A.jpg");
  expect_example("cli-verify-alarm", lines_starting(w.run("squirrel verify nas --full").err, "ALARM:"));

  // The machine is lost; usb holds a copy no receipt names and one that
  // does not hold what its receipt vouches for.
  w.lose_the_machine();
  write_file(w.mnt("usb") / "photos" / "stray.jpg", "stray");
  write_file(w.mnt("usb") / "photos" / "2019" / "c.jpg", "C.JPG-----");
  expect_example("cli-restore-unindexed", w.said("squirrel restore photos"));
  w.run("squirrel index photos");
  auto dry_usb = w.run("squirrel sync photos --to usb --dry-run").out;
  expect_example("cli-sync", sync_nas + dry_nas + dry_usb + w.run("squirrel sync photos --to usb").out);
}

TEST(DocExamples, RecoveringTheIndexFromTheMirror) {
  DocWorld w;
  w.with_destinations("\"usb\"");
  for (const char* f : {"a.jpg", "b.jpg"}) w.put(f, f);
  w.run("squirrel backup --init");
  w.put("c.jpg", "charlie");
  w.run("squirrel backup");
  w.lose_the_machine();
  expect_example("cli-recover-list", w.transcript("squirrel recover --from usb"));
  expect_example("cli-recover-execute", w.said("squirrel recover --from usb --execute"));
}

// A file's three versions on the mirror, and the receipts that name them.
TEST(DocExamples, HistoryAndReceipts) {
  DocWorld w;
  w.with_destinations("\"usb\"", "\n[volumes.documents]\npath = \"~/Documents\"\nsync_to = [\"usb\"]\n");
  fs::create_directories(w.home() / "Documents");
  w.put("2019/trip/IMG_0001.jpg", "a photo");
  w.put("\xff.jpg", "a name that is not UTF-8");
  for (const char* text : {"v1", "v2!", "version 3"}) {
    write_file(w.home() / "Documents" / "report.txt", text);
    w.run("squirrel backup --init");
  }
  expect_example("guide-history", w.transcript("squirrel query ~/Documents/report.txt --history"));
  std::string receipt;
  for (const auto& e : fs::recursive_directory_iterator(w.mnt("usb") / "photos"))
    if (e.path().filename().string().rfind("run-", 0) == 0 && read_file(e.path()).find("IMG_0001") != std::string::npos)
      receipt = read_file(e.path());
  expect_example("guide-receipts", receipt);
}

TEST(DocExamples, ConfigErrorsNameFileLineKeyAndFix) {
  DocWorld w;
  write_file(w.config(),
             "node_name = \"laptop\"\n\n[volumes.photos]\npath = \"~/Pictures\"\nsync_to = [\"nas\"]\n\n"
             "[destinations.nas]\ntype = \"local\"\nroot = \"" +
                 w.mnt("nas").string() + "\"\n\n# a typo:\nrooot = \"/mnt/nas\"\n");
  auto typo = w.said("squirrel config check");
  write_file(w.config(),
             "node_name = \"laptop\"\n[volumes.photos]\npath = \"~/Pictures\"\nindex_every = \"2h\"\n"
             "sync_every = \"1h\"\n");
  expect_example("config-errors", typo + w.said("squirrel config check"));
}

// With -P the line is drawn on a pipe too: each frame starts with "\r" and
// an erase-line; the last frame (everything done) is always drawn.
TEST(DocExamples, TheProgressLine) {
  DocWorld w;
  w.with_destinations("\"usb\"");
  w.put("dir/0.bin", std::string(300000, '0'));
  w.put("dir/a.bin", std::string(100000, 'a'));
  w.run("squirrel backup --init");
  fs::remove_all(w.pictures() / "dir");
  w.run("squirrel index photos");
  auto err = w.run("squirrel restore photos dir -P").err;
  std::vector<std::string> frames;
  for (std::size_t at = 0, next; at < err.size(); at = next + 4) {
    next = err.find("\r\033[K", at);
    if (next == std::string::npos) next = err.size();
    if (next > at) frames.push_back(err.substr(at, next - at));
  }
  ASSERT_FALSE(frames.empty()) << err;
  expect_example("cli-progress", frames.back() + "\n");
}
