// The whole loop over an SFTP mirror, against a real OpenSSH server on
// loopback: index, sync --init, verify, offload, restore — once with an
// account that runs commands (the server hashes the copies: server-hash)
// and once with an sftp-only account (presence+size until verify
// --download). Then every way a connection is refused, each with one line
// and nothing written.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/sync/mirror.hpp"
#include "engine/sync/verify.hpp"
#include "loop_util.hpp"
#include "sshd_util.hpp"
#include "stall_util.hpp"

namespace sq::test {
namespace {

struct SftpSandbox : LoopSandbox {
  explicit SftpSandbox(SshServerOptions o = {}, std::string layout_line = "")
      : server(root() / "sshd", o), layout(std::move(layout_line)) {
    use();
  }

  fs::path remote() const { return server.root() / "backup"; }
  fs::path vremote() const { return remote() / "photos"; }

  // [destinations.nas] on the test server; `keys` replace the login keys.
  void use(const std::string& keys = "", int port = 0) const {
    std::string login = keys.empty() ? "key_file = \"" + server.client_key().string() + "\"\nknown_hosts_file = \"" +
                                           server.known_hosts().string() + "\"\n"
                                     : keys;
    write_config_raw("[volumes.photos]\npath = \"" + volume_dir().string() +
                     "\"\nsync_to = [\"nas\"]\noffload_requires = [\"nas\"]\n\n[destinations.nas]\ntype = \"sftp\"\n"
                     "host = \"127.0.0.1\"\nport = " +
                     std::to_string(port ? port : server.port()) + "\nuser = \"" + server.user() + "\"\nroot = \"" +
                     remote().string() + "\"\n" + layout + login);
  }

  void fill() const {
    put("a.txt", "alpha");
    put("sub dir/b.txt", std::string(300000, 'b'));
    put("deep/er/c.bin", noise(70000, 7));
  }

  // The evidence method status shows for nas (amber or green alike).
  std::string method() const {
    auto r = run({"status", "--json"});
    auto methods = nlohmann::json::parse(r.out)["volumes"][0]["targets"][0]["evidence"]["methods"];
    return methods.size() == 1 ? methods[0].get<std::string>() : methods.dump();
  }

  SshServer server;
  std::string layout;  // a `layout = ...` line for [destinations.nas], or empty (a mirror)
};

const std::string kContentAddressed = "layout = \"content-addressed\"\n";

std::set<std::string> objects_on(const SftpSandbox& s) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(s.remote() / "objects", ec)) out.insert(e.path().filename());
  return out;
}

TEST(SftpContentLoop, TheWholeLoopOverAContentAddressedServerEndsByteIdentical) {
  SftpSandbox s({}, kContentAddressed);
  s.fill();
  s.put("same-as-a.txt", "alpha");
  auto before = user_files(s.volume_dir());
  s.ok({"index", "photos"});
  s.ok({"sync", "photos", "--to", "nas", "--init"});
  EXPECT_EQ(objects_on(s).size(), 3u) << "four files, three contents";
  EXPECT_FALSE(fs::exists(s.vremote() / "a.txt")) << "no paths of the volume at a content-addressed destination";
  EXPECT_EQ(s.method(), "server-hash");
  auto v = s.json({"verify", "nas", "--full"});
  EXPECT_EQ(v[0]["findings"].size(), 0u);
  EXPECT_EQ(v[0]["rehashed"], 3);
  s.ok({"offload", "photos", "."});
  EXPECT_TRUE(user_files(s.volume_dir()).empty()) << "offloaded";
  s.ok({"restore", "photos"});
  EXPECT_EQ(user_files(s.volume_dir()), before) << "restored byte for byte";

  // An object damaged on the server, its size kept: the server's hash finds it.
  auto obj = s.remote() / "objects" / *objects_on(s).begin();
  fs::permissions(obj, fs::perms::owner_write, fs::perm_options::add);
  auto bytes = read_file(obj);
  bytes[0] = static_cast<char>(bytes[0] ^ 1);
  write_file(obj, bytes);
  auto found = s.json({"verify", "nas", "--full"}, 1);
  ASSERT_EQ(found[0]["findings"].size(), 1u);
  EXPECT_EQ(found[0]["findings"][0]["kind"], "changed");
}

