// The trust loop end to end through the real binary, on real directories:
// index → sync --init → verify → offload → restore, and the ways it must
// refuse — a copy corrupted at the destination, evidence gone stale, a file
// changed after indexing, symlinks swapped in, a volume re-pointed in the
// config — each checked by what is on disk, in the index and in the runs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/offload/offload.hpp"
#include "loop_util.hpp"
#include "store/store.hpp"

namespace {

namespace fs = std::filesystem;
using sq::test::LoopSandbox;
using sq::test::noise;
using sq::test::read_file;
using sq::test::user_files;
using ::testing::HasSubstr;

std::set<std::string> paths_in(const nlohmann::json& list, const char* key = "path") {
  std::set<std::string> out;
  for (const auto& e : list) out.insert(e.at(key).get<std::string>());
  return out;
}

bool has_reserved_leftovers(const fs::path& root, const std::string& prefix) {
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it)
    if (it->path().filename().string().rfind(prefix, 0) == 0) return true;
  return false;
}

class LoopTest : public ::testing::Test {
 protected:
  LoopSandbox sb;

  void seed_three() {
    sb.put("a.txt", "alpha");
    sb.put("dir/b.txt", "bravo");
    sb.put("c.txt", "charlie");
  }
  void index_and_sync() {
    sb.ok({"index", "photos"});
    auto synced = sb.json({"sync", "--init"});
    ASSERT_EQ(synced.size(), 1u);
    ASSERT_EQ(synced[0].at("status"), "success") << synced.dump(2);
  }
};

// ---- the whole loop -------------------------------------------------------------

TEST_F(LoopTest, TheWholeLoopIndexSyncVerifyOffloadRestoreOnRealDirectories) {
  sb.put("a.txt", "alpha");
  sb.put("copy-of-a.txt", "alpha");
  sb.put("dir/b.txt", "bravo");
  sb.put("dir/sub/c.bin", noise(3 * 1024 * 1024 + 17, 1));  // more than one 1 MiB buffer
  sb.put("empty", "");
  auto original = user_files(sb.volume_dir());
  ASSERT_EQ(original.size(), 5u);
  std::map<std::string, std::int64_t> mtimes;
  for (const auto& [rel, _] : original) mtimes[rel] = sq::test::tree_entry(sb.vol(rel)).mtime_ns;

  auto idx = sb.json({"index", "photos"});
  EXPECT_EQ(idx.at("added"), 5);
  EXPECT_TRUE(fs::exists(sb.marker()));

  auto synced = sb.json({"sync", "--init"});
  ASSERT_EQ(synced.size(), 1u);
  EXPECT_EQ(synced[0].at("status"), "success");
  EXPECT_EQ(synced[0].at("written"), 5);
  EXPECT_EQ(synced[0].at("method"), "fingerprint-verified");
  EXPECT_EQ(user_files(sb.vdest()), original);

  auto verified = sb.json({"verify", "usb", "--full"});
  ASSERT_EQ(verified.size(), 1u);
  EXPECT_TRUE(verified[0].at("findings").empty()) << verified.dump(2);
  EXPECT_EQ(verified[0].at("rehashed"), 5);
  sb.ok({"status", "photos"});

  auto off = sb.json({"offload", "photos", "."});
  EXPECT_EQ(off.at("status"), "success");
  EXPECT_EQ(off.at("offloaded"), 5);
  EXPECT_EQ(off.at("not_durable"), 0);
  EXPECT_EQ(off.at("drift"), 0);
  EXPECT_EQ(off.at("errors"), 0);
  EXPECT_TRUE(user_files(sb.volume_dir()).empty());
  EXPECT_TRUE(fs::exists(sb.marker()));
  EXPECT_EQ(user_files(sb.vdest()), original);  // the proven copies stay
  for (const auto& [rel, _] : original) EXPECT_EQ(sb.status_of(rel), "offloaded") << rel;

  auto reindex = sb.json({"index", "photos"});  // absence of offloaded files is expected
  EXPECT_EQ(reindex.at("missing"), 0);
  EXPECT_EQ(reindex.at("added"), 0);
  sb.ok({"status", "photos"});

  auto restored = sb.json({"restore", "photos"});
  EXPECT_EQ(restored.at("status"), "success");
  EXPECT_EQ(restored.at("restored"), 5);
  EXPECT_EQ(restored.at("revived"), 5);
  EXPECT_EQ(restored.at("failed"), 0);
  EXPECT_EQ(restored.at("no_copy"), 0);
  EXPECT_EQ(user_files(sb.volume_dir()), original);  // byte-identical
  for (const auto& [rel, mt] : mtimes) {
    EXPECT_EQ(sq::test::tree_entry(sb.vol(rel)).mtime_ns, mt) << rel;
    EXPECT_EQ(sb.status_of(rel), "present") << rel;
  }
  EXPECT_FALSE(has_reserved_leftovers(sb.volume_dir(), ".squirrel-restore"));

  sb.ok({"audit", "photos", "--deep"});
  sb.ok({"status", "photos"});
  std::vector<std::string> kinds;
  for (const auto& r : sb.runs()) {
    EXPECT_EQ(r.at("status"), "success") << r.dump();
    kinds.push_back(r.at("kind"));
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"index", "sync", "verify", "offload", "index", "restore", "audit"}));
}

