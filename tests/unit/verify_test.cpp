// `squirrel verify` without --full re-hashes about a tenth of the stored
// bytes, least recently verified copies first (never-verified before all),
// so repeated passes walk the whole destination oldest-first.
#include <gtest/gtest.h>

#include <algorithm>

#include "engine/sync/verify.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
using store::RunStatus;

namespace {

constexpr int kFiles = 20;
constexpr std::size_t kSize = 1000;  // equal sizes: a tenth of the bytes is exactly two copies

class PartialVerify : public ::testing::Test {
 protected:
  SyncSandbox sb;

  void SetUp() override {
    for (int i = 0; i < kFiles; ++i) sb.write(name(i), std::string(kSize, static_cast<char>('a' + i)));
    ASSERT_EQ(sb.index().status, RunStatus::success);
    ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  }
  static std::string name(int i) { return "f" + std::string(i < 10 ? "0" : "") + std::to_string(i); }

  // path -> verified_at of every live copy.
  std::map<std::string, std::optional<std::int64_t>> stamps() {
    std::map<std::string, std::optional<std::int64_t>> out;
    for (const auto& r : store::ledger_rows(sb.db(), "d", sb.vol_id(), {"live"})) out[r.path] = r.verified_at_ns;
    return out;
  }
  void stamp(const std::string& path, std::optional<std::int64_t> at) {
    auto rows = store::ledger_rows(sb.db(), "d", sb.vol_id(), {"live"});
    auto it = std::find_if(rows.begin(), rows.end(), [&](const auto& r) { return r.path == path; });
    ASSERT_NE(it, rows.end()) << path;
    sb.db().execute("UPDATE remote_paths SET verified_at_ns = ? WHERE id = ?",
                    {at ? store::Value{*at} : store::Value{}, store::Value{it->id}});
  }
  // The copies one pass re-hashed: those whose stamp it moved.
  std::set<std::string> rehashed_by_a_pass() {
    auto before = stamps();
    auto r = engine::sync::run_verify(sb.cfg(), sb.st(), "d", {});
    EXPECT_TRUE(r.findings.empty());
    EXPECT_EQ(r.bytes_stored, static_cast<std::int64_t>(kFiles * kSize));
    std::set<std::string> out;
    for (const auto& [path, at] : stamps())
      if (at != before.at(path)) out.insert(path);
    EXPECT_EQ(r.rehashed, static_cast<std::int64_t>(out.size()));
    return out;
  }
};

}  // namespace

// The stamps run against the names (f19 oldest … f00 newest), and two
// copies were never verified: the first pass takes those two, the next
// passes the oldest two each, and no pass takes more than a tenth.
TEST_F(PartialVerify, ATenthOfTheBytesLeastRecentlyVerifiedFirst) {
  const std::int64_t base = 1'000'000'000'000;
  for (int i = 0; i < kFiles; ++i) stamp(name(i), base + (kFiles - i) * 1000);
  stamp(name(7), std::nullopt);
  stamp(name(12), std::nullopt);
  EXPECT_EQ(rehashed_by_a_pass(), (std::set<std::string>{name(7), name(12)})) << "never-verified copies go first";
  EXPECT_EQ(rehashed_by_a_pass(), (std::set<std::string>{name(19), name(18)}));
  EXPECT_EQ(rehashed_by_a_pass(), (std::set<std::string>{name(17), name(16)}));
}

// Twenty copies share a directory, so one listing answers for all of them:
// it must tell a missing copy, a shorter one and a directory in its place
// apart from the copies that are fine, exactly as a stat of each would.
TEST_F(PartialVerify, OneListingForAFolderFindsExactlyTheMissingAndChangedCopies) {
  fs::remove(sb.vdest() / name(3));
  fs::resize_file(sb.vdest() / name(7), kSize - 1);
  fs::remove(sb.vdest() / name(11));
  fs::create_directory(sb.vdest() / name(11));
  engine::sync::VerifyOptions o;
  o.full = true;
  auto r = engine::sync::run_verify(sb.cfg(), sb.st(), "d", o);
  std::map<std::string, std::string> found;
  for (const auto& f : r.findings) found[f.path] = f.kind;
  EXPECT_EQ(found, (std::map<std::string, std::string>{{name(3), "missing"}, {name(7), "changed"}, {name(11), "changed"}}));
  EXPECT_EQ(r.rehashed, kFiles - 3) << "every copy the listing found as recorded is re-hashed";
}