TEST(SftpContentLoop, ThePackedLoopOverTheServerEndsByteIdentical) {
  SftpSandbox s({}, "layout = \"packed\"\npack_threshold = \"100KiB\"\n");
  s.fill();
  auto before = user_files(s.volume_dir());
  s.ok({"index", "photos"});
  auto dry = s.json({"sync", "photos", "--to", "nas", "--init", "--dry-run"});
  EXPECT_EQ(dry[0]["pack_contents"], 2) << "a.txt and c.bin; b.txt is over the threshold";
  s.ok({"sync", "photos", "--to", "nas", "--init"});
  EXPECT_EQ(objects_on(s).size(), 1u);
  std::set<std::string> packs;
  for (const auto& e : fs::directory_iterator(s.remote() / "packs")) packs.insert(e.path().filename());
  EXPECT_EQ(packs.size(), 2u) << "one pack and the map";
  EXPECT_EQ(s.method(), "server-hash");
  auto v = s.json({"verify", "nas", "--full"});
  EXPECT_EQ(v[0]["findings"].size(), 0u);
  EXPECT_EQ(v[0]["rehashed"], 2);
  s.ok({"offload", "photos", "."});
  EXPECT_TRUE(user_files(s.volume_dir()).empty()) << "offloaded";
  s.ok({"restore", "photos"});
  EXPECT_EQ(user_files(s.volume_dir()), before) << "restored byte for byte";
}

TEST(SftpContentLoop, AnSftpOnlyAccountOffloadsOnlyOnceVerifyDownloadedTheObjects) {
  SftpSandbox s(SshServerOptions{true}, kContentAddressed);
  s.fill();
  auto before = user_files(s.volume_dir());
  s.ok({"index", "photos"});
  s.ok({"sync", "photos", "--to", "nas", "--init"});
  EXPECT_EQ(s.method(), "presence+size") << "nothing hashed the stored objects";
  s.ok({"offload", "photos", "."});
  EXPECT_EQ(user_files(s.volume_dir()), before) << "nothing was unlinked";
  auto v = s.json({"verify", "nas", "--download", "--full"});
  EXPECT_EQ(v[0]["method"], "download-blake3");
  s.ok({"offload", "photos", "."});
  EXPECT_TRUE(user_files(s.volume_dir()).empty());
  s.ok({"restore", "photos"});
  EXPECT_EQ(user_files(s.volume_dir()), before);
}

TEST(SftpLoop, TheWholeLoopWithAServerThatHashesEndsByteIdentical) {
  SftpSandbox s;
  s.fill();
  auto before = user_files(s.volume_dir());
  s.ok({"index", "photos"});
  s.ok({"sync", "photos", "--to", "nas", "--init"});
  EXPECT_EQ(user_files(s.vremote()), before) << "the mirror holds the volume";
  EXPECT_EQ(s.method(), "server-hash");
  auto v = s.json({"verify", "nas", "--full"});
  EXPECT_EQ(v[0]["findings"].size(), 0u);
  EXPECT_EQ(v[0]["unchecked"], 0);
  EXPECT_EQ(v[0]["method"], "server-hash");
  s.ok({"offload", "photos", "."});
  EXPECT_TRUE(user_files(s.volume_dir()).empty()) << "offloaded";
  s.ok({"restore", "photos"});
  EXPECT_EQ(user_files(s.volume_dir()), before) << "restored byte for byte";
}

TEST(SftpLoop, AnSftpOnlyAccountCannotOffloadUntilVerifyDownloadsTheCopies) {
  SftpSandbox s(SshServerOptions{true});
  s.fill();
  auto before = user_files(s.volume_dir());
  s.ok({"index", "photos"});
  s.ok({"sync", "photos", "--to", "nas", "--init"});
  EXPECT_EQ(s.method(), "presence+size") << "nothing hashed the stored bytes";
  auto refused = s.ok({"offload", "photos", "."});  // refusing files is not an error
  EXPECT_NE(refused.out.find("--download"), std::string::npos) << refused.out;
  EXPECT_EQ(user_files(s.volume_dir()), before) << "nothing was unlinked";
  auto plain = s.json({"verify", "nas", "--full"});
  EXPECT_EQ(plain[0]["unchecked"], 3) << "the server cannot hash: neither confirmed nor a finding";
  EXPECT_EQ(plain[0]["findings"].size(), 0u);
  auto v = s.json({"verify", "nas", "--download", "--full"});
  EXPECT_EQ(v[0]["method"], "download-blake3");
  EXPECT_EQ(s.method(), "download-blake3");
  s.ok({"offload", "photos", "."});
  EXPECT_TRUE(user_files(s.volume_dir()).empty());
  s.ok({"restore", "photos"});
  EXPECT_EQ(user_files(s.volume_dir()), before);
}

