// The transport contract (spec sync-offload-restore.md §6.1-6.2), run on the
// local transport and on a FaultTransport that never faults, plus the fault
// injection itself: crash, power cut, error and stall at every call.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/hash.hpp"
#include "engine/dest/sftp/sftp.hpp"
#include "engine/dest/transport.hpp"
#include "sftp_util.hpp"
#include "sshd_util.hpp"
#include "test_util.hpp"

using namespace sq;
using namespace sq::dest;
namespace fs = std::filesystem;

namespace {

// Serves `data` in pieces of at most `piece` bytes, like a slow source.
ReadFn reader_of(std::string data, std::size_t piece = SIZE_MAX) {
  auto state = std::make_shared<std::pair<std::string, std::size_t>>(std::move(data), 0);
  return [state, piece](char* buf, std::size_t len) {
    auto& [bytes, off] = *state;
    std::size_t n = std::min({len, piece, bytes.size() - off});
    std::memcpy(buf, bytes.data() + off, n);
    off += n;
    return n;
  };
}

PutResult put_text(Transport& t, const std::string& name, const std::string& text, std::int64_t mtime_ns = 1) {
  return t.put(name, reader_of(text), mtime_ns);
}

std::string read_all(Transport& t, const std::string& name) {
  auto r = t.get(name);
  std::string out;
  char buf[7000];
  while (std::size_t n = r->read(buf, sizeof buf)) out.append(buf, n);
  return out;
}

std::string file_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Everything under `root`, without following symlinks: path -> what it is.
std::map<std::string, std::string> tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    std::string rel = it->path().string().substr(root.string().size() + 1);
    auto st = it->symlink_status();
    if (fs::is_symlink(st)) out[rel] = "link:" + fs::read_symlink(it->path()).string();
    else if (fs::is_directory(st)) out[rel] = "dir";
    else out[rel] = "file:" + file_text(it->path());
  }
  return out;
}

// The errno of the TransportError `f` throws; 0 when it throws nothing.
int err_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const TransportError& e) {
    return e.err();
  }
  return 0;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

fs::path make_dir(const fs::path& p) {
  fs::create_directories(p);
  return p;
}

struct Flavor {
  std::string name;
  std::function<std::unique_ptr<Transport>(const std::string&)> open;
};

void PrintTo(const Flavor& f, std::ostream* os) { *os << f.name; }

class TransportContract : public ::testing::TestWithParam<Flavor> {
 protected:
  test::TempDir dir;
  fs::path root = make_dir(dir / "root");
  fs::path outside = make_dir(dir / "outside");
  std::unique_ptr<Transport> t = GetParam().open(root.string());
};

TEST_P(TransportContract, PutStatListGetRoundTrip) {
  const std::int64_t mtime = 1234567890123456789;
  auto r = put_text(*t, "a/b/c.txt", "hello", mtime);
  EXPECT_EQ(r.bytes, 5);
  EXPECT_EQ(r.hash, blake3("hello"));
  auto st = t->stat("a/b/c.txt");
  EXPECT_EQ(st.type, EntryType::file);
  EXPECT_EQ(st.size, 5);
  // What put reports as stored is what stat sees; a server may keep whole
  // seconds only.
  EXPECT_EQ(st.mtime_ns, r.mtime_ns);
  EXPECT_EQ(r.mtime_ns / 1000000000, mtime / 1000000000);
  EXPECT_EQ(t->stat("a/b").type, EntryType::directory);
  auto entries = t->list("a/b");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].name, "c.txt");
  EXPECT_EQ(entries[0].stat.size, 5);
  EXPECT_EQ(t->list("a")[0].stat.type, EntryType::directory);
  EXPECT_EQ(read_all(*t, "a/b/c.txt"), "hello");
  EXPECT_EQ(t->get("a/b/c.txt")->stat().size, 5);
  EXPECT_EQ(file_text(root / "a/b/c.txt"), "hello");
}

TEST_P(TransportContract, ListIsSortedBytewiseAndListsTheRoot) {
  for (const char* name : {"b", "\xc3\xa9", "B", "a", "_"}) put_text(*t, name, name);
  t->mkdirs("d");
  std::vector<std::string> names;
  for (auto& e : t->list("")) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"B", "_", "a", "b", "d", "\xc3\xa9"}));
  EXPECT_EQ(err_of([&] { t->list("missing"); }), ENOENT);
}

