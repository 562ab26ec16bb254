// Concurrency stress of the trust loop through the real binary: several
// processes index, sync, verify, offload and restore one volume at the same
// time, for a bounded number of iterations each, while new files keep
// arriving. Afterwards no byte may be lost — every content ever written or
// indexed is present in the volume or at the destination with its BLAKE3 —
// and every run row must be terminal.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "loop_util.hpp"

namespace {

namespace fs = std::filesystem;
using sq::test::CliResult;
using sq::test::LoopSandbox;

constexpr int kIterations = 20;  // per worker; the bound is a count, never a clock
constexpr int kMaxAttempts = 25;
constexpr int kFolders = 4;

// d0 … d3: the folders new files land in and selectors pick.
std::string folder(int n) {
  std::string out("d");
  out.append(std::to_string(n % kFolders));
  return out;
}

struct Outcome {
  std::string worker;
  std::vector<std::string> args;
  CliResult result;
};

class LoopStress : public ::testing::Test {
 protected:
  LoopSandbox sb;
  std::mutex mu;
  std::set<std::string> written;  // BLAKE3 hex of every content ever put into the volume
  std::vector<Outcome> outcomes;
  int next_file = 0;

  // New files only, and each lands whole (written beside the volume, then
  // renamed in): nothing the user does may overwrite or drop content, so
  // every loss would be squirrel's.
  void add_file(const std::string& content) {
    int n = 0;
    {
      std::lock_guard lock(mu);
      n = next_file++;
      written.insert(sq::to_hex(sq::blake3(content)));
    }
    auto staged = sb.root() / "staging" / std::to_string(n);
    sq::test::write_file(staged, content);
    auto rel = folder(n) + "/f" + std::to_string(n) + ".bin";
    fs::create_directories(sb.vol(rel).parent_path());
    fs::rename(staged, sb.vol(rel));
  }
  std::string content_for(int n) const {
    return "file " + std::to_string(n) + "\n" +
           sq::test::noise(static_cast<std::size_t>(n % 7 == 0 ? 1024 * 1024 + 3 * n : 100 + 37 * n),
                           static_cast<std::uint32_t>(n + 1));
  }

  static bool gated(const CliResult& r) {
    auto lines = r.error_lines();
    return std::any_of(lines.begin(), lines.end(),
                       [](const std::string& l) { return l.find("already running") != std::string::npos; });
  }

  // Runs the command until the run gate lets it in (a bounded number of
  // tries), so every iteration does real work while the others overlap it.
  void run(const std::string& worker, const std::vector<std::string>& args) {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      auto r = sb.run(args);
      bool again = gated(r);
      {
        std::lock_guard lock(mu);
        outcomes.push_back({worker, args, std::move(r)});
      }
      if (!again) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // back off; not a measurement
    }
  }

  // One worker per command kind, each in its own thread spawning squirrel.
  void hammer() {
    std::vector<std::function<void(int)>> workers{
        [&](int i) {
          add_file(content_for(1000 + 2 * i));
          add_file(content_for(1001 + 2 * i));
          run("index", i % 2 ? std::vector<std::string>{"index", "photos", "--shallow"}
                             : std::vector<std::string>{"index", "photos"});
        },
        [&](int) { run("sync", {"sync", "photos"}); },
        [&](int i) {
          run("verify", i % 3 ? std::vector<std::string>{"verify", "usb"}
                              : std::vector<std::string>{"verify", "usb", "--full"});
        },
        [&](int i) {
          run("offload", {"offload", "photos", i % 4 == 3 ? "." : folder(i), "--json"});
        },
        [&](int i) {
          run("restore", i % 2 ? std::vector<std::string>{"restore", "photos", "--json"}
                               : std::vector<std::string>{"restore", "photos", folder(i), "--json"});
        },
    };
    std::vector<std::thread> threads;
    for (const auto& w : workers)
      threads.emplace_back([&w] {
        for (int i = 0; i < kIterations; ++i) w(i);
      });
    for (auto& t : threads) t.join();
  }

  std::set<std::string> indexed_contents() {
    auto db = sq::store::Db::open(sb.db_path(), {false, true});
    std::set<std::string> out;
    for (const auto& row : db.query_rows("SELECT blake3 FROM contents")) {
      const auto& b = std::get<sq::store::Blob>(row[0]);
      out.insert(sq::to_hex(std::span<const std::uint8_t>(b.data(), b.size())));
    }
    return out;
  }

  static std::set<std::string> values(const std::map<std::string, std::string>& m) {
    std::set<std::string> out;
    for (const auto& [_, h] : m) out.insert(h);
    return out;
  }
};