TEST(SftpLoop, ACopyCorruptedOnTheServerIsFoundByTheServersHash) {
  SftpSandbox s;
  s.fill();
  s.ok({"index", "photos"});
  s.ok({"sync", "photos", "--to", "nas", "--init"});
  rewrite_same_size_and_mtime(s.vremote() / "a.txt", "ALPHA");
  auto v = s.json({"verify", "nas", "--full"}, 1);
  ASSERT_EQ(v[0]["findings"].size(), 1u);
  EXPECT_EQ(v[0]["findings"][0]["path"], "a.txt");
  s.expect(1, {"offload", "photos", "a.txt"});
  EXPECT_EQ(read_file(s.vol("a.txt")), "alpha") << "the local file stays";
}

// A server that hashes with sha256sum records its checksum of each copy. A
// verify that downloads and BLAKE3s the copies confirms them without
// replacing that checksum, so the server can still check them afterwards
// (before, the first `verify --download` left every copy unchecked).
TEST(SftpLoop, ADownloadingVerifyKeepsTheServersChecksumForTheNextVerify) {
  SftpSandbox s({}, "hash_algo = \"sha256\"\n");
  s.fill();
  s.ok({"index", "photos"});
  s.ok({"sync", "photos", "--to", "nas", "--init"});
  auto first = s.json({"verify", "nas", "--full"});
  EXPECT_EQ(first[0]["unchecked"], 0);
  EXPECT_EQ(first[0]["method"], "server-hash");
  auto downloaded = s.json({"verify", "nas", "--download", "--full"});
  EXPECT_EQ(downloaded[0]["method"], "download-blake3");
  auto again = s.json({"verify", "nas", "--full"});
  EXPECT_EQ(again[0]["unchecked"], 0) << "every copy is still checkable by the server";
  EXPECT_EQ(again[0]["findings"].size(), 0u);
  rewrite_same_size_and_mtime(s.vremote() / "a.txt", "ALPHA");
  auto damaged = s.json({"verify", "nas", "--full"}, 1);
  ASSERT_EQ(damaged[0]["findings"].size(), 1u) << "the server's sha256 still finds a changed copy";
  EXPECT_EQ(damaged[0]["findings"][0]["path"], "a.txt");
}

// The same for objects: a content-addressed destination on a sha256 server.
TEST(SftpContentLoop, ADownloadingVerifyKeepsTheServersChecksumOfEachObject) {
  SftpSandbox s({}, kContentAddressed + "hash_algo = \"sha256\"\n");
  s.fill();
  s.ok({"index", "photos"});
  s.ok({"sync", "photos", "--to", "nas", "--init"});
  s.ok({"verify", "nas", "--download", "--full"});
  auto again = s.json({"verify", "nas", "--full"});
  EXPECT_EQ(again[0]["unchecked"], 0) << again.dump();
  EXPECT_EQ(again[0]["method"], "server-hash");
}

TEST(SftpLoop, HostileNamesRoundTrip) {
  SftpSandbox s;
  std::vector<std::string> names = {"with space", "new\nline", std::string("bad\xff\xfe" "byte"),
                                    std::string(255, 'n'), "-dash", "quote'\"$(x)"};
  for (std::size_t i = 0; i < names.size(); ++i) s.put("h/" + names[i], "content " + std::to_string(i));
  auto before = user_files(s.volume_dir());
  s.ok({"index", "photos"});
  s.ok({"sync", "photos", "--to", "nas", "--init"});
  EXPECT_EQ(user_files(s.vremote()), before);
  EXPECT_EQ(s.method(), "server-hash") << "names reach the hash command on stdin, whatever bytes they hold";
  s.ok({"verify", "nas", "--full"});
  s.ok({"offload", "photos", "."});
  s.ok({"restore", "photos"});
  EXPECT_EQ(user_files(s.volume_dir()), before);
}

