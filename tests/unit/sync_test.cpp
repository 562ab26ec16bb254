// The native mirror sync to a local destination, end to end through
// engine::run_index and engine::sync::run_mirror_sync: markers and --init,
// the watermark rule, dry runs, what a push writes (files, receipt, ledger,
// evidence), re-syncs, displacement into history, the run gates, partial
// runs, and the config path = DB path = marker check.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "core/text.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;
using engine::sync::SyncOptions;
using store::RunStatus;

namespace {

std::string pseudo_random(std::size_t n, std::uint32_t seed) {
  std::string out(n, '\0');
  for (auto& c : out) {
    seed = seed * 1664525u + 1013904223u;
    c = static_cast<char>(seed >> 24);
  }
  return out;
}

class SyncTest : public ::testing::Test {
 protected:
  SyncSandbox sb;

  // A small tree: files at the root and nested, an empty file, a larger
  // binary one, and a .squirrel-history folder that must never be synced.
  void seed() {
    sb.write("a.txt", "alpha");
    sb.write("b.txt", "bravo");
    sb.write("dir/c.txt", "charlie");
    sb.write("dir/sub/d.bin", pseudo_random(300 * 1024, 7));
    sb.write("empty", "");
    sb.write(".squirrel-history/run-1/old.txt", "not mine to sync");
  }

  void seed_and_index() {
    seed();
    ASSERT_EQ(sb.index().status, RunStatus::success);
  }

  // The files a sync must have written: present, outside reserved subtrees.
  std::map<std::string, Digest> expected_files() {
    std::map<std::string, Digest> out;
    for (const auto& [p, h] : present_set(sb.db(), sb.vol_id()))
      if (!p.starts_with(".squirrel-")) out[p] = h;
    return out;
  }

  // Regular files at the destination volume dir outside every reserved name.
  std::map<std::string, Digest> dest_data() {
    std::map<std::string, Digest> out;
    for (const auto& [p, h] : files_of(tree_of(sb.vdest())))
      if (!p.starts_with(".squirrel-")) out[p] = h;
    return out;
  }

  std::int64_t refused_syncs() { return count_runs(sb.db(), "kind = 'sync' AND status = 'refused'"); }

  template <class F>
  ErrorKind error_kind_of(F&& f) {
    try {
      f();
    } catch (const Error& e) {
      last_error = e.what();
      return e.kind();
    }
    ADD_FAILURE() << "expected an Error";
    return ErrorKind::internal;
  }
  std::string last_error;
};

std::vector<nlohmann::ordered_json> read_jsonl(const fs::path& p) {
  std::vector<nlohmann::ordered_json> out;
  std::istringstream in(read_bytes(p));
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::ordered_json::parse(line));
  return out;
}

}  // namespace

// ---- markers and --init ----------------------------------------------------

TEST_F(SyncTest, AFirstSyncWithoutInitIsRefusedAndCreatesNothing) {
  seed_and_index();
  EXPECT_EQ(error_kind_of([&] { sb.sync(); }), ErrorKind::refused);
  EXPECT_NE(last_error.find("--init"), std::string::npos) << last_error;
  EXPECT_FALSE(fs::exists(sb.dest_root())) << "a missing root is never created without --init";
  EXPECT_EQ(refused_syncs(), 1);

  // An existing but empty root: still refused, still nothing written.
  fs::create_directories(sb.dest_root());
  EXPECT_EQ(error_kind_of([&] { sb.sync(); }), ErrorKind::refused);
  EXPECT_TRUE(fs::is_empty(sb.dest_root()));
  EXPECT_EQ(refused_syncs(), 2);
  EXPECT_EQ(count_runs(sb.db(), "kind = 'sync' AND status != 'refused'"), 0);
  EXPECT_EQ(sb.db().query_i64("SELECT count(*) FROM remote_paths").value_or(-1), 0);
}

TEST_F(SyncTest, InitOnANonEmptyVolumeDirectoryIsRefused) {
  seed_and_index();
  write_file(sb.vdest() / "someone-elses.txt", "theirs");
  auto before = tree_of(sb.dest_root());
  EXPECT_EQ(error_kind_of([&] { sb.sync_init(); }), ErrorKind::refused);
  EXPECT_EQ(tree_of(sb.dest_root()), before) << "no marker, no file, nothing moved";
  EXPECT_EQ(refused_syncs(), 1);
}

