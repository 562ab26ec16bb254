// Receipts keep every name byte-exact (issue 12 §6): JSON text is UTF-8,
// so the reference's `path` spells bytes that are not as U+FFFD; squirrel
// keeps that field and adds `path_b64` beside it when `path` cannot say the
// name exactly. An index-less restore then tells apart names that spell
// alike, checks a non-UTF-8 file against its own hash, reads the
// reference's receipts without letting alike spellings borrow each other's
// hash, and never ends clean after restoring a file no receipt vouches for.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/text.hpp"
#include "engine/restore/restore.hpp"
#include "engine/sync/plan.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using store::RunStatus;

namespace {

const std::string kInvalid = "\xff.bin";           // not UTF-8: the reference writes "\uFFFD.bin"
const std::string kLiteral = "\xef\xbf\xbd.bin";   // a real U+FFFD: also "\uFFFD.bin"
const std::string kInvalid2 = "\xfe.bin";          // spelled like kInvalid

class ReceiptNames : public ::testing::Test {
 protected:
  SyncSandbox sb;

  void SetUp() override {
    sb.write(kInvalid, "bytes of the non-UTF-8 name");
    sb.write(kLiteral, "bytes of the U+FFFD name...");  // the same size: only the hash tells them apart
    sb.write("plain.txt", "plain");
    ASSERT_EQ(sb.index().status, RunStatus::success);
    ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  }

  fs::path receipt() const {
    for (const auto& e : fs::directory_iterator(sb.vdest() / ".squirrel-index"))
      if (e.path().filename().string().starts_with("run-")) return e.path();
    throw std::runtime_error("no receipt");
  }

  // A fresh machine: no index, the mirror and its receipts only.
  engine::RestoreReport restore_without_index(const std::string& into) {
    sb.close();
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(sb.db_path().string() + suffix);
    sb.open();
    engine::RestoreOptions o;
    o.to = (sb.tmp() / into).string();
    return engine::run_restore(sb.cfg(), sb.st(), "v", o);
  }
};

}  // namespace

TEST(ReceiptText, Utf8IsJudgedAsGoJudgesItAndReplacedOneByteAtATime) {
  EXPECT_TRUE(is_valid_utf8("plain é \xef\xbf\xbd \xf0\x9f\x90\xbf"));
  for (std::string bad : {"\xff", "\xc0\x80", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"})
    EXPECT_FALSE(is_valid_utf8(bad)) << escape_for_display(bad);
  EXPECT_EQ(utf8_replacing_invalid("a\xe2\x82z"), "a\xef\xbf\xbd\xef\xbf\xbdz");
  EXPECT_EQ(utf8_replacing_invalid("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(utf8_replacing_invalid(kLiteral), kLiteral);
}

TEST(ReceiptText, Base64RoundTripsEveryByteAndRefusesAnythingElse) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= 5; ++n) EXPECT_EQ(base64_decode(base64_encode(all.substr(0, n))), all.substr(0, n));
  EXPECT_EQ(base64_decode(base64_encode(all)), all);
  EXPECT_EQ(base64_encode("\xff.bin"), "/y5iaW4=");
  for (const char* bad : {"/y5iaW4", "/y5iaW4==", "/y=iaW4=", "/y5i aW4=", "YR==", "YWI=YWI=", "-_8="})
    EXPECT_FALSE(base64_decode(bad)) << bad;
}

TEST(ReceiptText, ASegmentLineKeepsTheReferenceFieldsAndAddsExactBytesOnlyWhenNeeded) {
  std::vector<engine::sync::SegmentLine> lines{{kInvalid, blake3("a"), "present", 1, 2},
                                               {kLiteral, blake3("b"), "present", 3, 4},
                                               {"plain é.txt", blake3("c"), "missing", 5, 6}};
  std::istringstream in(engine::sync::render_segment(lines));
  std::vector<nlohmann::ordered_json> parsed;
  for (std::string line; std::getline(in, line);) parsed.push_back(nlohmann::ordered_json::parse(line));
  ASSERT_EQ(parsed.size(), 3u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(parsed[i]["path"], "\xef\xbf\xbd.bin") << "the reference's spelling stays";
    EXPECT_EQ(base64_decode(parsed[i]["path_b64"].get<std::string>()), lines[i].path);
  }
  std::vector<std::string> keys;
  for (const auto& [k, v] : parsed[2].items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"path", "blake3", "status", "size_bytes", "mtime_ns"}));
  EXPECT_EQ(parsed[2]["path"], "plain é.txt");
}

