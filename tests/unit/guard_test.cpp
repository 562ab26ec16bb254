// THE name guard (spec sync-offload-restore.md §6.4): a table of every
// permitted move and removal next to the hostile near-misses of each, and
// the guarded transport refusing without touching anything.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "engine/dest/transport.hpp"
#include "test_util.hpp"

using namespace sq;
using namespace sq::dest;
namespace fs = std::filesystem;

namespace {

const std::string K = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";  // a staging key
const std::string K2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const std::set<std::int64_t> kFinished = {1, 2, 5};

GuardContext context(std::int64_t run, bool bootstrap) {
  return {run, bootstrap, [](std::int64_t id) { return kFinished.count(id) > 0; }};
}

struct RenameCase {
  std::string from, to;
  std::int64_t run;
  bool bootstrap;
  bool allowed;
  const char* why;
};

const std::vector<RenameCase>& rename_cases() {
  static const std::vector<RenameCase> cases = {
      // commit: this run's staging onto a live path
      {"v/.squirrel-staging/run-7/" + K, "v/docs/a.txt", 7, false, true, "commit onto a nested live path"},
      {"v/.squirrel-staging/run-7/" + K, "v/a", 7, false, true, "commit onto a top-level live path"},
      {"my-Vol_2/.squirrel-staging/run-7/" + K, "my-Vol_2/.hidden/x", 7, false, true, "dot file is live"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel/x", 7, false, true, ".squirrel without dash is live"},
      {"v/.squirrel-staging/run-7/" + K, "v/squirrel-history/x", 7, false, true, "no leading dot is live"},
      {"v/.squirrel-staging/run-123456789012/" + K, "v/a", 123456789012, false, true, "large run id"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-index/run-7", 7, false, true, "this run's receipt"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-index/index-20240101T000000.000Z-7.db", 7, false, true,
       "index snapshot"},
      // displace: a live path into this run's history under the same path
      {"v/docs/a.txt", "v/.squirrel-history/run-7/docs/a.txt", 7, false, true, "displace a file"},
      {"v/dir", "v/.squirrel-history/run-7/dir", 7, false, true, "displace a directory"},
      // bootstrap: the staged marker into place
      {"v/.squirrel-staging/volume-marker", "v/.squirrel-volume", 0, true, true, "bootstrap marker"},
      {"v/.squirrel-staging/volume-marker", "v/.squirrel-volume", 7, true, true, "bootstrap marker with a run"},

      // staged bytes of another run, or not staged bytes at all
      {"v/.squirrel-staging/run-8/" + K, "v/a", 7, false, false, "another run's staging"},
      {"v/.squirrel-staging/run-5/" + K, "v/a", 7, false, false, "a finished run's staging"},
      {"v/.squirrel-staging/run-07/" + K, "v/a", 7, false, false, "non-canonical id with a leading zero"},
      {"v/.squirrel-staging/run-0/" + K, "v/a", 0, false, false, "run zero"},
      {"v/.squirrel-staging/run-+7/" + K, "v/a", 7, false, false, "signed id"},
      {"v/.squirrel-staging/run-7a/" + K, "v/a", 7, false, false, "id with a suffix"},
      {"v/.squirrel-staging/run- 7/" + K, "v/a", 7, false, false, "id with a space"},
      {"v/.squirrel-staging/run-/" + K, "v/a", 7, false, false, "empty id"},
      {"v/.squirrel-staging/RUN-7/" + K, "v/a", 7, false, false, "upper-case run dir"},
      {"v/.squirrel-staging/run-99999999999999999999/" + K, "v/a", 7, false, false, "id overflows"},
      {"v/.squirrel-staging/run-7/" + std::string(64, 'A'), "v/a", 7, false, false, "upper-case key"},
      {"v/.squirrel-staging/run-7/" + K.substr(1), "v/a", 7, false, false, "63-char key"},
      {"v/.squirrel-staging/run-7/" + K + "0", "v/a", 7, false, false, "65-char key"},
      {"v/.squirrel-staging/run-7/" + K.substr(1) + "g", "v/a", 7, false, false, "non-hex key"},
      {"v/.squirrel-staging/run-7", "v/a", 7, false, false, "the staging dir itself"},
      {"v/.squirrel-staging/run-7/" + K + "/x", "v/a", 7, false, false, "below a key"},
      {"v/.squirrel-staging/run-7/" + K, "v/a", 0, false, false, "no run holds the guard"},
      {"v/.squirrel-staging/run-7/" + K, "v/a", 0, true, false, "bootstrap does not commit"},
      // wrong targets for staged bytes
      {"v/.squirrel-staging/run-7/" + K, "w/a", 7, false, false, "other volume"},
      {"v/.squirrel-staging/run-7/" + K, "v", 7, false, false, "the volume directory itself"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-volume", 7, false, false, "marker overwrite"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-history/run-7/a", 7, false, false, "straight into history"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-staging/run-7/" + K2, 7, false, false, "within staging"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-conflicts/run-7/a", 7, false, false, "conflicts dir"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-restore-history/a", 7, false, false, "restore history"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-anything", 7, false, false, "any reserved name"},
      {"v/.squirrel-staging/run-7/" + K, "v/.SQUIRREL-HISTORY/run-7/a", 7, false, false, "case-folded reserved"},
      {"v/.squirrel-staging/run-7/" + K, "v/.Squirrel-Volume", 7, false, false, "case-folded marker"},
      {"v/.squirrel-staging/run-7/" + K, "v/.\xc5\xbfquirrel-history/a", 7, false, false, "long s folds to s"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squ\xc4\xb1rrel-index/a", 7, false, false, "dotless i folds to i"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-index/run-8", 7, false, false, "another run's receipt"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-index/run-07", 7, false, false, "non-canonical receipt"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-index/index-.db", 7, false, false, "empty snapshot stamp"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-index/index-a.db/x", 7, false, false, "below a snapshot"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-index/index-a b.db", 7, false, false, "odd snapshot stamp"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-index/other.db", 7, false, false, "not a snapshot"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-index/index-a.db.tmp", 7, false, false, "snapshot suffix"},
      // path traversal and unclean names
      {"v/.squirrel-staging/run-7/" + K, "v/../w/a", 7, false, false, "dot-dot in the target"},
      {"v/.squirrel-staging/run-7/" + K, "v/a/../../w/a", 7, false, false, "dot-dot deeper"},
      {"v/.squirrel-staging/run-7/../run-8/" + K, "v/a", 7, false, false, "dot-dot in the source"},
      {"v/.squirrel-staging/run-7/" + K, "/v/a", 7, false, false, "absolute target"},
      {"v/.squirrel-staging/run-7/" + K, "v//a", 7, false, false, "empty component"},
      {"v/.squirrel-staging/run-7/" + K, "v/./a", 7, false, false, "dot component"},
      {"v/.squirrel-staging/run-7/" + K, "v/a/", 7, false, false, "trailing slash"},
      {"v/.squirrel-staging/run-7/" + K, std::string("v/a\0b", 5), 7, false, false, "NUL"},
      {"-v/.squirrel-staging/run-7/" + K, "-v/a", 7, false, false, "invalid volume name"},
      {".v/.squirrel-staging/run-7/" + K, ".v/a", 7, false, false, "dot volume name"},
      {"v v/.squirrel-staging/run-7/" + K, "v v/a", 7, false, false, "volume name with a space"},
      // displacing: exactly this run's history, exactly the same path
      {"v/a", "v/.squirrel-history/run-8/a", 7, false, false, "another run's history"},
      {"v/a", "v/.squirrel-history/run-07/a", 7, false, false, "non-canonical history id"},
      {"v/a", "v/.squirrel-history/run-7/b", 7, false, false, "history of another path"},
      {"v/a", "v/.squirrel-history/run-7/a/b", 7, false, false, "history below the path"},
      {"v/a/b", "v/.squirrel-history/run-7/a", 7, false, false, "history above the path"},
      {"v/a", "v/.squirrel-history/run-7", 7, false, false, "onto the history bucket"},
      {"v/a", "w/.squirrel-history/run-7/a", 7, false, false, "history of another volume"},
      {"v/a", "v/.SQUIRREL-HISTORY/run-7/a", 7, false, false, "case variant of history"},
      {"v/a", "v/.squirrel-history/run-0/a", 0, false, false, "no run holds the guard"},
      {"v/a", "v/b", 7, false, false, "live to live"},
      {"v/a", "v/.squirrel-index/run-7", 7, false, false, "live onto a receipt"},
      {"v", "v/.squirrel-history/run-7", 7, false, false, "the volume itself"},
      {"v/.squirrel-volume", "v/.squirrel-history/run-7/.squirrel-volume", 7, false, false, "marker is not live"},
      {"v/.squirrel-history/run-7/a", "v/a", 7, false, false, "out of history"},
      {"v/.squirrel-history/run-3/a", "v/.squirrel-history/run-7/.squirrel-history/run-3/a", 7, false, false,
       "history is not live"},
      {"v/.squirrel-index/run-7", "v/a", 7, false, false, "a receipt is not staged"},
      {"v/.squirrel-conflicts/run-7/a", "v/a", 7, false, false, "conflicts are not staged"},
      // the marker
      {"v/.squirrel-staging/volume-marker", "v/.squirrel-volume", 0, false, false, "marker without bootstrap"},
      {"v/.squirrel-staging/volume-marker", "v/.squirrel-volume", 7, false, false, "marker by a plain run"},
      {"v/.squirrel-staging/volume-marker", "v/a", 0, true, false, "marker onto a live path"},
      {"v/.squirrel-staging/volume-marker", "w/.squirrel-volume", 0, true, false, "marker of another volume"},
      {"v/.squirrel-staging/run-7/" + K, "v/.squirrel-volume", 0, true, false, "bootstrap with staged bytes"},
      {"v/.squirrel-staging/volume-marker2", "v/.squirrel-volume", 0, true, false, "marker near-miss"},
      {"v/a", "v/.squirrel-volume", 0, true, false, "live onto the marker"},
  };
  return cases;
}

// The one reading of run-named folders and files: a canonical positive
// decimal after the prefix, nothing else.
TEST(GuardTable, RunNamesAreReadOneWay) {
  const std::vector<std::pair<std::string, std::optional<std::int64_t>>> cases = {
      {"run-7", 7},           {"run-1234567", 1234567}, {"run-07", std::nullopt}, {"run-0", std::nullopt},
      {"run-+7", std::nullopt}, {"run--7", std::nullopt}, {"run-7x", std::nullopt}, {"run-", std::nullopt},
      {"run-7 ", std::nullopt}, {"Run-7", std::nullopt},  {"run-99999999999999999999", std::nullopt},
  };
  for (const auto& [name, id] : cases) EXPECT_EQ(dest::run_id_in(name), id) << name;
  EXPECT_EQ(dest::run_id_in("map-12", "map-"), 12);
  EXPECT_EQ(dest::run_id_in("run-12", "map-"), std::nullopt);
}

TEST(GuardTable, RenameDecisions) {
  for (const auto& c : rename_cases()) {
    SCOPED_TRACE(testing::Message() << c.why << ": " << testing::PrintToString(c.from) << " -> "
                                    << testing::PrintToString(c.to) << " run " << c.run
                                    << (c.bootstrap ? " bootstrap" : ""));
    auto why = guard_rename(context(c.run, c.bootstrap), c.from, c.to);
    EXPECT_EQ(why.empty(), c.allowed) << why;
  }
}

// The content layouts: staged bytes land only on artifact names and this
// run's segment; nothing stored is ever moved again.
TEST(GuardTable, ContentLayoutRenameDecisions) {
  const std::string S = "v/.squirrel-staging/run-7/" + K;
  struct Case {
    std::string from, to;
    Layout layout;
    bool allowed;
    const char* why;
  };
  const std::vector<Case> cases = {
      {S, "objects/" + K2, Layout::content_addressed, true, "an object"},
      {S, "v/index/run-7", Layout::content_addressed, true, "this run's segment"},
      {S, "v/.squirrel-index/index-20240101T000000.000Z-7.db", Layout::content_addressed, true, "index snapshot"},
      {S, "objects/" + K2, Layout::packed, true, "a large object of a packed layout"},
      {S, "packs/" + K2, Layout::packed, true, "a pack"},
      {S, "packs/map-7", Layout::packed, true, "this run's map"},
      {S, "objects/" + K2, Layout::mirror, false, "objects/ is no place of a mirror"},
      {S, "v/index/run-7", Layout::mirror, true, "a mirror's folder named index is live"},
      {S, "packs/" + K2, Layout::content_addressed, false, "no packs in content-addressed"},
      {S, "packs/map-8", Layout::packed, false, "another run's map"},
      {S, "packs/map-07", Layout::packed, false, "a non-canonical map id"},
      {S, "objects/" + K2.substr(1), Layout::content_addressed, false, "63 hex"},
      {S, "objects/" + K2 + "/x", Layout::content_addressed, false, "below an object"},
      {S, "objects/ABCDEF" + K2.substr(6), Layout::content_addressed, false, "upper-case hex"},
      {S, "v/index/run-8", Layout::content_addressed, false, "another run's segment"},
      {S, "v/index/run-7/x", Layout::content_addressed, false, "below a segment"},
      {S, "v/a", Layout::content_addressed, false, "a live path of a content layout"},
      {S, "v/.squirrel-index/run-7", Layout::content_addressed, false, "a mirror receipt in a content layout"},
      {"v/.squirrel-staging/run-6/" + K, "objects/" + K2, Layout::content_addressed, false, "another run's staging"},
      {"objects/" + K, "objects/" + K2, Layout::content_addressed, false, "an object never moves"},
      {"v/index/run-7", "v/.squirrel-history/run-7/index/run-7", Layout::content_addressed, false,
       "a segment never moves"},
      {"v/a", "v/.squirrel-history/run-7/a", Layout::content_addressed, false, "no displacing in a content layout"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << c.why << ": " << c.from << " -> " << c.to);
    auto g = context(7, false);
    g.layout = c.layout;
    auto why = guard_rename(g, c.from, c.to);
    EXPECT_EQ(why.empty(), c.allowed) << why;
  }
  auto unheld = context(0, false);
  unheld.layout = Layout::content_addressed;
  EXPECT_FALSE(guard_rename(unheld, S, "objects/" + K2).empty()) << "no run holds the guard";
  for (auto layout : {Layout::content_addressed, Layout::packed}) {
    auto g = context(7, false);
    g.layout = layout;
    EXPECT_FALSE(guard_remove(g, "objects/" + K2).empty()) << "an object is never removed";
    EXPECT_FALSE(guard_remove(g, "packs/" + K2).empty()) << "a pack is never removed";
    EXPECT_FALSE(guard_remove(g, "v/index/run-5").empty()) << "a segment is never removed";
  }
}

struct RemoveCase {
  std::string name;
  std::int64_t run;
  bool bootstrap;
  bool allowed;
  const char* why;
};

TEST(GuardTable, RemoveDecisions) {
  const std::vector<RemoveCase> cases = {
      {"v/.squirrel-staging/run-5", 7, false, true, "a finished run's emptied staging"},
      {"v/.squirrel-staging/run-5/" + K, 7, false, true, "a finished run's staged file"},
      {"v/.squirrel-staging/run-1/" + K, 7, false, true, "another finished run"},
      {"v/.squirrel-staging/fold-probe-\xc3\xa9", 7, false, true, "the fold probe"},
      {"v/.squirrel-staging/fold-probe-x", 1, false, true, "the fold probe, any run"},
      {"v/.squirrel-index/index-20240101T000000.000Z.db", 7, false, true, "snapshot rotation"},
      {"v/.squirrel-staging/volume-marker", 0, true, true, "bootstrap removes the staged marker"},

      {"v/.squirrel-staging/run-7", 7, false, false, "this run's own staging, while it runs"},
      {"v/.squirrel-staging/run-7/" + K, 7, false, false, "this run's own staged file"},
      {"v/.squirrel-staging/run-5", 5, false, true, "this run's own staging, once it has finished"},
      {"v/.squirrel-staging/run-5/" + K, 5, false, false, "this run's own staged file, even once finished"},
      {"v/.squirrel-staging/run-9", 7, false, false, "a running run's staging"},
      {"v/.squirrel-staging/run-9/" + K, 7, false, false, "a running run's staged file"},
      {"v/.squirrel-staging/run-05", 7, false, false, "non-canonical id"},
      {"v/.squirrel-staging/run-0", 7, false, false, "run zero"},
      {"v/.squirrel-staging/run-5/notakey", 7, false, false, "not a key"},
      {"v/.squirrel-staging/run-5/" + std::string(64, 'F'), 7, false, false, "upper-case key"},
      {"v/.squirrel-staging/run-5/" + K + "/x", 7, false, false, "below a key"},
      {"v/.squirrel-staging", 7, false, false, "the whole staging dir"},
      {"v/.squirrel-staging/run-5", 0, false, false, "no run holds the guard"},
      {"v/.squirrel-staging/volume-marker", 7, false, false, "staged marker without bootstrap"},
      {"v/.squirrel-staging/fold-probe-", 7, false, false, "fold probe without a suffix"},
      {"v/.squirrel-staging/fold-probe-x", 0, false, false, "fold probe with no run"},
      {"v/.squirrel-staging/fold-probe-x/y", 7, false, false, "below a fold probe"},
      {"v/.squirrel-index/run-5", 7, false, false, "a receipt"},
      {"v/.squirrel-index/index-a.db", 0, false, false, "snapshot with no run"},
      {"v/.squirrel-index/index-a.db", 0, true, false, "snapshot under bootstrap only"},
      {"v/.squirrel-index", 7, false, false, "the index dir"},
      {"v/.squirrel-history/run-5/a", 7, false, false, "history"},
      {"v/a", 7, false, false, "a live path"},
      {"v/.squirrel-volume", 7, false, false, "the marker"},
      {"v/.squirrel-volume", 0, true, false, "the marker under bootstrap"},
      {"v", 7, false, false, "the volume"},
      {"v/../w/.squirrel-staging/run-5", 7, false, false, "dot-dot"},
      {"/v/.squirrel-staging/run-5", 7, false, false, "absolute"},
      {"v/.squirrel-staging/run-5/", 7, false, false, "trailing slash"},
      {"", 7, false, false, "empty"},
      {"-v/.squirrel-staging/run-5", 7, false, false, "invalid volume"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << c.why << ": " << testing::PrintToString(c.name) << " run " << c.run
                                    << (c.bootstrap ? " bootstrap" : ""));
    auto why = guard_remove(context(c.run, c.bootstrap), c.name);
    EXPECT_EQ(why.empty(), c.allowed) << why;
  }
}

TEST(GuardTable, UnknownRunStatusFailsClosed) {
  GuardContext g{7, false, {}};
  EXPECT_FALSE(guard_remove(g, "v/.squirrel-staging/run-5").empty());
  EXPECT_FALSE(guard_remove(g, "v/.squirrel-staging/run-7").empty()) << "its own staging too";
  GuardContext asked{7, false, [](std::int64_t id) -> bool {
                       if (id == 7) ADD_FAILURE() << "asked about its own staged file";
                       return true;
                     }};
  EXPECT_FALSE(guard_remove(asked, "v/.squirrel-staging/run-7/" + K).empty());
}

TEST(GuardTable, RefusalsSayWhatAndWhy) {
  auto why = guard_rename(context(7, false), "v/a", "v/.squirrel-history/run-8/a");
  EXPECT_NE(why.find("v/a"), std::string::npos) << why;
  EXPECT_NE(why.find("run-7"), std::string::npos) << why;
  why = guard_remove(context(7, false), "v/.squirrel-staging/run-9");
  EXPECT_NE(why.find("run 9 has not finished"), std::string::npos) << why;
  why = guard_remove(context(7, false), std::string("v/\n\0", 4));
  EXPECT_EQ(why.find('\n'), std::string::npos) << "untrusted bytes are escaped";
}

class GuardedTransportTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  fs::path root = dir / "root";
  FaultTransport* counter = nullptr;  // counts what reaches the real transport
  std::unique_ptr<Transport> t;

  void SetUp() override {
    fs::create_directories(root / "v/.squirrel-staging/run-5");
    fs::create_directories(root / "v/.squirrel-staging/run-7");
    std::ofstream(root / "v/a") << "live";
    std::ofstream(root / ("v/.squirrel-staging/run-5/" + K)) << "old";
    std::ofstream(root / ("v/.squirrel-staging/run-7/" + K)) << "new";
    auto inner = std::make_unique<FaultTransport>(open_local_transport(root.string()), FaultPlan{});
    counter = inner.get();
    t = guarded(std::move(inner), context(7, false));
  }

  static int err_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const TransportError& e) {
      return e.err();
    }
    return 0;
  }

  std::vector<std::string> files() {
    std::vector<std::string> out;
    for (auto& e : fs::recursive_directory_iterator(root))
      out.push_back(e.path().string().substr(root.string().size() + 1));
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST_F(GuardedTransportTest, GuardRefusesADisallowedMoveWithoutTouchingAnything) {
  auto before = files();
  EXPECT_EQ(err_of([&] { t->rename("v/a", "v/b"); }), EPERM);
  EXPECT_EQ(err_of([&] { t->rename("v/a", "v/.squirrel-history/run-8/a"); }), EPERM);
  EXPECT_EQ(err_of([&] { t->rename("v/.squirrel-staging/run-5/" + K, "v/b"); }), EPERM);
  EXPECT_EQ(err_of([&] { t->remove("v/a"); }), EPERM);
  EXPECT_EQ(err_of([&] { t->remove("v/.squirrel-staging/run-7/" + K); }), EPERM);
  EXPECT_EQ(counter->calls(), 0) << "a refused call never reaches the transport";
  // Permitted by the guard, refused by the transport: the directory is not empty.
  EXPECT_EQ(err_of([&] { t->remove("v/.squirrel-staging/run-5"); }), ENOTEMPTY);
  EXPECT_EQ(counter->calls(), 1);
  EXPECT_EQ(files(), before);
}

TEST_F(GuardedTransportTest, GuardLetsPermittedMovesThrough) {
  t->rename("v/a", "v/.squirrel-history/run-7/a");
  t->rename("v/.squirrel-staging/run-7/" + K, "v/a");
  t->remove("v/.squirrel-staging/run-5/" + K);
  t->remove("v/.squirrel-staging/run-5");
  t->flush();
  EXPECT_EQ(t->stat("v/.squirrel-history/run-7/a").size, 4);
  EXPECT_EQ(t->stat("v/a").size, 3);
  EXPECT_EQ(t->stat("v/.squirrel-staging/run-5").type, EntryType::none);
  EXPECT_EQ(t->list("v/.squirrel-staging").size(), 1u);
}

}  // namespace
