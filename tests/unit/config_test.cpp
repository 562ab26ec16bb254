// The strict config loader: every documented key loads with its value or
// default, and every kind of mistake is a one-line ErrorKind::config error
// that names the file, the line and the key.
#include "config/config.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/error.hpp"

namespace fs = std::filesystem;
using sq::Error;
using sq::ErrorKind;
namespace config = sq::config;

namespace {

constexpr std::int64_t kSecond = 1000000000LL;
const std::string kPin = "sha256:" + std::string(64, 'a');

// Restores an environment variable when the test ends, so tests cannot leak
// secrets or HOME into each other.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      setenv(name, value->c_str(), 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_.c_str(), old_->c_str(), 1);
    else
      unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "squirrel-config-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir = tmpl;
    fs::create_directories(dir / "home");
    home = std::make_unique<ScopedEnv>("HOME", (dir / "home").string());
  }
  void TearDown() override {
    home.reset();
    std::error_code ec;
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir, ec);
  }

  fs::path write(const std::string& text, const std::string& name = "config.toml") {
    fs::path file = dir / name;
    std::ofstream(file) << text;
    return file;
  }
  config::Config load(const std::string& text) { return config::load(write(text)); }

  // Loads text that must fail, and returns the message after checking that it
  // is a one-line config error pointing at `needle`'s line and naming `key`.
  std::string expect_error(const std::string& text, const std::string& needle, const std::string& key) {
    try {
      load(text);
    } catch (const Error& e) {
      std::string message = e.what();
      EXPECT_EQ(e.kind(), ErrorKind::config) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
      EXPECT_NE(message.find(" — "), std::string::npos) << "no advice in: " << message;
      std::string where = (dir / "config.toml").string() + ":" + std::to_string(line_of(text, needle)) + ":";
      EXPECT_EQ(message.rfind(where, 0), 0u) << "expected " << where << " at the start of: " << message;
      EXPECT_NE(message.find(key), std::string::npos) << "expected " << key << " in: " << message;
      return message;
    }
    ADD_FAILURE() << "config loaded but should have failed on " << key;
    return "";
  }

  static int line_of(const std::string& text, const std::string& needle) {
    auto at = text.find(needle);
    EXPECT_NE(at, std::string::npos) << needle;
    return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
  }

  fs::path dir;
  std::unique_ptr<ScopedEnv> home;
};

// A volume and a local destination: the smallest config most tests extend.
const std::string kBase = R"(
[volumes.photos]
path = "/data/photos"
sync_to = ["nas"]

[destinations.nas]
type = "local"
root = "/mnt/nas"
)";

const std::string kFull = R"(
db = "~/sq/index.db"
node_name = "laptop"

[volumes.photos]
path = "~/Pictures/"
sync_to = ["nas", "box", "peer"]
sync_every = "6h"
index_every = "90m"
offload_requires = ["nas", "box"]
offload_max_evidence_age = "14d"

[volumes.photos.hook]
command = ["/usr/bin/notify-send", "photos changed"]
timeout = "5m"
interval = "1h"

[volumes.docs]
path = "rel/docs"

[destinations.nas]
type = "local"
root = "~/mnt/nas/"
layout = "content-addressed"
concurrency = 4
verify_every = "7d"

[destinations.box]
type = "sftp"
root = "backups/squirrel"
layout = "packed"
host = "box.example.net"
user = "backup"
port = 2222
key_file = "~/.ssh/id_ed25519"
known_hosts_file = "~/.ssh/known_hosts"
host_key_algorithms = "ssh-ed25519"
hash_algo = "blake3"
password = { env = "SQ_TEST_SFTP_PW" }
checkers = 8
pack_threshold = "16MiB"
pack_size = "1GiB"
zstd_level = 2
verify_every = "1d"

[destinations.box.crypt]
password = "crypt-secret"
password2 = { env = "SQ_TEST_SALT" }
obscured = false

[destinations.cloud]
type = "s3"
root = "squirrel"
provider = "AWS"
bucket = "my-bucket"
region = "eu-west-1"
endpoint = "https://s3.example.com"
storage_class = "STANDARD_IA"
force_path_style = true
access_key_id = { env = "SQ_TEST_AKID" }
secret_access_key = "literal-secret"

[destinations.bb]
type = "b2"
root = "sq"
bucket = "b2-bucket"
account_id = "acc"
application_key = "key"

[destinations.gc]
type = "gcs"
root = "sq"
bucket = "gcs-bucket"
service_account_file = "~/gcs.json"

[destinations.gc2]
type = "gcs"
root = "sq"
bucket = "gcs-bucket"
service_account_credentials = "{}"

[destinations.kop]
type = "kopia"
root = "~/kopia-repo"
password = { env = "SQ_TEST_KOPIA" }
verify_files_percent = 2.5

[destinations.res]
type = "restic"
root = "sftp:user@host:/srv/restic"
password = "restic-pw"

[destinations.reslocal]
type = "restic"
root = "~/restic-repo/"
password = "restic-pw"

[nodes.peer]
endpoint = "https://peer.example.net:8443"
dedup_strategy = "off"
pull_durability_every = "30m"
[nodes.peer.auth]
bearer = { env = "SQ_TEST_BEARER" }
[nodes.peer.tls]
cert_fingerprint = "SHA256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789"

[agent]
listen = "0.0.0.0:8443"
db = "/var/lib/squirrel/agent.db"
scan_interval = "0"
scan_strategy = "deep"
verify_every = "12h"
[agent.tls]
cert = "~/.squirrel/agent.crt"
key = "~/.squirrel/agent.key"
[agent.auth]
token = { env = "SQ_TEST_TOKEN" }
[agent.auth.peers.desk]
bearer = "desk-token"

[backups]
enabled = false
dir = "~/sq-backups"
keep = 3
cloud = false
cloud_keep = 0
)";

class ConfigFullTest : public ConfigTest {
 protected:
  ScopedEnv sftp{"SQ_TEST_SFTP_PW", "sftp-pw"}, salt{"SQ_TEST_SALT", "salt"}, akid{"SQ_TEST_AKID", "AKID"},
      kopia{"SQ_TEST_KOPIA", "kopia-pw"}, bearer{"SQ_TEST_BEARER", "bearer-1"}, token{"SQ_TEST_TOKEN", "token-1"};
  fs::path h() const { return dir / "home"; }
};