TEST_P(TransportContract, FiveMiBBodyIntactWithItsBlake3) {
  std::string body = random_bytes(5 * 1024 * 1024 + 123, 7);
  auto r = t->put("big/body.bin", reader_of(body, 777777), 1);
  EXPECT_EQ(r.bytes, static_cast<std::int64_t>(body.size()));
  EXPECT_EQ(r.hash, blake3(body));
  EXPECT_EQ(read_all(*t, "big/body.bin"), body);
  t->flush();
  auto rb = t->read_back("big/body.bin");
  EXPECT_EQ(rb.bytes, r.bytes);
  EXPECT_EQ(rb.hash, r.hash);
}

TEST_P(TransportContract, PutNeverReplaces) {
  put_text(*t, "x", "one");
  EXPECT_EQ(err_of([&] { put_text(*t, "x", "two"); }), EEXIST);
  EXPECT_EQ(file_text(root / "x"), "one");
  t->mkdirs("d");
  EXPECT_EQ(err_of([&] { put_text(*t, "d", "two"); }), EEXIST);
  EXPECT_EQ(t->stat("d").type, EntryType::directory);
}

TEST_P(TransportContract, PutStopsWhenTheSourceFails) {
  auto given = std::make_shared<std::size_t>(0);
  ReadFn failing = [given](char* buf, std::size_t len) -> std::size_t {
    if (*given > 0) throw std::runtime_error("source went away");
    std::memset(buf, 'x', len);
    *given += len;
    return len;
  };
  EXPECT_THROW(t->put("half", failing, 1), std::runtime_error);
  EXPECT_EQ(t->stat("half").type, EntryType::none);
}

TEST_P(TransportContract, StatOfAnAbsentName) {
  EXPECT_EQ(t->stat("nope").type, EntryType::none);
  EXPECT_EQ(t->stat("no/such/thing").type, EntryType::none);
}

TEST_P(TransportContract, RenameMovesAndCreatesParents) {
  put_text(*t, "s", "body");
  t->rename("s", "d1/d2/s2");
  EXPECT_EQ(t->stat("s").type, EntryType::none);
  EXPECT_EQ(file_text(root / "d1/d2/s2"), "body");
  EXPECT_EQ(err_of([&] { t->rename("s", "elsewhere"); }), ENOENT);
}

TEST_P(TransportContract, RenameNeverReplaces) {
  put_text(*t, "a", "A");
  put_text(*t, "b", "B");
  t->mkdirs("d");
  EXPECT_EQ(err_of([&] { t->rename("a", "b"); }), EEXIST);
  EXPECT_EQ(err_of([&] { t->rename("a", "d"); }), EEXIST);
  EXPECT_EQ(err_of([&] { t->rename("d", "a"); }), EEXIST);
  EXPECT_EQ(file_text(root / "a"), "A");
  EXPECT_EQ(file_text(root / "b"), "B");
  EXPECT_TRUE(fs::is_directory(root / "d"));
}

TEST_P(TransportContract, RenameMovesDirectories) {
  put_text(*t, "d/x", "X");
  put_text(*t, "d/y/z", "Z");
  t->rename("d", "e/d");
  EXPECT_EQ(tree(root), (std::map<std::string, std::string>{
                            {"e", "dir"}, {"e/d", "dir"}, {"e/d/x", "file:X"}, {"e/d/y", "dir"}, {"e/d/y/z", "file:Z"}}));
  EXPECT_EQ(err_of([&] { t->rename("e", "e/d/inner"); }), EINVAL);
  EXPECT_TRUE(fs::is_directory(root / "e/d/y"));
}

TEST_P(TransportContract, RemoveFilesAndEmptyDirectoriesOnly) {
  put_text(*t, "d/f", "F");
  EXPECT_EQ(err_of([&] { t->remove("d"); }), ENOTEMPTY);
  EXPECT_EQ(file_text(root / "d/f"), "F");
  t->remove("d/f");
  t->remove("d");
  EXPECT_EQ(t->stat("d").type, EntryType::none);
  EXPECT_EQ(err_of([&] { t->remove("d"); }), ENOENT);
}

TEST_P(TransportContract, MkdirsCreatesParentsAndToleratesExisting) {
  t->mkdirs("m/n/o");
  t->mkdirs("m/n/o");
  t->mkdirs("m");
  EXPECT_EQ(t->stat("m/n/o").type, EntryType::directory);
  put_text(*t, "m/file", "f");
  EXPECT_EQ(err_of([&] { t->mkdirs("m/file"); }), ENOTDIR);
}

