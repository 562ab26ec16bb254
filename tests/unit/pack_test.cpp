// Packs of the packed layout: deterministic bytes, members where the map
// says, a member changed on the way in fails the build, and stock tools
// (zstd -d, tar, b3sum) get every content back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "core/text.hpp"
#include "engine/sync/packed/pack.hpp"
#include "index_util.hpp"
#include "test_util.hpp"

using namespace sq;
using namespace sq::engine::sync::packed;
using namespace sq::test;
namespace fs = std::filesystem;

namespace {

PackInput input_of(const std::string& bytes) {
  PackInput in;
  in.hash = blake3(bytes);
  in.size = static_cast<std::int64_t>(bytes.size());
  in.open = [bytes] {
    auto off = std::make_shared<std::size_t>(0);
    return [bytes, off](char* buf, std::size_t len) {
      std::size_t n = std::min(len, bytes.size() - *off);
      std::copy(bytes.data() + *off, bytes.data() + *off + n, buf);
      *off += n;
      return n;
    };
  };
  return in;
}

struct Built {
  BuiltPack pack;
  std::string bytes;
};

Built build(std::vector<std::string> contents, int level = 3) {
  std::vector<PackInput> inputs;
  for (const auto& c : contents) inputs.push_back(input_of(c));
  Built b;
  b.pack = build_pack(inputs, zstd_level_of(level), [&](const char* d, std::size_t n) { b.bytes.append(d, n); });
  return b;
}

std::vector<std::string> sample() {
  std::vector<std::string> out = {"alpha", "", std::string(100000, 'x'), "a member of 513 bytes" + std::string(492, '!')};
  std::string noise;
  std::uint32_t s = 7;
  for (int i = 0; i < 300000; ++i) noise.push_back(static_cast<char>((s = s * 1103515245 + 12345) >> 24));
  out.push_back(noise);
  return out;
}

TEST(Pack, TheSameContentsGiveByteIdenticalPacksInAnyOrder) {
  auto c = sample();
  auto a = build(c);
  std::reverse(c.begin(), c.end());
  auto b = build(c);
  EXPECT_EQ(a.bytes, b.bytes);
  EXPECT_EQ(a.pack.key, b.pack.key);
  EXPECT_EQ(a.pack.key, blake3(a.bytes)) << "the key names the compressed bytes";
  EXPECT_EQ(a.pack.size, static_cast<std::int64_t>(a.bytes.size()));
  ASSERT_EQ(a.pack.members.size(), c.size());
  for (std::size_t i = 1; i < a.pack.members.size(); ++i)
    EXPECT_LT(a.pack.members[i - 1].hash, a.pack.members[i].hash) << "members in hash order";
  EXPECT_NE(build(sample(), 1).bytes, a.bytes) << "the level is part of the input";
}

TEST(Pack, StockToolsGetEveryMemberBackAtTheMappedOffset) {
  TempDir tmp;
  auto c = sample();
  auto built = build(c);
  auto pack = tmp.path() / to_hex(built.pack.key);
  write_file(pack, built.bytes);
  auto tar = shell("zstd -dq < '" + pack.string() + "'");
  for (const auto& m : built.pack.members) {
    auto hex = to_hex(m.hash);
    SCOPED_TRACE(hex);
    ASSERT_LE(m.offset + m.length, static_cast<std::int64_t>(tar.size()));
    EXPECT_EQ(blake3(tar.substr(static_cast<std::size_t>(m.offset), static_cast<std::size_t>(m.length))), m.hash);
    auto b3 = shell("zstd -dq < '" + pack.string() + "' | tar -xO " + hex + " | b3sum --no-names");
    EXPECT_EQ(b3, hex + "\n");
  }
  auto listing = shell("zstd -dq < '" + pack.string() + "' | tar --numeric-owner -tvf -");
  EXPECT_NE(listing.find("-r--r--r-- 0/0"), std::string::npos) << listing;
  EXPECT_NE(listing.find("1970-01-01"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("PaxHeader"), std::string::npos) << "no extended headers: " << listing;
}

TEST(Pack, AMemberChangedOnTheWayInFailsTheBuild) {
  auto changed = input_of("alpha");
  changed.open = input_of("ALPHA").open;
  std::string sink;
  auto write = [&](const char* d, std::size_t n) { sink.append(d, n); };
  EXPECT_THROW(build_pack({input_of("bravo"), changed}, 3, write), DriftError);
  auto grown = input_of("alpha");
  grown.open = input_of("alpha and more").open;
  EXPECT_THROW(build_pack({grown}, 3, write), DriftError);
  auto shrunk = input_of("alpha");
  shrunk.open = input_of("alp").open;
  EXPECT_THROW(build_pack({shrunk}, 3, write), DriftError);
}

// Members are hashed on a second thread in chunks of a pool: a changed
// member deep in a pack, after members that fill several chunks and one
// larger than a chunk, read a few bytes at a time, is still the one named.
TEST(Pack, AChangedMemberIsNamedAfterManyChunksOfOthers) {
  std::vector<PackInput> inputs;
  for (int i = 0; i < 3000; ++i) inputs.push_back(input_of(std::to_string(i) + std::string(1000 + i % 700, 'm')));
  inputs.push_back(input_of(std::string((5 << 20) / 2, 'L')));
  auto trickle = [](PackInput in) {  // the same bytes, at most 7 per read
    auto inner = in.open;
    in.open = [inner] {
      auto read = inner();
      return [read](char* buf, std::size_t len) { return read(buf, std::min<std::size_t>(len, 7)); };
    };
    return in;
  };
  for (int i = 0; i < 3000; i += 97) inputs[i] = trickle(inputs[i]);
  std::string sink;
  auto write = [&](const char* d, std::size_t n) { sink.append(d, n); };
  auto whole = build_pack(inputs, 3, write);
  EXPECT_EQ(whole.members.size(), inputs.size());
  std::vector<PackInput> sorted = inputs;
  std::sort(sorted.begin(), sorted.end(), [](const PackInput& a, const PackInput& b) { return a.hash < b.hash; });
  auto victim = sorted[2900].hash;  // late in pack order
  for (auto& in : inputs)
    if (in.hash == victim) in.open = input_of(std::string(static_cast<std::size_t>(in.size), '?')).open;
  try {
    build_pack(inputs, 3, write);
    ADD_FAILURE() << "a changed member was packed";
  } catch (const DriftError& e) {
    EXPECT_EQ(to_hex(e.content()), to_hex(victim));
  }
}

TEST(Pack, TheMapNamesEachMemberInTheReferencesFieldOrder) {
  Digest c = blake3("alpha"), p = blake3("pack");
  EXPECT_EQ(render_map({{c, p, 512, 5}}), "{\"blake3\":\"" + to_hex(c) + "\",\"pack\":\"" + to_hex(p) +
                                              "\",\"offset\":512,\"length\":5}\n");
  EXPECT_EQ(render_map({}), "");
}

}  // namespace