TEST_F(ConfigFullTest, ConfigTopLevelVolumesAndHook) {
  auto cfg = load(kFull);
  EXPECT_EQ(cfg.file, dir / "config.toml");
  EXPECT_EQ(cfg.db, h() / "sq/index.db");
  EXPECT_EQ(cfg.node_name, "laptop");
  ASSERT_EQ(cfg.volumes.size(), 2u);
  const auto& photos = *cfg.volume("photos");
  EXPECT_EQ(photos.name, "photos");
  EXPECT_EQ(photos.path, h() / "Pictures");
  EXPECT_EQ(photos.sync_to, (std::vector<std::string>{"nas", "box", "peer"}));
  EXPECT_EQ(photos.sync_every_ns, 6 * 3600 * kSecond);
  EXPECT_EQ(photos.index_every_ns, 90 * 60 * kSecond);
  EXPECT_EQ(photos.offload_requires, (std::vector<std::string>{"nas", "box"}));
  EXPECT_EQ(photos.offload_max_evidence_age_ns, 14 * 86400 * kSecond);
  EXPECT_EQ(photos.line, line_of(kFull, "[volumes.photos]"));
  ASSERT_TRUE(photos.hook);
  EXPECT_EQ(photos.hook->command, (std::vector<std::string>{"/usr/bin/notify-send", "photos changed"}));
  EXPECT_EQ(photos.hook->timeout_ns, 5 * 60 * kSecond);
  EXPECT_EQ(photos.hook->interval_ns, 3600 * kSecond);
  EXPECT_EQ(cfg.volume("docs")->path, fs::current_path() / "rel/docs");
  EXPECT_EQ(cfg.volume("nope"), nullptr);
}

TEST_F(ConfigFullTest, ConfigLocalSftpAndCrypt) {
  auto cfg = load(kFull);
  const auto& nas = *cfg.destination("nas");
  EXPECT_EQ(nas.type, "local");
  EXPECT_EQ(nas.root, (h() / "mnt/nas").string());
  EXPECT_EQ(nas.layout, "content-addressed");
  EXPECT_EQ(nas.concurrency, 4);
  EXPECT_EQ(nas.verify_every_ns, 7 * 86400 * kSecond);
  EXPECT_FALSE(nas.pack_threshold);
  const auto& box = *cfg.destination("box");
  EXPECT_EQ(box.root, "backups/squirrel");
  EXPECT_EQ(box.layout, "packed");
  EXPECT_EQ(box.host, "box.example.net");
  EXPECT_EQ(box.user, "backup");
  EXPECT_EQ(box.port, 2222);
  EXPECT_EQ(box.key_file, (h() / ".ssh/id_ed25519").string());
  EXPECT_EQ(box.known_hosts_file, (h() / ".ssh/known_hosts").string());
  EXPECT_EQ(box.host_key_algorithms, "ssh-ed25519");
  EXPECT_EQ(box.hash_algo, "blake3");
  EXPECT_EQ(box.password, "sftp-pw");
  EXPECT_EQ(box.checkers, 8);
  EXPECT_EQ(box.pack_threshold, 16LL << 20);
  EXPECT_EQ(box.pack_size, 1LL << 30);
  EXPECT_EQ(box.zstd_level, 2);
  EXPECT_EQ(box.verify_every_ns, 86400 * kSecond);
  ASSERT_TRUE(box.crypt);
  EXPECT_EQ(box.crypt->password, "crypt-secret");
  EXPECT_EQ(box.crypt->password2, "salt");
  EXPECT_FALSE(box.crypt->obscured);
  EXPECT_TRUE(box.can_ever_gate_offload());
}

TEST_F(ConfigFullTest, ConfigBucketsAndSnapshotTools) {
  auto cfg = load(kFull);
  const auto& cloud = *cfg.destination("cloud");
  EXPECT_EQ(cloud.layout, "mirror");
  EXPECT_EQ(cloud.provider, "AWS");
  EXPECT_EQ(cloud.bucket, "my-bucket");
  EXPECT_EQ(cloud.region, "eu-west-1");
  EXPECT_EQ(cloud.endpoint, "https://s3.example.com");
  EXPECT_EQ(cloud.storage_class, "STANDARD_IA");
  EXPECT_EQ(cloud.force_path_style, true);
  EXPECT_EQ(cloud.access_key_id, "AKID");
  EXPECT_EQ(cloud.secret_access_key, "literal-secret");
  const auto& bb = *cfg.destination("bb");
  EXPECT_EQ(bb.bucket, "b2-bucket");
  EXPECT_EQ(bb.account_id, "acc");
  EXPECT_EQ(bb.application_key, "key");
  EXPECT_EQ(cfg.destination("gc")->service_account_file, (h() / "gcs.json").string());
  EXPECT_EQ(cfg.destination("gc2")->service_account_credentials, "{}");
  const auto& kop = *cfg.destination("kop");
  EXPECT_EQ(kop.root, (h() / "kopia-repo").string());
  EXPECT_EQ(kop.layout, "");
  EXPECT_EQ(kop.password, "kopia-pw");
  EXPECT_DOUBLE_EQ(*kop.verify_files_percent, 2.5);
  const auto& res = *cfg.destination("res");
  EXPECT_EQ(res.root, "sftp:user@host:/srv/restic");
  EXPECT_EQ(res.password, "restic-pw");
  EXPECT_EQ(cfg.destination("reslocal")->root, (h() / "restic-repo").string());
}