// Each refusal: exit non-zero, one line on stderr naming the step, nothing
// at the destination, and a run row saying so.
void expect_refused(SftpSandbox& s, const std::string& needle) {
  auto r = s.expect(1, {"sync", "photos", "--to", "nas", "--init"});
  auto lines = r.err_lines();
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
  EXPECT_FALSE(fs::exists(s.remote())) << "nothing was created on the server";
  auto runs = s.runs();
  ASSERT_FALSE(runs.empty());
  EXPECT_EQ(runs.back()["kind"], "sync");
  EXPECT_EQ(runs.back()["status"], "refused");
}

TEST(SftpRefusals, EachWayALoginFailsIsOneLineAndWritesNothing) {
  SftpSandbox s;
  s.put("a.txt", "alpha");
  s.ok({"index", "photos"});
  auto kh = [&](const fs::path& p) { return "known_hosts_file = \"" + p.string() + "\"\n"; };
  auto key = "key_file = \"" + s.server.client_key().string() + "\"\n";
  s.use(key + kh(s.server.empty_known_hosts()));
  expect_refused(s, s.server.host_key_fingerprint());
  s.use(key + kh(s.server.wrong_known_hosts()));
  expect_refused(s, "CHANGED");
  s.use("password = \"not-the-password\"\n" + kh(s.server.known_hosts()));
  expect_refused(s, "refused the login");
  s.use("key_file = \"" + (s.root() / "no-such-key").string() + "\"\n" + kh(s.server.known_hosts()));
  expect_refused(s, "no-such-key");
  s.use("key_file = \"" + s.server.passphrase_key().string() + "\"\n" + kh(s.server.known_hosts()));
  expect_refused(s, "ssh-agent");
}

// A missing root: the dry run of a first sync plans it, a sync without
// --init refuses, and neither creates anything on the server.
TEST(SftpRefusals, AMissingRootIsPlannedByADryRunAndRefusedWithoutInit) {
  SftpSandbox s;
  s.fill();
  s.ok({"index", "photos"});
  auto dry = s.ok({"sync", "photos", "--to", "nas", "--init", "--dry-run"});
  EXPECT_NE(dry.out.find("would write 3 file(s)"), std::string::npos) << dry.out;
  EXPECT_FALSE(fs::exists(s.remote()));
  auto r = s.expect(1, {"sync", "photos", "--to", "nas"});
  ASSERT_EQ(r.err_lines().size(), 1u) << r.err;
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--init"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(s.remote()));
  EXPECT_EQ(s.runs().back()["status"], "refused");
}

TEST(SftpRefusals, AnUnreachablePortAndAServerThatClosesDuringTheHandshake) {
  SftpSandbox s;
  s.put("a.txt", "alpha");
  s.ok({"index", "photos"});
  auto login = "key_file = \"" + s.server.client_key().string() + "\"\nknown_hosts_file = \"" +
               s.server.known_hosts().string() + "\"\n";
  {
    FaultProxy closing(s.server.port(), FaultProxy::Mode::close_at_accept);
    s.use(login, closing.port());
    expect_refused(s, "cannot connect");
  }
  int closed_port = 0;
  {
    FaultProxy gone(s.server.port());
    closed_port = gone.port();
  }
  s.use(login, closed_port);
  expect_refused(s, "cannot connect");
}

// No ledger row in flight after a clean sync: reconcile settled what a cut
// connection left behind.
std::string store_problems(const SftpSandbox& s) {
  auto db = store::Db::open(s.db_path(), {false, true});
  auto unsettled = db.query_i64("SELECT count(*) FROM remote_paths WHERE state IN ('committing','displacing')");
  return unsettled.value_or(0) == 0 ? "" : std::to_string(*unsettled) + " row(s) still in flight";
}

// A known_hosts file that vouches for the server's key at another port (a
// proxy in front of it).
fs::path known_hosts_at(const SftpSandbox& s, int port) {
  std::string text = read_file(s.server.known_hosts());
  std::string from = "]:" + std::to_string(s.server.port()) + " ", to = "]:" + std::to_string(port) + " ";
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  auto path = s.root() / ("known_hosts_" + std::to_string(port));
  write_file(path, text);
  return path;
}

