// Each refusal cause of the offload gate (data-model.md, sync-offload-
// restore.md §4.3), pinned by name through engine::run_offload on real
// directories: a volume indexed, synced to a local mirror and then put into
// exactly the state that trips one check. Each test fails if its check is
// removed: the file it refuses would otherwise be offloaded. Evidence ages
// on a clock the test passes in (OffloadOptions::now_ns), never on the
// time the machine takes.
#include <gtest/gtest.h>

#include "engine/offload/offload.hpp"
#include "engine/sync/verify.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;
using store::RunStatus;

namespace {

constexpr std::int64_t kHour = 3600LL * 1000000000LL;

class OffloadGate : public ::testing::Test {
 protected:
  SyncSandbox sb;

  // Volume v with `volume_keys`; destinations d and e are local mirrors.
  void configure(const std::string& volume_keys) {
    sb.set_config("[volumes.v]\npath = '" + sb.src().string() + "'\n" + volume_keys +
                  "\n\n[destinations.d]\ntype = 'local'\nroot = '" + sb.dest_root().string() +
                  "'\n\n[destinations.e]\ntype = 'local'\nroot = '" + (sb.tmp() / "dest2").string() +
                  "'\n\n[backups]\ndir = '" + (sb.state() / "backups").string() + "'\n");
  }

  void SetUp() override {
    configure("sync_to = ['d']\noffload_requires = ['d']\n");
    sb.write("a.txt", "alpha");
    sb.write("dir/b.txt", "bravo");
    sb.write("c.txt", "charlie");
    ASSERT_EQ(sb.index().status, RunStatus::success);
    ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  }

  engine::OffloadReport offload(bool dry, std::optional<std::int64_t> now = std::nullopt) {
    engine::OffloadOptions o;
    o.selectors = {"."};
    o.dry_run = dry;
    o.per_file = true;
    o.now_ns = now;
    return engine::run_offload(sb.cfg(), sb.st(), "v", o);
  }

  // path -> "<target>:<cause>" of every refusal.
  static std::map<std::string, std::string> refused(const engine::OffloadReport& r) {
    std::map<std::string, std::string> out;
    for (const auto& [path, why] : r.per_file) {
      auto& s = out[path];
      s += (s.empty() ? "" : ",") + why.target + ":" + std::string(engine::to_string(why.cause));
    }
    return out;
  }

  // When the one evidence component of (v, d) was last verified.
  std::optional<std::int64_t> verified_at(const std::string& dest = "d") {
    auto vec = store::vector_of(sb.db(), sb.vol_id(), dest);
    EXPECT_EQ(vec.size(), 1u);
    return vec.empty() ? std::nullopt : vec[0].verified_at_ns;
  }
};

using Causes = std::map<std::string, std::string>;

}  // namespace

TEST_F(OffloadGate, TheSetUpPassesEveryFile) {
  auto r = offload(true);
  EXPECT_EQ(r.offloaded, 3);
  EXPECT_EQ(refused(r), Causes{});
}

// A required target whose evidence is gone (its marker is there, so the
// world check passes) has no evidence at all.
TEST_F(OffloadGate, NoEvidenceForARequiredTargetWithoutEvidence) {
  configure("sync_to = ['d', 'e']\noffload_requires = ['d', 'e']\n");
  ASSERT_EQ(sb.sync_init("e").status, RunStatus::success);
  sb.db().execute("DELETE FROM destination_run_ids WHERE destination = 'e'");
  auto r = offload(true);
  EXPECT_EQ(r.offloaded, 0);
  EXPECT_EQ(refused(r), (Causes{{"a.txt", "e:no-evidence"}, {"c.txt", "e:no-evidence"},
                                {"dir/b.txt", "e:no-evidence"}}));
  EXPECT_EQ(r.satisfied["d"], 3);
}

// A required target never synced to has no marker: the world refusal names
// that first, in place of the missing evidence.
TEST_F(OffloadGate, DestinationUnreachableForARequiredTargetNeverSyncedTo) {
  configure("sync_to = ['d', 'e']\noffload_requires = ['d', 'e']\n");
  auto r = offload(true);
  EXPECT_EQ(r.offloaded, 0);
  EXPECT_EQ(refused(r), (Causes{{"a.txt", "e:destination-unreachable"},
                                {"c.txt", "e:destination-unreachable"},
                                {"dir/b.txt", "e:destination-unreachable"}}));
}

