// Paths longer than a copy can have, and what a walk with errors still
// decides (issue 12 §4): a folder deeper than the limit is refused with one
// clear line instead of "File name too long", and neither it nor any other
// per-file error keeps the index from flagging files missing in every
// folder it did list. Only what lies beneath the unreadable paths is exempt.
#include <dirent.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.hpp"
#include "index_util.hpp"
#include "store/runs.hpp"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using store::RunStatus;

namespace {

const std::string kLevel(200, 'd');  // one folder name; 25 of them make a 5024-byte path
constexpr int kLevels = 25;

// Creates `levels` nested folders under the folder `base` of `root`, one
// openat at a time (no call ever sees the whole path), with a file `name`
// holding `content` in the deepest. Returns its volume-relative path.
std::string make_deep(int root, const std::string& base, int levels, const std::string& name,
                      const std::string& content) {
  int fd = ::openat(root, base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + base);
  std::string rel = base;
  for (int i = 0; i < levels; ++i) {
    if (::mkdirat(fd, kLevel.c_str(), 0755) != 0 && errno != EEXIST) throw std::runtime_error("mkdirat failed");
    int next = ::openat(fd, kLevel.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ::close(fd);
    if (next < 0) throw std::runtime_error("openat failed");
    fd = next;
    rel += "/" + kLevel;
  }
  int f = ::openat(fd, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ::close(fd);
  if (f < 0 || ::write(f, content.data(), content.size()) != static_cast<ssize_t>(content.size()))
    throw std::runtime_error("cannot write the deep file");
  ::close(f);
  return rel + "/" + name;
}

// std::filesystem::remove_all builds full paths and fails past PATH_MAX.
void remove_tree_at(int dir, const char* name) {
  int fd = ::openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    ::unlinkat(dir, name, 0);
    return;
  }
  std::vector<std::string> names;
  if (DIR* d = ::fdopendir(::dup(fd))) {
    while (dirent* e = ::readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") names.push_back(e->d_name);
    ::closedir(d);
  }
  for (const auto& n : names) remove_tree_at(fd, n.c_str());
  ::close(fd);
  ::unlinkat(dir, name, AT_REMOVEDIR);
}

class DeepPaths : public ::testing::Test {
 protected:
  TempDir dir;
  fs::path root = dir / "vol";
  config::Config cfg = volume_config(root);
  std::optional<store::Store> st{open_store(dir)};
  std::vector<std::pair<std::string, std::string>> errors;

  void SetUp() override { fs::create_directories(root / "deep"); }
  void TearDown() override {
    Fd vol = open_root(root);
    remove_tree_at(vol.get(), "deep");
  }

  engine::IndexReport index() {
    errors.clear();
    return engine::run_index(cfg, *st, "v", index_opts(), [this](const engine::IndexEvent& e) {
      if (e.type == engine::IndexEvent::Type::file_error) errors.emplace_back(e.path, e.message);
    });
  }
  std::string status_of(const std::string& path) {
    auto row = store::live_row_by_path(st->db(), volume_id(st->db()), path);
    return row ? row->status : "none";
  }
};

}  // namespace

TEST_F(DeepPaths, AFolderTooDeepToCopyIsRefusedOnceAndMissingFilesAreStillFlagged) {
  write_file(root / "keep", "K");
  write_file(root / "gone", "G");
  write_file(root / "sub/gone-too", "G2");
  Fd vol = open_root(root);
  auto deep_file = make_deep(vol.get(), "deep", kLevels, "bottom", "B");
  auto shallow_file = make_deep(vol.get(), "deep", 3, "middle", "M");  // 3 levels: well within the limit
  ASSERT_GT(deep_file.size(), 4096u);

  auto first = index();
  EXPECT_EQ(first.status, RunStatus::partial);
  ASSERT_EQ(errors.size(), 1u) << "one line for the folder, none for what is beneath it";
  std::string first_too_long = "deep";  // 4 + 21 * 201 bytes: the first folder past 4051 (PATH_MAX for volume "v")
  for (int i = 0; i < 21; ++i) first_too_long += "/" + kLevel;
  EXPECT_EQ(errors[0].first, first_too_long);
  EXPECT_THAT(errors[0].second, HasSubstr("longer than the"));
  EXPECT_THAT(errors[0].second, HasSubstr("shorten it; nothing in it is indexed"));
  EXPECT_EQ(status_of(shallow_file), "present");
  EXPECT_EQ(status_of("keep"), "present");

  fs::remove(root / "gone");
  fs::remove_all(root / "sub");
  auto second = index();
  EXPECT_EQ(second.status, RunStatus::partial);
  EXPECT_EQ(second.missing, 2) << "an error in one folder does not stop missing files elsewhere being flagged";
  EXPECT_EQ(status_of("gone"), "missing");
  EXPECT_EQ(status_of("sub/gone-too"), "missing");
  EXPECT_EQ(status_of(shallow_file), "present");
  EXPECT_THAT(folder_problems(st->db(), volume_id(st->db())), testing::IsEmpty());
}

// A row beneath a path the walk could not look into is not judged: the
// walk does not know whether its file is still there.
TEST_F(DeepPaths, RowsBeneathARefusedFolderAreNeitherFlaggedNorStamped) {
  write_file(root / "keep", "K");
  Fd vol = open_root(root);
  auto deep_file = make_deep(vol.get(), "deep", kLevels, "bottom", "B");
  ASSERT_EQ(index().status, RunStatus::partial);
  // As an index with another limit might have left it.
  auto& db = st->db();
  auto run = store::begin_run(db, {store::RunKind::index, volume_id(db), ""}).run_id;
  store::apply_index_batch(db, volume_id(db), run, {{deep_file, blake3("B"), 1, 1, 1, false, true}});
  store::finish_run(db, run, {RunStatus::success, "", 1, 1});

  auto r = index();
  EXPECT_EQ(r.missing, 0);
  EXPECT_EQ(status_of(deep_file), "present");
  auto last_seen = db.query_i64("SELECT f.last_seen_run_id FROM files f JOIN folders d ON d.id = f.folder_id WHERE "
                                "f.name = ?",
                                {store::blob_of("bottom")});
  EXPECT_EQ(last_seen, run) << "not observed by the later walk";
}
