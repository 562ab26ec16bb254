// Layouts that eat themselves and copies that live in memory, end to end
// through the real binary: a destination inside its volume, nesting hidden
// by a symlink, a destination on tmpfs (/dev/shm, no mount needed), a
// destination sharing the volume's disk, and `destination check`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/statfs.h>

#include <string>
#include <vector>

#include "loop_util.hpp"

namespace {

namespace fs = std::filesystem;
using sq::test::LoopSandbox;
using sq::test::user_files;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::uint32_t kTmpfsMagic = 0x01021994;

// A directory on /dev/shm (a tmpfs) that removes itself.
class ShmDir {
 public:
  ShmDir() {
    struct statfs sf {};
    if (::statfs("/dev/shm", &sf) != 0 || static_cast<std::uint32_t>(sf.f_type) != kTmpfsMagic)
      throw std::runtime_error("these tests need /dev/shm to be a tmpfs");
    std::string tmpl = "/dev/shm/squirrel-layout-test-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed under /dev/shm");
    path_ = tmpl;
  }
  ~ShmDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ShmDir(const ShmDir&) = delete;
  ShmDir& operator=(const ShmDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

class LayoutCli : public ::testing::Test {
 protected:
  LoopSandbox sb;

  // photos → usb (sync_to and offload_requires) with usb's root at `root`,
  // plus any extra TOML after it; `volume_keys` go into [volumes.photos].
  void configure_root(const fs::path& root, const std::string& extra = "", const std::string& volume_keys = "") {
    sb.write_config_raw("[volumes.photos]\npath = \"" + sb.volume_dir().string() +
                        "\"\nsync_to = [\"usb\"]\noffload_requires = [\"usb\"]\n" + volume_keys +
                        "\n[destinations.usb]\ntype = \"local\"\nroot = \"" + root.string() + "\"\n" + extra);
  }
  // The one "Error: " line of a failed command.
  std::string one_error(const sq::test::CliResult& r) {
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    auto lines = r.error_lines();
    EXPECT_EQ(lines.size(), 1u) << r.err;
    return lines.empty() ? "" : lines.front();
  }
  nlohmann::json last_run(const std::string& kind) {
    auto runs = sb.runs();
    for (auto it = runs.rbegin(); it != runs.rend(); ++it)
      if (it->at("kind") == kind) return *it;
    return nlohmann::json::object();
  }
  const nlohmann::json& target(const nlohmann::json& status, const std::string& name) {
    for (const auto& t : status.at("volumes")[0].at("targets"))
      if (t.at("name") == name) return t;
    throw std::runtime_error("no target " + name + " in " + status.dump());
  }
};

// ---- containment ------------------------------------------------------------------

TEST_F(LayoutCli, ADestinationInsideTheVolumeIsRefusedWhenTheConfigLoads) {
  sb.put("a.txt", "alpha");
  configure_root(sb.volume_dir() / "backup");
  for (auto args : std::vector<std::vector<std::string>>{{"index", "photos"}, {"sync", "--init"}, {"config", "check"}}) {
    auto line = one_error(sb.run(args));
    EXPECT_THAT(line, HasSubstr("destinations.usb.root"));
    EXPECT_THAT(line, HasSubstr((sb.volume_dir() / "backup").string()));
    EXPECT_THAT(line, HasSubstr("volume \"photos\" (" + sb.volume_dir().string() + ")"));
  }
  EXPECT_FALSE(fs::exists(sb.db_path()));
  EXPECT_FALSE(fs::exists(sb.marker()));
  EXPECT_FALSE(fs::exists(sb.volume_dir() / "backup"));
}

// The config strings look apart; on disk the root is a folder of the volume.
TEST_F(LayoutCli, ASymlinkHidingTheDestinationInsideTheVolumeIsRefusedAtRunTime) {
  sb.put("a.txt", "alpha");
  fs::create_directory_symlink(sb.volume_dir(), sb.root() / "outside");
  sb.ok({"index", "photos"});  // with a sound destination first
  auto marker_before = sq::test::read_file(sb.marker());
  configure_root(sb.root() / "outside" / "backup");
  auto line = one_error(sb.run({"sync", "--init"}));
  EXPECT_THAT(line, HasSubstr("destination \"usb\" root " + (sb.root() / "outside/backup").string() + " (really " +
                              (fs::canonical(sb.volume_dir()) / "backup").string() + ")"));
  EXPECT_THAT(line, HasSubstr("inside volume \"photos\" (" + sb.volume_dir().string() +
                              ") on disk (through a symlink or a mount) — "));
  EXPECT_FALSE(fs::exists(sb.volume_dir() / "backup"));
  EXPECT_EQ(last_run("sync").at("status"), "refused");
  // Every command that touches the volume refuses the same way.
  EXPECT_THAT(one_error(sb.run({"index", "photos"})), HasSubstr("inside volume \"photos\""));
  EXPECT_THAT(one_error(sb.run({"offload", "photos", "."})), HasSubstr("inside volume \"photos\""));
  EXPECT_EQ(sq::test::read_file(sb.marker()), marker_before);
  EXPECT_EQ(user_files(sb.volume_dir()).size(), 1u);
  // config check and destination check name it too.
  auto check = sb.run({"config", "check"});
  EXPECT_EQ(check.status, 1);
  EXPECT_THAT(check.out, HasSubstr("FAIL  usb  destination \"usb\" root"));
  auto dest = sb.run({"destination", "check", "usb"});
  EXPECT_EQ(dest.status, 1);
  EXPECT_THAT(dest.out, HasSubstr("FAIL  layout"));
}

TEST_F(LayoutCli, ASymlinkHidingNestedVolumesIsRefusedAtRunTime) {
  sb.put("sub/a.txt", "alpha");
  fs::create_directory_symlink(sb.volume_dir(), sb.root() / "alias");
  sb.write_config_raw("[volumes.photos]\npath = \"" + sb.volume_dir().string() + "\"\n[volumes.inner]\npath = \"" +
                      (sb.root() / "alias/sub").string() + "\"\n");
  for (const char* volume : {"inner", "photos"}) {
    auto line = one_error(sb.run({"index", volume}));
    EXPECT_THAT(line, HasSubstr("volume \"inner\" (" + (sb.root() / "alias/sub").string() + " (really "));
    EXPECT_THAT(line, HasSubstr("is inside volume \"photos\""));
  }
  EXPECT_FALSE(fs::exists(sb.volume_dir() / "sub/.squirrel-volume"));
  EXPECT_FALSE(fs::exists(sb.marker()));
}

// ---- a copy in memory is not a durable copy ---------------------------------------

TEST_F(LayoutCli, SyncInitOntoTmpfsIsRefusedWithoutTheExplicitOptIn) {
  ShmDir shm;
  sb.put("a.txt", "alpha");
  configure_root(shm.path() / "dest");
  sb.ok({"index", "photos"});
  auto line = one_error(sb.run({"sync", "--init"}));
  EXPECT_THAT(line, HasSubstr("is on tmpfs, which does not survive a reboot"));
  EXPECT_THAT(line, HasSubstr("--allow-volatile"));
  EXPECT_FALSE(fs::exists(shm.path() / "dest"));
  EXPECT_EQ(last_run("sync").at("status"), "refused");
  // The opt-in belongs to --init only.
  EXPECT_THAT(one_error(sb.run({"sync", "--allow-volatile"})), HasSubstr("--init"));
}

// Evidence age is off, so only the evidence itself can stop the offload.
TEST_F(LayoutCli, CopiesOnTmpfsNeverCountAsDurableEvenWhenAllowed) {
  ShmDir shm;
  sb.put("a.txt", "alpha");
  configure_root(shm.path() / "dest", "", "offload_max_evidence_age = \"off\"\n");
  sb.ok({"index", "photos"});
  auto r = sb.run({"sync", "--init", "--allow-volatile", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto synced = nlohmann::json::parse(r.out);
  EXPECT_EQ(synced[0].at("status"), "success");
  EXPECT_EQ(synced[0].at("method"), "presence+size");
  EXPECT_EQ(synced[0].at("volatile_fs"), "tmpfs");
  EXPECT_THAT(r.err, HasSubstr("never count as durable"));
  sb.ok({"verify", "usb", "--full"});  // a clean read-back from memory proves nothing durable either
  auto status = sb.json({"status", "photos"}, 2);
  const auto& usb = target(status, "usb");
  EXPECT_EQ(usb.at("durable"), false);
  EXPECT_EQ(usb.at("volatile_fs"), "tmpfs");
  EXPECT_EQ(usb.at("light"), "red");
  EXPECT_EQ(usb.at("evidence").at("methods"), nlohmann::json::array({"presence+size"}));
  EXPECT_EQ(status.at("volumes")[0].at("offload").at("ready_files"), 0);
  auto off = sb.run({"offload", "photos", ".", "--json"});
  EXPECT_EQ(sq::test::read_file(sb.vol("a.txt")), "alpha") << off.out << off.err;
}

// A disk that is not mounted leaves its mount point, often on tmpfs; the
// config string is the same, the place is not.
TEST_F(LayoutCli, AnUnmountedDiskWhoseMountPointIsOnTmpfsIsNotDurable) {
  ShmDir shm;
  sb.put("a.txt", "alpha");
  fs::create_directories(sb.root() / "disk");
  fs::create_directory_symlink(sb.root() / "disk", sb.root() / "media");
  configure_root(sb.root() / "media" / "usb");
  sb.ok({"index", "photos"});
  sb.ok({"sync", "--init"});
  EXPECT_EQ(target(sb.json({"status", "photos"}), "usb").at("durable"), true);
  fs::remove(sb.root() / "media");
  fs::create_directory_symlink(shm.path(), sb.root() / "media");  // "unmounted"
  auto status = sb.json({"status", "photos"}, 2);
  EXPECT_EQ(target(status, "usb").at("durable"), false);
  EXPECT_EQ(target(status, "usb").at("volatile_fs"), "tmpfs");
  EXPECT_EQ(status.at("volumes")[0].at("offload").at("ready_files"), 0);
  EXPECT_THAT(one_error(sb.run({"sync", "--init"})), HasSubstr("if a disk belongs there, mount it"));
  EXPECT_FALSE(fs::exists(shm.path() / "usb"));
}

TEST_F(LayoutCli, ADestinationOnTheVolumesDiskIsAWarningThatKeepsTheLight) {
  sb.put("a.txt", "alpha");
  sb.ok({"index", "photos"});
  sb.ok({"sync", "--init"});
  auto status = sb.json({"status", "photos"});
  EXPECT_EQ(status.at("overall"), "green");
  auto warnings = target(status, "usb").at("warnings");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0].get<std::string>(), HasSubstr("survive a deleted file but not a dead disk"));
  EXPECT_THAT(sb.ok({"status", "photos"}).out, HasSubstr("  warning: usb is on the same filesystem"));
  auto check = sb.ok({"config", "check"});
  EXPECT_THAT(check.out, HasSubstr("layout (1)\n  warn  usb  is on the same filesystem"));
  EXPECT_THAT(check.out, HasSubstr("as volume \"photos\""));
}

TEST_F(LayoutCli, ConfigCheckWarnsAboutATmpfsRoot) {
  ShmDir shm;
  configure_root(shm.path() / "dest");
  auto check = sb.ok({"config", "check"});
  EXPECT_THAT(check.out, HasSubstr("warn  usb  root " + (shm.path() / "dest").string() + " is on tmpfs"));
  EXPECT_THAT(check.out, Not(HasSubstr("same filesystem")));
}

// ---- destination check ------------------------------------------------------------

TEST_F(LayoutCli, DestinationCheckOfASyncedDestination) {
  sb.put("a.txt", std::string(300, 'a'));
  sb.put("b.txt", std::string(600, 'b'));
  EXPECT_THAT(sb.ok({"destination", "check", "usb"}).out, HasSubstr("nothing that syncs here is indexed yet\n"));
  sb.ok({"index", "photos"});
  auto before = sb.json({"destination", "check", "usb"});
  EXPECT_EQ(before.at("ok"), true);
  std::map<std::string, nlohmann::json> by_check;
  for (const auto& f : before.at("findings")) by_check[f.at("check")] = f;
  EXPECT_EQ(by_check.at("reachable").at("level"), "warn");  // not created yet
  EXPECT_THAT(by_check.at("free-space").at("detail").get<std::string>(), HasSubstr("writes about 900 B"));
  EXPECT_EQ(by_check.count("marker"), 0u);  // nothing to look at before the root exists
  sb.ok({"sync", "--init"});
  auto r = sb.ok({"destination", "check", "usb"});
  EXPECT_THAT(r.out, HasSubstr("ok    reachable   root " + sb.dest_root().string() + " is a directory\n"));
  EXPECT_THAT(r.out, HasSubstr("ok    filesystem  "));
  EXPECT_THAT(r.out, HasSubstr("warn  same-disk   on the same filesystem"));
  EXPECT_THAT(r.out, HasSubstr("ok    free-space  "));
  EXPECT_THAT(r.out, HasSubstr("the next sync writes about 0 B\n"));
  EXPECT_THAT(r.out, HasSubstr("ok    marker      " + (sb.vdest() / ".squirrel-volume").string() + " names \"photos\""));
  EXPECT_THAT(r.out, HasSubstr("usb: 0 problem(s), 1 warning(s)\n"));
}

TEST_F(LayoutCli, DestinationCheckFindsAMissingMarkerAndAMissingRoot) {
  sb.put("a.txt", "alpha");
  sb.ok({"index", "photos"});
  sb.ok({"sync", "--init"});
  fs::remove(sb.vdest() / ".squirrel-volume");
  auto r = sb.run({"destination", "check", "usb"});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.out, HasSubstr("FAIL  marker      " + (sb.vdest() / ".squirrel-volume").string() +
                               " is missing although \"photos\" was synced here — is the right disk mounted?\n"));
  fs::rename(sb.dest_root(), sb.root() / "elsewhere");
  r = sb.run({"destination", "check", "usb"});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.out, HasSubstr("FAIL  reachable   root " + sb.dest_root().string() + " does not exist"));
  EXPECT_THAT(r.out, Not(HasSubstr("marker")));
}

