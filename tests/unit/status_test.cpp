// The "am I safe?" model (engine::build_status) on real directories: a
// volume indexed with engine::run_index and synced with
// engine::sync::run_mirror_sync into local mirrors, judged before and after
// the sync, after an alarm, after evidence goes stale, after failed,
// refused and partial syncs, on a cadence, and with offload policies — plus
// the light → exit code mapping.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/text.hpp"
#include "engine/offload/offload.hpp"
#include "engine/status.hpp"
#include "store/alarms.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;
using engine::Light;
using engine::SyncState;
using engine::TargetRole;
using store::RunStatus;
using ::testing::HasSubstr;

namespace {

constexpr std::int64_t kDay = 86400LL * 1000000000LL;
constexpr std::int64_t kHour = 3600LL * 1000000000LL;

class StatusTest : public ::testing::Test {
 protected:
  SyncSandbox sb;

  // Volume v with `volume_keys` added to its table; destinations d and e
  // are local mirrors at <tmp>/dest and <tmp>/dest2.
  void configure(const std::string& volume_keys) {
    sb.set_config("[volumes.v]\npath = '" + sb.src().string() + "'\n" + volume_keys +
                  "\n\n[destinations.d]\ntype = 'local'\nroot = '" + sb.dest_root().string() +
                  "'\n\n[destinations.e]\ntype = 'local'\nroot = '" + (sb.tmp() / "dest2").string() +
                  "'\n\n[backups]\ndir = '" + (sb.state() / "backups").string() + "'\n");
  }

  void seed_and_index() {
    sb.write("a.txt", "alpha");
    sb.write("dir/b.txt", "bravo");
    sb.write("dir/sub/c.bin", std::string(4096, 'c'));
    ASSERT_EQ(sb.index().status, RunStatus::success);
  }

  engine::StatusReport status(std::optional<std::string> volume = std::nullopt, std::int64_t at = now_ns()) {
    return engine::build_status(sb.cfg(), &sb.st(), volume, at);
  }

  static const engine::TargetStatus& target(const engine::StatusReport& r, const std::string& name) {
    for (const auto& t : r.volumes.at(0).targets)
      if (t.name == name) return t;
    throw std::runtime_error("no target " + name);
  }

  static std::string all_reasons(const engine::StatusReport& r) {
    std::string out;
    for (const auto& v : r.volumes) {
      for (const auto& why : v.reasons) out += why + "\n";
      for (const auto& t : v.targets)
        for (const auto& why : t.reasons) out += why + "\n";
    }
    return out;
  }

  void raise_alarm(const std::string& dest, std::int64_t run_id) {
    store::Tx tx(sb.db());
    store::raise_alarm_in_tx(sb.db(), dest, "verify-mismatch", "a.txt changed at the destination", run_id);
    tx.commit();
  }

  void set_verified_at(std::optional<std::int64_t> at) {
    sb.db().execute("UPDATE destination_run_ids SET verified_at_ns = ? WHERE destination = 'd'",
                    {at ? store::Value{*at} : store::Value{}});
  }
};

}  // namespace

TEST(StatusLights, ExitCodeFollowsTheLight) {
  EXPECT_EQ(engine::exit_code_for(Light::neutral), 0);
  EXPECT_EQ(engine::exit_code_for(Light::green), 0);
  EXPECT_EQ(engine::exit_code_for(Light::amber), 1);
  EXPECT_EQ(engine::exit_code_for(Light::red), 2);
  EXPECT_LT(Light::neutral, Light::green);
  EXPECT_LT(Light::green, Light::amber);
  EXPECT_LT(Light::amber, Light::red);
}

TEST_F(StatusTest, NeverIndexedVolumeIsAmberWithOrWithoutADatabase) {
  for (store::Store* st : {&sb.st(), static_cast<store::Store*>(nullptr)}) {
    auto r = engine::build_status(sb.cfg(), st, std::nullopt, now_ns());
    ASSERT_EQ(r.volumes.size(), 1u);
    const auto& v = r.volumes[0];
    EXPECT_FALSE(v.indexed);
    EXPECT_FALSE(v.last_index);
    EXPECT_EQ(v.light, Light::amber);
    EXPECT_EQ(r.overall, Light::amber);
    EXPECT_EQ(target(r, "d").state, SyncState::never_synced);
    EXPECT_EQ(target(r, "d").durable, std::nullopt);
    EXPECT_THAT(all_reasons(r), HasSubstr("squirrel index v"));
  }
}