TEST_F(SyncTest, AMarkerNamingAnotherVolumeIsRefusedEvenWithInit) {
  seed_and_index();
  write_file(sb.vdest() / engine::kMarkerName, engine::render_marker({"other", 1}));
  auto before = tree_of(sb.dest_root());
  EXPECT_EQ(error_kind_of([&] { sb.sync(); }), ErrorKind::refused);
  EXPECT_NE(last_error.find("other"), std::string::npos) << last_error;
  EXPECT_EQ(error_kind_of([&] { sb.sync_init(); }), ErrorKind::refused);
  EXPECT_EQ(tree_of(sb.dest_root()), before) << "the foreign marker is never overwritten";
  EXPECT_EQ(refused_syncs(), 2);

  // An unparsable marker and a marker that is a directory refuse too.
  fs::remove(sb.vdest() / engine::kMarkerName);
  write_file(sb.vdest() / engine::kMarkerName, "not json");
  EXPECT_EQ(error_kind_of([&] { sb.sync_init(); }), ErrorKind::refused);
  fs::remove(sb.vdest() / engine::kMarkerName);
  fs::create_directories(sb.vdest() / engine::kMarkerName);
  EXPECT_EQ(error_kind_of([&] { sb.sync_init(); }), ErrorKind::refused);
  EXPECT_EQ(refused_syncs(), 4);
  EXPECT_EQ(sb.db().query_i64("SELECT count(*) FROM remote_paths").value_or(-1), 0);
}

TEST_F(SyncTest, AFirstPushOntoFilesSquirrelNeverWroteIsRefused) {
  seed_and_index();
  // A marked volume directory holding data squirrel has no record of (an
  // rclone-era mirror, a lost index).
  write_file(sb.vdest() / engine::kMarkerName, engine::render_marker({"v", 1}));
  write_file(sb.vdest() / "a.txt", "an older alpha");
  auto before = tree_of(sb.dest_root());
  for (bool init : {false, true}) {
    SyncOptions o;
    o.init = init;
    EXPECT_EQ(error_kind_of([&] { sb.sync(o); }), ErrorKind::refused) << init;
    EXPECT_EQ(tree_of(sb.dest_root()), before);
  }
  auto runs = sync_runs(sb.db());
  ASSERT_EQ(runs.size(), 2u);
  for (const auto& r : runs) EXPECT_EQ(r.status, RunStatus::refused) << r.error;
  EXPECT_EQ(sb.db().query_i64("SELECT count(*) FROM remote_paths").value_or(-1), 0);
  EXPECT_TRUE(store::vector_of(sb.db(), sb.vol_id(), "d").empty());
}

TEST_F(SyncTest, AMarkedButOtherwiseEmptyVolumeDirectoryIsAFreshStart) {
  seed_and_index();
  write_file(sb.vdest() / engine::kMarkerName, engine::render_marker({"v", 1}));
  auto r = sb.sync();
  EXPECT_EQ(r.status, RunStatus::success);
  EXPECT_FALSE(r.initialized);
  EXPECT_EQ(dest_data(), expected_files());
}

// ---- what a sync writes -----------------------------------------------------

