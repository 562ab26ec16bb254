// The first fifteen minutes (issue 14 §5): from an empty HOME, `squirrel
// init`, edit the two paths it names, `squirrel backup`, and follow every
// printed hint literally until `squirrel status` is green. Also: the
// starter config loads as it is, and init never overwrites a config.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <regex>
#include <sstream>

#include "cli_util.hpp"
#include "config/config.hpp"
#include "config/starter.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using sq::test::CliResult;
using sq::test::CliSandbox;

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from << " is not in the starter config";
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// The command a hint names: the text between the last pair of backticks
// that starts with "squirrel ".
std::vector<std::string> hinted_command(const std::string& text) {
  std::smatch m;
  std::string last;
  for (auto it = text.cbegin(); std::regex_search(it, text.cend(), m, std::regex("`(squirrel [^`]*)`")); it = m[0].second)
    last = m[1];
  std::vector<std::string> argv;
  std::istringstream words(last);
  for (std::string w; words >> w;) argv.push_back(w);
  return argv;
}

TEST(Newcomer, InitEditTwoPathsBackupFollowTheHintsAndStatusIsGreen) {
  CliSandbox sb;
  auto home_config = sb.home() / ".squirrel" / "config.toml";
  auto first = sb.run_bare({"init"});
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("config:      " + home_config.string()));
  EXPECT_THAT(first.out, HasSubstr("database:    " + (sb.home() / ".squirrel" / "index.db").string()));
  auto next = hinted_command(first.out);
  ASSERT_EQ(next, (std::vector<std::string>{"squirrel", "backup", "--init"})) << first.out;

  // The two edits a person makes.
  auto disk = sb.root() / "disk";
  std::string text = sq::test::read_file(home_config);
  text = replaced(text, sq::config::kStarterVolumePath, sb.volume_dir().string());
  text = replaced(text, sq::config::kStarterDestinationRoot, disk.string());
  sq::test::write_file(home_config, text);
  sb.put("letter.txt", "dear squirrel");

  // `squirrel backup` first, as a person would; then every hint, literally.
  CliResult r = sb.run_bare({"backup"});
  for (int step = 0; step < 3 && r.status != 0; ++step) {
    auto hint = hinted_command(r.out + r.err);
    ASSERT_FALSE(hint.empty()) << "a failing step must say what to run\n" << r.out << r.err;
    r = sb.run_bare({hint.begin() + 1, hint.end()});
  }
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  auto status = sb.run_bare({"status"});
  EXPECT_EQ(status.status, 0) << status.out << status.err;
  EXPECT_THAT(status.out, HasSubstr("overall: green"));
  EXPECT_EQ(sq::test::read_file(disk / "documents" / "letter.txt"), "dear squirrel");
}

TEST(Newcomer, TheStarterConfigLoadsAsItIs) {
  sq::test::TempDir dir;
  sq::test::write_file(dir / "config.toml", sq::config::starter_config());
  auto cfg = sq::config::load(dir / "config.toml");
  ASSERT_NE(cfg.volume(sq::config::kStarterVolume), nullptr);
  EXPECT_EQ(cfg.volume(sq::config::kStarterVolume)->sync_to,
            std::vector<std::string>{sq::config::kStarterDestination});
  ASSERT_NE(cfg.destination(sq::config::kStarterDestination), nullptr);
  EXPECT_EQ(cfg.destination(sq::config::kStarterDestination)->type, "local");
}

TEST(Newcomer, InitNeverOverwritesAConfigAndWritesItOwnerOnly) {
  CliSandbox sb;
  auto cfg = sb.root() / "mine.toml";
  ASSERT_EQ(sb.run_bare({"--config", cfg.string(), "init"}).status, 0);
  struct stat st {};
  ASSERT_EQ(::stat(cfg.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  sq::test::write_file(cfg, "# mine\n");
  auto again = sb.run_bare({"--config", cfg.string(), "init"});
  EXPECT_EQ(again.status, 1);
  EXPECT_THAT(again.err, HasSubstr("already exists")) << again.err;
  EXPECT_EQ(sq::test::read_file(cfg), "# mine\n");
}

}  // namespace