TEST_P(TransportContract, InvalidNamesAreRejected) {
  put_text(*t, "ok", "ok");
  const std::vector<std::string> bad = {"", ".", "..", "a//b", "/abs", "a/", "a/./b", "a/../b", "../x",
                                        std::string("a\0b", 3)};
  for (const auto& name : bad) {
    SCOPED_TRACE(testing::PrintToString(name));
    EXPECT_EQ(err_of([&] { t->stat(name); }), EINVAL);
    EXPECT_EQ(err_of([&] { put_text(*t, name, "x"); }), EINVAL);
    EXPECT_EQ(err_of([&] { t->get(name); }), EINVAL);
    EXPECT_EQ(err_of([&] { t->read_back(name); }), EINVAL);
    EXPECT_EQ(err_of([&] { t->rename("ok", name); }), EINVAL);
    EXPECT_EQ(err_of([&] { t->rename(name, "ok2"); }), EINVAL);
    EXPECT_EQ(err_of([&] { t->remove(name); }), EINVAL);
    EXPECT_EQ(err_of([&] { t->mkdirs(name); }), EINVAL);
    if (!name.empty()) {
      EXPECT_EQ(err_of([&] { t->list(name); }), EINVAL);
    }
  }
  EXPECT_EQ(tree(root), (std::map<std::string, std::string>{{"ok", "file:ok"}}));
  EXPECT_TRUE(tree(outside).empty());
}

// Every call through a symlink planted at `link` (pointing at the outside
// directory, which holds one file) must fail, and nothing outside changes.
void expect_symlinked_directory_refused(Transport& t, const std::string& link, const fs::path& outside) {
  std::ofstream(outside / "x") << "secret";
  put_text(t, "src", "S");
  EXPECT_EQ(t.stat(link).type, EntryType::symlink);
  EXPECT_EQ(err_of([&] { t.stat(link + "/x"); }), ELOOP);
  EXPECT_EQ(err_of([&] { put_text(t, link + "/new", "N"); }), ELOOP);
  EXPECT_EQ(err_of([&] { put_text(t, link + "/deep/new", "N"); }), ELOOP);
  EXPECT_EQ(err_of([&] { t.get(link + "/x"); }), ELOOP);
  EXPECT_EQ(err_of([&] { t.read_back(link + "/x"); }), ELOOP);
  EXPECT_EQ(err_of([&] { t.list(link); }), ELOOP);
  EXPECT_EQ(err_of([&] { t.mkdirs(link + "/sub"); }), ELOOP);
  EXPECT_EQ(err_of([&] { t.rename("src", link + "/src"); }), ELOOP);
  EXPECT_EQ(err_of([&] { t.rename(link + "/x", "stolen"); }), ELOOP);
  EXPECT_EQ(err_of([&] { t.remove(link + "/x"); }), ELOOP);
  EXPECT_EQ(tree(outside), (std::map<std::string, std::string>{{"x", "file:secret"}}));
  EXPECT_EQ(t.stat("stolen").type, EntryType::none);
}

// stat_many answers as a stat of each name would, whether the transport
// looks at a folder's names one by one or lists the folder once (sftp
// lists a folder holding eight names or more): files, a directory, a
// symlink, absent names, names in a folder that is not there; and a name
// below a symlinked folder fails the whole call as its own stat fails.
TEST_P(TransportContract, StatManyAnswersAsAStatOfEachName) {
  std::ofstream(outside / "x") << "secret";
  make_dir(root / "d/sub");
  for (int i = 0; i < 10; ++i) std::ofstream(root / ("d/f" + std::to_string(i))) << std::string(i * 7, 'z');
  fs::create_symlink(outside / "x", root / "d/link");
  fs::create_directory_symlink(outside, root / "ld");
  std::vector<std::string> names = {"d/sub", "d/link", "d/none", "d", "top-none"};
  for (int i = 9; i >= 0; --i) names.push_back("d/f" + std::to_string(i));
  for (int i = 0; i < 9; ++i) names.push_back("gone/g" + std::to_string(i));
  auto many = t->stat_many(names);
  ASSERT_EQ(many.size(), names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto one = t->stat(names[i]);
    EXPECT_EQ(static_cast<int>(many[i].type), static_cast<int>(one.type)) << names[i];
    EXPECT_EQ(many[i].size, one.size) << names[i];
    EXPECT_EQ(many[i].mtime_ns, one.mtime_ns) << names[i];
  }
  EXPECT_EQ(many[0].type, EntryType::directory);
  EXPECT_EQ(many[1].type, EntryType::symlink);
  EXPECT_EQ(many[2].type, EntryType::none);
  EXPECT_EQ(many[5].size, 63) << "d/f9";
  EXPECT_EQ(many.back().type, EntryType::none);
  std::vector<std::string> below_link;
  for (int i = 0; i < 9; ++i) below_link.push_back("ld/x" + std::to_string(i));
  int one_err = err_of([&] { t->stat("ld/x0"); });
  EXPECT_NE(one_err, 0) << "a symlinked parent is never followed";
  EXPECT_EQ(err_of([&] { t->stat_many(below_link); }), one_err);
  EXPECT_TRUE(t->stat_many({}).empty());
}