TEST_F(LayoutCli, DestinationCheckOfATmpfsRootIsAProblem) {
  ShmDir shm;
  configure_root(shm.path() / "dest");
  auto r = sb.run({"destination", "check", "usb", "--json"});
  EXPECT_EQ(r.status, 1);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("ok"), false);
  bool flagged = false;
  for (const auto& f : j.at("findings"))
    flagged |= f.at("check") == "filesystem" && f.at("level") == "FAIL" &&
               f.at("detail").get<std::string>().find("tmpfs") != std::string::npos;
  EXPECT_TRUE(flagged) << j.dump(2);
}

TEST_F(LayoutCli, DestinationCheckOfAnUnknownOrRemoteDestination) {
  // sftp mirrors are examined on their server (destination_check_sftp_test.cpp); s3 is not yet.
  configure_root(sb.root() / "dest",
                 "[destinations.box]\ntype = \"s3\"\nroot = \"r\"\nprovider = \"AWS\"\nbucket = \"b\"\n");
  EXPECT_THAT(one_error(sb.run({"destination", "check", "nope"})), HasSubstr("unknown destination \"nope\""));
  auto r = sb.ok({"destination", "check", "box"});
  EXPECT_THAT(r.out, HasSubstr("warn  transport   a s3 destination cannot be examined by this squirrel yet"));
}

// Through the binary: a restore without the index says what it read — the
// destination's objects and packs, checked against its segments.
TEST(PackedCli, ARestoreWithoutTheIndexNamesPacksAndSegments) {
  LoopSandbox s;
  s.write_config_raw("[volumes.photos]\npath = \"" + s.volume_dir().string() +
                     "\"\nsync_to = [\"usb\"]\n\n[destinations.usb]\ntype = \"local\"\nlayout = \"packed\"\n"
                     "pack_threshold = \"1KiB\"\nroot = \"" + s.dest_root().string() + "\"\n");
  s.put("a.txt", "alpha");
  s.put("big.bin", std::string(5000, 'B'));
  s.ok({"index", "photos"});
  s.ok({"sync", "photos", "--to", "usb", "--init"});
  fs::remove(s.db_path());
  auto out = s.root() / "out";
  auto r = s.ok({"restore", "photos", "--to", out.string()});
  EXPECT_NE(r.err.find("restored from the destination's objects and packs, checked against 1 segment(s)"),
            std::string::npos) << r.err;
  EXPECT_EQ(sq::test::read_file(out / "a.txt"), "alpha");
  EXPECT_EQ(sq::test::read_file(out / "big.bin"), std::string(5000, 'B'));
}

}  // namespace