TEST_F(ConfigFullTest, ConfigNodesAgentAndBackups) {
  auto cfg = load(kFull);
  const auto& peer = *cfg.node("peer");
  EXPECT_EQ(peer.endpoint, "https://peer.example.net:8443");
  EXPECT_EQ(peer.bearer, "bearer-1");
  EXPECT_EQ(peer.cert_fingerprint, "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  EXPECT_EQ(peer.dedup_strategy, "off");
  EXPECT_EQ(peer.pull_durability_every_ns, 30 * 60 * kSecond);
  ASSERT_TRUE(cfg.agent);
  EXPECT_EQ(cfg.agent->listen, "0.0.0.0:8443");
  EXPECT_EQ(cfg.agent->db, fs::path("/var/lib/squirrel/agent.db"));
  EXPECT_EQ(cfg.agent->tls_cert, h() / ".squirrel/agent.crt");
  EXPECT_EQ(cfg.agent->tls_key, h() / ".squirrel/agent.key");
  EXPECT_EQ(cfg.agent->auth_token, "token-1");
  EXPECT_EQ(cfg.agent->peer_bearers, (std::map<std::string, std::string>{{"desk", "desk-token"}}));
  EXPECT_EQ(cfg.agent->scan_interval_ns, 0);
  EXPECT_EQ(cfg.agent->scan_strategy, "deep");
  EXPECT_EQ(cfg.agent->verify_every_ns, 12 * 3600 * kSecond);
  EXPECT_FALSE(cfg.backups.enabled);
  EXPECT_EQ(cfg.backups.dir, h() / "sq-backups");
  EXPECT_EQ(cfg.backups.keep, 3);
  EXPECT_FALSE(cfg.backups.cloud);
  EXPECT_EQ(cfg.backups.cloud_keep, 0);
}

TEST_F(ConfigTest, ConfigDefaults) {
  ScopedEnv pw("SQ_TEST_PW", "pw");
  auto cfg = load(kBase + R"(
[volumes.photos.hook]
command = ["/bin/true"]
[destinations.packs]
type = "local"
root = "/mnt/packs"
layout = "packed"
[destinations.ca]
type = "sftp"
root = "r"
host = "h"
user = "u"
layout = "content-addressed"
[destinations.kop]
type = "kopia"
root = "/k"
password = { env = "SQ_TEST_PW" }
[nodes.peer]
endpoint = "http://10.0.0.2:8443"
auth.bearer = "b"
[agent]
)");
  EXPECT_FALSE(cfg.db);
  EXPECT_FALSE(cfg.node_name);
  const auto& photos = *cfg.volume("photos");
  EXPECT_EQ(photos.offload_max_evidence_age_ns, 30 * 86400 * kSecond);
  EXPECT_FALSE(photos.sync_every_ns);
  EXPECT_EQ(photos.hook->timeout_ns, 3600 * kSecond);
  EXPECT_FALSE(photos.hook->interval_ns);
  const auto& nas = *cfg.destination("nas");
  EXPECT_EQ(nas.layout, "mirror");
  EXPECT_FALSE(nas.zstd_level);
  EXPECT_FALSE(nas.crypt);
  const auto& packs = *cfg.destination("packs");
  EXPECT_EQ(packs.pack_threshold, 32LL << 20);
  EXPECT_EQ(packs.pack_size, 512LL << 20);
  EXPECT_EQ(packs.zstd_level, 3);
  EXPECT_EQ(cfg.destination("ca")->hash_algo, "sha256");
  EXPECT_DOUBLE_EQ(*cfg.destination("kop")->verify_files_percent, 10.0);
  EXPECT_EQ(cfg.node("peer")->dedup_strategy, "copy");
  EXPECT_FALSE(cfg.node("peer")->cert_fingerprint);
  EXPECT_EQ(cfg.agent->scan_strategy, "shallow");
  EXPECT_FALSE(cfg.agent->listen);
  EXPECT_TRUE(cfg.backups.enabled);
  EXPECT_EQ(cfg.backups.keep, 7);
  EXPECT_TRUE(cfg.backups.cloud);
  EXPECT_EQ(cfg.backups.cloud_keep, 7);
  EXPECT_FALSE(cfg.backups.dir);
}

TEST_F(ConfigTest, ConfigEmptyFileIsAnEmptyConfig) {
  auto cfg = load("");
  EXPECT_TRUE(cfg.volumes.empty());
  EXPECT_FALSE(cfg.agent);
}

TEST_F(ConfigTest, ConfigOffloadMaxEvidenceAge) {
  auto age = [&](const std::string& line) {
    return load(kBase + "[volumes.v]\npath = \"/v\"\noffload_requires = [\"nas\"]\n" + line)
        .volume("v")
        ->offload_max_evidence_age_ns;
  };
  EXPECT_EQ(age(""), 30 * 86400 * kSecond);
  EXPECT_EQ(age("offload_max_evidence_age = \"off\""), std::nullopt);
  EXPECT_EQ(age("offload_max_evidence_age = \"36h\""), 36 * 3600 * kSecond);
  auto text = R"(
[volumes.photos]
path = "/p"
offload_max_evidence_age = "0"
)";
  auto message = expect_error(text, "offload_max_evidence_age", "volumes.photos.offload_max_evidence_age");
  EXPECT_NE(message.find("\"off\""), std::string::npos) << message;
  expect_error("[volumes.photos]\npath = \"/p\"\noffload_max_evidence_age = \"500ms\"\n", "offload_max",
               "volumes.photos.offload_max_evidence_age");
  expect_error("[volumes.photos]\npath = \"/p\"\noffload_max_evidence_age = \"never\"\n", "offload_max",
               "volumes.photos.offload_max_evidence_age");
}

TEST_F(ConfigTest, ConfigMalformedTomlNamesLineAndColumn) {
  std::string text = "node_name = \"a\"\n[volumes.photos]\npath = \n";
  try {
    load(text);
    FAIL() << "loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    std::string message = e.what();
    EXPECT_EQ(message.rfind((dir / "config.toml").string() + ":3:", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos);
  }
  try {
    load("a = 1\na = 2\n");
    FAIL() << "loaded";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind((dir / "config.toml").string() + ":2:", 0), 0u) << e.what();
  }
}

TEST_F(ConfigTest, ConfigUnknownKeysAtEveryLevel) {
  expect_error(kBase + "colour = \"red\"\n", "colour", "destinations.nas.colour: unknown key");
  expect_error("colour = 1\n" + kBase, "colour", "colour: unknown key");
  expect_error("[volume.photos]\npath = \"/p\"\n", "[volume.photos]", "volume: unknown key");
  expect_error("[volumes.photos]\npath = \"/p\"\npth = \"/q\"\n", "pth", "volumes.photos.pth: unknown key");
  auto message = expect_error(kBase + "rooot = \"/x\"\n", "rooot", "destinations.nas.rooot: unknown key");
  EXPECT_NE(message.find("check the spelling"), std::string::npos);
  expect_error(kBase + "[volumes.photos.hook]\ncommand = [\"x\"]\ncmd = \"x\"\n", "cmd =", "volumes.photos.hook.cmd");
  expect_error(R"(
[destinations.box]
type = "sftp"
root = "r"
host = "h"
user = "u"
[destinations.box.crypt]
password = "p"
salt = "s"
)",
               "salt", "destinations.box.crypt.salt: unknown key");
  expect_error("[nodes.peer]\nendpoint = \"https://p\"\nurl = \"x\"\n[nodes.peer.auth]\nbearer = \"b\"\n", "url",
               "nodes.peer.url: unknown key");
  expect_error("[nodes.peer]\nendpoint = \"https://p\"\n[nodes.peer.auth]\nbearer = \"b\"\ntoken = \"t\"\n", "token",
               "nodes.peer.auth.token: unknown key");
  expect_error("[agent]\nlistn = \"x\"\n", "listn", "agent.listn: unknown key");
  expect_error("[agent.tls]\ncrt = \"x\"\n", "crt", "agent.tls.crt: unknown key");
  expect_error("[agent.auth.peers.desk]\nbearer = \"b\"\nnote = \"x\"\n", "note", "agent.auth.peers.desk.note");
  expect_error("[backups]\nkep = 3\n", "kep", "backups.kep: unknown key");
}

