// The object and pack ledgers (store/artifacts.hpp): what the database
// itself refuses, and what "the destination already holds this content"
// means — an object there, or a member of a pack there, but not a member of
// a pack only another destination holds.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "store/artifacts.hpp"
#include "store/store.hpp"
#include "test_util.hpp"

using namespace sq;
using namespace sq::store;

namespace {

class Artifacts : public ::testing::Test {
 protected:
  test::TempDir dir;
  Store st = Store::open(dir / "index.db", StoreOptions{});
  Db& db() { return st.db(); }
  std::int64_t run = 0, a = 0, b = 0;

  void SetUp() override {
    db().exec("INSERT INTO runs(kind, destination, started_at_ns, status) VALUES ('verify', 's3', 1, 'running')");
    run = db().last_insert_id();
    a = content(1);
    b = content(2);
  }
  std::int64_t content(int fill) {
    db().execute("INSERT INTO contents(blake3, size_bytes) VALUES (?, 5)", {Value{Blob(32, static_cast<std::uint8_t>(fill))}});
    return db().last_insert_id();
  }
  void pack_at(std::int64_t content_id, const std::string& dest) {
    db().execute("INSERT INTO packs(id, pack_key, size_bytes, member_count, created_run_id) VALUES (1, zeroblob(32), 9, "
                 "1, ?)", {Value{run}});
    db().execute("INSERT INTO pack_members(content_id, pack_id, byte_offset, byte_length) VALUES (?, 1, 512, 5)",
                 {Value{content_id}});
    db().execute("INSERT INTO remote_packs(pack_id, destination, uploaded_run_id) VALUES (1, ?, ?)",
                 {Value{dest}, Value{run}});
  }
};

TEST_F(Artifacts, AnObjectIsThereOnlyAtItsDestinationAndRecordedOnce) {
  EXPECT_FALSE(content_at_destination(db(), a, "s3"));
  record_object(db(), a, "s3", run, Measured{"blake3", std::string(64, 'a'), 5});
  EXPECT_TRUE(content_at_destination(db(), a, "s3"));
  EXPECT_FALSE(content_at_destination(db(), a, "nas"));
  EXPECT_FALSE(content_at_destination(db(), b, "s3"));
  EXPECT_THROW(record_object(db(), a, "s3", run, std::nullopt), Error) << "an object is uploaded once";
  EXPECT_EQ(count_objects(db(), "s3"), 1);
}

TEST_F(Artifacts, APackMemberIsThereWhereThePackIs) {
  pack_at(b, "s3");
  EXPECT_TRUE(content_at_destination(db(), b, "s3"));
  EXPECT_FALSE(content_at_destination(db(), b, "nas")) << "the pack is recorded at s3 only";
  EXPECT_EQ(count_remote_packs(db(), "s3"), 1);
  EXPECT_THROW(db().execute("INSERT INTO pack_members(content_id, pack_id, byte_offset, byte_length) VALUES (?, 1, 0, "
                            "5)", {Value{b}}),
               Error)
      << "a content is packed at most once";
}

TEST_F(Artifacts, AChecksumNeverStandsWithoutItsAlgorithm) {
  EXPECT_THROW(db().execute("INSERT INTO remote_objects(content_id, destination, uploaded_run_id, checksum) VALUES "
                            "(?, 'd', ?, 'abc')", {Value{a}, Value{run}}),
               Error);
  EXPECT_THROW(db().execute("INSERT INTO packs(pack_key, size_bytes, member_count, created_run_id) VALUES (x'00', 1, "
                            "1, ?)", {Value{run}}),
               Error)
      << "a pack key is a 32-byte BLAKE3";
}

}  // namespace