TEST_F(SyncTest, ASyncWritesEveryPresentFileTheReceiptTheLedgerAndAdvancesEvidence) {
  seed_and_index();
  auto snapshot = store::present_origin_maxima(sb.db(), sb.vol_id(), sb.st().self_node_id());
  ASSERT_FALSE(snapshot.empty());
  std::int64_t t0 = now_ns();
  auto r = sb.sync_init();
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_TRUE(r.initialized);
  EXPECT_GT(r.run_id, 0);

  // The marker names the volume.
  auto marker = engine::parse_marker(read_bytes(sb.vdest() / engine::kMarkerName));
  ASSERT_TRUE(marker);
  EXPECT_EQ(marker->volume, "v");

  // Every present file, byte for byte and with its indexed mtime; nothing
  // from the source's reserved folders.
  auto expected = expected_files();
  EXPECT_EQ(expected.size(), 5u);
  EXPECT_EQ(dest_data(), expected);
  EXPECT_FALSE(fs::exists(sb.vdest() / ".squirrel-history"));
  for (const auto& [path, hash] : expected)
    EXPECT_EQ(mtime_ns(sb.vdest() / path), mtime_ns(sb.src() / path)) << path;
  EXPECT_EQ(r.written, 5);
  EXPECT_EQ(r.planned, 5);
  EXPECT_EQ(r.displaced + r.displaced_unrecorded + r.failed + r.drift, 0);

  // The receipt: JSONL, one line per delta row, in the reference's field order.
  auto receipt = sb.vdest() / ".squirrel-index" / ("run-" + std::to_string(r.run_id));
  ASSERT_TRUE(fs::is_regular_file(receipt));
  auto lines = read_jsonl(receipt);
  ASSERT_EQ(lines.size(), expected.size());
  std::map<std::string, Digest> in_receipt;
  for (const auto& j : lines) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : j.items()) keys.push_back(k);
    EXPECT_EQ(keys, (std::vector<std::string>{"path", "blake3", "status", "size_bytes", "mtime_ns"}));
    auto path = j["path"].get<std::string>();
    EXPECT_EQ(j["status"], "present");
    EXPECT_EQ(j["size_bytes"].get<std::int64_t>(),
              static_cast<std::int64_t>(read_bytes(sb.src() / path).size()));
    EXPECT_EQ(j["mtime_ns"].get<std::int64_t>(), mtime_ns(sb.src() / path));
    auto hash = digest_from_hex(j["blake3"].get<std::string>());
    ASSERT_TRUE(hash) << j.dump();
    in_receipt[path] = *hash;
  }
  EXPECT_EQ(in_receipt, expected);

  // The ledger: one live row per file, with the read-back checksum.
  auto rows = store::ledger_rows(sb.db(), "d", sb.vol_id());
  ASSERT_EQ(rows.size(), expected.size());
  for (const auto& row : rows) {
    EXPECT_EQ(row.state, "live") << row.path;
    EXPECT_EQ(row.written_run, r.run_id);
    EXPECT_EQ(row.hash, expected.at(row.path));
    ASSERT_TRUE(row.checksum) << row.path;
    EXPECT_EQ(*row.checksum, to_hex(row.hash));
    ASSERT_TRUE(row.verified_at_ns);
    EXPECT_GE(*row.verified_at_ns, t0);
  }
  EXPECT_TRUE(ledger_problems(sb.db(), sb.vol_id(), sb.vdest()).empty());

  // Evidence: exactly the pre-transfer snapshot, fingerprint-verified, stamped now.
  auto vec = store::vector_of(sb.db(), sb.vol_id(), "d");
  ASSERT_EQ(vec.size(), snapshot.size());
  for (std::size_t i = 0; i < vec.size(); ++i) {
    EXPECT_EQ(vec[i].origin_node_id, snapshot[i].node_id);
    EXPECT_EQ(vec[i].origin_run_id, snapshot[i].run_id);
    EXPECT_EQ(vec[i].method, store::VerifyMethod::fingerprint_verified);
    EXPECT_FALSE(vec[i].source_node_id);
    ASSERT_TRUE(vec[i].verified_at_ns);
    EXPECT_GE(*vec[i].verified_at_ns, t0);
  }
  EXPECT_TRUE(store::is_content_verified(vec[0].method));
  EXPECT_EQ(r.method, "fingerprint-verified");
  EXPECT_TRUE(r.evidence_advanced);

  // The run row, and nothing left in staging.
  auto run = store::get_run(sb.db(), r.run_id);
  EXPECT_EQ(run->status, RunStatus::success);
  EXPECT_EQ(run->destination, "d");
  EXPECT_EQ(run->file_count, 5);
  EXPECT_EQ(run->changed_count, 5);
  for (const auto& [p, n] : tree_of(sb.vdest() / ".squirrel-staging")) EXPECT_NE(n.type, 'f') << p;
}

TEST_F(SyncTest, TheIndexSnapshotRidesAlongLocallyAndToTheDestination) {
  seed_and_index();
  auto r = sb.sync_init();
  ASSERT_EQ(r.status, RunStatus::success);
  EXPECT_TRUE(r.snapshot_warning.empty()) << r.snapshot_warning;
  auto suffix = "-run-" + std::to_string(r.run_id) + ".db";
  auto find = [&](const fs::path& dir) {
    std::vector<std::string> out;
    if (fs::is_directory(dir))
      for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().starts_with("index-") && e.path().string().ends_with(suffix))
          out.push_back(e.path().filename().string());
    return out;
  };
  auto local = find(sb.state() / "backups");
  auto remote = find(sb.vdest() / ".squirrel-index");
  ASSERT_EQ(local.size(), 1u);
  EXPECT_EQ(remote, local);
  EXPECT_EQ(read_bytes(sb.state() / "backups" / local[0]), read_bytes(sb.vdest() / ".squirrel-index" / remote[0]));
}