TEST_F(ConfigTest, ConfigBackendKeysOnTheWrongTypeAreUnknown) {
  auto message = expect_error(kBase + "bucket = \"b\"\n", "bucket", "destinations.nas.bucket: unknown key");
  EXPECT_NE(message.find("s3, b2, gcs"), std::string::npos) << message;
  expect_error(R"(
[destinations.cloud]
type = "s3"
root = "r"
provider = "AWS"
bucket = "b"
hash_algo = "md5"
)",
               "hash_algo", "destinations.cloud.hash_algo: unknown key");
  expect_error("[destinations.b]\ntype = \"b2\"\nroot = \"r\"\nbucket = \"b\"\nforce_path_style = true\n",
               "force_path_style", "destinations.b.force_path_style: unknown key");
  expect_error("[destinations.r]\ntype = \"restic\"\nroot = \"/r\"\npassword = \"p\"\nverify_files_percent = 5\n",
               "verify_files_percent", "destinations.r.verify_files_percent: unknown key");
  expect_error(kBase + "password = \"p\"\n", "password", "destinations.nas.password: unknown key");
}

TEST_F(ConfigTest, ConfigWrongTypes) {
  expect_error("[destinations.box]\ntype = \"sftp\"\nroot = \"r\"\nhost = \"h\"\nuser = \"u\"\nport = true\n", "port",
               "destinations.box.port");
  expect_error("[volumes.photos]\npath = \"/p\"\nsync_every = 6\n", "sync_every", "volumes.photos.sync_every");
  expect_error("[volumes.photos]\npath = 42\n", "path", "volumes.photos.path");
  expect_error("[volumes.photos]\npath = \"/p\"\nsync_to = \"nas\"\n", "sync_to", "volumes.photos.sync_to");
  expect_error(kBase + "[volumes.x]\npath = \"/x\"\nsync_to = [\"nas\", 3]\n", "[\"nas\", 3]", "volumes.x.sync_to[1]");
  expect_error("volumes = 3\n", "volumes", "volumes");
  expect_error("[volumes]\nphotos = \"/p\"\n", "photos", "volumes.photos");
  expect_error("[backups]\nenabled = \"yes\"\n", "enabled", "backups.enabled");
  expect_error("[backups]\nkeep = -1\n", "keep", "backups.keep");
  expect_error(kBase + "concurrency = 0\n", "concurrency", "destinations.nas.concurrency");
  expect_error("node_name = 7\n", "node_name", "node_name");
}

TEST_F(ConfigTest, ConfigMissingRequiredKeys) {
  expect_error("[volumes.photos]\nsync_every = \"1h\"\n", "[volumes.photos]", "volumes.photos.path");
  expect_error("[destinations.nas]\nroot = \"/n\"\n", "[destinations.nas]", "destinations.nas.type");
  expect_error("[destinations.nas]\ntype = \"local\"\n", "[destinations.nas]", "destinations.nas.root");
  expect_error("[destinations.nas]\ntype = \"local\"\nroot = \"\"\n", "root", "destinations.nas.root");
  expect_error("[destinations.box]\ntype = \"sftp\"\nroot = \"r\"\nuser = \"u\"\n", "[destinations.box]",
               "destinations.box.host");
  expect_error("[destinations.c]\ntype = \"s3\"\nroot = \"r\"\nprovider = \"AWS\"\n", "[destinations.c]",
               "destinations.c.bucket");
  expect_error("[destinations.k]\ntype = \"kopia\"\nroot = \"/k\"\n", "[destinations.k]", "destinations.k.password");
  expect_error("[destinations.r]\ntype = \"restic\"\nroot = \"/r\"\n", "[destinations.r]", "destinations.r.password");
  expect_error(
      "[destinations.b]\ntype = \"sftp\"\nroot = \"r\"\nhost = \"h\"\nuser = \"u\"\n[destinations.b.crypt]\n"
      "obscured = true\n",
      "[destinations.b.crypt]", "destinations.b.crypt.password");
  expect_error("[nodes.peer]\n[nodes.peer.auth]\nbearer = \"b\"\n", "[nodes.peer]", "nodes.peer.endpoint");
  expect_error("[nodes.peer]\nendpoint = \"https://p\"\n", "[nodes.peer]", "nodes.peer.auth.bearer");
  expect_error("[volumes.photos]\npath = \"/p\"\n[volumes.photos.hook]\ntimeout = \"1m\"\n", "[volumes.photos.hook]",
               "volumes.photos.hook.command");
  expect_error("[destinations.nas]\ntype = \"ftp\"\nroot = \"/n\"\n", "ftp", "destinations.nas.type");
}

TEST_F(ConfigTest, ConfigBadNames) {
  expect_error("[volumes.\"my photos\"]\npath = \"/p\"\n", "my photos", "volumes.\"my photos\": invalid name");
  expect_error("[destinations._nas]\ntype = \"local\"\nroot = \"/n\"\n", "_nas", "destinations._nas: invalid name");
  expect_error("[agent.auth.peers.\"a.b\"]\nbearer = \"x\"\n", "a.b", "agent.auth.peers.\"a.b\"");
  expect_error("node_name = \"my laptop\"\n", "node_name", "node_name");
  // A key with a newline must not break the message into two lines.
  expect_error("[volumes.\"bad\\nname\"]\npath = \"/p\"\n", "bad", "volumes.\"bad\\nname\"");
}

TEST_F(ConfigTest, ConfigSecretsFromTheEnvironment) {
  const std::string text =
      "[nodes.peer]\nendpoint = \"https://p\"\n[nodes.peer.auth]\nbearer = { env = \"SQ_TEST_SECRET\" }\n";
  {
    ScopedEnv unset("SQ_TEST_SECRET", std::nullopt);
    auto message = expect_error(text, "bearer", "nodes.peer.auth.bearer");
    EXPECT_NE(message.find("SQ_TEST_SECRET is not set"), std::string::npos) << message;
  }
  {
    ScopedEnv empty("SQ_TEST_SECRET", "");
    auto message = expect_error(text, "bearer", "nodes.peer.auth.bearer");
    EXPECT_NE(message.find("SQ_TEST_SECRET is empty"), std::string::npos) << message;
  }
  ScopedEnv set("SQ_TEST_SECRET", "s3cret");
  EXPECT_EQ(load(text).node("peer")->bearer, "s3cret");
  expect_error(
      "[nodes.peer]\nendpoint = \"https://p\"\n[nodes.peer.auth]\nbearer = { env = \"SQ_TEST_SECRET\", "
      "default = \"x\" }\n",
      "bearer", "nodes.peer.auth.bearer.default: unknown key");
  expect_error("[nodes.peer]\nendpoint = \"https://p\"\n[nodes.peer.auth]\nbearer = { var = \"SQ_TEST_SECRET\" }\n",
               "bearer", "nodes.peer.auth.bearer");
  expect_error("[nodes.peer]\nendpoint = \"https://p\"\n[nodes.peer.auth]\nbearer = \"\"\n", "bearer",
               "nodes.peer.auth.bearer");
  expect_error("[nodes.peer]\nendpoint = \"https://p\"\n[nodes.peer.auth]\nbearer = 5\n", "bearer",
               "nodes.peer.auth.bearer");
}