TEST_F(StatusTest, IndexedButNeverSyncedIsAmberAndNotDurable) {
  seed_and_index();
  auto r = status();
  const auto& v = r.volumes.at(0);
  EXPECT_TRUE(v.indexed);
  ASSERT_TRUE(v.last_index);
  EXPECT_EQ(v.last_index->status, RunStatus::success);
  const auto& d = target(r, "d");
  EXPECT_EQ(d.role, TargetRole::sync);
  EXPECT_EQ(d.kind, engine::TargetKind::destination);
  EXPECT_EQ(d.state, SyncState::never_synced);
  EXPECT_FALSE(d.last_sync);
  EXPECT_EQ(d.durable, std::optional(false));
  EXPECT_EQ(d.evidence.components, 0);
  EXPECT_EQ(d.light, Light::amber);
  EXPECT_EQ(r.overall, Light::amber);
  EXPECT_EQ(engine::exit_code_for(r.overall), 1);
  EXPECT_THAT(all_reasons(r), HasSubstr("never synced to d"));
  EXPECT_EQ(v.offload.present_files, 3);
  EXPECT_EQ(v.offload.present_bytes, 5 + 5 + 4096);
  EXPECT_FALSE(v.offload.has_policy);
}

TEST_F(StatusTest, AfterASuccessfulSyncEverythingIsGreenAndDurable) {
  seed_and_index();
  auto synced = sb.sync_init();
  ASSERT_EQ(synced.status, RunStatus::success);
  auto r = status();
  const auto& d = target(r, "d");
  ASSERT_TRUE(d.last_sync);
  EXPECT_EQ(d.last_sync->id, synced.run_id);
  EXPECT_EQ(d.last_sync->status, RunStatus::success);
  EXPECT_EQ(d.state, SyncState::ok);
  EXPECT_EQ(d.durable, std::optional(true));
  EXPECT_EQ(d.evidence.methods, std::vector<std::string>{"fingerprint-verified"});
  EXPECT_FALSE(d.evidence.age_unknown);
  EXPECT_TRUE(d.evidence.oldest_verified_at_ns);
  EXPECT_FALSE(d.evidence.stale);
  EXPECT_TRUE(d.reasons.empty()) << all_reasons(r);
  EXPECT_EQ(r.volumes.at(0).light, Light::green);
  EXPECT_EQ(r.overall, Light::green);
  EXPECT_EQ(engine::exit_code_for(r.overall), 0);
  EXPECT_TRUE(r.alarms.empty());
}

TEST_F(StatusTest, AFileIndexedAfterTheSyncIsNotDurableYet) {
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  sb.write("new.txt", "new since the sync");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto r = status();
  EXPECT_EQ(target(r, "d").durable, std::optional(false));
  EXPECT_EQ(target(r, "d").state, SyncState::ok);
  EXPECT_EQ(r.overall, Light::amber);
  EXPECT_THAT(all_reasons(r), HasSubstr("not covered yet"));
  ASSERT_EQ(sb.sync().status, RunStatus::success);
  EXPECT_EQ(status().overall, Light::green);
}

TEST_F(StatusTest, TheDurableCheckUsesTheSameOriginMaximaAsTheStore) {
  seed_and_index();
  sb.write("later.txt", "second run");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto files = engine::load_present_files(sb.db(), sb.vol_id(), sb.st().self_node_id(), true);
  auto mine = engine::origin_maxima_of(files);
  auto theirs = store::present_origin_maxima(sb.db(), sb.vol_id(), sb.st().self_node_id());
  ASSERT_EQ(mine.size(), theirs.size());
  for (std::size_t i = 0; i < mine.size(); ++i) {
    EXPECT_EQ(mine[i].node_id, theirs[i].node_id);
    EXPECT_EQ(mine[i].run_id, theirs[i].run_id);
  }
  std::set<std::string> paths;
  for (const auto& f : files) paths.insert(f.gate.path);
  EXPECT_EQ(paths, (std::set<std::string>{"a.txt", "dir/b.txt", "dir/sub/c.bin", "later.txt"}));
}