TEST(SftpFaults, AConnectionDroppedAtAnyPointLeavesAMirrorTheNextSyncCompletes) {
  SftpSandbox s;
  for (int i = 0; i < 12; ++i) s.put("f" + std::to_string(i), noise(40000 + i, static_cast<std::uint32_t>(i)));
  s.ok({"index", "photos"});
  s.ok({"sync", "photos", "--to", "nas", "--init"});
  auto login = "key_file = \"" + s.server.client_key().string() + "\"\n";
  int round = 0, dropped_or_done = 0;
  for (std::int64_t after : {3000, 30000, 120000, 400000}) {
    SCOPED_TRACE("dropped after " + std::to_string(after) + " bytes");
    for (int i = 0; i < 12; i += 3) s.put("f" + std::to_string(i), noise(41000 + i, static_cast<std::uint32_t>(100 * ++round)));
    s.put("new" + std::to_string(round), noise(50000, static_cast<std::uint32_t>(round)));
    s.ok({"index", "photos"});
    {
      FaultProxy proxy(s.server.port(), FaultProxy::Mode::drop_after, after);
      s.use(login + "known_hosts_file = \"" + known_hosts_at(s, proxy.port()).string() + "\"\n", proxy.port());
      // Each new connection gets the same budget: a push may fail, or
      // finish by dialling again. Either way it must not lie.
      auto r = s.run({"sync", "photos", "--to", "nas"});
      if (r.status == 0) EXPECT_EQ(user_files(s.vremote()), user_files(s.volume_dir())) << r.out << r.err;
      else EXPECT_FALSE(r.err_lines().empty()) << r.out;
      dropped_or_done += 1;
    }
    s.use();
    s.ok({"sync", "photos", "--to", "nas"});
    EXPECT_EQ(user_files(s.vremote()), user_files(s.volume_dir())) << "the mirror holds the volume again";
    auto v = s.json({"verify", "nas", "--full"});
    EXPECT_EQ(v[0]["findings"].size(), 0u);
    EXPECT_EQ(store_problems(s), "");
  }
  EXPECT_EQ(dropped_or_done, 4);
}

// A connection that stops moving mid-push: the push gives the call up as
// stalled and stops; once the connection is let go and the given-up call
// has returned, the next sync completes. (The stall timeout is only made
// short; nothing here measures time.)
TEST(SftpFaults, AStalledConnectionIsGivenUpAndTheNextSyncCompletes) {
  SftpSandbox s;
  for (int i = 0; i < 6; ++i) s.put("f" + std::to_string(i), noise(200000, static_cast<std::uint32_t>(i)));
  s.ok({"index", "photos"});
  s.ok({"sync", "photos", "--to", "nas", "--init"});
  for (int i = 0; i < 6; ++i) s.put("g" + std::to_string(i), noise(200000, static_cast<std::uint32_t>(10 + i)));
  s.ok({"index", "photos"});
  {
    FaultProxy proxy(s.server.port(), FaultProxy::Mode::stall_after, 60000);
    s.use("key_file = \"" + s.server.client_key().string() + "\"\nknown_hosts_file = \"" +
              known_hosts_at(s, proxy.port()).string() + "\"\n",
          proxy.port());
    auto cfg = config::load(s.config_path());
    store::StoreOptions so;
    so.create = false;
    auto st = store::Store::open(s.db_path(), so);
    engine::sync::SyncOptions o;
    o.stall.timeout_ns = 3LL * 1000000000;
    std::string what;
    try {
      auto r = engine::sync::run_mirror_sync(cfg, st, "photos", "nas", o);
      what = "returned " + std::string(store::to_string(r.status));
    } catch (const std::exception& e) {
      what = e.what();
    }
    EXPECT_NE(what.find("made no progress"), std::string::npos) << what;
    proxy.release();
    await_given_up_calls_returned("nas");
  }
  s.use();
  s.ok({"sync", "photos", "--to", "nas"});
  EXPECT_EQ(user_files(s.vremote()), user_files(s.volume_dir()));
  EXPECT_EQ(store_problems(s), "");
  auto v = s.json({"verify", "nas", "--full"});
  EXPECT_EQ(v[0]["findings"].size(), 0u);
}