TEST_F(SyncTest, ADryRunWritesNothing) {
  seed_and_index();
  // First sync as a dry run: no root, no marker, no run row.
  SyncOptions dry;
  dry.dry_run = true;
  dry.init = true;
  auto r = sb.sync(dry);
  EXPECT_TRUE(r.dry_run);
  EXPECT_EQ(r.run_id, 0);
  EXPECT_EQ(r.planned, 5);
  EXPECT_FALSE(fs::exists(sb.dest_root()));
  EXPECT_EQ(count_runs(sb.db()), 1) << "only the index run";

  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  sb.write("a.txt", "alpha, second version");
  sb.write("new.txt", "brand new");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto tree = tree_of(sb.dest_root());
  auto runs = count_runs(sb.db());
  auto ledger = sb.db().query_rows("SELECT * FROM remote_paths ORDER BY id");
  auto vec = vector_rows(sb.db(), sb.vol_id());
  dry.init = false;
  r = sb.sync(dry);
  EXPECT_EQ(r.planned, 2);
  EXPECT_EQ(r.already_live, 4);
  EXPECT_EQ(r.written, 0);
  EXPECT_EQ(tree_of(sb.dest_root()), tree);
  EXPECT_EQ(count_runs(sb.db()), runs);
  EXPECT_EQ(sb.db().query_rows("SELECT * FROM remote_paths ORDER BY id"), ledger);
  EXPECT_EQ(vector_rows(sb.db(), sb.vol_id()), vec);

  // A dry run that would be refused records no refused run either.
  fs::remove(sb.vdest() / engine::kMarkerName);
  EXPECT_EQ(error_kind_of([&] { sb.sync(dry); }), ErrorKind::refused);
  EXPECT_EQ(count_runs(sb.db()), runs);
}

TEST_F(SyncTest, AnUnchangedResyncWritesNothingAndReadsNoSourceFile) {
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  auto before = tree_of(sb.vdest());
  auto vec = vector_rows(sb.db(), sb.vol_id());
  // Take every source file away without re-indexing: a re-sync that opened
  // any of them would fail that path.
  for (const auto& e : fs::directory_iterator(sb.src()))
    if (e.path().filename() != engine::kMarkerName) fs::remove_all(e.path());

  Injected inj;
  SyncOptions o;
  o.transport = inj.factory();
  auto r = sb.sync(o);
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(r.written, 0);
  EXPECT_EQ(r.planned, 0);
  EXPECT_EQ(r.already_live, 5);
  EXPECT_EQ(r.failed, 0);
  auto run = store::get_run(sb.db(), r.run_id);
  EXPECT_EQ(run->changed_count, 0);

  // The only bytes written are the receipt and the index snapshot.
  for (const auto& c : *inj.log) {
    EXPECT_NE(c.op, "read_back") << c.a;
    if (c.op == "put") { EXPECT_TRUE(c.a.starts_with("v/.squirrel-staging/run-" + std::to_string(r.run_id) + "/")) << c.a; }
    if (c.op == "rename") { EXPECT_TRUE(c.b.starts_with("v/.squirrel-index/")) << c.a << " -> " << c.b; }
    if (c.op == "remove" && !c.a.starts_with("v/.squirrel-staging/run-")) ADD_FAILURE() << "removed " << c.a;
  }
  auto after = tree_of(sb.vdest());
  for (auto* t : {&before, &after})
    std::erase_if(*t, [](const auto& kv) {
      return starts_with_dir(kv.first, ".squirrel-index") || starts_with_dir(kv.first, ".squirrel-staging");
    });
  EXPECT_EQ(after, before);
  EXPECT_TRUE(fs::is_regular_file(sb.vdest() / ".squirrel-index" / ("run-" + std::to_string(r.run_id))));
  EXPECT_TRUE(ledger_problems(sb.db(), sb.vol_id(), sb.vdest()).empty());

  // Evidence is re-asserted, not refreshed: nothing was read back.
  auto now_vec = vector_rows(sb.db(), sb.vol_id());
  ASSERT_EQ(now_vec.size(), vec.size());
  for (std::size_t i = 0; i < vec.size(); ++i) {
    EXPECT_EQ(now_vec[i].run, vec[i].run);
    EXPECT_EQ(now_vec[i].method, vec[i].method);
    EXPECT_EQ(now_vec[i].verified_at, vec[i].verified_at) << "a no-op push must not make evidence look fresher";
  }
}