TEST_P(TransportContract, NeverFollowsASymlinkAtTheRootLevel) {
  fs::create_directory_symlink(outside, root / "link");
  expect_symlinked_directory_refused(*t, "link", outside);
}

TEST_P(TransportContract, NeverFollowsASymlinkInAParentComponent) {
  fs::create_directories(root / "a/b");
  fs::create_directory_symlink(outside, root / "a/b/link");
  expect_symlinked_directory_refused(*t, "a/b/link", outside);
}

TEST_P(TransportContract, NeverFollowsASymlinkAtTheTarget) {
  std::ofstream(outside / "x") << "secret";
  fs::create_symlink(outside / "x", root / "t");
  fs::create_symlink(outside / "fresh", root / "dangling");
  put_text(*t, "src", "S");
  EXPECT_EQ(t->stat("t").type, EntryType::symlink);
  EXPECT_EQ(err_of([&] { put_text(*t, "t", "overwrite"); }), EEXIST);
  EXPECT_EQ(err_of([&] { put_text(*t, "dangling", "create"); }), EEXIST);
  EXPECT_EQ(err_of([&] { t->get("t"); }), ELOOP);
  EXPECT_EQ(err_of([&] { t->read_back("t"); }), ELOOP);
  EXPECT_EQ(err_of([&] { t->rename("src", "t"); }), EEXIST);
  EXPECT_EQ(err_of([&] { t->rename("src", "dangling"); }), EEXIST);
  EXPECT_NE(err_of([&] { t->mkdirs("t"); }), 0);
  EXPECT_EQ(tree(outside), (std::map<std::string, std::string>{{"x", "file:secret"}}));
}

TEST_P(TransportContract, RenamingOrRemovingALinkActsOnTheLinkItself) {
  std::ofstream(outside / "x") << "secret";
  fs::create_symlink(outside / "x", root / "t");
  fs::create_directory_symlink(outside, root / "dirlink");
  t->rename("t", "m/t2");
  t->rename("dirlink", "m/dirlink");
  EXPECT_EQ(t->stat("m/t2").type, EntryType::symlink);
  EXPECT_EQ(fs::read_symlink(root / "m/t2"), outside / "x");
  EXPECT_EQ(t->stat("m/dirlink").type, EntryType::symlink);
  t->remove("m/t2");
  t->remove("m/dirlink");
  EXPECT_EQ(tree(root), (std::map<std::string, std::string>{{"m", "dir"}}));
  EXPECT_EQ(tree(outside), (std::map<std::string, std::string>{{"x", "file:secret"}}));
}

TEST_P(TransportContract, AParentThatIsARegularFileIsNotADirectory) {
  put_text(*t, "f", "F");
  put_text(*t, "g", "G");
  EXPECT_EQ(err_of([&] { put_text(*t, "f/x", "X"); }), ENOTDIR);
  EXPECT_EQ(err_of([&] { t->stat("f/x"); }), ENOTDIR);
  EXPECT_EQ(err_of([&] { t->mkdirs("f/y"); }), ENOTDIR);
  EXPECT_EQ(err_of([&] { t->rename("g", "f/g"); }), ENOTDIR);
  EXPECT_EQ(err_of([&] { t->get("f/x"); }), ENOTDIR);
  EXPECT_EQ(err_of([&] { t->list("f"); }), ENOTDIR);
  EXPECT_EQ(file_text(root / "f"), "F");
}

