// Issue 13 §3: configs written for the reference load here unchanged and
// mean the same. The reference's public docs are the test data (its
// household setup and its destination examples), with only the keys the
// reference itself has since made obsolete removed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/error.hpp"

namespace {

namespace config = sq::config;
using ::testing::HasSubstr;

constexpr std::int64_t kSecond = 1000000000LL;
const std::string kPin = "sha256:" + std::string(64, 'c');

config::Config parse(const std::string& text) { return config::parse(text, "config.toml"); }

// The one-line message of a config that must not load.
std::string load_error(const std::string& text) {
  try {
    parse(text);
  } catch (const sq::Error& e) {
    EXPECT_EQ(e.kind(), sq::ErrorKind::config);
    return e.what();
  }
  ADD_FAILURE() << "loaded but should not have:\n" << text;
  return "";
}

std::vector<const config::CheckLine*> lines_about(const std::vector<config::CheckLine>& lines,
                                                  const std::string& section, const std::string& name) {
  std::vector<const config::CheckLine*> out;
  for (const auto& l : lines)
    if (l.section == section && l.name == name) out.push_back(&l);
  return out;
}

// Every secret the reference's examples read from the environment.
class ConfigCompat : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"SQUIRREL_AGENT_TOKEN", "SQUIRREL_PEER_LAPTOP", "NAS_PASSWORD", "AWS_ACCESS_KEY_ID",
                             "AWS_SECRET_ACCESS_KEY"}) {
      if (const char* old = std::getenv(name)) saved_.emplace_back(name, std::string(old));
      else saved_.emplace_back(name, std::nullopt);
      setenv(name, "secret", 1);
    }
  }
  void TearDown() override {
    for (const auto& [name, value] : saved_)
      if (value) setenv(name.c_str(), value->c_str(), 1);
      else unsetenv(name.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// The reference's laptop (design/reference-setup.md): it never talks to
// cloudbox or s3archive, yet its offload gate requires them; the nas
// relays their evidence. (`path` under [nodes.nas] is left out: the
// reference itself now rejects it as obsolete.)
const std::string kReferenceLaptop = R"(
db        = "~/.squirrel/index.db"
node_name = "laptop"

[agent]
listen = "127.0.0.1:8443"   # never receives; agent runs only for the cadences
[agent.auth]
token = { env = "SQUIRREL_AGENT_TOKEN" }

[volumes.photos]
path                     = "~/Pictures"
sync_to                  = ["nas"]
sync_every               = "1h"
offload_requires         = ["nas", "cloudbox", "s3archive"]
offload_max_evidence_age = "720h"

[volumes.docs]
path       = "~/Documents"
sync_to    = ["nas"]
sync_every = "1h"

[nodes.nas]
endpoint = "https://nas.home:8443"
[nodes.nas.auth]
bearer = { env = "SQUIRREL_PEER_LAPTOP" }
[nodes.nas.tls]
cert_fingerprint = ")" + kPin + R"("
)";

TEST_F(ConfigCompat, OffloadRequiresMayNameTargetsOnlyAPeerReaches) {
  auto cfg = parse(kReferenceLaptop);
  const auto* photos = cfg.volume("photos");
  ASSERT_NE(photos, nullptr);
  EXPECT_EQ(photos->offload_requires, (std::vector<std::string>{"nas", "cloudbox", "s3archive"}));
  EXPECT_EQ(cfg.external_targets(*photos), (std::vector<std::string>{"cloudbox", "s3archive"}));
  EXPECT_EQ(photos->offload_max_evidence_age_ns, 720 * 3600 * kSecond);

  auto lines = config::check(cfg);
  for (const char* external : {"cloudbox", "s3archive"}) {
    auto about = lines_about(lines, "offload", external);
    ASSERT_EQ(about.size(), 1u) << external;
    EXPECT_EQ(about[0]->level, "warn");
    EXPECT_THAT(about[0]->detail, HasSubstr("external target of volume \"photos\""));
    EXPECT_EQ(about[0]->detail.find('\n'), std::string::npos);
  }
  EXPECT_TRUE(lines_about(lines, "offload", "nas").empty()) << "a declared node is not external";
}

TEST_F(ConfigCompat, AnExternalTargetStillFollowsTheNameRuleAndAppearsOnce) {
  const std::string volume = "[volumes.p]\npath = \"/p\"\noffload_requires = ";
  EXPECT_THAT(load_error(volume + "[\"off site\"]\n"), HasSubstr("volumes.p.offload_requires[0]"));
  EXPECT_THAT(load_error(volume + "[\"far\", \"far\"]\n"), HasSubstr("listed twice"));
  // sync_to still names only what is declared here: squirrel pushes to it.
  EXPECT_THAT(load_error("[volumes.p]\npath = \"/p\"\nsync_to = [\"far\"]\n"),
              HasSubstr("is not a declared destination or node"));
}

// The reference's own destination examples (configuration/destinations.md
// and config-file.md), together.
TEST_F(ConfigCompat, TheReferenceDestinationExamplesLoad) {
  auto cfg = parse(R"(
db = "~/.squirrel/index.db"

[volumes.pictures]
path    = "~/Pictures"
sync_to = ["nas", "offsite"]

[volumes.docs]
path    = "~/Documents"
sync_to = ["nas"]

[destinations.nas]
type                = "sftp"
host                = "nas.local"
user                = "martin"
password            = { env = "NAS_PASSWORD" }
root                = "/volume1/squirrel"
known_hosts_file    = "~/.ssh/known_hosts"      # validate the server host key (recommended)
host_key_algorithms = "ssh-ed25519 ssh-rsa"     # optional: pin accepted host-key algorithms

[destinations.offsite]
type              = "s3"
provider          = "AWS"
region            = "eu-central-1"
access_key_id     = { env = "AWS_ACCESS_KEY_ID" }
secret_access_key = { env = "AWS_SECRET_ACCESS_KEY" }
bucket            = "squirrel-backup"
root              = "/squirrel"
)");
  EXPECT_EQ(cfg.destination("nas")->password, "secret");
  EXPECT_EQ(cfg.destination("offsite")->region, "eu-central-1");
  EXPECT_EQ(cfg.volume("pictures")->sync_to, (std::vector<std::string>{"nas", "offsite"}));
}

TEST_F(ConfigCompat, EmptyOptionalStringsAndSecretsMeanUnset) {
  auto cfg = parse(R"(
db = ""
node_name = ""

[volumes.p]
path = "/p"
sync_every = ""
index_every = ""
offload_max_evidence_age = ""

[destinations.box]
type = "sftp"
root = "r"
host = "h"
user = "u"
port = ""
password = ""
key_file = ""
known_hosts_file = ""
host_key_algorithms = ""
hash_algo = ""
layout = ""

[destinations.box.crypt]
password = "p"
password2 = ""

[destinations.cloud]
type = "s3"
root = "r"
provider = "AWS"
bucket = "b"
region = ""
endpoint = ""
storage_class = ""
access_key_id = ""
secret_access_key = ""

[nodes.peer]
endpoint = "https://peer:8443"
dedup_strategy = ""
auth.bearer = "b"
tls.cert_fingerprint = ""

[agent]
listen = ""
db = ""
scan_strategy = ""
auth.token = ""

[backups]
dir = ""
)");
  EXPECT_EQ(cfg.db, std::nullopt);
  EXPECT_EQ(cfg.node_name, std::nullopt);
  EXPECT_EQ(cfg.backups.dir, std::nullopt) << "[backups] dir = \"\" means <dir of db>/backups";
  const auto& v = *cfg.volume("p");
  EXPECT_EQ(v.sync_every_ns, std::nullopt);
  EXPECT_EQ(v.index_every_ns, std::nullopt);
  EXPECT_EQ(v.offload_max_evidence_age_ns, 30 * 86400 * kSecond);
  const auto& box = *cfg.destination("box");
  EXPECT_EQ(box.layout, "mirror");
  EXPECT_EQ(box.port, std::nullopt);
  EXPECT_EQ(box.password, std::nullopt);
  EXPECT_EQ(box.key_file, std::nullopt);
  EXPECT_EQ(box.known_hosts_file, std::nullopt);
  EXPECT_EQ(box.host_key_algorithms, std::nullopt);
  EXPECT_EQ(box.hash_algo, std::nullopt);
  EXPECT_EQ(box.crypt->password2, std::nullopt);
  const auto& cloud = *cfg.destination("cloud");
  EXPECT_EQ(cloud.region, std::nullopt);
  EXPECT_EQ(cloud.endpoint, std::nullopt);
  EXPECT_EQ(cloud.storage_class, std::nullopt);
  EXPECT_EQ(cloud.access_key_id, std::nullopt);
  EXPECT_EQ(cloud.secret_access_key, std::nullopt);
  EXPECT_EQ(cfg.node("peer")->dedup_strategy, "copy");
  EXPECT_EQ(cfg.node("peer")->cert_fingerprint, std::nullopt);
  EXPECT_EQ(cfg.agent->listen, std::nullopt);
  EXPECT_EQ(cfg.agent->db, std::nullopt);
  EXPECT_EQ(cfg.agent->auth_token, std::nullopt);
  EXPECT_EQ(cfg.agent->scan_strategy, "shallow");
}

TEST_F(ConfigCompat, EmptyRequiredValuesAreStillRefused) {
  EXPECT_THAT(load_error("[volumes.p]\npath = \"\"\n"), HasSubstr("volumes.p.path: is empty"));
  EXPECT_THAT(load_error("[destinations.b]\ntype = \"sftp\"\nroot = \"r\"\nhost = \"\"\nuser = \"u\"\n"),
              HasSubstr("destinations.b.host: is empty"));
  EXPECT_THAT(load_error("[destinations.k]\ntype = \"kopia\"\nroot = \"/k\"\npassword = \"\"\n"),
              HasSubstr("destinations.k.password: secret is empty"));
  EXPECT_THAT(load_error("[destinations.b]\ntype = \"sftp\"\nroot = \"r\"\nhost = \"h\"\nuser = \"u\"\n"
                         "layout = \"packed\"\ncrypt.password = \"\"\n"),
              HasSubstr("destinations.b.crypt.password: secret is empty"));
  EXPECT_THAT(load_error("[nodes.n]\nendpoint = \"https://n\"\nauth.bearer = \"\"\n"),
              HasSubstr("nodes.n.auth.bearer: secret is empty"));
  // With a listener the token is required, so "" (unset) is refused as missing.
  EXPECT_THAT(load_error("[agent]\nlisten = \"0.0.0.0:8443\"\nauth.token = \"\"\n"),
              HasSubstr("is required when listen is set"));
}

TEST_F(ConfigCompat, SftpPortIsAnIntegerOrAStringOfDigits) {
  auto port = [](const std::string& value) {
    return parse("[destinations.b]\ntype = \"sftp\"\nroot = \"r\"\nhost = \"h\"\nuser = \"u\"\nport = " + value + "\n")
        .destination("b")
        ->port;
  };
  EXPECT_EQ(port("2222"), 2222);
  EXPECT_EQ(port("\"2222\""), 2222);
  EXPECT_EQ(port("\"22\""), 22);
  const std::string sftp = "[destinations.b]\ntype = \"sftp\"\nroot = \"r\"\nhost = \"h\"\nuser = \"u\"\nport = ";
  EXPECT_THAT(load_error(sftp + "\"22a\"\n"), HasSubstr("destinations.b.port: \"22a\" is not a whole number"));
  EXPECT_THAT(load_error(sftp + "\"-22\"\n"), HasSubstr("is not a whole number"));
  EXPECT_THAT(load_error(sftp + "\"70000\"\n"), HasSubstr("70000 is out of range"));
  EXPECT_THAT(load_error(sftp + "70000\n"), HasSubstr("70000 is out of range"));
  EXPECT_THAT(load_error(sftp + "22.5\n"), HasSubstr("destinations.b.port"));
}

TEST_F(ConfigCompat, KopiaVerifyFilesPercentIsANumberOrAString) {
  auto percent = [](const std::string& line) {
    return parse("[destinations.k]\ntype = \"kopia\"\nroot = \"/k\"\npassword = \"p\"\n" + line + "\n")
        .destination("k")
        ->verify_files_percent;
  };
  EXPECT_EQ(percent(""), 10.0);
  EXPECT_EQ(percent("verify_files_percent = 12.5"), 12.5);
  EXPECT_EQ(percent("verify_files_percent = \"12.5\""), 12.5);
  EXPECT_EQ(percent("verify_files_percent = 100"), 100.0);
  EXPECT_EQ(percent("verify_files_percent = \"100\""), 100.0);
  EXPECT_EQ(percent("verify_files_percent = \"\""), 10.0);
  const std::string kopia = "[destinations.k]\ntype = \"kopia\"\nroot = \"/k\"\npassword = \"p\"\nverify_files_percent = ";
  EXPECT_THAT(load_error(kopia + "\"ten\"\n"), HasSubstr("\"ten\" is not a number"));
  EXPECT_THAT(load_error(kopia + "\"12.5%\"\n"), HasSubstr("is not a number"));
  EXPECT_THAT(load_error(kopia + "\"0\"\n"), HasSubstr("outside (0, 100]"));
  EXPECT_THAT(load_error(kopia + "\"101\"\n"), HasSubstr("outside (0, 100]"));
}

TEST_F(ConfigCompat, AVolumeAndADestinationMayShareAName) {
  auto cfg = parse(R"(
[volumes.photos]
path = "/data/photos"
sync_to = ["photos"]

[destinations.photos]
type = "local"
root = "/mnt/usb"

[volumes.nas]
path = "/data/nas"

[nodes.nas]
endpoint = "https://nas:8443"
auth.bearer = "b"
)");
  EXPECT_EQ(cfg.volume("photos")->sync_to, (std::vector<std::string>{"photos"}));
  EXPECT_NE(cfg.destination("photos"), nullptr);
  EXPECT_NE(cfg.node("nas"), nullptr);
  // Only the targets' namespace is shared.
  EXPECT_THAT(load_error("[destinations.nas]\ntype = \"local\"\nroot = \"/n\"\n[nodes.nas]\nendpoint = "
                         "\"https://nas\"\nauth.bearer = \"b\"\n"),
              HasSubstr("name already used by destinations.nas"));
}

TEST_F(ConfigCompat, ATargetListedTwiceInSyncToIsSyncedOnceWithAWarning) {
  auto cfg = parse(R"(
[volumes.photos]
path = "/data/photos"
sync_to = ["usb", "usb", "usb"]

[destinations.usb]
type = "local"
root = "/mnt/usb"
)");
  const auto& v = *cfg.volume("photos");
  EXPECT_EQ(v.sync_to, (std::vector<std::string>{"usb"}));
  EXPECT_EQ(v.sync_to_repeated, (std::vector<std::string>{"usb", "usb"}));
  auto lines = config::check(cfg);
  std::vector<std::string> warnings;
  for (const auto* l : lines_about(lines, "volumes", "photos"))
    if (l->level == "warn") warnings.push_back(l->detail);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_THAT(warnings[0], HasSubstr("sync_to lists \"usb\" more than once"));
}

TEST_F(ConfigCompat, EveryDurationKeyTakesGoForms) {
  auto cfg = parse(R"(
[volumes.p]
path = "/p"
sync_every = "1h30m"
index_every = "+45m"
offload_max_evidence_age = "1.5h"
hook.command = ["true"]
hook.timeout = "2562047h"
)");
  const auto& v = *cfg.volume("p");
  EXPECT_EQ(v.sync_every_ns, 5400 * kSecond);
  EXPECT_EQ(v.index_every_ns, 2700 * kSecond);
  EXPECT_EQ(v.offload_max_evidence_age_ns, 5400 * kSecond);
  EXPECT_EQ(v.hook->timeout_ns, 2562047LL * 3600 * kSecond);
  // The reference's default is "no limit"; ours stays 30 days (documented).
  EXPECT_EQ(parse("[volumes.p]\npath = \"/p\"\n").volume("p")->offload_max_evidence_age_ns, 30 * 86400 * kSecond);
}

}  // namespace
