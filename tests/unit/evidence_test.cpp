// Durability evidence (seed properties 3 and 6): the one monotonic upsert,
// the method enum and its one content-verified answer, the advance snapshot
// of origin maxima, and the component-wise advance with push freshness.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/text.hpp"
#include "index_util.hpp"
#include "store/evidence.hpp"
#include "store/files.hpp"
#include "store/runs.hpp"
#include "store/volumes.hpp"
#include "test_util.hpp"

using namespace sq;
using namespace sq::store;

namespace {

constexpr VerifyMethod kAllMethods[] = {VerifyMethod::size_mtime,     VerifyMethod::presence_size,
                                        VerifyMethod::checksum,       VerifyMethod::fingerprint_verified,
                                        VerifyMethod::peer_blake3,    VerifyMethod::kopia_verify,
                                        VerifyMethod::restic_check};

struct LogRow {
  std::int64_t run = 0;
  std::optional<std::string> method;
  std::optional<std::int64_t> source;
  std::int64_t verified = 0, rewind = 0;
  bool operator==(const LogRow&) const = default;
};

class EvidenceTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  Store store = test::open_store(dir);
  Db& db = store.db();
  std::int64_t self = store.self_node_id();
  std::int64_t vol = make_volume("photos");
  std::int64_t peer = make_peer("peer1");
  std::int64_t peer2 = make_peer("peer2");

  std::int64_t make_volume(const std::string& name) {
    Tx tx(db);
    auto id = create_volume(db, name, "/" + name).id;
    tx.commit();
    return id;
  }
  std::int64_t make_peer(const std::string& name) {
    db.execute("INSERT INTO nodes(name, endpoint) VALUES (?, ?)", {Value{name}, Value{"https://" + name}});
    return db.last_insert_id();
  }

  VectorWrite write(std::int64_t run, std::optional<VerifyMethod> m = std::nullopt, bool verified = false,
                    std::optional<std::int64_t> source = std::nullopt, std::int64_t node = 0) {
    VectorWrite w;
    w.volume_id = vol;
    w.destination = "nas";
    w.origin_node_id = node ? node : self;
    w.origin_run_id = run;
    w.method = m;
    w.verified = verified;
    w.source_node = source;
    return w;
  }

  UpsertOutcome upsert(const VectorWrite& w) {
    Tx tx(db);
    auto o = upsert_vector_in_tx(db, w);
    tx.commit();
    return o;
  }

  std::optional<Component> component(std::int64_t node = 0, const std::string& dest = "nas") {
    for (auto& c : vector_of(db, vol, dest))
      if (c.origin_node_id == (node ? node : self)) return c;
    return std::nullopt;
  }

  std::vector<LogRow> log() {
    std::vector<LogRow> out;
    for (const auto& r : db.query_rows(
             "SELECT origin_run_id, verify_method, source_node_id, verified, rewind FROM destination_run_ids_history "
             "WHERE volume_id = ? AND destination = 'nas' ORDER BY id",
             {Value{vol}})) {
      LogRow l;
      l.run = std::get<std::int64_t>(r[0]);
      if (auto* s = std::get_if<std::string>(&r[1])) l.method = *s;
      if (auto* s = std::get_if<std::int64_t>(&r[2])) l.source = *s;
      l.verified = std::get<std::int64_t>(r[3]);
      l.rewind = std::get<std::int64_t>(r[4]);
      out.push_back(l);
    }
    return out;
  }

  test::Rows vector_table() { return db.query_rows("SELECT * FROM destination_run_ids ORDER BY 1, 2, 3"); }
};

}  // namespace

// ---- the method enum -------------------------------------------------------

TEST(EvidenceMethod, IsContentVerifiedForEveryMethod) {
  std::map<VerifyMethod, bool> expected = {
      {VerifyMethod::size_mtime, false},          {VerifyMethod::presence_size, false},
      {VerifyMethod::checksum, false},            {VerifyMethod::fingerprint_verified, true},
      {VerifyMethod::peer_blake3, true},          {VerifyMethod::kopia_verify, true},
      {VerifyMethod::restic_check, true}};
  ASSERT_EQ(expected.size(), std::size(kAllMethods));
  for (auto m : kAllMethods) EXPECT_EQ(is_content_verified(m), expected.at(m)) << to_string(m);
  EXPECT_FALSE(is_content_verified(std::nullopt));
}