// ---- a copy corrupted at the destination ------------------------------------------

TEST_F(LoopTest, ACorruptedCopyAlarmsTurnsStatusRedBlocksExactlyThatFileAndTheNextSyncRewritesIt) {
  seed_three();
  index_and_sync();
  sb.ok({"verify", "usb", "--full"});
  sq::test::rewrite_same_size_and_mtime(sb.vdest() / "dir/b.txt", "BRAVO");  // only a re-hash can tell

  auto v = sb.run({"verify", "usb", "--full"});
  EXPECT_NE(v.status, 0);
  EXPECT_THAT(v.err, HasSubstr("ALARM: usb: photos/dir/b.txt"));
  sb.expect(2, {"status", "photos"});
  auto status = sb.json({"status"}, 2);
  EXPECT_EQ(status.at("overall"), "red");
  ASSERT_EQ(status.at("alarms").size(), 1u);
  EXPECT_EQ(status.at("alarms")[0].at("destination"), "usb");

  // The latched alarm refuses the whole target: a destination that lost one
  // copy is trusted for none until a person or a clean pass says otherwise.
  auto dry = sb.json({"offload", "photos", ".", "--dry-run", "--per-file"}, 1);
  EXPECT_EQ(dry.at("not_durable"), 3);
  EXPECT_EQ(dry.at("offloaded"), 0);
  auto off = sb.json({"offload", "photos", ".", "--per-file"}, 1);
  EXPECT_EQ(off.at("not_durable"), 3);
  EXPECT_EQ(off.at("offloaded"), 0);
  EXPECT_EQ(off.at("refusals")[0].at("cause"), "alarm-latched") << off.dump(2);
  EXPECT_EQ(user_files(sb.volume_dir()).size(), 3u);
  EXPECT_EQ(sb.status_of("dir/b.txt"), "present");

  auto resync = sb.json({"sync", "photos"});
  ASSERT_EQ(resync.size(), 1u);
  EXPECT_EQ(resync[0].at("status"), "success");
  EXPECT_EQ(resync[0].at("written"), 1);
  EXPECT_EQ(read_file(sb.vdest() / "dir/b.txt"), "bravo");
  EXPECT_EQ(read_file(sb.vdest() / "a.txt"), "alpha");
  EXPECT_EQ(read_file(sb.vdest() / "c.txt"), "charlie");

  auto clean = sb.json({"verify", "usb", "--full"});
  EXPECT_TRUE(clean[0].at("findings").empty()) << clean.dump(2);
  EXPECT_EQ(clean[0].at("alarm_cleared"), true);
  sb.ok({"status", "photos"});
  EXPECT_EQ(sb.json({"offload", "photos", "."}).at("offloaded"), 3);
  EXPECT_TRUE(user_files(sb.volume_dir()).empty());
}

// ---- evidence that went stale ---------------------------------------------------------

