// Issue 13 §3: the text forms the reference's files use — Go durations
// (time.ParseDuration, plus the day unit), Go's JSON escaping, and RFC 3339
// times with a fraction — read and written as the reference does.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/text.hpp"

namespace {

constexpr std::int64_t kSecond = 1000000000LL;

}  // namespace

// Every form Go's time.ParseDuration accepts, plus the day unit.
TEST(TextCompat, EveryGoDurationIsAccepted) {
  const std::int64_t ms = 1000000;
  const std::vector<std::pair<std::string, std::int64_t>> accepted = {
      {"1h30m", 5400 * kSecond},
      {"90m", 5400 * kSecond},
      {"1.5h", 5400 * kSecond},
      {"300ms", 300 * ms},
      {".5h", 1800 * kSecond},
      {"1.h", 3600 * kSecond},
      {"+90m", 5400 * kSecond},
      {"1h0m0s", 3600 * kSecond},
      {"2h45m30.5s", 9930 * kSecond + 500 * ms},
      {"1.0000000000000000000001s", kSecond},
      {"00000000000000000000001s", kSecond},
      {"1us", 1000},
      {"1\xC2\xB5s", 1000},  // micro sign
      {"1\xCE\xBCs", 1000},  // Greek mu
      {"7ns", 7},
      {"0", 0},
      {"-0", 0},
      {"+0s", 0},
      {"7d", 7 * 86400 * kSecond},
      {"2562047h", 2562047LL * 3600 * kSecond},
      {"9223372036854775807ns", 9223372036854775807LL},
  };
  for (const auto& [text, ns] : accepted) EXPECT_EQ(sq::parse_duration_ns(text), ns) << text;
  for (const char* bad : {"", "1", "h", "1hh", ".", "+", "1.5.5h", "1 h", "9223372036854775808ns", "2562048h",
                          "-1h", "1w", "3 days"})
    EXPECT_EQ(sq::parse_duration_ns(bad), std::nullopt) << bad;
}

TEST(TextCompat, GoJsonEscapesOnlyWhatGoEscapes) {
  EXPECT_EQ(sq::go_json(R"({"a":"<&>","b":[1,2]})"), R"({"a":"\u003c\u0026\u003e","b":[1,2]})");
  EXPECT_EQ(sq::go_json("\"\xE2\x80\xA7\xE2\x80\xAA\""), "\"\xE2\x80\xA7\xE2\x80\xAA\"") << "neighbours of U+2028/9";
  EXPECT_EQ(sq::go_json("\"\xE2\x80\""), "\"\xE2\x80\"") << "a cut-off sequence is copied as it is";
}

TEST(TextCompat, Rfc3339AsGoWritesAndReadsIt) {
  EXPECT_EQ(sq::rfc3339_nano_utc(1738314900250000000LL), "2025-01-31T09:15:00.25Z");
  EXPECT_EQ(sq::rfc3339_nano_utc(1738314900000000001LL), "2025-01-31T09:15:00.000000001Z");
  EXPECT_EQ(sq::rfc3339_nano_utc(1738314900000000000LL), "2025-01-31T09:15:00Z");
  EXPECT_EQ(sq::parse_rfc3339_ns("2025-01-31T09:15:00.25Z"), 1738314900250000000LL);
  EXPECT_EQ(sq::parse_rfc3339_ns("2025-01-31T10:15:00+01:00"), 1738314900000000000LL);
  EXPECT_EQ(sq::parse_rfc3339_ns("2025-01-31T09:15:00.1234567891Z"), 1738314900123456789LL);
  for (const char* bad : {"", "2025-01-31", "2025-01-31T09:15:00", "2025-13-01T00:00:00Z", "2025-01-31T09:15:00.Z",
                          "2025-01-31T09:15:00+1:00"})
    EXPECT_EQ(sq::parse_rfc3339_ns(bad), std::nullopt) << bad;
}

// Go's encoding/json writes each byte of a string that is not valid UTF-8
// as the escape \ufffd, and a real U+FFFD as it is: a receipt's `path`
// spells an invalid name the way the reference's does.
TEST(TextCompat, AJsonStringSpellsEachInvalidByteAsGoDoes) {
  EXPECT_EQ(sq::go_json_string("\xff.bin"), "\"\\ufffd.bin\"");
  EXPECT_EQ(sq::go_json_string("\xef\xbf\xbd.bin"), "\"\xef\xbf\xbd.bin\"");
  EXPECT_EQ(sq::go_json_string("a\xe2\x28\xa1"), "\"a\\ufffd(\\ufffd\"");  // a broken sequence: one per byte
  EXPECT_EQ(sq::go_json_string("<&>\"\\\n\x01\x7f"), "\"\\u003c\\u0026\\u003e\\\"\\\\\\n\\u0001\x7f\"");
  EXPECT_EQ(sq::go_json_string("\xe2\x80\xa8\xe2\x80\xa9"), "\"\\u2028\\u2029\"");
}

// For valid UTF-8 it writes exactly what the receipts always held (nlohmann's
// dump through go_json), so no receipt written before changes meaning.
TEST(TextCompat, AJsonStringOfValidUtf8IsWhatGoJsonOfTheDumpWrites) {
  std::string every_ascii;
  for (int c = 1; c < 128; ++c) every_ascii += static_cast<char>(c);
  for (const std::string& s : {every_ascii, std::string("é 日本 \xf0\x9f\x90\xbf \xe2\x80\xa8 x"), std::string()}) {
    EXPECT_EQ(sq::go_json_string(s), sq::go_json(nlohmann::json(s).dump())) << s;
  }
}
