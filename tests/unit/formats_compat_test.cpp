// Issue 13 §3: what squirrel leaves on disk reads as the reference's. Markers
// carry the reference's fields in its order, and markers of both forms are
// read; receipts and manifest segments are escaped exactly as Go's
// encoding/json escapes, so the same run writes the same bytes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "core/text.hpp"
#include "engine/restore/restore.hpp"
#include "engine/sync/plan.hpp"
#include "engine/volume.hpp"
#include "store/volumes.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using store::RunStatus;

namespace {

const std::string kVersion = SQUIRREL_VERSION;

std::string first_receipt(const fs::path& vdest) {
  for (const auto& e : fs::directory_iterator(vdest / ".squirrel-index"))
    if (e.path().filename().string().starts_with("run-")) return read_bytes(e.path());
  ADD_FAILURE() << "no receipt under " << vdest;
  return "";
}

}  // namespace

TEST(MarkerCompat, WritesTheReferenceFieldsFirstInItsOrder) {
  engine::Marker m("photos", 1738314900250000000LL, std::string("5f0c"), "laptop");
  EXPECT_EQ(engine::render_marker(m),
            "{\"volume\":\"photos\",\"node\":\"laptop\",\"version\":\"" + kVersion +
                "\",\"created_at\":\"2025-01-31T09:15:00.25Z\",\"created_at_ns\":1738314900250000000,"
                "\"index_db\":\"5f0c\"}\n");
  // A whole second has no fraction; a destination marker has no index_db.
  EXPECT_EQ(engine::render_marker({"docs", 1738314900000000000LL, std::nullopt, "nas"}),
            "{\"volume\":\"docs\",\"node\":\"nas\",\"version\":\"" + kVersion +
                "\",\"created_at\":\"2025-01-31T09:15:00Z\",\"created_at_ns\":1738314900000000000}\n");
}

TEST(MarkerCompat, ReadsTheReferenceFormAndOursAlike) {
  auto reference = engine::parse_marker(
      R"({"volume":"photos","node":"nas","version":"v0.9.1","created_at":"2025-01-31T09:15:00.123456789Z"})");
  ASSERT_TRUE(reference);
  EXPECT_EQ(reference->volume, "photos");
  EXPECT_EQ(reference->node, "nas");
  EXPECT_EQ(reference->created_at_ns, 1738314900123456789LL);
  EXPECT_EQ(reference->index_db, std::nullopt);

  auto offset = engine::parse_marker(R"({"volume":"p","created_at":"2025-01-31T11:15:00+02:00","version":1})");
  ASSERT_TRUE(offset);
  EXPECT_EQ(offset->created_at_ns, 1738314900000000000LL);

  // Ours so far: keys sorted, no node or version.
  auto ours = engine::parse_marker(
      R"({"created_at":"2025-01-31T09:15:00Z","created_at_ns":1738314900250000000,"index_db":"5f0c","volume":"photos"})");
  ASSERT_TRUE(ours);
  EXPECT_EQ(ours->volume, "photos");
  EXPECT_EQ(ours->created_at_ns, 1738314900250000000LL);
  EXPECT_EQ(ours->index_db, "5f0c");

  // What we write reads back whole.
  auto again = engine::parse_marker(engine::render_marker({"v", 42, std::string("db"), "n"}));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->volume, "v");
  EXPECT_EQ(again->created_at_ns, 42);
  EXPECT_EQ(again->index_db, "db");
  EXPECT_EQ(again->node, "n");

  EXPECT_FALSE(engine::parse_marker(R"({"volume":"","node":"nas"})")) << "an empty volume is not a marker";
  EXPECT_FALSE(engine::parse_marker(R"({"node":"nas"})"));
}

// Both markers a first sync leaves — the volume's and the destination's —
// are in the reference's layout and name the node that wrote them.
TEST(MarkerCompat, IndexAndSyncWriteMarkersInTheReferenceLayout) {
  SyncSandbox sb;
  sb.write("a.txt", "alpha");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  const std::string head = "{\"volume\":\"v\",\"node\":\"testnode\",\"version\":\"" + kVersion + "\",\"created_at\":\"";
  auto source = read_bytes(sb.src() / engine::kMarkerName);
  EXPECT_THAT(source, StartsWith(head));
  EXPECT_THAT(source, HasSubstr(",\"index_db\":\"" + store::database_identity(sb.db()) + "\"}\n"));
  auto dest = read_bytes(sb.vdest() / engine::kMarkerName);
  EXPECT_THAT(dest, StartsWith(head));
  EXPECT_THAT(dest, Not(HasSubstr("index_db")));
  // A later sync reads the marker it wrote.
  sb.write("b.txt", "bravo");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  EXPECT_EQ(sb.sync().status, RunStatus::success);
}

// A destination first written by the reference carries its marker form;
// a sync here accepts it.
TEST(MarkerCompat, SyncAcceptsADestinationMarkerTheReferenceWrote) {
  SyncSandbox sb;
  sb.write("a.txt", "alpha");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  write_file(sb.vdest() / engine::kMarkerName,
             R"({"volume":"v","node":"nas","version":"v0.9.1","created_at":"2025-01-31T09:15:00.5Z"})");
  EXPECT_EQ(sb.sync().status, RunStatus::success);
}

TEST(ReceiptCompat, SegmentsEscapeAsGoEncodingJsonDoes) {
  engine::sync::SegmentLine line;
  line.path = "a<b>&c\xE2\x80\xA8" "d\xE2\x80\xA9" "e\"f\\g\x01h\ti\x7fj\xC3\xA9.txt";
  line.hash = blake3("x");
  line.status = "present";
  line.size = 3;
  line.mtime_ns = 5;
  EXPECT_EQ(engine::sync::render_segment({line}),
            "{\"path\":\"a\\u003cb\\u003e\\u0026c\\u2028d\\u2029e\\\"f\\\\g\\u0001h\\ti\x7fj\xC3\xA9.txt\",\"blake3\":\"" +
                to_hex(blake3("x")) + "\",\"status\":\"present\",\"size_bytes\":3,\"mtime_ns\":5}\n");
}

// The receipt a real push leaves spells such a name as the reference does,
// and an index-less restore still reads it.
TEST(ReceiptCompat, APushWritesTheReferenceEscapesAndRestoreReadsThem) {
  SyncSandbox sb;
  sb.write("Tom & Jerry <1>.txt", "cartoon");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  auto receipt = first_receipt(sb.vdest());
  EXPECT_THAT(receipt, HasSubstr("{\"path\":\"Tom \\u0026 Jerry \\u003c1\\u003e.txt\",\"blake3\":\""));
  EXPECT_THAT(receipt, Not(HasSubstr("<")));

  sb.close();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(sb.db_path().string() + suffix);
  sb.open();
  engine::RestoreOptions o;
  o.to = (sb.tmp() / "out").string();
  auto r = engine::run_restore(sb.cfg(), sb.st(), "v", o);
  EXPECT_EQ(r.restored, 1);
  EXPECT_EQ(r.unnamed, 0) << "the receipt names the file";
  EXPECT_EQ(read_bytes(sb.tmp() / "out" / "Tom & Jerry <1>.txt"), "cartoon");
}