TEST(EvidenceMethod, NamesRoundTripAndUnknownNamesAreNotMethods) {
  std::set<std::string> names;
  for (auto m : kAllMethods) {
    auto name = std::string(to_string(m));
    EXPECT_TRUE(names.insert(name).second) << name;
    EXPECT_EQ(parse_verify_method(name), m) << name;
  }
  EXPECT_EQ(to_string(VerifyMethod::fingerprint_verified), "fingerprint-verified");
  EXPECT_EQ(to_string(VerifyMethod::presence_size), "presence+size");
  for (const char* bad : {"", "blake3", "FINGERPRINT-VERIFIED", "unknown", "size+mtime "})
    EXPECT_FALSE(parse_verify_method(bad).has_value()) << bad;
}

// ---- the monotonic upsert ---------------------------------------------------

TEST_F(EvidenceTest, FirstWriteInsertsOneComponentAndOneLogRow) {
  EXPECT_EQ(upsert(write(7, VerifyMethod::presence_size)), UpsertOutcome::inserted);
  auto c = component();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->origin_run_id, 7);
  EXPECT_EQ(c->method, VerifyMethod::presence_size);
  EXPECT_FALSE(c->source_node_id);
  EXPECT_FALSE(c->verified_at_ns);
  EXPECT_EQ(count_history(db, vol, "nas"), 1);
  EXPECT_EQ(log(), (std::vector<LogRow>{{7, "presence+size", std::nullopt, 0, 0}}));
}

TEST_F(EvidenceTest, NeverRewindsWithoutTheFlagAndARefusedRewindWritesNothing) {
  upsert(write(10, VerifyMethod::fingerprint_verified, true));
  auto before = vector_table();
  auto log_before = log();
  for (std::int64_t lower : {9, 1, 0}) {
    for (bool verified : {false, true}) {
      auto w = write(lower, verified ? std::optional(VerifyMethod::peer_blake3) : std::nullopt, verified);
      EXPECT_EQ(upsert(w), UpsertOutcome::refused_rewind) << lower;
    }
  }
  EXPECT_EQ(vector_table(), before);
  EXPECT_EQ(log(), log_before);
}

TEST_F(EvidenceTest, AnExplicitRewindLowersAndIsLoggedAsARewind) {
  upsert(write(10, VerifyMethod::fingerprint_verified, true));
  auto w = write(4, VerifyMethod::presence_size);
  w.allow_rewind = true;
  EXPECT_EQ(upsert(w), UpsertOutcome::rewound);
  auto c = component();
  EXPECT_EQ(c->origin_run_id, 4);
  EXPECT_EQ(c->method, VerifyMethod::presence_size);
  EXPECT_FALSE(c->verified_at_ns) << "an unverified rewind keeps no verification time";
  ASSERT_EQ(log().size(), 2u);
  EXPECT_EQ(log().back(), (LogRow{4, "presence+size", std::nullopt, 0, 1}));
  // allow_rewind on a write that does not go down is an ordinary write.
  auto up = write(6, VerifyMethod::presence_size);
  up.allow_rewind = true;
  EXPECT_EQ(upsert(up), UpsertOutcome::advanced);
  EXPECT_EQ(log().back().rewind, 0);
}

TEST_F(EvidenceTest, ExactlyOneLogRowPerAppliedWrite) {
  struct Step {
    VectorWrite w;
    UpsertOutcome expect;
    bool applied;
  };
  auto rewind = write(2);
  rewind.allow_rewind = true;
  std::vector<Step> steps = {
      {write(3), UpsertOutcome::inserted, true},
      {write(3), UpsertOutcome::reconfirmed, true},
      {write(5, VerifyMethod::presence_size), UpsertOutcome::advanced, true},
      {write(4, VerifyMethod::presence_size), UpsertOutcome::refused_rewind, false},
      {write(5, VerifyMethod::fingerprint_verified, true), UpsertOutcome::reconfirmed, true},
      {rewind, UpsertOutcome::rewound, true},
      {write(1), UpsertOutcome::refused_rewind, false},
      {write(8, VerifyMethod::peer_blake3, true, peer), UpsertOutcome::advanced, true},
  };
  std::int64_t expected = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(upsert(steps[i].w), steps[i].expect) << "step " << i;
    expected += steps[i].applied;
    EXPECT_EQ(count_history(db, vol, "nas"), expected) << "step " << i;
  }
  // The log is insert-only.
  EXPECT_THROW(db.execute("DELETE FROM destination_run_ids_history"), Error);
  EXPECT_THROW(db.execute("UPDATE destination_run_ids_history SET origin_run_id = 99"), Error);
  EXPECT_EQ(count_history(db, vol, "nas"), expected);
}