TEST_F(SyncTest, AModifiedFileDisplacesTheOldBytesIntoHistory) {
  seed_and_index();
  auto first = sb.sync_init();
  ASSERT_EQ(first.status, RunStatus::success);
  auto old_hash = blake3(std::string("alpha"));
  sb.write("a.txt", "alpha, second version");
  sb.write("dir/c.txt", "charlie, second version");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto r = sb.sync();
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(r.written, 2);
  EXPECT_EQ(r.displaced, 2);
  EXPECT_EQ(r.displaced_unrecorded, 0);
  EXPECT_TRUE(r.foreign.empty());

  auto hist = sb.vdest() / ".squirrel-history" / ("run-" + std::to_string(r.run_id));
  EXPECT_EQ(read_bytes(hist / "a.txt"), "alpha");
  EXPECT_EQ(read_bytes(hist / "dir/c.txt"), "charlie");
  EXPECT_EQ(read_bytes(sb.vdest() / "a.txt"), "alpha, second version");
  EXPECT_EQ(read_bytes(sb.vdest() / "dir/c.txt"), "charlie, second version");

  std::map<std::string, std::vector<std::pair<std::string, std::optional<std::int64_t>>>> by_path;
  for (const auto& row : store::ledger_rows(sb.db(), "d", sb.vol_id()))
    by_path[row.path].push_back({row.state, row.displaced_run});
  using V = std::vector<std::pair<std::string, std::optional<std::int64_t>>>;
  EXPECT_EQ(by_path["a.txt"], (V{{"displaced", r.run_id}, {"live", std::nullopt}}));
  EXPECT_EQ(by_path["dir/c.txt"], (V{{"displaced", r.run_id}, {"live", std::nullopt}}));
  EXPECT_EQ(by_path["b.txt"], (V{{"live", std::nullopt}}));
  for (const auto& row : store::ledger_rows(sb.db(), "d", sb.vol_id(), {"displaced"}))
    if (row.path == "a.txt") { EXPECT_EQ(row.hash, old_hash); }
  EXPECT_TRUE(ledger_problems(sb.db(), sb.vol_id(), sb.vdest()).empty());
  EXPECT_TRUE(present_not_live(sb.db(), sb.vol_id(), sb.vdest()).empty());

  // The receipt of the second run carries the delta since the first.
  auto lines = read_jsonl(sb.vdest() / ".squirrel-index" / ("run-" + std::to_string(r.run_id)));
  std::set<std::pair<std::string, std::string>> delta;
  for (const auto& j : lines) delta.insert({j["path"].get<std::string>(), j["status"].get<std::string>()});
  EXPECT_EQ(delta, (std::set<std::pair<std::string, std::string>>{
                       {"a.txt", "present"}, {"a.txt", "superseded"}, {"dir/c.txt", "present"},
                       {"dir/c.txt", "superseded"}}));
}

TEST_F(SyncTest, AFileRemovedLocallyStaysAtTheDestination) {
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  sb.remove("b.txt");
  sb.remove("dir/sub");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto r = sb.sync();
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(r.written, 0);
  EXPECT_EQ(read_bytes(sb.vdest() / "b.txt"), "bravo");
  EXPECT_TRUE(fs::is_regular_file(sb.vdest() / "dir/sub/d.bin"));
  EXPECT_FALSE(fs::exists(sb.vdest() / ".squirrel-history"));
  auto states = ledger_states(sb.db(), sb.vol_id());
  EXPECT_EQ(states["b.txt"], "live");
  EXPECT_EQ(states["dir/sub/d.bin"], "live");
}

