// What the SFTP transport does beyond the transport contract, against a
// real OpenSSH server on loopback: reads ask for exactly the size the file
// had when it was opened, and skipping the look-first lstat in a directory
// the transport made itself never lets it replace what someone else put
// there.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/dest/sftp/sftp.hpp"
#include "engine/sync/mirror.hpp"
#include "sftp_util.hpp"
#include "sshd_util.hpp"
#include "test_util.hpp"

namespace sq::test {
namespace {

namespace fs = std::filesystem;

struct SftpTransportTest : ::testing::Test {
  TempDir dir;
  SshServer server{dir / "sshd"};
  fs::path root = dir / "root";
  std::unique_ptr<dest::Transport> t;

  SftpTransportTest() {
    fs::create_directories(root);
    t = dest::open_sftp_transport(sftp_options_for(server, root.string()));
  }

  void put(const std::string& name, const std::string& text) {
    std::size_t off = 0;
    t->put(name,
           [&](char* buf, std::size_t len) {
             std::size_t n = std::min(len, text.size() - off);
             std::memcpy(buf, text.data() + off, n);
             off += n;
             return n;
           },
           1000000000LL);
  }
  static void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }
  static std::string text_of(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  static std::string drain(dest::Reader& r) {
    std::string out;
    char buf[10000];
    while (std::size_t n = r.read(buf, sizeof buf)) out.append(buf, n);
    return out;
  }
};

TEST_F(SftpTransportTest, AFileThatShrankAfterItWasOpenedIsAnErrorNotAShortCopy) {
  put("f", std::string(300000, 'x'));
  auto r = t->get("f");
  fs::resize_file(root / "f", 100000);
  EXPECT_THROW(drain(*r), dest::TransportError);
}

TEST_F(SftpTransportTest, AFileThatGrewAfterItWasOpenedIsReadAsItWasThen) {
  std::string body(200000, 'y');
  put("f", body);
  auto r = t->get("f");
  std::ofstream(root / "f", std::ios::binary | std::ios::app) << "appended later";
  EXPECT_EQ(r->stat().size, 200000);
  EXPECT_EQ(drain(*r), body);
}

TEST_F(SftpTransportTest, AnEmptyFileReadsAsEmpty) {
  put("empty", "");
  auto r = t->get("empty");
  EXPECT_EQ(drain(*r), "");
}

// The transport made d itself, so it skips looking before it creates a
// name there; someone who replaced d meanwhile still keeps their file.
TEST_F(SftpTransportTest, ANameInADirectoryItMadeIsNeverReplacedIfSomeoneElsePutItThere) {
  t->mkdirs("d");
  fs::remove_all(root / "d");
  fs::create_directory(root / "d");
  write(root / "d" / "x", "theirs");
  write(root / "d" / "y", "theirs too");
  EXPECT_THROW(put("d/x", "ours"), dest::TransportError);
  put("staged", "ours");
  EXPECT_THROW(t->rename("staged", "d/y"), dest::TransportError);
  EXPECT_EQ(text_of(root / "d" / "x"), "theirs");
  EXPECT_EQ(text_of(root / "d" / "y"), "theirs too");
  EXPECT_EQ(text_of(root / "staged"), "ours");
}

// Many copies in one folder are sized from one listing: each size is the
// file's own, and a symlink or a missing name among them still fails.
TEST_F(SftpTransportTest, ReadingManyBackSizesEachFromOneListingAndRefusesWhatIsNotAFile) {
  std::vector<std::string> names;
  for (int i = 0; i < 12; ++i) {
    names.push_back("d/f" + std::to_string(i));
    put(names.back(), std::string(100 + i, 'z'));
  }
  auto rbs = t->read_back_many(names);
  ASSERT_EQ(rbs.size(), names.size());
  for (int i = 0; i < 12; ++i) EXPECT_EQ(rbs[i].bytes, 100 + i) << names[i];
  fs::remove(root / "d" / "f5");
  fs::create_symlink(root / "d" / "f4", root / "d" / "f5");
  try {
    t->read_back_many(names);
    ADD_FAILURE() << "a symlink was read back";
  } catch (const dest::TransportError& e) {
    EXPECT_EQ(e.err(), ELOOP);
  }
  fs::remove(root / "d" / "f5");
  try {
    t->read_back_many(names);
    ADD_FAILURE() << "a missing name was read back";
  } catch (const dest::TransportError& e) {
    EXPECT_EQ(e.err(), ENOENT);
  }
}

// A name it created once is looked at the next time.
TEST_F(SftpTransportTest, ANameItCreatedInADirectoryItMadeIsLookedAtAgain) {
  put("d/x", "first");
  EXPECT_THROW(put("d/x", "second"), dest::TransportError);
  put("d/s", "staged");
  EXPECT_THROW(t->rename("d/s", "d/x"), dest::TransportError);
  EXPECT_EQ(text_of(root / "d" / "x"), "first");
}

}  // namespace
}  // namespace sq::test

namespace sq::test {
namespace {

// `concurrency` is how many files a push keeps in flight; without it, a
// disk gets 4 and an SFTP server, where each file mostly waits for a reply,
// gets 8, as the spec's table of destination keys says.
TEST(MirrorInFlight, ComesFromConcurrencyElseFourOnADiskAndEightOverSftp) {
  config::Destination local, sftp;
  local.type = "local";
  sftp.type = "sftp";
  EXPECT_EQ(engine::sync::default_in_flight(local), 4u);
  EXPECT_EQ(engine::sync::default_in_flight(sftp), 8u);
  local.concurrency = 2;
  sftp.concurrency = 3;
  EXPECT_EQ(engine::sync::default_in_flight(local), 2u);
  EXPECT_EQ(engine::sync::default_in_flight(sftp), 3u);
}

}  // namespace
}  // namespace sq::test