TEST_F(EvidenceTest, OnlyVerifiedWritesStampVerifiedAt) {
  upsert(write(3, VerifyMethod::presence_size));
  EXPECT_FALSE(component()->verified_at_ns) << "an unverified insert is not verified";
  std::int64_t t0 = now_ns();
  upsert(write(3, VerifyMethod::fingerprint_verified, true));
  std::int64_t t1 = now_ns();
  auto c = component();
  ASSERT_TRUE(c->verified_at_ns);
  EXPECT_GE(*c->verified_at_ns, t0);
  EXPECT_LE(*c->verified_at_ns, t1);
  EXPECT_EQ(c->method, VerifyMethod::fingerprint_verified);
}

TEST_F(EvidenceTest, AnUnverifiedEqualReassertionKeepsVerifiedAtAndMethod) {
  upsert(write(3, VerifyMethod::fingerprint_verified, true));
  auto stamped = component()->verified_at_ns;
  ASSERT_TRUE(stamped);
  auto updated = component()->updated_at_ns;
  for (auto m : {std::optional<VerifyMethod>{}, std::optional(VerifyMethod::presence_size)}) {
    EXPECT_EQ(upsert(write(3, m)), UpsertOutcome::reconfirmed);
    auto c = component();
    EXPECT_EQ(c->verified_at_ns, stamped) << "re-asserting without a verification never refreshes the time";
    EXPECT_GE(c->updated_at_ns, updated) << "updated_at still records the applied write";
    if (!m) EXPECT_EQ(c->method, VerifyMethod::fingerprint_verified) << "a methodless re-confirmation keeps the method";
    else EXPECT_EQ(c->method, *m) << "a named method always wins";
  }
}

TEST_F(EvidenceTest, AVerifiedEqualReassertionRefreshesVerifiedAt) {
  auto old = write(3, VerifyMethod::fingerprint_verified, true);
  old.verified_at = now_ns() - 86'400'000'000'000LL;  // a day ago
  upsert(old);
  EXPECT_EQ(component()->verified_at_ns, old.verified_at);
  std::int64_t t0 = now_ns();
  upsert(write(3, VerifyMethod::fingerprint_verified, true));
  EXPECT_GE(*component()->verified_at_ns, t0);
}

TEST_F(EvidenceTest, AnUnverifiedStrictAdvanceClearsVerifiedAt) {
  upsert(write(3, VerifyMethod::fingerprint_verified, true));
  ASSERT_TRUE(component()->verified_at_ns);
  EXPECT_EQ(upsert(write(4, VerifyMethod::presence_size)), UpsertOutcome::advanced);
  EXPECT_FALSE(component()->verified_at_ns) << "the new coverage is unverified: unknown age";
  upsert(write(5, VerifyMethod::fingerprint_verified, true));
  ASSERT_TRUE(component()->verified_at_ns);
  EXPECT_EQ(upsert(write(6)), UpsertOutcome::advanced);
  EXPECT_FALSE(component()->verified_at_ns);
  EXPECT_FALSE(component()->method) << "a methodless strict advance clears the method";
}