// Index, sync and verify run through the binary; the offload's gate is
// asked in-process on a clock the test gives it (OffloadOptions::now_ns),
// placed against the verification times the index recorded. So how old the
// evidence is never depends on how fast this machine runs the commands.
class StaleEvidence : public LoopTest {
 protected:
  static constexpr std::int64_t kLimit = 3600LL * 1000000000;  // offload_max_evidence_age = "1h"

  // When the evidence of photos at usb was last verified.
  std::int64_t verified_at() {
    auto db = sq::store::Db::open(sb.db_path(), {false, true});
    auto at = db.query_i64("SELECT verified_at_ns FROM destination_run_ids WHERE destination = 'usb'");
    EXPECT_TRUE(at) << "no verified evidence";
    return at.value_or(0);
  }

  sq::engine::OffloadReport offload_at(std::int64_t now, bool dry) {
    auto cfg = sq::config::load(sb.config_path());
    sq::store::StoreOptions so;
    so.create = false;
    auto st = sq::store::Store::open(sb.db_path(), so);
    sq::engine::OffloadOptions o;
    o.selectors = {"."};
    o.dry_run = dry;
    o.now_ns = now;
    return sq::engine::run_offload(cfg, st, "photos", o);
  }
};

TEST_F(StaleEvidence, IsRefusedAnEmptyResyncDoesNotHelpAVerifyPassDoes) {
  sb.configure("offload_max_evidence_age = \"1h\"");
  seed_three();
  index_and_sync();
  auto files = user_files(sb.volume_dir());
  auto synced = verified_at();
  const std::int64_t later = synced + kLimit + 1;  // the first instant the sync's evidence is too old

  EXPECT_EQ(offload_at(synced + kLimit, true).offloaded, 3) << "exactly the limit old is still fresh";
  auto dry = offload_at(later, true);
  EXPECT_EQ(dry.offloaded, 0);
  ASSERT_EQ(dry.refusals.size(), 1u);
  EXPECT_EQ(dry.refusals[0].target, "usb");
  EXPECT_EQ(sq::engine::to_string(dry.refusals[0].cause), "evidence-stale");
  EXPECT_EQ(dry.refusals[0].files, 3);
  EXPECT_EQ(dry.refusals[0].next, "squirrel verify usb (on an SFTP server that cannot run a hash command: squirrel verify usb --download --full)");
  auto real = offload_at(later, false);
  EXPECT_EQ(real.offloaded, 0);
  EXPECT_EQ(real.not_durable, 3);
  EXPECT_EQ(user_files(sb.volume_dir()), files);

  // A push with nothing to write re-asserts the evidence without verifying it.
  auto resync = sb.json({"sync", "photos"});
  EXPECT_EQ(resync[0].at("status"), "success");
  EXPECT_EQ(resync[0].at("written"), 0);
  EXPECT_EQ(verified_at(), synced) << "an unverified re-assertion refreshed the evidence";
  auto after_resync = offload_at(later, true);
  ASSERT_EQ(after_resync.refusals.size(), 1u);
  EXPECT_EQ(sq::engine::to_string(after_resync.refusals[0].cause), "evidence-stale");

  // A verify pass re-hashes and re-stamps: at the same instant, fresh.
  auto v = sb.json({"verify", "usb"});
  EXPECT_TRUE(v[0].at("findings").empty());
  ASSERT_GT(verified_at(), synced) << "verify stamps the time it verified, after the sync";
  auto off = offload_at(later, false);
  EXPECT_EQ(off.offloaded, 3);
  EXPECT_TRUE(off.refusals.empty());
  EXPECT_TRUE(user_files(sb.volume_dir()).empty());
}

// ---- a person acknowledges an alarm -----------------------------------------------------