TEST_F(SyncTest, FileAndDirectorySwapsDisplaceTheRecordedVersions) {
  sb.write("swap", "a file that becomes a directory");
  sb.write("tree/inner.txt", "a directory that becomes a file");
  sb.write("tree/deeper/x.txt", "x");
  sb.write("keep.txt", "keep");
  // Names that sort right next to "tree/" but are not beneath it.
  sb.write("tree-sibling/s.txt", "sibling");
  sb.write("tree.d/s.txt", "dotted sibling");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);

  sb.remove("swap");
  sb.write("swap/now-inside.txt", "inside");
  sb.remove("tree");
  sb.write("tree", "now a file");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto r = sb.sync();
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_TRUE(r.foreign.empty()) << "recorded versions are displaced, not treated as foreign: " << r.foreign.size();
  EXPECT_EQ(r.displaced_unrecorded, 0);
  EXPECT_EQ(r.displaced, 3);

  auto hist = sb.vdest() / ".squirrel-history" / ("run-" + std::to_string(r.run_id));
  EXPECT_EQ(read_bytes(hist / "swap"), "a file that becomes a directory");
  EXPECT_EQ(read_bytes(hist / "tree/inner.txt"), "a directory that becomes a file");
  EXPECT_EQ(read_bytes(hist / "tree/deeper/x.txt"), "x");
  EXPECT_EQ(read_bytes(sb.vdest() / "swap/now-inside.txt"), "inside");
  EXPECT_EQ(read_bytes(sb.vdest() / "tree"), "now a file");

  auto states = ledger_states(sb.db(), sb.vol_id());
  EXPECT_EQ(states["swap"], "displaced");
  EXPECT_EQ(states["tree/inner.txt"], "displaced");
  EXPECT_EQ(states["tree/deeper/x.txt"], "displaced");
  EXPECT_EQ(states["keep.txt"], "live");
  EXPECT_EQ(states["tree-sibling/s.txt"], "live");
  EXPECT_EQ(states["tree.d/s.txt"], "live");
  EXPECT_EQ(read_bytes(sb.vdest() / "tree-sibling/s.txt"), "sibling");
  EXPECT_TRUE(ledger_problems(sb.db(), sb.vol_id(), sb.vdest()).empty());
  EXPECT_TRUE(present_not_live(sb.db(), sb.vol_id(), sb.vdest()).empty());
  for (const auto& a : store::audit_rows(sb.db(), r.run_id))
    EXPECT_NE(a.transition, "displace-unrecorded") << a.note;

  // And back again.
  sb.remove("swap");
  sb.write("swap", "a file again");
  sb.remove("tree");
  sb.write("tree/inner.txt", "a directory again");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto back = sb.sync();
  ASSERT_EQ(back.status, RunStatus::success) << back.error;
  EXPECT_TRUE(back.foreign.empty());
  EXPECT_TRUE(ledger_problems(sb.db(), sb.vol_id(), sb.vdest()).empty());
  EXPECT_TRUE(present_not_live(sb.db(), sb.vol_id(), sb.vdest()).empty());
}

// ---- the watermark rule -------------------------------------------------------

TEST_F(SyncTest, AMissingReceiptOfTheLastSuccessIsRefused) {
  seed_and_index();
  auto first = sb.sync_init();
  ASSERT_EQ(first.status, RunStatus::success);
  fs::remove(sb.vdest() / ".squirrel-index" / ("run-" + std::to_string(first.run_id)));
  sb.write("a.txt", "alpha, second version");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto before = tree_of(sb.dest_root());
  auto vec = vector_rows(sb.db(), sb.vol_id());
  EXPECT_EQ(error_kind_of([&] { sb.sync(); }), ErrorKind::refused);
  EXPECT_NE(last_error.find("destination reset"), std::string::npos) << last_error;
  // Reconcile may tidy staging of finished runs first; nothing else changes.
  auto after = tree_of(sb.dest_root());
  for (auto* t : {&before, &after})
    std::erase_if(*t, [](const auto& kv) { return starts_with_dir(kv.first, "v/.squirrel-staging"); });
  EXPECT_EQ(after, before) << "nothing written, nothing displaced";
  auto runs = sync_runs(sb.db());
  EXPECT_EQ(runs.back().status, RunStatus::refused) << runs.back().error;
  EXPECT_EQ(vector_rows(sb.db(), sb.vol_id()), vec);
  EXPECT_EQ(ledger_states(sb.db(), sb.vol_id())["a.txt"], "live");
}

TEST_F(SyncTest, AWipedRootWithRecordsIsRefusedEvenWhenRemarked) {
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  fs::remove_all(sb.dest_root());
  // --init re-creates root and marker; the records still say squirrel wrote there.
  EXPECT_EQ(error_kind_of([&] { sb.sync_init(); }), ErrorKind::refused);
  for (const auto& [p, n] : tree_of(sb.vdest()))
    EXPECT_TRUE(p == engine::kMarkerName || starts_with_dir(p, ".squirrel-staging")) << p;
  EXPECT_EQ(sync_runs(sb.db()).back().status, RunStatus::refused);
}