TEST_F(EvidenceTest, ARelayedVerificationTimeIsCappedAtNow) {
  auto w = write(3, VerifyMethod::peer_blake3, true, peer);
  w.verified_at = now_ns() + 3'600'000'000'000LL;  // an hour in the future
  upsert(w);
  EXPECT_LE(*component()->verified_at_ns, now_ns());
  auto past = write(4, VerifyMethod::peer_blake3, true, peer);
  past.verified_at = 1'000'000'000LL;
  upsert(past);
  EXPECT_EQ(component()->verified_at_ns, 1'000'000'000LL);
}

TEST_F(EvidenceTest, AContentVerifiedMethodWithoutAVerificationIsRejectedAndWritesNothing) {
  for (auto m : kAllMethods) {
    if (!is_content_verified(m)) continue;
    EXPECT_THROW(upsert(write(3, m, false)), Error) << to_string(m);
  }
  EXPECT_THROW(upsert(write(3, std::nullopt, true)), Error) << "a verification must name its method";
  EXPECT_FALSE(component());
  EXPECT_EQ(count_history(db, vol, "nas"), 0);
  // The weaker methods may be written without a verification.
  for (auto m : kAllMethods)
    if (!is_content_verified(m)) { EXPECT_NO_THROW(upsert(write(3, m, false))) << to_string(m); }
  // An existing component is not touched by a rejected write either.
  auto before = vector_table();
  EXPECT_THROW(upsert(write(9, VerifyMethod::fingerprint_verified, false)), Error);
  EXPECT_EQ(vector_table(), before);
  auto empty_dest = write(3, VerifyMethod::presence_size);
  empty_dest.destination.clear();
  EXPECT_THROW(upsert(empty_dest), Error);
}

TEST_F(EvidenceTest, MethodAndSourceDescribeTheSameWrite) {
  // A peer asserts run 5 with its own verification: the component is the peer's.
  upsert(write(5, VerifyMethod::peer_blake3, true, peer));
  EXPECT_EQ(component()->source_node_id, peer);
  EXPECT_EQ(component()->method, VerifyMethod::peer_blake3);

  // A local write carrying a method reclaims it: both method and source are local.
  upsert(write(5, VerifyMethod::fingerprint_verified, true));
  EXPECT_FALSE(component()->source_node_id);
  EXPECT_EQ(component()->method, VerifyMethod::fingerprint_verified);

  // A methodless equal-run re-confirmation from another peer keeps the
  // method, so it must keep the source that method came from.
  EXPECT_EQ(upsert(write(5, std::nullopt, false, peer2)), UpsertOutcome::reconfirmed);
  EXPECT_EQ(component()->method, VerifyMethod::fingerprint_verified);
  EXPECT_FALSE(component()->source_node_id) << "the kept method was measured locally, not by peer2";
  EXPECT_EQ(log().back(), (LogRow{5, "fingerprint-verified", std::nullopt, 0, 0}))
      << "the log row describes the component the write left";

  // A peer re-confirming the same run with the same method never steals local provenance.
  upsert(write(5, VerifyMethod::fingerprint_verified, true, peer2));
  EXPECT_FALSE(component()->source_node_id);

  // A peer changing the method at the same run, or advancing, takes the component.
  upsert(write(5, VerifyMethod::peer_blake3, true, peer2));
  EXPECT_EQ(component()->source_node_id, peer2);
  EXPECT_EQ(component()->method, VerifyMethod::peer_blake3);
  upsert(write(6, VerifyMethod::peer_blake3, true, peer));
  EXPECT_EQ(component()->source_node_id, peer);

  // Every log row pairs the method and source the row ended up with.
  auto last = log().back();
  EXPECT_EQ(last.method, "peer-blake3");
  EXPECT_EQ(last.source, peer);
}

TEST_F(EvidenceTest, ComponentsAreKeptPerVolumeDestinationAndOriginNode) {
  upsert(write(5, VerifyMethod::presence_size));
  upsert(write(9, VerifyMethod::presence_size, false, std::nullopt, peer));
  auto other = write(2, VerifyMethod::presence_size);
  other.destination = "cloud";
  upsert(other);
  EXPECT_EQ(component()->origin_run_id, 5);
  EXPECT_EQ(component(peer)->origin_run_id, 9);
  EXPECT_EQ(component(0, "cloud")->origin_run_id, 2);
  EXPECT_EQ(vector_of(db, vol, "nas").size(), 2u);
}

// ---- the advance snapshot -------------------------------------------------

namespace {

// A sandbox with a real volume on disk, indexed by the engine.
class EvidenceOriginMaxima : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::filesystem::path src = dir / "src";
  config::Config cfg = (std::filesystem::create_directories(src), test::volume_config(src));
  Store store = test::open_store(dir);
  Db& db = store.db();
  std::int64_t self = store.self_node_id();

  std::int64_t index() {
    auto r = engine::run_index(cfg, store, "v", test::index_opts());
    EXPECT_EQ(r.status, RunStatus::success);
    return r.run_id;
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> maxima() {
    std::vector<std::pair<std::int64_t, std::int64_t>> out;
    for (auto& m : present_origin_maxima(db, test::volume_id(db), self)) out.emplace_back(m.node_id, m.run_id);
    return out;
  }
};

}  // namespace

TEST_F(EvidenceOriginMaxima, EmptyVolumeHasNoComponents) {
  index();
  EXPECT_TRUE(maxima().empty());
}

TEST_F(EvidenceOriginMaxima, LocalContentCountsAtItsEarliestFirstSeenRun) {
  test::write_file(src / "a", "A");
  auto r1 = index();
  test::write_file(src / "b", "B");
  auto r2 = index();
  EXPECT_EQ(maxima(), (decltype(maxima()){{self, r2}}));

  // A copy of old content at a new path does not make it newer.
  test::write_file(src / "copy-of-a", "A");
  std::filesystem::remove(src / "b");
  index();
  EXPECT_EQ(maxima(), (decltype(maxima()){{self, r1}}));

  // Neither does content that comes back after being superseded at its path.
  test::write_file(src / "a", "A2");
  index();
  std::filesystem::remove(src / "copy-of-a");
  test::write_file(src / "a", "A");
  index();
  EXPECT_EQ(maxima(), (decltype(maxima()){{self, r1}}));
}

TEST_F(EvidenceOriginMaxima, ReservedSubtreesAreExcluded) {
  test::write_file(src / "a", "A");
  auto r1 = index();
  test::write_file(src / ".squirrel-history/run-3/old", "OLD");
  test::write_file(src / ".squirrel-index/run-3", "R");
  test::write_file(src / ".squirrel-staging/run-3/k", "S");
  test::write_file(src / "deep/.squirrel-history-like", "not reserved below the root");
  auto r2 = index();
  EXPECT_EQ(maxima(), (decltype(maxima()){{self, r2}}));
  std::filesystem::remove(src / "deep/.squirrel-history-like");
  index();
  EXPECT_EQ(maxima(), (decltype(maxima()){{self, r1}}))
      << "content only under .squirrel-* at the volume root never counts";
}

TEST_F(EvidenceOriginMaxima, PulledContentCountsForItsOriginNode) {
  test::write_file(src / "a", "A");
  auto r1 = index();
  auto vol = test::volume_id(db);
  db.execute("INSERT INTO nodes(name, endpoint) VALUES ('peer', 'https://peer')");
  auto peer = db.last_insert_id();
  auto begun = begin_run(db, {RunKind::index, vol, ""});
  ASSERT_TRUE(begun.began());
  Observation o1{"pulled/x", blake3(std::string("X")), 1, 1, 0, false, false};
  Observation o2{"pulled/y", blake3(std::string("Y")), 1, 1, 0, false, false};
  Observation half{"pulled/half", blake3(std::string("H")), 1, 1, 0, false, false};
  apply_index_batch(db, vol, begun.run_id, {o1}, {peer, 40});
  apply_index_batch(db, vol, begun.run_id, {o2}, {peer, 42});
  apply_index_batch(db, vol, begun.run_id, {half}, {peer, std::nullopt});
  finish_run(db, begun.run_id, {RunStatus::success, "", 3, 3});
  // The half-null origin counts as introduced here, at this run.
  EXPECT_EQ(maxima(), (decltype(maxima()){{self, begun.run_id}, {peer, 42}}));
  (void)r1;
}

// ---- the advance ----------------------------------------------------------

TEST_F(EvidenceTest, AdvanceToSnapshotIsComponentWiseMaxAndOverwritesFreshness) {
  upsert(write(10, VerifyMethod::presence_size));                     // self at 10
  upsert(write(3, VerifyMethod::presence_size, false, std::nullopt, peer));  // peer at 3
  auto freshness = [&] {
    std::map<std::int64_t, std::int64_t> out;
    for (const auto& r : db.query_rows("SELECT origin_node_id, origin_run_id FROM destination_push_freshness WHERE "
                                       "volume_id = ? AND destination = 'nas'",
                                       {Value{vol}}))
      out[std::get<std::int64_t>(r[0])] = std::get<std::int64_t>(r[1]);
    return out;
  };
  {
    Tx tx(db);
    advance_to_snapshot_in_tx(db, vol, "nas", VerifyMethod::fingerprint_verified, true, {{self, 7}, {peer, 5}});
    tx.commit();
  }
  EXPECT_EQ(component()->origin_run_id, 10) << "a higher recorded component stays";
  EXPECT_EQ(component()->method, VerifyMethod::presence_size) << "a skipped rewind changes nothing";
  EXPECT_EQ(component(peer)->origin_run_id, 5);
  EXPECT_EQ(component(peer)->method, VerifyMethod::fingerprint_verified);
  EXPECT_FALSE(component(peer)->verified_at_ns) << "a push does not make earlier unverified coverage verified";
  EXPECT_EQ(freshness(), (std::map<std::int64_t, std::int64_t>{{self, 7}, {peer, 5}}))
      << "freshness is what the latest push enumerated, not a max";
  EXPECT_EQ(count_history(db, vol, "nas"), 3) << "the skipped rewind is not logged";

  // Freshness is overwritten even downwards; nodes absent from the snapshot keep their row.
  {
    Tx tx(db);
    advance_to_snapshot_in_tx(db, vol, "nas", VerifyMethod::presence_size, false, {{self, 2}});
    tx.commit();
  }
  EXPECT_EQ(freshness(), (std::map<std::int64_t, std::int64_t>{{self, 2}, {peer, 5}}));
  EXPECT_EQ(component()->origin_run_id, 10);

  // An empty snapshot advances nothing.
  auto before = vector_table();
  {
    Tx tx(db);
    advance_to_snapshot_in_tx(db, vol, "nas", VerifyMethod::fingerprint_verified, true, {});
    tx.commit();
  }
  EXPECT_EQ(vector_table(), before);
}

TEST_F(EvidenceTest, AnUnverifiedAdvanceCannotClaimAContentVerifiedMethod) {
  Tx tx(db);
  EXPECT_THROW(advance_to_snapshot_in_tx(db, vol, "nas", VerifyMethod::fingerprint_verified, false, {{self, 3}}),
               Error);
}

// A push verifies what it wrote, not what earlier evidence covers: its
// advance keeps the older of the recorded stamp and its own, an unknown
// stamp stays unknown, and only a brand-new component is stamped now.
TEST_F(EvidenceTest, APushAdvanceNeverMakesOlderEvidenceLookFresher) {
  std::int64_t day_ago = now_ns() - 86'400'000'000'000LL;
  auto old = write(3, VerifyMethod::fingerprint_verified, true);
  old.verified_at = day_ago;
  upsert(old);
  upsert(write(4, VerifyMethod::presence_size, false, std::nullopt, peer));  // unknown age
  auto advance = [&](std::vector<OriginMax> snap) {
    Tx tx(db);
    advance_to_snapshot_in_tx(db, vol, "nas", VerifyMethod::fingerprint_verified, true, snap);
    tx.commit();
  };
  std::int64_t t0 = now_ns();
  advance({{self, 3}, {peer, 4}, {peer2, 9}});
  EXPECT_EQ(component()->verified_at_ns, day_ago) << "an equal re-assertion by a push is not a verify pass";
  EXPECT_FALSE(component(peer)->verified_at_ns);
  ASSERT_TRUE(component(peer2)->verified_at_ns);
  EXPECT_GE(*component(peer2)->verified_at_ns, t0);
  advance({{self, 8}});
  EXPECT_EQ(component()->origin_run_id, 8);
  EXPECT_EQ(component()->verified_at_ns, day_ago) << "nor is a strict advance over older coverage";
  // A write that is not a push's advance (a verify pass) refreshes it.
  upsert(write(8, VerifyMethod::fingerprint_verified, true));
  EXPECT_GE(*component()->verified_at_ns, t0);
}
