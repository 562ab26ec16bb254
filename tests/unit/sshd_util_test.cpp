// Proves the fixtures the SFTP transport tests build on: a real sshd on
// loopback that the system ssh and sftp clients reach with the fixture's
// keys and known_hosts files, and a fault proxy whose faults those clients,
// or a bare socket reading sshd's banner, observe. No test asserts on timing.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <optional>
#include <string>

#include "sshd_util.hpp"
#include "test_util.hpp"

using sq::test::ClientOptions;
using sq::test::FaultProxy;
using sq::test::SshServer;
using sq::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) { return sq::test::sshd_detail::read_all(p); }

// Up to `want` bytes from `fd`, fewer if it ends or stays silent for 10 s.
std::string read_up_to(int fd, std::size_t want) {
  std::string got;
  char buf[4096];
  pollfd p{fd, POLLIN, 0};
  while (got.size() < want && poll(&p, 1, 10000) == 1) {
    ssize_t n = read(fd, buf, std::min(sizeof buf, want - got.size()));
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

// True if the next thing `fd` delivers, within 10 s, is the end of the stream.
bool reads_eof(int fd) {
  pollfd p{fd, POLLIN, 0};
  char c;
  return poll(&p, 1, 10000) == 1 && read(fd, &c, 1) == 0;
}

// True if the stream ends within 10 s, whatever it still delivers first.
bool drains_to_eof(int fd) {
  char buf[4096];
  pollfd p{fd, POLLIN, 0};
  while (poll(&p, 1, 10000) == 1) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0) return false;
  }
  return false;
}

// True if nothing arrives for a moment. Only ever expected to hold, so a slow
// machine cannot make it fail; a proxy that leaks bytes makes it fail.
bool stays_silent(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 200) == 0;
}

constexpr const char* kMegabyte = "head -c 1000000 /dev/zero";

}  // namespace

TEST(SshdServer, SystemSshRunsACommandAsTheCurrentUser) {
  TempDir dir;
  SshServer server(dir.path());
  auto r = server.ssh("echo ok");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok\n");
  EXPECT_EQ(server.ssh("id -un").out, server.user() + "\n");
  EXPECT_TRUE(server.root().is_absolute());
  EXPECT_TRUE(fs::is_directory(server.root()));
  EXPECT_TRUE(fs::is_empty(server.root()));
}

TEST(SshdServer, KnownHostsHoldsExactlyTheServedHostKey) {
  TempDir dir;
  SshServer server(dir.path());
  auto host = "[127.0.0.1]:" + std::to_string(server.port());
  // ssh-keyscan asks the running server, so this is the key it serves.
  auto scan = sq::test::run_command({"ssh-keyscan", "-t", "ed25519", "-p", std::to_string(server.port()), "127.0.0.1"},
                                    dir.path());
  ASSERT_EQ(scan.exit_code, 0) << scan.err;
  EXPECT_EQ(slurp(server.known_hosts()), scan.out);
  EXPECT_EQ(slurp(server.known_hosts()).rfind(host + " ssh-ed25519 AAAA", 0), 0u);

  auto wrong = slurp(server.wrong_known_hosts());
  EXPECT_EQ(wrong.rfind(host + " ssh-ed25519 AAAA", 0), 0u);
  EXPECT_NE(wrong, scan.out);
  EXPECT_TRUE(fs::exists(server.empty_known_hosts()));
  EXPECT_EQ(fs::file_size(server.empty_known_hosts()), 0u);

  EXPECT_EQ(server.host_key_fingerprint().rfind("SHA256:", 0), 0u);
  auto listed = sq::test::run_command({"ssh-keygen", "-lf", server.known_hosts().string()}, dir.path());
  EXPECT_NE(listed.out.find(" " + server.host_key_fingerprint() + " "), std::string::npos) << listed.out;
}

TEST(SshdServer, RefusesAChangedOrUnknownHostKey) {
  TempDir dir;
  SshServer server(dir.path());
  auto changed = server.ssh("echo ok", {.known_hosts = server.wrong_known_hosts()});
  EXPECT_EQ(changed.exit_code, 255);
  EXPECT_EQ(changed.out, "");
  EXPECT_NE(changed.err.find("REMOTE HOST IDENTIFICATION HAS CHANGED"), std::string::npos) << changed.err;
  auto unknown = server.ssh("echo ok", {.known_hosts = server.empty_known_hosts()});
  EXPECT_EQ(unknown.exit_code, 255);
  EXPECT_EQ(unknown.out, "");
  EXPECT_NE(unknown.err.find("Host key verification failed"), std::string::npos) << unknown.err;
}

TEST(SshdServer, PassphraseKeyIsEncryptedWithSesameAndAuthorized) {
  TempDir dir;
  SshServer server(dir.path());
  auto key = server.passphrase_key().string();
  EXPECT_NE(sq::test::run_command({"ssh-keygen", "-y", "-P", "", "-f", key}, dir.path()).exit_code, 0);
  EXPECT_EQ(server.ssh("echo ok", {.identity = server.passphrase_key()}).exit_code, 255);  // BatchMode cannot ask

  // A decrypted copy logs in, so the key itself is authorized.
  auto plain = dir / "decrypted_key";
  fs::copy_file(key, plain);
  auto p = sq::test::run_command({"ssh-keygen", "-q", "-p", "-P", "sesame", "-N", "", "-f", plain.string()},
                                 dir.path());
  ASSERT_EQ(p.exit_code, 0) << p.err;
  auto r = server.ssh("echo ok", {.identity = plain});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok\n");
}