// Content a peer introduced counts at its recorded origin (node, run), in
// status's one-pass maxima exactly as in the store's; a peer content no
// present file holds does not count. The rows are written the way a peer
// sync records them: a contents row carrying its origin, a file row on it.
TEST_F(StatusTest, ContentAPeerIntroducedCountsAtItsOriginInBothMaxima) {
  seed_and_index();
  auto run = sb.db().query_i64("SELECT max(id) FROM runs WHERE kind = 'index'").value_or(0);
  auto root = sb.db().query_i64("SELECT id FROM folders WHERE volume_id = ? AND parent_id IS NULL",
                                {store::Value{sb.vol_id()}});
  ASSERT_TRUE(root);
  sb.db().execute("INSERT INTO nodes(name, endpoint) VALUES ('peer', 'https://peer.example')");
  auto peer = sb.db().last_insert_id();
  auto add = [&](const std::string& name, std::int64_t origin_run, const char* status) {
    auto d = blake3(name);
    sb.db().execute("INSERT INTO contents(blake3, size_bytes, origin_node_id, origin_run_id) VALUES (?, 7, ?, ?)",
                    {store::Value{store::Blob(d.begin(), d.end())}, store::Value{peer}, store::Value{origin_run}});
    auto content = sb.db().last_insert_id();
    sb.db().execute("INSERT INTO files(folder_id, name, content_id, mtime_ns, inode, status, first_seen_run_id, "
                    "last_seen_run_id, status_changed_run_id, indexed_at_ns) VALUES (?, CAST(? AS BLOB), ?, 1, NULL, "
                    "?, ?, ?, ?, 1)",
                    {store::Value{*root}, store::Value{name}, store::Value{content}, store::Value{std::string(status)},
                     store::Value{run}, store::Value{run}, store::Value{run}});
  };
  add("from-peer.txt", 777, "present");
  add("older-from-peer.txt", 5, "present");
  add("gone-from-peer.txt", 999, "missing");

  auto files = engine::load_present_files(sb.db(), sb.vol_id(), sb.st().self_node_id(), true);
  bool seen = false;
  for (const auto& f : files) {
    if (f.gate.path != "from-peer.txt") continue;
    seen = true;
    EXPECT_EQ(f.gate.origin_node, peer);
    EXPECT_EQ(f.gate.origin_run, 777);
  }
  EXPECT_TRUE(seen);
  auto mine = engine::origin_maxima_of(files);
  auto theirs = store::present_origin_maxima(sb.db(), sb.vol_id(), sb.st().self_node_id());
  std::map<std::int64_t, std::int64_t> expected{{sb.st().self_node_id(), run}, {peer, 777}};
  std::map<std::int64_t, std::int64_t> got_mine, got_theirs;
  for (const auto& m : mine) got_mine[m.node_id] = m.run_id;
  for (const auto& m : theirs) got_theirs[m.node_id] = m.run_id;
  EXPECT_EQ(got_mine, expected);
  EXPECT_EQ(got_theirs, expected);
}

TEST_F(StatusTest, ACopyOfOldContentKeepsTheRunThatIntroducedIt) {
  seed_and_index();
  auto first = sb.db().query_i64("SELECT max(id) FROM runs WHERE kind = 'index'").value_or(0);
  sb.write("copy-of-a.txt", "alpha");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  for (const auto& f : engine::load_present_files(sb.db(), sb.vol_id(), sb.st().self_node_id(), true)) {
    EXPECT_EQ(f.gate.origin_node, sb.st().self_node_id()) << f.gate.path;
    EXPECT_EQ(f.gate.origin_run, first) << f.gate.path;
  }
}

TEST_F(StatusTest, ALatchedAlarmIsRedAndListedOnTop) {
  seed_and_index();
  auto synced = sb.sync_init();
  ASSERT_EQ(synced.status, RunStatus::success);
  raise_alarm("d", synced.run_id);
  for (auto scope : {std::optional<std::string>(), std::optional<std::string>("v")}) {
    auto r = status(scope);
    EXPECT_EQ(target(r, "d").state, SyncState::alarm);
    EXPECT_EQ(target(r, "d").light, Light::red);
    EXPECT_EQ(r.overall, Light::red);
    EXPECT_EQ(engine::exit_code_for(r.overall), 2);
    ASSERT_EQ(r.alarms.size(), 1u);
    EXPECT_EQ(r.alarms[0].destination, "d");
    EXPECT_THAT(all_reasons(r), HasSubstr("squirrel verify ack d"));
  }
}