// ---- run gates ------------------------------------------------------------------

TEST_F(SyncTest, ARunningIndexBlocksSyncAndARunningSyncBlocksIndex) {
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  sb.write("a.txt", "alpha, second version");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto tree = tree_of(sb.dest_root());

  auto idx = store::begin_run(sb.db(), {store::RunKind::index, sb.vol_id(), ""});
  ASSERT_TRUE(idx.began());
  EXPECT_EQ(error_kind_of([&] { sb.sync(); }), ErrorKind::conflict);
  EXPECT_NE(last_error.find(std::to_string(idx.run_id)), std::string::npos) << last_error;
  EXPECT_EQ(tree_of(sb.dest_root()), tree);
  EXPECT_EQ(count_runs(sb.db(), "kind = 'sync' AND status = 'running'"), 0);
  store::finish_run(sb.db(), idx.run_id, {RunStatus::aborted, "test", 0, std::nullopt});

  auto sync = store::begin_run(sb.db(), {store::RunKind::sync, sb.vol_id(), "d"});
  ASSERT_TRUE(sync.began());
  EXPECT_EQ(error_kind_of([&] { sb.index(); }), ErrorKind::conflict);
  EXPECT_EQ(error_kind_of([&] { sb.sync(); }), ErrorKind::conflict) << "one sync per (volume, destination)";
  EXPECT_EQ(tree_of(sb.dest_root()), tree);
  store::finish_run(sb.db(), sync.run_id, {RunStatus::aborted, "test", 0, std::nullopt});

  auto r = sb.sync();
  EXPECT_EQ(r.status, RunStatus::success);
  EXPECT_EQ(read_bytes(sb.vdest() / "a.txt"), "alpha, second version");
}

// ---- partial runs ------------------------------------------------------------------

TEST_F(SyncTest, APartialRunSealsNoReceiptAndAdvancesNoEvidence) {
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  sb.write("x.txt", "x");
  sb.write("y.txt", "y");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto vec = vector_rows(sb.db(), sb.vol_id());
  auto history = store::count_history(sb.db(), sb.vol_id(), "d");
  sb.remove("x.txt");  // gone after indexing: the push cannot read it

  auto r = sb.sync();
  EXPECT_EQ(r.status, RunStatus::partial);
  EXPECT_EQ(r.failed, 1);
  EXPECT_EQ(r.written, 1);
  EXPECT_FALSE(r.evidence_advanced);
  EXPECT_EQ(store::get_run(sb.db(), r.run_id)->status, RunStatus::partial);
  EXPECT_FALSE(fs::exists(sb.vdest() / ".squirrel-index" / ("run-" + std::to_string(r.run_id))));
  EXPECT_EQ(vector_rows(sb.db(), sb.vol_id()), vec);
  EXPECT_EQ(store::count_history(sb.db(), sb.vol_id(), "d"), history);
  EXPECT_EQ(read_bytes(sb.vdest() / "y.txt"), "y");
  EXPECT_FALSE(fs::exists(sb.vdest() / "x.txt"));
  auto states = ledger_states(sb.db(), sb.vol_id());
  EXPECT_EQ(states["y.txt"], "live");
  EXPECT_EQ(states.count("x.txt"), 0u);
  EXPECT_TRUE(ledger_problems(sb.db(), sb.vol_id(), sb.vdest()).empty());

  // Once the index knows, the next push succeeds and advances.
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto again = sb.sync();
  ASSERT_EQ(again.status, RunStatus::success) << again.error;
  EXPECT_TRUE(fs::exists(sb.vdest() / ".squirrel-index" / ("run-" + std::to_string(again.run_id))));
  EXPECT_GT(store::count_history(sb.db(), sb.vol_id(), "d"), history);
  EXPECT_TRUE(present_not_live(sb.db(), sb.vol_id(), sb.vdest()).empty());
}

// ---- config path = DB path = marker -----------------------------------------------

