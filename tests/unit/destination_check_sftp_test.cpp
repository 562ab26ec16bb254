// `squirrel destination check` of an sftp mirror, end to end: the real
// binary against a real OpenSSH server on loopback (SshServer). Each refusal
// (unknown or changed host key, a passphrase key, a missing root, a closed
// port) is a FAIL on its own line, and nothing after a refused host key is
// attempted. No test asserts on timing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "loop_util.hpp"
#include "sshd_util.hpp"
#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using sq::test::LoopSandbox;
using sq::test::SshServer;
using sq::test::SshServerOptions;
using sq::test::TempDir;
using ::testing::HasSubstr;

struct Finding {
  std::string level, detail;
};

class DestinationCheckSftp : public ::testing::Test {
 protected:
  TempDir server_dir;
  LoopSandbox sb;

  // photos syncs to "box", an sftp mirror at `root` on 127.0.0.1:port.
  void configure(int port, const std::string& user, const fs::path& root, const fs::path& key,
                 const fs::path& known_hosts) {
    sb.write_config_raw("[volumes.photos]\npath = \"" + sb.volume_dir().string() +
                        "\"\nsync_to = [\"box\"]\n\n[destinations.box]\ntype = \"sftp\"\nhost = \"127.0.0.1\"\n"
                        "port = " + std::to_string(port) + "\nuser = \"" + user + "\"\nroot = \"" + root.string() +
                        "\"\nkey_file = \"" + key.string() + "\"\nknown_hosts_file = \"" + known_hosts.string() +
                        "\"\n");
  }
  void configure(const SshServer& s, const fs::path& known_hosts, const fs::path& key = {},
                 const fs::path& root = {}) {
    configure(s.port(), s.user(), root.empty() ? s.root() : root, key.empty() ? s.client_key() : key, known_hosts);
  }

  // `destination check box --json` (expecting exit status `want`): check
  // name → finding, and the names in the order printed.
  std::map<std::string, Finding> check(int want, std::vector<std::string>* order = nullptr) {
    auto j = sb.json({"destination", "check", "box"}, want);
    std::map<std::string, Finding> out;
    for (const auto& f : j.value("findings", nlohmann::json::array())) {
      auto name = f.at("check").get<std::string>();
      EXPECT_EQ(out.count(name), 0u) << "two findings named " << name << ": " << j.dump(2);
      out[name] = {f.at("level").get<std::string>(), f.at("detail").get<std::string>()};
      if (order) order->push_back(name);
    }
    EXPECT_EQ(j.value("ok", want == 0), want == 0) << j.dump(2);
    return out;
  }
};

TEST_F(DestinationCheckSftp, TrustedServerWithAShellIsOkThroughout) {
  SshServer s(server_dir / "sshd");
  configure(s, s.known_hosts());
  sb.put("a.txt", "alpha");
  sb.ok({"index", "photos"});
  sb.ok({"sync", "photos", "--to", "box", "--init"});
  auto before = sq::test::snapshot_tree(s.root());
  std::vector<std::string> order;
  auto f = check(0, &order);
  EXPECT_EQ(order, (std::vector<std::string>{"reachable", "host-key", "login", "extensions", "server-hash",
                                             "free-space", "root", "marker"}));
  for (const auto& [name, finding] : f) EXPECT_EQ(finding.level, "ok") << name << ": " << finding.detail;
  EXPECT_THAT(f["reachable"].detail, HasSubstr(s.user() + "@127.0.0.1:" + std::to_string(s.port())));
  EXPECT_THAT(f["host-key"].detail, HasSubstr(s.host_key_fingerprint() + " (ssh-ed25519) is trusted by " +
                                              s.known_hosts().string()));
  EXPECT_THAT(f["extensions"].detail, HasSubstr("fsync@openssh.com"));
  EXPECT_EQ(f["server-hash"].detail, "b3sum works");
  EXPECT_THAT(f["free-space"].detail, HasSubstr("the next sync writes about 0 B"));
  EXPECT_THAT(f["marker"].detail, HasSubstr((s.root() / "photos" / ".squirrel-volume").string() + " names \"photos\""));
  auto text = sb.ok({"destination", "check", "box"});
  EXPECT_THAT(text.out, HasSubstr("ok    server-hash  b3sum works\n"));
  EXPECT_THAT(text.out, HasSubstr("box: no problems found\n"));
  EXPECT_EQ(sq::test::snapshot_tree(s.root()), before) << "destination check changed the server's files";
}