TEST_P(TransportContract, GetAndReadBackOpenRegularFilesOnly) {
  t->mkdirs("d");
  EXPECT_EQ(err_of([&] { t->get("d"); }), EISDIR);
  EXPECT_EQ(err_of([&] { t->read_back("d"); }), EISDIR);
  EXPECT_EQ(err_of([&] { t->get("absent"); }), ENOENT);
  EXPECT_EQ(err_of([&] { t->read_back("absent"); }), ENOENT);
  ASSERT_EQ(::mkfifo((root / "fifo").c_str(), 0644), 0);
  EXPECT_EQ(err_of([&] { t->get("fifo"); }), EINVAL);
  EXPECT_EQ(t->stat("fifo").type, EntryType::other);
}

TEST_P(TransportContract, ReadBackReturnsTheHashOfPut) {
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{1 << 20},
                           std::size_t{(1 << 20) + 4097}}) {
    SCOPED_TRACE(size);
    std::string name = "rb/" + std::to_string(size);
    auto put = t->put(name, reader_of(random_bytes(size, static_cast<unsigned>(size))), 1);
    t->flush();
    auto back = t->read_back(name);
    EXPECT_EQ(back.bytes, put.bytes);
    EXPECT_EQ(back.hash, put.hash);
  }
}

TEST_P(TransportContract, FlushCoversEveryKindOfChange) {
  for (int i = 0; i < 300; ++i) put_text(*t, "many/" + std::to_string(i), std::to_string(i));
  t->rename("many/1", "moved/deep/1");
  t->mkdirs("empty/dir");
  t->remove("many/2");
  EXPECT_NO_THROW(t->flush());
  EXPECT_NO_THROW(t->flush());
  EXPECT_EQ(t->list("many").size(), 298u);
  EXPECT_EQ(read_all(*t, "many/299"), "299");
}

// One real OpenSSH server per test process, started on first use.
SftpOptions sftp_options_for(const std::string& root) {
  static test::TempDir dir;
  static test::SshServer server(dir / "sshd");
  return test::sftp_options_for(server, root);
}

INSTANTIATE_TEST_SUITE_P(
    Transport, TransportContract,
    ::testing::Values(Flavor{"Local", [](const std::string& root) { return open_local_transport(root); }},
                      Flavor{"FaultFree",
                             [](const std::string& root) -> std::unique_ptr<Transport> {
                               return std::make_unique<FaultTransport>(open_local_transport(root), FaultPlan{});
                             }},
                      // Every call on a worker thread, bounded by the stall guard.
                      Flavor{"StallGuarded",
                             [](const std::string& root) {
                               StallOptions o;
                               o.destination = "contract";
                               return stall_guarded(open_local_transport(root), o);
                             }},
                      // The same directory reached through a real OpenSSH server.
                      Flavor{"Sftp", [](const std::string& root) { return open_sftp_transport(sftp_options_for(root)); }}),
    [](const ::testing::TestParamInfo<Flavor>& p) { return p.param.name; });

TEST(TransportLocal, RootMustBeAnExistingDirectory) {
  test::TempDir dir;
  std::ofstream(dir / "file") << "x";
  EXPECT_EQ(err_of([&] { open_local_transport((dir / "missing").string()); }), ENOENT);
  EXPECT_EQ(err_of([&] { open_local_transport((dir / "file").string()); }), ENOTDIR);
}

// ---- fault injection ------------------------------------------------------------

using Step = std::function<void(Transport&)>;

// A script touching every kind of call; flushes at steps 3 and 9.
std::vector<Step> script() {
  return {
      [](Transport& t) { put_text(t, "a/x", "1"); },           // 1
      [](Transport& t) { t.mkdirs("m/n"); },                   // 2
      [](Transport& t) { t.flush(); },                         // 3
      [](Transport& t) { t.rename("a/x", "b/c/x"); },          // 4
      [](Transport& t) { put_text(t, "a/y", "2"); },           // 5
      [](Transport& t) { t.mkdirs("p/q/r"); },                 // 6
      [](Transport& t) { t.stat("b/c/x"); },                   // 7
      [](Transport& t) { read_all(t, "b/c/x"); },              // 8
      [](Transport& t) { t.flush(); },                         // 9
      [](Transport& t) { put_text(t, "z/late", "3"); },        // 10
      [](Transport& t) { t.rename("b", "moved-b"); },          // 11
      [](Transport& t) { t.read_back("moved-b/c/x"); },        // 12
      [](Transport& t) { t.list("moved-b"); },                 // 13
  };
}