// `verify ack` clears the alarm with the person's name in the audit trail;
// it trusts nothing more: the damaged copy stays lost and its file stays.
TEST_F(LoopTest, AnAcknowledgedAlarmIsAuditedWithThePersonAndTrustsNothingMore) {
  seed_three();
  index_and_sync();
  sq::test::rewrite_same_size_and_mtime(sb.vdest() / "a.txt", "ALPHA");
  EXPECT_NE(sb.run({"verify", "usb", "--full"}).status, 0);
  EXPECT_EQ(sb.json({"status"}, 2).at("alarms").size(), 1u);

  auto as_tester = [&](const std::vector<std::string>& args) {
    auto all = sb.global_args();
    all.insert(all.end(), args.begin(), args.end());
    auto o = sb.options();
    o.env.emplace_back("USER", "tester");
    return sq::test::run_cli(all, o);
  };
  auto ack = as_tester({"verify", "ack", "usb"});
  EXPECT_EQ(ack.status, 0) << ack.err;
  EXPECT_EQ(ack.out, "alarm on usb acknowledged by tester\n");
  {
    auto db = sq::store::Db::open(sb.db_path(), {false, true});
    EXPECT_EQ(db.query_i64("SELECT count(*) FROM runs_audit WHERE transition = 'alarm-clear' AND operator = "
                           "'tester' AND note = 'destination=usb'"),
              1);
  }
  auto status = nlohmann::json::parse(sb.run({"status", "--json"}).out);
  EXPECT_TRUE(status.at("alarms").empty());
  EXPECT_EQ(status.at("volumes")[0].at("offload").at("ready_files"), 2) << "a.txt's copy is still not trusted";
  EXPECT_EQ(as_tester({"verify", "ack", "usb"}).out, "no alarm on usb\n");
  auto unknown = as_tester({"verify", "ack", "nowhere"});
  EXPECT_EQ(unknown.status, 1);
  EXPECT_THAT(unknown.err, HasSubstr("unknown destination \"nowhere\""));

  auto off = sb.json({"offload", "photos", ".", "--per-file"});
  EXPECT_EQ(paths_in(off.at("per_file")), std::set<std::string>{"a.txt"});
  EXPECT_EQ(read_file(sb.vol("a.txt")), "alpha");
}

// ---- a file changed after indexing -------------------------------------------------------

TEST_F(LoopTest, AFileModifiedAfterIndexingIsCountedAsDriftAndKept) {
  seed_three();
  index_and_sync();
  sb.put("a.txt", "alpha, edited after the index");
  sq::test::rewrite_same_size_and_mtime(sb.vol("c.txt"), "CHARLIE");  // same size and mtime: BLAKE3 tells

  auto off = sb.json({"offload", "photos", "."}, 1);
  EXPECT_EQ(off.at("drift"), 2);
  EXPECT_EQ(off.at("offloaded"), 1);
  EXPECT_EQ(off.at("errors"), 0);
  EXPECT_EQ(paths_in(off.at("drifted")), (std::set<std::string>{"a.txt", "c.txt"}));
  EXPECT_EQ(read_file(sb.vol("a.txt")), "alpha, edited after the index");
  EXPECT_EQ(read_file(sb.vol("c.txt")), "CHARLIE");
  EXPECT_FALSE(fs::exists(sb.vol("dir/b.txt")));
  EXPECT_EQ(sb.status_of("a.txt"), "present");
  EXPECT_EQ(sb.status_of("c.txt"), "present");
  EXPECT_EQ(sb.status_of("dir/b.txt"), "offloaded");

  auto again = sb.expect(1, {"offload", "photos", "."});
  EXPECT_THAT(again.err, HasSubstr("kept: a.txt: "));
  EXPECT_THAT(again.err, HasSubstr("kept: c.txt: "));
  EXPECT_THAT(again.out, HasSubstr("drift=2"));
  EXPECT_EQ(read_file(sb.vol("a.txt")), "alpha, edited after the index");
  EXPECT_EQ(read_file(sb.vol("c.txt")), "CHARLIE");
}

// ---- symlinks swapped in -------------------------------------------------------------------