// The report: "\xff.bin" and a real "\uFFFD.bin" both collapsed to
// one receipt name, and the good file was refused as damaged.
TEST_F(ReceiptNames, NamesThatSpellAlikeAreEachCheckedAgainstTheirOwnHash) {
  auto rep = restore_without_index("out");
  EXPECT_EQ(rep.status, RunStatus::success);
  EXPECT_EQ(rep.restored, 3);
  EXPECT_EQ(rep.mismatched, 0);
  EXPECT_EQ(rep.unnamed, 0) << "every file checked";
  EXPECT_EQ(read_bytes(sb.tmp() / "out" / kInvalid), "bytes of the non-UTF-8 name");
  EXPECT_EQ(read_bytes(sb.tmp() / "out" / kLiteral), "bytes of the U+FFFD name...");
}

// A tampered copy under a name that is not UTF-8 was restored unchecked
// with exit 0; now its receipt entry refuses it.
TEST_F(ReceiptNames, ATamperedCopyUnderANonUtf8NameIsRefused) {
  write_file(sb.vdest() / kInvalid, "BYTES OF THE NON-UTF-8 NAME");
  auto rep = restore_without_index("out");
  EXPECT_EQ(rep.mismatched, 1);
  EXPECT_EQ(rep.unnamed, 0);
  EXPECT_EQ(rep.status, RunStatus::partial);
  EXPECT_FALSE(fs::exists(sb.tmp() / "out" / kInvalid));
  EXPECT_EQ(read_bytes(sb.tmp() / "out" / kLiteral), "bytes of the U+FFFD name...");
}

// A receipt whose path_b64 does not spell as its path is not trusted.
TEST_F(ReceiptNames, AnExactNameThatDisagreesWithItsSpellingMakesTheReceiptUnreadable) {
  auto text = read_bytes(receipt());
  auto at = text.find(base64_encode(kInvalid));
  ASSERT_NE(at, std::string::npos);
  text.replace(at, base64_encode(kInvalid).size(), base64_encode("x.bin"));
  write_file(receipt(), text);
  auto rep = restore_without_index("out");
  EXPECT_EQ(rep.receipts_unreadable, 1);
  EXPECT_EQ(rep.unnamed, 3);
}

// The reference's receipts have no path_b64: a spelling with U+FFFD
// vouches for a file only while exactly one file at the mirror spells so.
TEST_F(ReceiptNames, AReferenceReceiptVouchesForASpellingOnlyWhileOneFileMatchesIt) {
  fs::remove(sb.vdest() / kLiteral);
  std::istringstream in(read_bytes(receipt()));
  std::string reference;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::ordered_json::parse(line);
    if (j.contains("path_b64") && base64_decode(j["path_b64"].get<std::string>()) == kLiteral) continue;
    j.erase("path_b64");
    reference += j.dump() + "\n";
  }
  write_file(receipt(), reference);
  write_file(sb.vdest() / kInvalid, "BYTES OF THE NON-UTF-8 NAME");
  auto one = restore_without_index("one");
  EXPECT_EQ(one.unnamed, 0);
  EXPECT_EQ(one.mismatched, 1) << "checked against the one entry spelled like it";

  write_file(sb.vdest() / kInvalid, "bytes of the non-UTF-8 name");
  write_file(sb.vdest() / kInvalid2, "another file spelled alike");
  auto two = restore_without_index("two");
  EXPECT_EQ(two.mismatched, 0);
  EXPECT_EQ(two.unnamed, 2) << "neither may borrow the other's hash";
}