TEST_F(ConfigTest, ConfigTargetReferences) {
  expect_error(kBase + "[volumes.x]\npath = \"/x\"\nsync_to = [\"nas\", \"cloud\"]\n", "\"cloud\"",
               "volumes.x.sync_to[1]");
  expect_error(kBase + "[volumes.x]\npath = \"/x\"\noffload_requires = [\"bad name\"]\n", "bad name",
               "volumes.x.offload_requires[0]");
  auto message = expect_error(kBase + "[volumes.x]\npath = \"/x\"\noffload_requires = [\"nas\", \"nas\"]\n",
                              "offload_requires", "volumes.x.offload_requires[1]");
  EXPECT_NE(message.find("twice"), std::string::npos) << message;
  // A node is as good a target as a destination.
  auto cfg = load(kBase +
                  "[nodes.peer]\nendpoint = \"https://p\"\nauth.bearer = \"b\"\n"
                  "[volumes.x]\npath = \"/x\"\nsync_to = [\"peer\"]\noffload_requires = [\"peer\"]\n");
  EXPECT_EQ(cfg.volume("x")->offload_requires, (std::vector<std::string>{"peer"}));
}

TEST_F(ConfigTest, ConfigOneNamespace) {
  expect_error(kBase + "[nodes.nas]\nendpoint = \"https://p\"\nauth.bearer = \"b\"\n", "[nodes.nas]",
               "nodes.nas: name already used by destinations.nas");
  expect_error(R"(
[destinations.box]
type = "sftp"
root = "r"
host = "h"
user = "u"
layout = "content-addressed"
crypt.password = "p"
[destinations.box-crypt]
type = "local"
root = "/x"
)",
               "[destinations.box-crypt]", "destinations.box-crypt: name collides with the crypt overlay");
}

TEST_F(ConfigTest, ConfigCadences) {
  expect_error("[volumes.p]\npath = \"/p\"\nsync_every = \"1h\"\nindex_every = \"1h\"\n", "index_every",
               "volumes.p.index_every");
  expect_error("[volumes.p]\npath = \"/p\"\nsync_every = \"1h\"\nindex_every = \"2h\"\n", "index_every",
               "volumes.p.index_every");
  expect_error("[volumes.p]\npath = \"/p\"\nsync_every = \"500ms\"\n", "sync_every", "volumes.p.sync_every");
  expect_error("[volumes.p]\npath = \"/p\"\nindex_every = \"0\"\n", "index_every", "volumes.p.index_every");
  expect_error("[volumes.p]\npath = \"/p\"\nsync_every = \"6 hours\"\n", "sync_every", "volumes.p.sync_every");
  expect_error("[volumes.p]\npath = \"/p\"\nhook.command = [\"x\"]\nhook.interval = \"999ms\"\n", "hook.interval",
               "volumes.p.hook.interval");
  expect_error("[volumes.p]\npath = \"/p\"\nhook.command = [\"x\"]\nhook.timeout = \"0s\"\n", "hook.timeout",
               "volumes.p.hook.timeout");
  expect_error(kBase + "verify_every = \"10ms\"\n", "verify_every", "destinations.nas.verify_every");
  expect_error("[nodes.n]\nendpoint = \"https://p\"\nauth.bearer = \"b\"\npull_durability_every = \"1ms\"\n",
               "pull_durability_every", "nodes.n.pull_durability_every");
  expect_error("[agent]\nverify_every = \"0s\"\n", "verify_every", "agent.verify_every");
  expect_error("[agent]\nscan_interval = \"-1s\"\n", "scan_interval", "agent.scan_interval");
  expect_error("[agent]\nscan_strategy = \"medium\"\n", "scan_strategy", "agent.scan_strategy");
  EXPECT_EQ(load("[volumes.p]\npath = \"/p\"\nsync_every = \"1s\"\n").volume("p")->sync_every_ns, kSecond);
  // A number too long for a double is malformed, not a crash.
  const std::string huge(400, '9');
  expect_error("[volumes.p]\npath = \"/p\"\nsync_every = \"" + huge + "s\"\n", "sync_every", "volumes.p.sync_every");
  expect_error("[volumes.p]\npath = \"/p\"\noffload_max_evidence_age = \"" + huge + "s\"\n", "offload_max",
               "volumes.p.offload_max_evidence_age");
  expect_error(kBase + "layout = \"packed\"\npack_size = \"" + huge + "\"\n", "pack_size",
               "destinations.nas.pack_size");
}

TEST_F(ConfigTest, ConfigHookCommand) {
  expect_error("[volumes.p]\npath = \"/p\"\n[volumes.p.hook]\ncommand = []\n", "command", "volumes.p.hook.command");
  expect_error("[volumes.p]\npath = \"/p\"\n[volumes.p.hook]\ncommand = [\"x\", \"\"]\n", "command",
               "volumes.p.hook.command[1]");
  expect_error("[volumes.p]\npath = \"/p\"\n[volumes.p.hook]\ncommand = \"x --y\"\n", "command",
               "volumes.p.hook.command");
}