TEST_F(SyncTest, EveryDisagreementOfConfigDbAndMarkerIsARefusedRunThatTransfersNothing) {
  seed_and_index();
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  sb.write("a.txt", "alpha, second version");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto tree = tree_of(sb.dest_root());
  auto ledger = sb.db().query_rows("SELECT * FROM remote_paths ORDER BY id");
  auto vec = vector_rows(sb.db(), sb.vol_id());
  auto marker = sb.src() / engine::kMarkerName;
  auto marker_text = read_bytes(marker);
  auto moved = sb.tmp() / "moved";
  copy_tree(sb.src(), moved);

  struct Case {
    std::string name;
    fs::path config_path;
    std::optional<std::string> marker;  // empty: no marker at the configured path
  };
  std::vector<Case> cases = {
      {"config != DB (marker agrees with config)", moved, marker_text},
      {"config != DB, marker missing", moved, std::nullopt},
      {"config != DB, marker names another volume", moved, engine::render_marker({"w", 1})},
      {"config = DB, marker missing", sb.src(), std::nullopt},
      {"config = DB, marker names another volume", sb.src(), engine::render_marker({"w", 1})},
      {"config = DB, marker unparsable", sb.src(), std::string("{")},
  };
  std::int64_t refused = refused_syncs();
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    sb.set_config(SyncSandbox::config_text(c.config_path, sb.dest_root()));
    auto m = c.config_path / engine::kMarkerName;
    fs::remove(m);
    if (c.marker) write_file(m, *c.marker);
    EXPECT_EQ(error_kind_of([&] { sb.sync(); }), ErrorKind::refused);
    EXPECT_EQ(refused_syncs(), ++refused);
    auto runs = sync_runs(sb.db());
    EXPECT_EQ(runs.back().status, RunStatus::refused);
    EXPECT_FALSE(runs.back().error.empty());
    EXPECT_EQ(tree_of(sb.dest_root()), tree);
    EXPECT_EQ(sb.db().query_rows("SELECT * FROM remote_paths ORDER BY id"), ledger);
    EXPECT_EQ(vector_rows(sb.db(), sb.vol_id()), vec);
    // restore both places
    fs::remove(moved / engine::kMarkerName);
    write_file(moved / engine::kMarkerName, marker_text);
    fs::remove(marker);
    write_file(marker, marker_text);
  }
  EXPECT_EQ(count_runs(sb.db(), "kind = 'sync' AND status = 'running'"), 0);

  // Agreement again: the push goes through.
  sb.set_config(SyncSandbox::config_text(sb.src(), sb.dest_root()));
  auto r = sb.sync();
  EXPECT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(read_bytes(sb.vdest() / "a.txt"), "alpha, second version");
}

TEST_F(SyncTest, AVolumeThatWasNeverIndexedIsRefusedAndNothingIsCreated) {
  sb.write("a.txt", "alpha");
  EXPECT_EQ(error_kind_of([&] { sb.sync_init(); }), ErrorKind::refused);
  EXPECT_NE(last_error.find("index"), std::string::npos) << last_error;
  EXPECT_EQ(count_runs(sb.db(), "status != 'refused'"), 0);
  EXPECT_FALSE(fs::exists(sb.dest_root()));
}

namespace {

// A local transport whose read-backs report a page-cache read, as the
// buffered fallback does on a disk filesystem without O_DIRECT.
class CachedReadBack final : public dest::ForwardingTransport {
 public:
  using ForwardingTransport::ForwardingTransport;
  dest::ReadBack read_back(const std::string& n) override {
    auto rb = ForwardingTransport::read_back(n);
    rb.from_medium = false;
    return rb;
  }
};

}  // namespace

// Property 3: a copy hashed from the page cache is not a read from the
// device, so the push records the weaker method and claims no verification.
TEST_F(SyncTest, AReadBackServedFromThePageCacheRecordsTheWeakerMethod) {
  seed_and_index();
  SyncOptions o;
  o.init = true;
  o.transport = [](const std::string& root) {
    return std::make_unique<CachedReadBack>(dest::open_local_transport(root));
  };
  auto r = sb.sync(o);
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(r.written, 5);
  EXPECT_EQ(r.method, "presence+size");
  for (const auto& c : store::vector_of(sb.db(), sb.vol_id(), "d")) {
    ASSERT_TRUE(c.method.has_value());
    EXPECT_FALSE(store::is_content_verified(*c.method));
    EXPECT_FALSE(c.verified_at_ns.has_value());
  }
  // The ledger holds no read-back checksum for those copies, so a later
  // push that writes nothing cannot claim them verified either.
  auto r2 = sb.sync();
  ASSERT_EQ(r2.status, RunStatus::success) << r2.error;
  EXPECT_EQ(r2.written, 0);
  EXPECT_EQ(r2.method, "presence+size");
}