TEST(SshdServer, SftpOnlyServesSftpButNoCommands) {
  TempDir dir;
  SshServer server(dir.path(), {.sftp_only = true});
  auto cmd = server.ssh("echo ok");  // OpenSSH 9.2 answers "This service allows sftp connections only."
  EXPECT_NE(cmd.exit_code, 0);
  EXPECT_EQ(cmd.out.find("ok"), std::string::npos) << cmd.out;

  auto local = dir / "local.txt";
  sq::test::sshd_detail::write_all(local, "hello");
  auto r = server.sftp("pwd\nput " + local.string() + " " + (server.root() / "x.txt").string() + "\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Remote working directory: /"), std::string::npos) << r.out;
  EXPECT_EQ(slurp(server.root() / "x.txt"), "hello");
}

TEST(SshdServer, DestructorEndsSshdAndItsConnections) {
  TempDir dir;
  pid_t listener = 0;
  std::vector<sq::test::ProcessRecord> connection;
  int held = -1;
  {
    SshServer server(dir.path());
    listener = server.pid();
    ASSERT_GT(listener, 0);
    // A connection that never gets past the banner keeps its sshd process
    // alive for the login grace time (two minutes), long after the listener.
    held = sq::test::connect_loopback(server.port());
    ASSERT_GE(held, 0);
    EXPECT_EQ(read_up_to(held, 8), "SSH-2.0-");
    connection = sq::test::process_tree(listener);
    ASSERT_FALSE(connection.empty());
  }
  EXPECT_EQ(kill(listener, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  for (const auto& p : connection) EXPECT_FALSE(sq::test::still_running(p)) << "pid " << p.pid;
  EXPECT_TRUE(drains_to_eof(held));  // the rest of the banner, then the end
  close(held);
}

TEST(SshdProxy, PassModeCarriesSsh) {
  TempDir dir;
  SshServer server(dir.path());
  FaultProxy proxy(server.port());
  auto r = server.ssh("echo ok", {.port = proxy.port()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok\n");
  EXPECT_EQ(proxy.connections(), 1);
}

TEST(SshdProxy, CloseAtAcceptFailsTheHandshake) {
  TempDir dir;
  SshServer server(dir.path());
  FaultProxy proxy(server.port(), FaultProxy::Mode::close_at_accept);
  auto r = server.ssh("echo ok", {.port = proxy.port()});
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_EQ(r.out, "");
  int fd = sq::test::connect_loopback(proxy.port());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(reads_eof(fd));  // not a byte of the banner
  close(fd);
  EXPECT_EQ(proxy.connections(), 2);
}

TEST(SshdProxy, DropAfterCutsATransferAndSetModeAppliesToNewConnections) {
  TempDir dir;
  SshServer server(dir.path());
  FaultProxy proxy(server.port());
  auto whole = server.ssh(kMegabyte, {.port = proxy.port()});
  EXPECT_EQ(whole.exit_code, 0) << whole.err;
  EXPECT_EQ(whole.out.size(), 1000000u);

  proxy.set_mode(FaultProxy::Mode::drop_after, 2000);
  auto cut = server.ssh(kMegabyte, {.port = proxy.port()});
  EXPECT_EQ(cut.exit_code, 255);
  EXPECT_LT(cut.out.size(), 1000000u);

  // Exactly after_bytes pass, then the connection ends.
  proxy.set_mode(FaultProxy::Mode::drop_after, 4);
  int fd = sq::test::connect_loopback(proxy.port());
  ASSERT_GE(fd, 0);
  EXPECT_EQ(read_up_to(fd, 100), "SSH-");
  close(fd);
  EXPECT_EQ(proxy.connections(), 3);
}

TEST(SshdProxy, StallAfterHoldsTheConnectionUntilReleaseOrDestruction) {
  TempDir dir;
  SshServer server(dir.path());
  std::optional<FaultProxy> proxy(std::in_place, server.port(), FaultProxy::Mode::stall_after, 4);
  int first = sq::test::connect_loopback(proxy->port());
  ASSERT_GE(first, 0);
  EXPECT_EQ(read_up_to(first, 4), "SSH-");
  EXPECT_TRUE(stays_silent(first));  // open, but nothing more comes
  proxy->release();
  EXPECT_TRUE(reads_eof(first));
  close(first);

  int second = sq::test::connect_loopback(proxy->port());  // accepted after release(): stalls again
  ASSERT_GE(second, 0);
  EXPECT_EQ(read_up_to(second, 4), "SSH-");
  EXPECT_TRUE(stays_silent(second));
  proxy.reset();  // must not wait for a release that never comes
  EXPECT_TRUE(reads_eof(second));
  close(second);
}

TEST(SshdProxy, TrickleDeliversEverything) {
  TempDir dir;
  SshServer server(dir.path());
  FaultProxy proxy(server.port(), FaultProxy::Mode::trickle);
  auto r = server.ssh("head -c 30000 /dev/zero", {.port = proxy.port()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, std::string(30000, '\0'));
}