TEST_F(ConfigTest, ConfigCryptRules) {
  auto message = expect_error(kBase + "[destinations.nas.crypt]\npassword = \"p\"\n", "[destinations.nas.crypt]",
                              "destinations.nas.crypt");
  EXPECT_NE(message.find("local"), std::string::npos) << message;
  expect_error("[destinations.k]\ntype = \"kopia\"\nroot = \"/k\"\npassword = \"p\"\ncrypt.password = \"q\"\n", "crypt",
               "destinations.k.crypt");
  expect_error("[destinations.r]\ntype = \"restic\"\nroot = \"/r\"\npassword = \"p\"\ncrypt.password = \"q\"\n",
               "crypt", "destinations.r.crypt");
  // A mirror behind crypt never yields content evidence.
  std::string mirror_crypt = R"(
[destinations.box]
type = "sftp"
root = "r"
host = "h"
user = "u"
[destinations.box.crypt]
password = "p"
[volumes.v]
path = "/v"
sync_to = ["box"]
offload_requires = ["box"]
)";
  expect_error(mirror_crypt, "offload_requires", "volumes.v.offload_requires[0]");
  EXPECT_FALSE(
      load(mirror_crypt.substr(0, mirror_crypt.find("offload_requires"))).destination("box")->can_ever_gate_offload());
  // Already-obscured values must decode to more than rclone's 16-byte IV.
  std::string obscured =
      "[destinations.b]\ntype = \"s3\"\nroot = \"r\"\nprovider = \"AWS\"\nbucket = \"b\"\n"
      "[destinations.b.crypt]\nobscured = true\n";
  expect_error(obscured + "password = \"AAAAAAAAAAAAAAAAAAAAAA\"\n", "password", "destinations.b.crypt.password");
  expect_error(obscured + "password = \"not obscured!\"\n", "password", "destinations.b.crypt.password");
  EXPECT_TRUE(
      load(obscured + "password = \"YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo\"\n").destination("b")->crypt->obscured);
}

TEST_F(ConfigTest, ConfigLayoutRules) {
  const std::string sftp = "[destinations.s]\ntype = \"sftp\"\nroot = \"r\"\nhost = \"h\"\nuser = \"u\"\n";
  expect_error("[destinations.k]\ntype = \"kopia\"\nroot = \"/k\"\npassword = \"p\"\nlayout = \"mirror\"\n", "layout",
               "destinations.k.layout");
  expect_error(kBase + "layout = \"flat\"\n", "flat", "destinations.nas.layout");
  // A plain sftp mirror takes only a hash squirrel can compute over the bytes it sent.
  expect_error(sftp + "hash_algo = \"xxh3\"\n", "hash_algo", "destinations.s.hash_algo");
  EXPECT_EQ(load(sftp + "hash_algo = \"sha256\"\n").destination("s")->hash_algo, "sha256");
  expect_error(sftp + "layout = \"packed\"\nhash_algo = \"sha512\"\n", "hash_algo", "destinations.s.hash_algo");
  expect_error(sftp + "checkers = 4\n", "checkers", "destinations.s.checkers");
  expect_error(kBase + "checkers = 4\n", "checkers", "destinations.nas.checkers");
  expect_error("[destinations.k]\ntype = \"kopia\"\nroot = \"/k\"\npassword = \"p\"\ncheckers = 2\n", "checkers",
               "destinations.k.checkers");
  expect_error(kBase + "pack_size = \"1GiB\"\n", "pack_size", "destinations.nas.pack_size");
  expect_error(kBase + "layout = \"packed\"\nzstd_level = 5\n", "zstd_level", "destinations.nas.zstd_level");
  expect_error(kBase + "layout = \"packed\"\npack_threshold = \"0\"\n", "pack_threshold",
               "destinations.nas.pack_threshold");
  expect_error(kBase + "layout = \"packed\"\npack_threshold = \"lots\"\n", "pack_threshold",
               "destinations.nas.pack_threshold");
  expect_error(
      "[destinations.c]\ntype = \"s3\"\nroot = \"r\"\nprovider = \"AWS\"\nbucket = \"b\"\nverify_every = \"1d\"\n",
      "verify_every", "destinations.c.verify_every");
  expect_error("[destinations.k]\ntype = \"kopia\"\nroot = \"/k\"\npassword = \"p\"\nverify_files_percent = 0\n",
               "verify_files_percent", "destinations.k.verify_files_percent");
  expect_error("[destinations.k]\ntype = \"kopia\"\nroot = \"/k\"\npassword = \"p\"\nverify_files_percent = 100.5\n",
               "verify_files_percent", "destinations.k.verify_files_percent");
  // Allowed combinations: checkers and hash_algo once rclone writes the sftp remote.
  auto cfg = load(sftp + "checkers = 4\nhash_algo = \"md5\"\ncrypt.password = \"p\"\n");
  EXPECT_EQ(cfg.destination("s")->checkers, 4);
  EXPECT_EQ(load(sftp + "verify_every = \"1h\"\n").destination("s")->verify_every_ns, 3600 * kSecond);
}

// ---- layouts that eat themselves ------------------------------------------------

// Each refusal is one line naming both places.
void expect_names_both(const std::string& message, const std::vector<std::string>& parts) {
  for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << part << " missing in: " << message;
}

TEST_F(ConfigTest, ConfigRefusesADestinationRootInsideAVolume) {
  const std::string text = "[volumes.photos]\npath = \"/data/photos\"\n"
                           "[destinations.usb]\ntype = \"local\"\nroot = \"/data/photos/backup\"\n";
  auto message = expect_error(text, "[destinations.usb]", "destinations.usb.root");
  expect_names_both(message, {"\"usb\"", "/data/photos/backup", "\"photos\"", "(/data/photos)"});
  // The same folder is inside too, however it is spelled.
  expect_error("[volumes.photos]\npath = \"/data/photos\"\n"
               "[destinations.usb]\ntype = \"local\"\nroot = \"/data/./other/../photos/\"\n",
               "[destinations.usb]", "destinations.usb.root");
  // A kopia repository is a local root as well.
  expect_error("[volumes.photos]\npath = \"/data/photos\"\n"
               "[destinations.k]\ntype = \"kopia\"\nroot = \"/data/photos/.kopia\"\npassword = \"p\"\n",
               "[destinations.k]", "destinations.k.root");
}

TEST_F(ConfigTest, ConfigRefusesAVolumeInsideALocalDestinationRoot) {
  const std::string text = "[destinations.usb]\ntype = \"local\"\nroot = \"/mnt/usb\"\n"
                           "[volumes.photos]\npath = \"/mnt/usb/photos\"\n";
  auto message = expect_error(text, "[volumes.photos]", "volumes.photos.path");
  expect_names_both(message, {"\"photos\"", "/mnt/usb/photos", "\"usb\"", "(/mnt/usb)"});
}

TEST_F(ConfigTest, ConfigRefusesNestedVolumesWhicheverComesFirst) {
  const std::string outer = "[volumes.home]\npath = \"/home/u\"\n";
  const std::string inner = "[volumes.photos]\npath = \"/home/u/photos\"\n";
  auto message = expect_error(outer + inner, "[volumes.photos]", "volumes.photos.path");
  expect_names_both(message, {"volume \"photos\" (/home/u/photos) is inside volume \"home\" (/home/u)"});
  message = expect_error(inner + outer, "[volumes.photos]", "volumes.photos.path");
  expect_names_both(message, {"volume \"photos\" (/home/u/photos) is inside volume \"home\" (/home/u)"});
}