// The tree after each prefix of the script, run without faults.
std::vector<std::map<std::string, std::string>> reference_trees() {
  test::TempDir dir;
  auto root = make_dir(dir / "root");
  auto t = open_local_transport(root.string());
  std::vector<std::map<std::string, std::string>> out{tree(root)};
  for (auto& step : script()) {
    step(*t);
    out.push_back(tree(root));
  }
  return out;
}

struct FaultRun {
  std::map<std::string, std::string> after;
  std::size_t failed_step = 0;  // 1-based; 0 when nothing failed
  std::string what;
  bool crash = false;
  int err = 0;
  int calls = 0;
};

// Runs the script on a FaultTransport with `plan` until the first failure.
FaultRun run_with(FaultPlan plan) {
  test::TempDir dir;
  auto root = make_dir(dir / "root");
  FaultTransport t(open_local_transport(root.string()), std::move(plan));
  FaultRun run;
  auto steps = script();
  for (std::size_t i = 0; i < steps.size() && run.failed_step == 0; ++i) {
    try {
      steps[i](t);
    } catch (const SimulatedCrash& e) {
      run = {{}, i + 1, e.what(), true, 0, 0};
    } catch (const TransportError& e) {
      run = {{}, i + 1, e.what(), false, e.err(), 0};
    }
  }
  run.after = tree(root);
  run.calls = t.calls();
  return run;
}

TEST(TransportFault, CrashAtCallNLeavesTheStateBeforeCallN) {
  auto expected = reference_trees();
  for (int n = 1; n <= static_cast<int>(script().size()); ++n) {
    SCOPED_TRACE(n);
    auto run = run_with({FaultPlan::Kind::crash, n, 0, {}});
    EXPECT_TRUE(run.crash);
    EXPECT_EQ(run.failed_step, static_cast<std::size_t>(n));
    EXPECT_EQ(run.calls, n);
    EXPECT_EQ(run.after, expected[static_cast<std::size_t>(n - 1)]);
  }
}

TEST(TransportFault, PowerCutUndoesWhatTheLastFlushDidNotCover) {
  auto expected = reference_trees();
  for (int n = 1; n <= static_cast<int>(script().size()); ++n) {
    SCOPED_TRACE(n);
    auto run = run_with({FaultPlan::Kind::power_cut, n, 0, {}});
    EXPECT_TRUE(run.crash);
    EXPECT_EQ(run.failed_step, static_cast<std::size_t>(n));
    EXPECT_EQ(run.what.find("undo incomplete"), std::string::npos) << run.what;
    // The state of the last completed flush (steps 3 and 9), or the start.
    std::size_t durable = n > 9 ? 9 : n > 3 ? 3 : 0;
    EXPECT_EQ(run.after, expected[durable]);
  }
}

TEST(TransportFault, PowerCutDoesNotRestoreRemovals) {
  test::TempDir dir;
  auto root = make_dir(dir / "root");
  FaultTransport t(open_local_transport(root.string()), {FaultPlan::Kind::power_cut, 6, 0, {}});
  put_text(t, "a", "A");
  put_text(t, "b", "B");
  t.flush();
  t.remove("a");
  put_text(t, "c/d", "D");
  EXPECT_THROW(t.stat("b"), SimulatedCrash);
  EXPECT_EQ(tree(root), (std::map<std::string, std::string>{{"b", "file:B"}}));
}

TEST(TransportFault, PowerCutReversesAnUnflushedRenameOfFlushedBytes) {
  test::TempDir dir;
  auto root = make_dir(dir / "root");
  FaultTransport t(open_local_transport(root.string()), {FaultPlan::Kind::power_cut, 5, 0, {}});
  put_text(t, "stage/k", "K");
  t.flush();
  t.rename("stage/k", "live/dir/k");
  t.remove("stage");
  EXPECT_THROW(t.flush(), SimulatedCrash);
  EXPECT_EQ(tree(root), (std::map<std::string, std::string>{{"stage", "dir"}, {"stage/k", "file:K"}}));
}