// New content indexed after the push: the evidence does not reach the run
// that introduced it.
TEST_F(OffloadGate, EvidenceBehindForContentIndexedAfterThePush) {
  sb.write("new.txt", "november");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto r = offload(true);
  EXPECT_EQ(refused(r), (Causes{{"new.txt", "d:evidence-behind"}}));
  EXPECT_EQ(r.offloaded, 3);
}

// A new path whose content the destination already holds (a copy of a.txt):
// the evidence reaches the content's run, but no push has run since the
// path appeared, so its own copy is not there.
TEST_F(OffloadGate, NotPushedForAPathThatAppearedAfterTheLastPush) {
  sb.write("copy-of-a.txt", "alpha");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto r = offload(true);
  EXPECT_EQ(refused(r), (Causes{{"copy-of-a.txt", "d:not-pushed"}}));
  EXPECT_EQ(r.offloaded, 3);

  // A real run leaves it in place, and after a push it goes too.
  auto real = offload(false);
  EXPECT_EQ(real.offloaded, 3);
  EXPECT_EQ(read_bytes(sb.src() / "copy-of-a.txt"), "alpha");
  ASSERT_EQ(sb.sync().status, RunStatus::success);
  EXPECT_EQ(offload(false).offloaded, 1);
  EXPECT_FALSE(fs::exists(sb.src() / "copy-of-a.txt"));
}

// Evidence older than offload_max_evidence_age is stale; the boundary is
// exact on the given clock, and an unknown age counts as too old.
TEST_F(OffloadGate, EvidenceStaleOnTheGivenClockAndWhenItsAgeIsUnknown) {
  configure("sync_to = ['d']\noffload_requires = ['d']\noffload_max_evidence_age = '1h'\n");
  auto at = verified_at();
  ASSERT_TRUE(at);
  EXPECT_EQ(offload(true, *at + kHour).offloaded, 3) << "exactly the limit old is fresh";
  auto r = offload(true, *at + kHour + 1);
  EXPECT_EQ(r.offloaded, 0);
  EXPECT_EQ(refused(r), (Causes{{"a.txt", "d:evidence-stale"}, {"c.txt", "d:evidence-stale"},
                                {"dir/b.txt", "d:evidence-stale"}}));
  ASSERT_EQ(r.refusals.size(), 1u);
  EXPECT_EQ(r.refusals[0].next, "squirrel verify d (on an SFTP server that cannot run a hash command: squirrel verify d --download --full)");

  sb.db().execute("UPDATE destination_run_ids SET verified_at_ns = NULL WHERE destination = 'd'");
  EXPECT_EQ(refused(offload(true, *at))["a.txt"], "d:evidence-stale") << "unknown age fails closed";
}

// A copy whose bytes turned out wrong: verify marks it lost and demotes the
// target's evidence to presence+size. The damaged file is refused as not
// content-verified; the others still pass, because each of their copies
// carries a read-back checksum (the presence+size-with-fingerprint branch).
TEST_F(OffloadGate, NotContentVerifiedWhereOnlyPresenceIsLeftAndFingerprintsCarryTheRest) {
  auto mtime = mtime_ns(sb.vdest() / "a.txt");
  write_file(sb.vdest() / "a.txt", "ALPHA");  // same size and mtime: only a re-hash can tell
  set_mtime_ns(sb.vdest() / "a.txt", mtime);
  engine::sync::VerifyOptions full;
  full.full = true;
  auto v = engine::sync::run_verify(sb.cfg(), sb.st(), "d", full);
  ASSERT_EQ(v.findings.size(), 1u);
  auto vec = store::vector_of(sb.db(), sb.vol_id(), "d");
  ASSERT_EQ(vec.size(), 1u);
  ASSERT_TRUE(vec[0].method);
  ASSERT_EQ(store::to_string(*vec[0].method), "presence+size") << "the precondition: demoted evidence";
  EXPECT_EQ(refused(offload(true))["c.txt"], "d:alarm-latched") << "the finding latched the alarm";
  ASSERT_TRUE(engine::sync::acknowledge_alarm(sb.db(), "d", "test"));

  auto r = offload(true);
  EXPECT_EQ(refused(r), (Causes{{"a.txt", "d:not-content-verified"}}));
  EXPECT_EQ(r.offloaded, 2) << "c.txt and dir/b.txt pass on their copies' checksums";
  ASSERT_EQ(r.refusals.size(), 1u);
  EXPECT_EQ(r.refusals[0].next, "squirrel verify d --full (on an SFTP server that cannot run a hash command: squirrel verify d --download --full)");
}