TEST_F(StatusTest, AnAlarmOnAnotherDestinationOnlyCountsWithoutAVolumeFilter) {
  seed_and_index();
  auto synced = sb.sync_init();
  ASSERT_EQ(synced.status, RunStatus::success);
  raise_alarm("elsewhere", synced.run_id);
  auto all = status();
  EXPECT_EQ(all.overall, Light::red);
  ASSERT_EQ(all.alarms.size(), 1u);
  EXPECT_EQ(all.volumes.at(0).light, Light::green);
  auto scoped = status("v");
  EXPECT_TRUE(scoped.alarms.empty());
  EXPECT_EQ(scoped.overall, Light::green);
}

TEST_F(StatusTest, StaleOrUnknownEvidenceIsAmber) {
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  std::int64_t now = now_ns();
  set_verified_at(now - 31 * kDay);
  auto r = status(std::nullopt, now);
  const auto& d = target(r, "d");
  EXPECT_TRUE(d.evidence.stale);
  EXPECT_FALSE(d.evidence.age_unknown);
  EXPECT_EQ(d.evidence.oldest_verified_at_ns, std::optional(now - 31 * kDay));
  EXPECT_EQ(d.evidence.max_age_ns, std::optional(30 * kDay));
  EXPECT_EQ(d.durable, std::optional(true));
  EXPECT_EQ(r.overall, Light::amber);
  EXPECT_THAT(all_reasons(r), HasSubstr("squirrel verify d"));

  set_verified_at(std::nullopt);
  auto unknown = status();
  EXPECT_TRUE(target(unknown, "d").evidence.age_unknown);
  EXPECT_FALSE(target(unknown, "d").evidence.oldest_verified_at_ns);
  EXPECT_TRUE(target(unknown, "d").evidence.stale);
  EXPECT_EQ(unknown.overall, Light::amber);
  EXPECT_THAT(all_reasons(unknown), HasSubstr("never verified"));
}

TEST_F(StatusTest, NoEvidenceAgeLimitMeansNeverStale) {
  configure("sync_to = ['d']\noffload_max_evidence_age = 'off'");
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  set_verified_at(std::nullopt);
  auto r = status();
  EXPECT_FALSE(target(r, "d").evidence.stale);
  EXPECT_FALSE(target(r, "d").evidence.max_age_ns);
  EXPECT_EQ(r.overall, Light::green);
}

TEST_F(StatusTest, ARequiredTargetWithoutEvidenceIsRed) {
  configure("sync_to = ['d']\noffload_requires = ['d', 'e']");
  seed_and_index();
  auto r = status();
  EXPECT_EQ(target(r, "d").role, TargetRole::both);
  EXPECT_EQ(target(r, "d").light, Light::red);
  const auto& e = target(r, "e");
  EXPECT_EQ(e.role, TargetRole::offload);
  EXPECT_EQ(e.state, SyncState::offload_only);
  EXPECT_EQ(e.light, Light::red);
  EXPECT_EQ(r.overall, Light::red);
  EXPECT_THAT(all_reasons(r), HasSubstr("offload requires e"));
  ASSERT_EQ(r.volumes.at(0).targets.size(), 2u);
  EXPECT_EQ(r.volumes.at(0).targets[0].name, "d");  // sync_to first, each name once
}

TEST_F(StatusTest, AnEmptyVolumeNeedsNoEvidence) {
  configure("sync_to = ['d']\noffload_requires = ['d']");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto r = status();
  EXPECT_EQ(target(r, "d").durable, std::nullopt);  // n/a: nothing to cover
  EXPECT_EQ(target(r, "d").light, Light::amber);  // never synced, nothing worse
  EXPECT_EQ(r.overall, Light::amber);
}

TEST_F(StatusTest, OffloadReadinessAgreesWithAnOffloadDryRun) {
  configure("sync_to = ['d']\noffload_requires = ['d']");
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  sb.write("unsynced.txt", "not at d yet");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto r = status();
  const auto& o = r.volumes.at(0).offload;
  EXPECT_TRUE(o.has_policy);
  EXPECT_EQ(o.present_files, 4);
  EXPECT_EQ(o.ready_files, 3);
  engine::OffloadOptions dry;
  dry.selectors = {"."};
  dry.dry_run = true;
  auto rep = engine::run_offload(sb.cfg(), sb.st(), "v", dry);
  EXPECT_EQ(o.ready_files, rep.offloaded);
  EXPECT_EQ(o.ready_bytes, rep.bytes);
  EXPECT_EQ(o.present_files, rep.candidates);
}