TEST_F(DestinationCheckSftp, UnknownHostKeyFailsBeforeAnyLogin) {
  SshServer s(server_dir / "sshd");
  configure(s, s.empty_known_hosts());
  std::vector<std::string> order;
  auto f = check(1, &order);
  EXPECT_EQ(order, (std::vector<std::string>{"reachable", "host-key"}));  // no login attempted
  EXPECT_EQ(f["reachable"].level, "ok");
  EXPECT_EQ(f["host-key"].level, "FAIL");
  EXPECT_THAT(f["host-key"].detail, HasSubstr("not trusted yet"));
  EXPECT_THAT(f["host-key"].detail, HasSubstr(s.host_key_fingerprint()));
  EXPECT_THAT(f["host-key"].detail, HasSubstr("[127.0.0.1]:" + std::to_string(s.port()) + " ssh-ed25519 "));
}

TEST_F(DestinationCheckSftp, ChangedHostKeyFails) {
  SshServer s(server_dir / "sshd");
  configure(s, s.wrong_known_hosts());
  std::vector<std::string> order;
  auto f = check(1, &order);
  EXPECT_EQ(order, (std::vector<std::string>{"reachable", "host-key"}));
  EXPECT_EQ(f["host-key"].level, "FAIL");
  EXPECT_THAT(f["host-key"].detail, HasSubstr("CHANGED"));
  EXPECT_THAT(f["host-key"].detail, HasSubstr(s.host_key_fingerprint()));
}

TEST_F(DestinationCheckSftp, SftpOnlyServerWarnsThatNoServerHashWorks) {
  SshServer s(server_dir / "sshd", SshServerOptions{.sftp_only = true});
  configure(s, s.known_hosts());
  auto f = check(0);  // warnings only
  EXPECT_EQ(f["login"].level, "ok");
  EXPECT_EQ(f["server-hash"].level, "warn");
  EXPECT_THAT(f["server-hash"].detail, HasSubstr("`squirrel verify box --download --full`"));
  EXPECT_EQ(f["root"].level, "ok");
  EXPECT_EQ(f["marker"].level, "warn");  // never synced: the first sync writes it
  EXPECT_THAT(f["marker"].detail, HasSubstr("has no copies here yet"));
}

TEST_F(DestinationCheckSftp, MissingRootFailsAndIsNotCreated) {
  SshServer s(server_dir / "sshd");
  auto root = s.root() / "absent";
  configure(s, s.known_hosts(), {}, root);
  auto f = check(1);
  EXPECT_EQ(f["login"].level, "ok");
  EXPECT_EQ(f["root"].level, "FAIL");
  EXPECT_THAT(f["root"].detail, HasSubstr("does not exist on the server"));
  EXPECT_THAT(f["root"].detail, HasSubstr("--to box --init"));
  EXPECT_EQ(f.count("marker"), 0u);
  EXPECT_FALSE(fs::exists(root));
}

TEST_F(DestinationCheckSftp, PassphraseKeyFailsTheLoginPointingAtSshAgent) {
  SshServer s(server_dir / "sshd");
  configure(s, s.known_hosts(), s.passphrase_key());
  std::vector<std::string> order;
  auto f = check(1, &order);
  EXPECT_EQ(order, (std::vector<std::string>{"reachable", "host-key", "login"}));
  EXPECT_EQ(f["host-key"].level, "ok");
  EXPECT_EQ(f["login"].level, "FAIL");
  EXPECT_THAT(f["login"].detail, HasSubstr("ssh-agent"));
}

TEST_F(DestinationCheckSftp, ClosedPortIsUnreachable) {
  int port = sq::test::sshd_detail::free_loopback_port();  // bound, then closed: nothing listens
  configure(port, "nobody", "/srv/backup", server_dir / "no_key", server_dir / "known_hosts");
  auto r = sb.run({"destination", "check", "box"});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("FAIL  reachable   cannot connect to nobody@127.0.0.1:" + std::to_string(port)));
  EXPECT_THAT(r.out, HasSubstr("box: 1 problem(s), 0 warning(s)\n"));
}

}  // namespace