TEST_F(ConfigTest, ConfigRefusesTwoVolumesOnOnePath) {
  const std::string text = "[volumes.a]\npath = \"/data/x\"\n[volumes.b]\npath = \"/data/x/\"\n";
  auto message = expect_error(text, "[volumes.b]", "volumes.b.path");
  expect_names_both(message, {"\"b\"", "\"a\"", "same path"});
}

TEST_F(ConfigTest, ConfigAcceptsNeighboursThatOnlyShareAPrefix) {
  // "/data/photos2" is not inside "/data/photos"; a remote root is not a local path.
  auto cfg = load("[volumes.photos]\npath = \"/data/photos\"\n[volumes.photos2]\npath = \"/data/photos2\"\n"
                  "[destinations.usb]\ntype = \"local\"\nroot = \"/data/photos-backup\"\n"
                  "[destinations.s]\ntype = \"sftp\"\nroot = \"/data/photos/remote\"\nhost = \"h\"\nuser = \"u\"\n"
                  "[destinations.r]\ntype = \"restic\"\nroot = \"sftp:h:/data/photos/r\"\npassword = \"p\"\n");
  EXPECT_EQ(cfg.volumes.size(), 2u);
  EXPECT_EQ(cfg.destinations.size(), 3u);
}

TEST_F(ConfigTest, ConfigNodes) {
  const std::string auth = "auth.bearer = \"b\"\n";
  auto message = expect_error("[nodes.peer]\nendpoint = \"https://p\"\npath = \"/srv/photos\"\n" + auth, "path",
                              "nodes.peer.path");
  EXPECT_NE(message.find("delete"), std::string::npos) << message;
  expect_error("[nodes.peer]\nendpoint = \"https://p\"\n" + auth + "tls.cert_fingerprint = \"abc\"\n",
               "cert_fingerprint", "nodes.peer.tls.cert_fingerprint");
  expect_error("[nodes.peer]\nendpoint = \"https://p\"\n" + auth +
                   "tls.cert_fingerprint = \"sha256:" + std::string(63, 'a') + "g\"\n",
               "cert_fingerprint", "nodes.peer.tls.cert_fingerprint");
  for (std::string bad : {"ftp://p", "https://", "https:///path", "peer:8443", "https://p:99999", "https://p:x"})
    expect_error("[nodes.peer]\nendpoint = \"" + bad + "\"\n" + auth, "endpoint", "nodes.peer.endpoint");
  for (std::string good : {"http://p", "HTTPS://p.example:8443/v1", "https://[::1]:8443", "https://10.0.0.1"})
    EXPECT_EQ(load("[nodes.peer]\nendpoint = \"" + good + "\"\n" + auth).node("peer")->endpoint, good);
  expect_error("[nodes.peer]\nendpoint = \"https://p\"\n" + auth + "dedup_strategy = \"link\"\n", "dedup_strategy",
               "nodes.peer.dedup_strategy");
  EXPECT_EQ(load("[nodes.peer]\nendpoint = \"https://p\"\n" + auth + "tls.cert_fingerprint = \"" + kPin + "\"\n")
                .node("peer")
                ->cert_fingerprint,
            kPin);
}

TEST_F(ConfigTest, ConfigAgentRules) {
  expect_error("[agent]\nlisten = \"0.0.0.0:8443\"\n", "listen", "agent.auth.token");
  expect_error("[agent]\nlisten = \"8443\"\nauth.token = \"t\"\n", "listen", "agent.listen");
  expect_error("[agent]\ntls.cert = \"/c\"\n", "tls.cert", "agent.tls.cert");
  expect_error("[agent]\ntls.key = \"/k\"\n", "tls.key", "agent.tls.key");
  expect_error("[agent.auth]\ntoken = \"same\"\n[agent.auth.peers.desk]\nbearer = \"same\"\n", "bearer = \"same\"",
               "agent.auth.peers.desk.bearer");
  expect_error("[agent.auth.peers.a]\nbearer = \"x\"\n[agent.auth.peers.b]\nbearer =  \"x\"\n",
               "bearer =  ", "agent.auth.peers.b.bearer");
  expect_error("[agent.auth.peers.a]\n", "[agent.auth.peers.a]", "agent.auth.peers.a.bearer");
  // Listener-less agents need no token; a token alone is still accepted.
  EXPECT_FALSE(load("[agent]\nscan_interval = \"1h\"\n").agent->auth_token);
  EXPECT_EQ(load("[agent.auth]\ntoken = \"t\"\n").agent->auth_token, "t");
  EXPECT_EQ(load("[agent]\nlisten = \":8443\"\nauth.token = \"t\"\n").agent->listen, ":8443");
}

TEST_F(ConfigTest, ConfigDbPaths) {
  for (std::string bad : {"file:index.db", "index.db?mode=ro", "index#1.db", " index.db", "index.db ",
                          "https://example.com/index.db"}) {
    expect_error("db = \"" + bad + "\"\n", "db =", "db");
    expect_error("[agent]\ndb = \"" + bad + "\"\n", "db =", "agent.db");
    EXPECT_THROW(config::validate_db_path(bad), Error) << bad;
  }
  // In the file, "" is the reference's "not set"; as a --db value it is still wrong.
  EXPECT_EQ(load("db = \"\"\n").db, std::nullopt);
  EXPECT_EQ(load("[agent]\ndb = \"\"\n").agent->db, std::nullopt);
  EXPECT_THROW(config::validate_db_path(""), Error);
  expect_error("db = \"a\\u0000b\"\n", "db =", "db");
  EXPECT_THROW(config::validate_db_path(std::string("a\0b", 3)), Error);
  EXPECT_NO_THROW(config::validate_db_path("~/.squirrel/index.db"));
  try {
    config::validate_db_path("file:x.db");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find(" — "), std::string::npos);
  }
}

TEST_F(ConfigTest, ConfigExpandPath) {
  fs::path h = dir / "home";
  EXPECT_EQ(config::expand_path("~"), h);
  EXPECT_EQ(config::expand_path("~/"), h);
  EXPECT_EQ(config::expand_path("~/a/b/"), h / "a/b");
  EXPECT_EQ(config::expand_path("/a/./b/../c//"), fs::path("/a/c"));
  EXPECT_EQ(config::expand_path("/"), fs::path("/"));
  EXPECT_EQ(config::expand_path("rel/x"), fs::current_path() / "rel/x");
  EXPECT_THROW(config::expand_path("~bob/x"), Error);
  expect_error("[volumes.p]\npath = \"~bob/photos\"\n", "path", "volumes.p.path");
  ScopedEnv no_home("HOME", std::nullopt);
  EXPECT_THROW(config::expand_path("~/x"), Error);
}

