// What the SFTP transport does beyond the transport contract, against a
// real OpenSSH server on loopback: reads ask for exactly the size the file
// had when it was opened, and skipping the look-first lstat in a directory
// the transport made itself never lets it replace what someone else put
// there.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "engine/dest/sftp/sftp.hpp"
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