// Regular files under `dir`, counted while a sync may be changing it.
int files_under(const fs::path& dir) {
  std::error_code ec;
  int n = 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_regular_file(ec)) ++n;
  return n;
}

// Runs `sync` as a process of its own and SIGKILLs it once `reached`
// holds (or lets it finish, if it finishes first: nothing here depends on
// which).
void sync_killed_when(const SftpSandbox& s, const std::function<bool()>& reached) {
  auto args = s.global_args();
  for (const char* a : {"sync", "photos", "--to", "nas"}) args.emplace_back(a);
  int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  pid_t pid = detail::spawn(args, s.options(), devnull, devnull);
  ::close(devnull);
  int status = 0;
  bool killed = false;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (!killed && reached()) killed = ::kill(pid, SIGKILL) == 0;
    ::usleep(500);
  }
}

// kill -9 of the squirrel process while it stages, between staging and
// committing, and while it commits: the next sync completes, the mirror
// holds the volume, nothing stays in flight and verify finds nothing.
// A server hash command that says nothing at all: verify gives the call up
// as stalled, and the given-up call then returns by itself instead of
// waiting on the silent channel for as long as the connection lives (it
// used to wait for ever, and a push refuses to start while such a call is
// out). Nothing here measures time: the wait below ends only if it returns.
TEST(SftpFaults, ASilentServerHashIsGivenUpAndTheCallReturnsByItself) {
  SftpSandbox s;
  s.fill();
  s.ok({"index", "photos"});
  s.ok({"sync", "photos", "--to", "nas", "--init"});
  auto cfg = config::load(s.config_path());
  store::StoreOptions so;
  so.create = false;
  std::string what;
  {
    auto st = store::Store::open(s.db_path(), so);
    engine::sync::VerifyOptions o;
    o.full = true;
    o.stall.timeout_ns = 2LL * 1000000000;
    ::setenv("SQUIRREL_TEST_SILENT_SERVER_HASH", "1", 1);
    try {
      engine::sync::run_verify(cfg, st, "nas", o);
      what = "verify returned";
    } catch (const std::exception& e) {
      what = e.what();
    }
    ::unsetenv("SQUIRREL_TEST_SILENT_SERVER_HASH");
  }
  EXPECT_NE(what.find("made no progress"), std::string::npos) << what;
  await_given_up_calls_returned("nas");
  auto v = s.json({"verify", "nas", "--full"});
  EXPECT_EQ(v[0]["findings"].size(), 0u);
  EXPECT_EQ(v[0]["unchecked"], 0);
  s.ok({"sync", "photos", "--to", "nas"});
}

TEST(SftpFaults, ASyncKilledAtAnyStageLeavesAMirrorTheNextSyncCompletes) {
  SftpSandbox s;
  s.put("first", "one");
  s.ok({"index", "photos"});
  s.ok({"sync", "photos", "--to", "nas", "--init"});
  fs::path staging = s.vremote() / ".squirrel-staging";
  const int kFiles = 300;
  std::vector<std::pair<std::string, std::function<bool()>>> points{
      {"while staging", [&] { return files_under(staging) >= 20; }},
      {"with everything staged", [&] { return files_under(staging) >= kFiles; }},
      {"while committing", [&] { return files_under(s.vremote() / "r3") >= 100; }},
  };
  int round = 0;
  for (const auto& [name, reached] : points) {
    SCOPED_TRACE(name);
    ++round;
    for (int i = 0; i < kFiles; ++i)
      s.put("r" + std::to_string(round) + "/f" + std::to_string(i), noise(700, static_cast<std::uint32_t>(round * 1000 + i)));
    s.ok({"index", "photos"});
    sync_killed_when(s, reached);
    s.ok({"sync", "photos", "--to", "nas"});
    EXPECT_EQ(user_files(s.vremote()), user_files(s.volume_dir()));
    auto v = s.json({"verify", "nas", "--full"});
    EXPECT_EQ(v[0]["findings"].size(), 0u) << v.dump();
    EXPECT_EQ(store_problems(s), "");
  }
}

}  // namespace
}  // namespace sq::test