TEST_F(ConfigTest, ConfigDefaultPath) {
  {
    ScopedEnv env("SQUIRREL_CONFIG", "/etc/sq.toml");
    EXPECT_EQ(config::default_config_path(), fs::path("/etc/sq.toml"));
  }
  {
    ScopedEnv env("SQUIRREL_CONFIG", "");
    EXPECT_EQ(config::default_config_path(), dir / "home/.squirrel/config.toml");
  }
  ScopedEnv env("SQUIRREL_CONFIG", std::nullopt);
  EXPECT_EQ(config::default_config_path(), dir / "home/.squirrel/config.toml");
}

TEST_F(ConfigTest, ConfigMissingAndUnreadableFiles) {
  try {
    config::load(dir / "absent.toml");
    FAIL() << "loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_EQ(std::string(e.what()),
              "no config at " + (dir / "absent.toml").string() + " — create one (see docs/configuration.md)");
  }
  fs::create_directories(dir / "adir");
  try {
    config::load(dir / "adir");
    FAIL() << "loaded a directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "plain") << "x";
  try {
    config::load(dir / "plain/config.toml");
    FAIL() << "loaded through a file";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find("cannot read config"), std::string::npos) << e.what();
  }
}

TEST_F(ConfigTest, ConfigParseUsesTheGivenNameInMessages) {
  try {
    config::parse("[volumes.p]\n", "/x/config.toml");
    FAIL() << "parsed";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/x/config.toml:1: volumes.p.path: missing required key — ", 0), 0u)
        << e.what();
  }
}

#ifdef SQUIRREL_SOURCE_DIR
// The example in the reference must stay loadable as the schema evolves.
TEST_F(ConfigTest, ConfigDocumentedExampleLoads) {
  std::ifstream doc(fs::path(SQUIRREL_SOURCE_DIR) / "docs/configuration.md");
  ASSERT_TRUE(doc) << "docs/configuration.md not found";
  std::string line, example;
  bool in_section = false, in_block = false;
  while (std::getline(doc, line)) {
    if (line.rfind("## Example", 0) == 0)
      in_section = true;
    else if (in_section && !in_block && line == "```toml")
      in_block = true;
    else if (in_block && line == "```")
      break;
    else if (in_block)
      example += line + "\n";
  }
  ASSERT_FALSE(example.empty());
  std::vector<std::unique_ptr<ScopedEnv>> secrets;
  for (const char* name :
       {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "SQUIRREL_CRYPT_PASSWORD", "SQUIRREL_CRYPT_SALT",
        "KOPIA_PASSWORD", "SQUIRREL_DESK_TOKEN", "SQUIRREL_AGENT_TOKEN", "SQUIRREL_FROM_DESK_TOKEN"})
    secrets.push_back(std::make_unique<ScopedEnv>(name, std::string("secret-") + name));
  auto cfg = load(example);
  EXPECT_EQ(cfg.volumes.size(), 1u);
  EXPECT_EQ(cfg.destinations.size(), 3u);
  EXPECT_EQ(cfg.nodes.size(), 1u);
  EXPECT_TRUE(cfg.agent);
}
#endif

const config::CheckLine* find_line(const std::vector<config::CheckLine>& lines, const std::string& section,
                                   const std::string& name) {
  for (const auto& line : lines)
    if (line.section == section && line.name == name) return &line;
  return nullptr;
}

TEST_F(ConfigTest, ConfigCheckReportsWithoutCreatingAnything) {
  fs::create_directories(dir / "full");
  std::ofstream(dir / "full/file.txt") << "x";
  fs::create_directories(dir / "empty");
  fs::create_directories(dir / "nas");
  std::ofstream(dir / "plain") << "x";
  std::string d = dir.string();
  auto cfg =
      load("[volumes.full]\npath = \"" + d + "/full\"\noffload_requires = [\"nas\", \"peer\"]\n" +
           "[volumes.empty]\npath = \"" + d + "/empty\"\n[volumes.gone]\npath = \"" + d + "/gone\"\n" +
           "[volumes.plain]\npath = \"" + d + "/plain\"\n" + "[destinations.nas]\ntype = \"local\"\nroot = \"" + d +
           "/nas\"\n" + "[destinations.fresh]\ntype = \"local\"\nroot = \"" + d + "/fresh\"\n" +
           "[destinations.box]\ntype = \"sftp\"\nroot = \"r\"\nhost = \"h\"\nuser = \"u\"\ncrypt.password = \"p\"\n" +
           "[nodes.peer]\nendpoint = \"https://peer:8443\"\nauth.bearer = \"b\"\n");
  auto lines = config::check(cfg);
  auto level = [&](const std::string& section, const std::string& name) {
    const auto* line = find_line(lines, section, name);
    return line ? line->level : std::string("(none)");
  };
  EXPECT_EQ(level("volumes", "full"), "ok");
  EXPECT_EQ(find_line(lines, "volumes", "full")->detail, d + "/full");
  EXPECT_EQ(level("volumes", "empty"), "warn");
  EXPECT_EQ(level("volumes", "gone"), "FAIL");
  EXPECT_EQ(level("volumes", "plain"), "FAIL");
  EXPECT_EQ(level("destinations", "nas"), "ok");
  EXPECT_EQ(find_line(lines, "destinations", "nas")->detail, "local mirror " + d + "/nas");
  EXPECT_EQ(level("destinations", "fresh"), "warn");
  EXPECT_NE(find_line(lines, "destinations", "fresh")->detail.find("--init"), std::string::npos);
  EXPECT_EQ(find_line(lines, "destinations", "box")->detail, "sftp mirror u@h:r + crypt");
  EXPECT_EQ(level("nodes", "peer"), "ok");
  EXPECT_EQ(find_line(lines, "nodes", "peer")->detail, "https://peer:8443");
  EXPECT_EQ(level("offload", "full"), "ok");
  EXPECT_EQ(find_line(lines, "offload", "full")->detail, "requires nas, peer; max evidence age 30d");
  EXPECT_EQ(level("offload", "box"), "warn");
  EXPECT_EQ(find_line(lines, "offload", "empty"), nullptr);
  EXPECT_FALSE(fs::exists(dir / "gone"));
  EXPECT_FALSE(fs::exists(dir / "fresh"));
}

}  // namespace