// The real file moves outside the volume (same inode, bytes and mtime), and
// a symlink to it takes its place: following the link would pass every
// check and delete bytes outside the volume.
TEST_F(LoopTest, ASymlinkSwappedInForAFileIsNeverFollowed) {
  seed_three();
  index_and_sync();
  auto outside = sb.root() / "outside";
  fs::create_directories(outside);
  fs::rename(sb.vol("a.txt"), outside / "a.txt");
  fs::create_symlink(outside / "a.txt", sb.vol("a.txt"));
  auto outside_before = sq::test::snapshot_tree(outside);
  auto volume_before = sq::test::snapshot_tree(sb.volume_dir());

  auto off = sb.json({"offload", "photos", "a.txt"}, 1);
  EXPECT_EQ(off.at("drift"), 1);
  EXPECT_EQ(off.at("offloaded"), 0);
  EXPECT_EQ(paths_in(off.at("drifted")), std::set<std::string>{"a.txt"});
  auto outside_after = sq::test::snapshot_tree(outside);
  auto volume_after = sq::test::snapshot_tree(sb.volume_dir());
  EXPECT_EQ(outside_before, outside_after) << sq::test::describe_diff(outside_before, outside_after);
  EXPECT_EQ(volume_before, volume_after) << sq::test::describe_diff(volume_before, volume_after);
  EXPECT_EQ(read_file(outside / "a.txt"), "alpha");
  EXPECT_TRUE(fs::is_symlink(sb.vol("a.txt")));
  EXPECT_EQ(sb.status_of("a.txt"), "present");
}

// The same with a parent directory: at the top level and one level down.
TEST_F(LoopTest, ASymlinkSwappedInForAParentDirectoryIsNeverFollowed) {
  sb.put("a.txt", "alpha");
  sb.put("dir/b.txt", "bravo");
  sb.put("dir/c.txt", "charlie");
  sb.put("deep/sub/d.txt", "delta");
  index_and_sync();
  auto outside = sb.root() / "outside";
  fs::create_directories(outside);
  fs::rename(sb.vol("dir"), outside / "dir");
  fs::create_symlink(outside / "dir", sb.vol("dir"));
  fs::rename(sb.vol("deep/sub"), outside / "sub");
  fs::create_symlink(outside / "sub", sb.vol("deep/sub"));
  auto outside_before = sq::test::snapshot_tree(outside);
  auto volume_before = sq::test::snapshot_tree(sb.volume_dir());

  auto off = sb.json({"offload", "photos", "dir", "deep"}, 1);
  EXPECT_EQ(off.at("drift"), 3);
  EXPECT_EQ(off.at("offloaded"), 0);
  EXPECT_EQ(paths_in(off.at("drifted")), (std::set<std::string>{"dir/b.txt", "dir/c.txt", "deep/sub/d.txt"}));
  auto outside_after = sq::test::snapshot_tree(outside);
  auto volume_after = sq::test::snapshot_tree(sb.volume_dir());
  EXPECT_EQ(outside_before, outside_after) << sq::test::describe_diff(outside_before, outside_after);
  EXPECT_EQ(volume_before, volume_after) << sq::test::describe_diff(volume_before, volume_after);
  for (const auto* rel : {"dir/b.txt", "dir/c.txt", "deep/sub/d.txt"}) EXPECT_EQ(sb.status_of(rel), "present") << rel;
  EXPECT_EQ(sb.json({"offload", "photos", "a.txt"}).at("offloaded"), 1);  // the gate itself is open
}

// ---- a volume re-pointed in the config --------------------------------------------------------