TEST_F(StatusTest, ReadinessFollowsStaleEvidence) {
  configure("sync_to = ['d']\noffload_requires = ['d']");
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  EXPECT_EQ(status().volumes.at(0).offload.ready_files, 3);
  set_verified_at(now_ns() - 31 * kDay);
  EXPECT_EQ(status().volumes.at(0).offload.ready_files, 0);
}

TEST_F(StatusTest, ARefusedFirstSyncThatAsksForInitNeedsInit) {
  seed_and_index();
  EXPECT_THROW(sb.sync(), Error);  // no root yet, no --init
  auto r = status();
  const auto& d = target(r, "d");
  ASSERT_TRUE(d.last_sync);
  EXPECT_EQ(d.last_sync->status, RunStatus::refused);
  EXPECT_THAT(d.last_sync->error, HasSubstr("--init"));
  EXPECT_EQ(d.state, SyncState::needs_init);
  EXPECT_EQ(d.light, Light::amber);
  EXPECT_EQ(r.overall, Light::amber);
}

TEST_F(StatusTest, ARefusalAfterASuccessIsRed) {
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  fs::remove_all(sb.dest_root());  // an unmounted disk looks like this
  EXPECT_THROW(sb.sync(), Error);
  auto r = status();
  EXPECT_EQ(target(r, "d").state, SyncState::refused);
  EXPECT_EQ(r.overall, Light::red);
}

TEST_F(StatusTest, TheLastFinishedSyncDecidesFailedAndPartial) {
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  auto record = [&](RunStatus s, const std::string& error) {
    store::record_terminal_run(sb.db(), {store::RunKind::sync, sb.vol_id(), "d"}, s, error);
  };
  record(RunStatus::failed, "disk full");
  auto failed = status();
  EXPECT_EQ(target(failed, "d").state, SyncState::failed);
  EXPECT_EQ(failed.overall, Light::red);
  EXPECT_THAT(all_reasons(failed), HasSubstr("disk full"));
  record(RunStatus::partial, "1 path(s) failed");
  auto partial = status();
  EXPECT_EQ(target(partial, "d").state, SyncState::partial);
  EXPECT_EQ(partial.overall, Light::amber);
  record(RunStatus::aborted, "");
  EXPECT_EQ(target(status(), "d").state, SyncState::failed);
  // A running sync is not a result: the last finished one still decides.
  auto begun = store::begin_run(sb.db(), {store::RunKind::sync, sb.vol_id(), "d"});
  ASSERT_TRUE(begun.began());
  EXPECT_EQ(target(status(), "d").state, SyncState::failed);
}

TEST_F(StatusTest, ASyncCadenceMakesOldSyncsLateThenStalled) {
  configure("sync_to = ['d']\nsync_every = '1h'");
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  std::int64_t now = now_ns();
  EXPECT_EQ(target(status(std::nullopt, now), "d").state, SyncState::ok);
  auto late = status(std::nullopt, now + 2 * kHour);
  EXPECT_EQ(target(late, "d").state, SyncState::late);
  EXPECT_EQ(late.overall, Light::amber);
  auto stalled = status(std::nullopt, now + 4 * kHour);
  EXPECT_EQ(target(stalled, "d").state, SyncState::stalled);
  EXPECT_EQ(stalled.overall, Light::red);
}

TEST_F(StatusTest, AnOldIndexIsAmber) {
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  auto r = status(std::nullopt, now_ns() + 8 * kDay);
  EXPECT_EQ(r.volumes.at(0).light, Light::amber);
  EXPECT_THAT(all_reasons(r), HasSubstr("last indexed"));
}

TEST_F(StatusTest, AVolumeWithoutTargetsIsAmber) {
  configure("");
  seed_and_index();
  auto r = status();
  EXPECT_TRUE(r.volumes.at(0).targets.empty());
  EXPECT_EQ(r.overall, Light::amber);
  EXPECT_THAT(all_reasons(r), HasSubstr("nothing copies v"));
}

TEST_F(StatusTest, AnUnknownVolumeIsAnError) {
  try {
    status("nope");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
    EXPECT_THAT(e.what(), HasSubstr("unknown volume \"nope\""));
  }
}