TEST_F(LoopStress, ConcurrentIndexSyncVerifyOffloadRestoreLoseNoByteAndLeaveEveryRunTerminal) {
  for (int n = 0; n < 24; ++n) add_file(content_for(n));
  sb.ok({"index", "photos"});
  sb.ok({"sync", "--init"});
  sb.ok({"verify", "usb", "--full"});

  hammer();

  // Contention is refused loudly ("already running"); nothing else may go
  // wrong: no crash, no alarm (nobody touched the destination), no drift
  // (nobody changed an indexed file), no other error.
  std::map<std::string, int> admitted;  // runs the gate let in, per worker
  std::map<std::string, std::int64_t> moved;  // files offloaded and restored
  for (const auto& o : outcomes) {
    auto what = o.worker + ": squirrel " + ::testing::PrintToString(o.args) + "\n" + o.result.err;
    EXPECT_TRUE(o.result.status == 0 || o.result.status == 1) << o.result.status << " " << what;
    EXPECT_THAT(o.result.err, ::testing::Not(::testing::HasSubstr("ALARM"))) << what;
    EXPECT_THAT(o.result.err, ::testing::Not(::testing::HasSubstr("kept: "))) << what;
    for (const auto& line : o.result.error_lines()) EXPECT_THAT(line, ::testing::HasSubstr("already running")) << what;
    if (gated(o.result)) continue;
    admitted[o.worker] += 1;
    if (o.worker == "offload" || o.worker == "restore") {
      auto j = nlohmann::json::parse(o.result.out, nullptr, false);
      if (!j.is_object()) {
        ADD_FAILURE() << "no JSON report from " << what;
        continue;
      }
      EXPECT_EQ(j.value("errors", 0) + j.value("failed", 0) + j.value("drift", 0), 0) << j.dump(2) << what;
      moved[o.worker] += j.value(o.worker == "offload" ? "offloaded" : "restored", std::int64_t{0});
    }
  }
  for (const auto* w : {"index", "sync", "verify", "offload", "restore"})
    EXPECT_GE(admitted[w], 1) << w << " never got past the run gate";

  // No byte lost: every content ever written or indexed is in the volume or
  // at the destination (its mirror or its history), with that BLAKE3.
  auto local = values(sq::test::file_hashes(sb.volume_dir()));
  auto remote = values(sq::test::file_hashes(sb.dest_root()));
  auto indexed = indexed_contents();
  EXPECT_GT(indexed.size(), 24u);
  std::set<std::string> everything = written;
  everything.insert(indexed.begin(), indexed.end());
  for (const auto& h : everything) EXPECT_TRUE(local.count(h) || remote.count(h)) << "lost content " << h;

  // Every run is terminal, in the CLI's view and in the table itself.
  auto runs = sb.runs();
  for (const auto& r : runs) EXPECT_NE(r.at("status"), "running") << r.dump();
  {
    auto db = sq::store::Db::open(sb.db_path(), {false, true});
    EXPECT_EQ(db.query_i64("SELECT count(*) FROM runs").value_or(-1), static_cast<std::int64_t>(runs.size()));
    EXPECT_EQ(db.query_i64("SELECT count(*) FROM runs WHERE status = 'running' OR ended_at_ns IS NULL").value_or(-1),
              0);
  }
  EXPECT_EQ(sb.ok({"db", "check"}).out, "ok\n");

  // And the loop closes, with nothing else running, so each step's effect
  // is certain: restore brings back everything the hammering left
  // offloaded, so every written content is in the volume; after one more
  // index and sync every file there is proven and offloaded, and restore
  // brings every one of them back.
  std::int64_t left_offloaded = 0;  // offloaded, or missing (restore brings those back too)
  {
    auto db = sq::store::Db::open(sb.db_path(), {false, true});
    left_offloaded =
        db.query_i64("SELECT count(*) FROM files WHERE status IN ('offloaded', 'missing')").value_or(-1);
  }
  auto first = sb.json({"restore", "photos"});
  EXPECT_EQ(first.value("restored", std::int64_t{-1}), left_offloaded) << first.dump(2);
  auto back = values(sq::test::user_files(sb.volume_dir()));
  for (const auto& h : written) EXPECT_TRUE(back.count(h)) << "not restored: " << h;
  sb.ok({"index", "photos"});
  sb.ok({"sync", "photos"});
  auto present = sq::test::user_files(sb.volume_dir()).size();
  EXPECT_GE(present, written.size());
  auto off = sb.json({"offload", "photos", "."});
  EXPECT_EQ(off.value("offloaded", std::int64_t{-1}), static_cast<std::int64_t>(present)) << off.dump(2);
  EXPECT_EQ(off.value("not_durable", std::int64_t{-1}), 0) << off.dump(2);
  EXPECT_TRUE(sq::test::user_files(sb.volume_dir()).empty());
  auto again = sb.json({"restore", "photos"});
  EXPECT_EQ(again.value("restored", std::int64_t{-1}), static_cast<std::int64_t>(present)) << again.dump(2);
  EXPECT_EQ(again.value("failed", std::int64_t{-1}), 0) << again.dump(2);
  back = values(sq::test::user_files(sb.volume_dir()));
  for (const auto& h : written) EXPECT_TRUE(back.count(h)) << "not restored the second time: " << h;
  sb.ok({"audit", "photos", "--deep"});
  sb.ok({"audit", "photos", "--folders"});
  for (const auto& [worker, n] : admitted) RecordProperty(worker + "_admitted", n);
  for (const auto& [worker, n] : moved) RecordProperty(worker + "_files", static_cast<int>(n));
}

}  // namespace