TEST_F(LoopTest, AVolumeRePointedInTheConfigWithoutVolumesMoveIsRefusedByEveryCommand) {
  seed_three();
  index_and_sync();
  sb.ok({"verify", "usb", "--full"});
  auto moved = sb.root() / "vol" / "photos-new";
  sq::test::copy_tree_exact(sb.volume_dir(), moved);  // marker included: only the recorded path disagrees
  sb.configure("", moved);
  auto runs_before = sb.runs().size();
  auto old_tree = sq::test::snapshot_tree(sb.volume_dir());
  auto new_tree = sq::test::snapshot_tree(moved);
  auto dest_tree = sq::test::snapshot_tree(sb.dest_root());
  auto db_before = sq::test::db_state(sb.db_path());

  // "Am I safe?" must not answer green while every command refuses.
  auto status = sb.json({"status", "photos"}, 2);
  EXPECT_THAT(status.dump(), HasSubstr("volumes move"));
  EXPECT_EQ(status.at("volumes")[0].at("offload").at("ready_files"), 0);

  auto restore_to = sb.root() / "restore-here";
  const std::vector<std::vector<std::string>> commands{
      {"index", "photos"},      {"index", "photos", "--shallow"}, {"sync"},
      {"sync", "photos", "--to", "usb"}, {"verify", "usb"},       {"verify"},
      {"offload", "photos", "."}, {"offload", "photos", ".", "--dry-run"},
      {"restore", "photos"},    {"restore", "photos", "--to", restore_to.string()},
      {"audit", "photos"},      {"audit", "photos", "--deep"},    {"audit"}};
  for (const auto& args : commands) {
    auto r = sb.expect(1, args);
    ASSERT_EQ(r.error_lines().size(), 1u) << ::testing::PrintToString(args) << "\n" << r.err;
    EXPECT_THAT(r.error_lines()[0], HasSubstr("volumes move photos " + moved.string()))
        << ::testing::PrintToString(args);
  }

  auto old_after = sq::test::snapshot_tree(sb.volume_dir());
  auto new_after = sq::test::snapshot_tree(moved);
  auto dest_after = sq::test::snapshot_tree(sb.dest_root());
  EXPECT_EQ(old_tree, old_after) << sq::test::describe_diff(old_tree, old_after);
  EXPECT_EQ(new_tree, new_after) << sq::test::describe_diff(new_tree, new_after);
  EXPECT_EQ(dest_tree, dest_after) << sq::test::describe_diff(dest_tree, dest_after);
  EXPECT_TRUE(sq::test::db_state(sb.db_path()) == db_before) << "a refused command changed the index";
  EXPECT_FALSE(fs::exists(restore_to));

  auto runs = sb.runs();
  std::set<std::string> refused_kinds;
  for (std::size_t i = runs_before; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].at("status"), "refused") << runs[i].dump();
    refused_kinds.insert(runs[i].at("kind"));
  }
  for (const auto* kind : {"index", "sync", "verify", "offload", "audit"})
    EXPECT_TRUE(refused_kinds.count(kind)) << "no refused " << kind << " run recorded";

  // The deliberate move makes the same tree usable again.
  sb.ok({"volumes", "move", "photos", moved.string()});
  EXPECT_EQ(sb.json({"index", "photos"}).at("unchanged"), 3);
  sb.ok({"sync", "photos"});
  sb.ok({"status", "photos"});
}

// ---- restoring an offloaded file ---------------------------------------------------------------

TEST_F(LoopTest, RestoringAnOffloadedFileBringsItBackByteIdenticalAndPresent) {
  auto big = noise(2 * 1024 * 1024 + 4099, 7);
  sb.put("big.bin", big);
  sb.put("keep.txt", "keep");
  auto mtime = sq::test::tree_entry(sb.vol("big.bin")).mtime_ns;
  index_and_sync();
  EXPECT_EQ(sb.json({"offload", "photos", "big.bin"}).at("offloaded"), 1);
  ASSERT_FALSE(fs::exists(sb.vol("big.bin")));
  EXPECT_EQ(sb.status_of("big.bin"), "offloaded");

  auto r = sb.json({"restore", "photos", "big.bin"});
  EXPECT_EQ(r.at("status"), "success");
  EXPECT_EQ(r.at("selected"), 1);
  EXPECT_EQ(r.at("restored"), 1);
  EXPECT_EQ(r.at("revived"), 1);
  EXPECT_EQ(read_file(sb.vol("big.bin")), big);
  EXPECT_EQ(sq::test::tree_entry(sb.vol("big.bin")).mtime_ns, mtime);
  EXPECT_EQ(sb.status_of("big.bin"), "present");
  EXPECT_EQ(read_file(sb.vol("keep.txt")), "keep");
  EXPECT_FALSE(has_reserved_leftovers(sb.volume_dir(), ".squirrel-restore"));

  auto idx = sb.json({"index", "photos"});
  EXPECT_EQ(idx.at("modified"), 0);
  EXPECT_EQ(idx.at("added"), 0);
  EXPECT_EQ(idx.at("missing"), 0);
  sb.ok({"audit", "photos", "--deep"});
}

}  // namespace