TEST(TransportFault, InjectedErrorChangesNothingAndCarriesItsErrno) {
  auto expected = reference_trees();
  for (int err : {EIO, ENOSPC, EACCES}) {
    for (int n = 1; n <= static_cast<int>(script().size()); ++n) {
      SCOPED_TRACE(testing::Message() << "err " << err << " at call " << n);
      auto run = run_with({FaultPlan::Kind::error, n, err, {}});
      EXPECT_FALSE(run.crash);
      EXPECT_EQ(run.failed_step, static_cast<std::size_t>(n));
      EXPECT_EQ(run.err, err);
      EXPECT_EQ(run.after, expected[static_cast<std::size_t>(n - 1)]);
    }
  }
}

TEST(TransportFault, AnInjectedErrorLeavesTheTransportUsable) {
  test::TempDir dir;
  auto root = make_dir(dir / "root");
  FaultTransport t(open_local_transport(root.string()), {FaultPlan::Kind::error, 1, ENOSPC, {}});
  EXPECT_EQ(err_of([&] { put_text(t, "a", "A"); }), ENOSPC);
  put_text(t, "a", "A");
  EXPECT_EQ(t.stat("a").type, EntryType::file);
  EXPECT_FALSE(t.crashed());
  EXPECT_EQ(t.calls(), 3);
}

TEST(TransportFault, AfterACrashEveryCallThrows) {
  test::TempDir dir;
  auto root = make_dir(dir / "root");
  for (auto kind : {FaultPlan::Kind::crash, FaultPlan::Kind::power_cut}) {
    FaultTransport t(open_local_transport(root.string()), {kind, 2, 0, {}});
    t.mkdirs("d");
    EXPECT_THROW(t.stat("d"), SimulatedCrash);
    EXPECT_TRUE(t.crashed());
    EXPECT_THROW(t.stat("d"), SimulatedCrash);
    EXPECT_THROW(t.list("d"), SimulatedCrash);
    EXPECT_THROW(put_text(t, "f", "F"), SimulatedCrash);
    EXPECT_THROW(t.get("f"), SimulatedCrash);
    EXPECT_THROW(t.read_back("f"), SimulatedCrash);
    EXPECT_THROW(t.rename("d", "e"), SimulatedCrash);
    EXPECT_THROW(t.remove("d"), SimulatedCrash);
    EXPECT_THROW(t.mkdirs("g"), SimulatedCrash);
    EXPECT_THROW(t.flush(), SimulatedCrash);
    EXPECT_EQ(t.calls(), 2);
    fs::remove_all(root / "d");
  }
  EXPECT_TRUE(tree(root).empty());
}

struct StallSeen : std::runtime_error {
  using std::runtime_error::runtime_error;
};

TEST(TransportFault, AStallCallsTheTestInsteadOfTheOperation) {
  test::TempDir dir;
  auto root = make_dir(dir / "root");
  int stalls = 0;
  FaultPlan plan{FaultPlan::Kind::stall, 2, 0, [&] {
                   ++stalls;
                   throw StallSeen("stalled");
                 }};
  FaultTransport t(open_local_transport(root.string()), plan);
  put_text(t, "a", "A");
  EXPECT_THROW(t.rename("a", "b"), StallSeen);
  EXPECT_EQ(stalls, 1);
  EXPECT_EQ(tree(root), (std::map<std::string, std::string>{{"a", "file:A"}}));
  t.rename("a", "b");  // later calls run normally
  EXPECT_EQ(t.stat("b").type, EntryType::file);
}

TEST(TransportFault, AStallTheTestDoesNotEndFailsAsNoProgress) {
  test::TempDir dir;
  auto root = make_dir(dir / "root");
  int stalls = 0;
  FaultTransport t(open_local_transport(root.string()), {FaultPlan::Kind::stall, 1, 0, [&] { ++stalls; }});
  EXPECT_EQ(err_of([&] { put_text(t, "a/b", "B"); }), ETIMEDOUT);
  EXPECT_EQ(stalls, 1);
  EXPECT_TRUE(tree(root).empty());
}

TEST(TransportFault, ProbingForUndoIsNotCountedAsCalls) {
  test::TempDir dir;
  auto root = make_dir(dir / "root");
  FaultTransport t(open_local_transport(root.string()), {});
  put_text(t, "a/b/c/d", "D");
  t.rename("a/b/c/d", "e/f/g");
  t.mkdirs("h/i/j");
  EXPECT_EQ(t.calls(), 3);
}

}  // namespace
