// `squirrel verify` of a content-addressed destination (spec §3.3): list
// objects/ once, compare every recorded object with its record, re-hash
// the least recently verified (or all, --full), and check that every
// successful push of each volume still has its segment.
//
//  what is found                            | reported as                 | effect
//  -----------------------------------------+-----------------------------+-----------------------------
//  (a pack is judged like an object, named by the BLAKE3 of its bytes)
//  a recorded object absent                 | finding "missing"           | record forgotten, alarm
//  a recorded object of another size / type | finding "changed"           | record forgotten, alarm
//  an object whose bytes do not hash to its | finding "changed"           | record forgotten, alarm
//  name (or to its recorded checksum)       |                             |
//  a successful push's segment absent       | finding "missing"           | alarm
//  a map of a run that landed packs absent  | finding "missing"           | alarm
//  such a map not naming all their members  | finding "changed"           | alarm
//  an object no record names                | orphans (counted apart)     | none: harmless
//  an object the pass cannot hash           | unchecked                   | no content-verified claim
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/text.hpp"
#include "engine/sync/push.hpp"
#include "engine/sync/verify.hpp"

namespace sq::engine::sync {

namespace {

struct Recorded {
  std::int64_t content_id = 0;  // 0: a pack (pack_key in `hash`)
  Digest hash{};
  std::int64_t size = 0;
  std::optional<std::string> algo, checksum;
  std::int64_t verified_at = -1;  // -1: never
  std::string name;               // objects/<hex>
};

// Rows of (content id, hash, size, algo, checksum, verified at), named by
// `name_of` their hash.
std::vector<Recorded> recorded(store::Db& db, const char* sql, const std::string& dest,
                               std::string (*name_of)(const Digest&)) {
  store::Stmt st(db, sql);
  st.bind(1, dest);
  std::vector<Recorded> out;
  while (st.step()) {
    Recorded r{st.i64(0), st.digest(1), st.i64(2), {}, {}, st.is_null(5) ? -1 : st.i64(5), {}};
    if (!st.is_null(3)) r.algo = st.text(3);
    if (!st.is_null(4)) r.checksum = st.text(4);
    r.name = name_of(r.hash);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Recorded> recorded_objects(store::Db& db, const std::string& dest) {
  return recorded(db,
                  "SELECT o.content_id, c.blake3, c.size_bytes, o.checksum_algo, o.checksum, o.verified_at_ns FROM "
                  "remote_objects o JOIN contents c ON c.id = o.content_id WHERE o.destination = ? ORDER BY c.blake3",
                  dest, &object_name);
}

// The packs the destination holds: named by the BLAKE3 of their bytes.
std::vector<Recorded> recorded_packs(store::Db& db, const std::string& dest) {
  return recorded(db,
                  "SELECT 0, p.pack_key, p.size_bytes, r.checksum_algo, r.checksum, r.verified_at_ns FROM remote_packs "
                  "r JOIN packs p ON p.id = r.pack_id WHERE r.destination = ? ORDER BY p.pack_key",
                  dest, &pack_name);
}

std::map<std::string, dest::Stat> listing(dest::Transport& t, const std::string& dir) {
  std::map<std::string, dest::Stat> out;
  if (t.stat(dir).type != dest::EntryType::directory) return out;
  for (auto& e : t.list(dir)) out.emplace(e.name, e.stat);
  return out;
}

// BLAKE3 is compared with the name; another algorithm only with the
// checksum recorded under it.
bool judge(const Recorded& r, const dest::ReadBack& rb, bool& unchecked) {
  unchecked = false;
  if (rb.bytes != r.size) return false;
  if (rb.algo == "blake3") return rb.hash == r.hash;
  if (!rb.measured() || !r.checksum || r.algo != rb.algo) {
    unchecked = true;
    return true;
  }
  return rb.checksum == *r.checksum;
}

class ObjectPass {
 public:
  ObjectPass(dest::Transport& t, store::Db& db, const std::string& dest, const VerifyOptions& o, VerifyReport& rep,
             const ProgressListener& listener)
      : t_(t), db_(db), dest_(dest), o_(o), rep_(rep), listener_(listener) {}

  ObjectFindings run(const std::vector<store::VolumeRow>& vols) {
    auto recorded = recorded_objects(db_, dest_);
    auto packs = recorded_packs(db_, dest_);
    std::vector<const Recorded*> present;
    compare(recorded, listing(t_, kObjectsDir), present);
    auto pack_listing = listing(t_, "packs");
    std::erase_if(pack_listing, [](const auto& e) { return e.first.starts_with("map-"); });
    compare(packs, std::move(pack_listing), present);
    rep_.checked += static_cast<std::int64_t>(recorded.size() + packs.size());
    rehash(choose(present));
    for (const auto& v : vols) check_segments(v);
    check_maps();
    return std::move(out_);
  }

 private:
  // Each recorded artifact against what the listing shows; what no record
  // names is an orphan.
  void compare(const std::vector<Recorded>& recorded, std::map<std::string, dest::Stat> listed,
               std::vector<const Recorded*>& present) {
    for (const auto& r : recorded) {
      rep_.bytes_stored += r.size;
      auto it = listed.find(to_hex(r.hash));
      if (it == listed.end()) lost(r, "missing", "gone from " + r.name);
      else if (it->second.type != dest::EntryType::file || it->second.size != r.size)
        lost(r, "changed", fmt::format("{} holds {} bytes, recorded {}", r.name, it->second.size, r.size));
      else present.push_back(&r);
      if (it != listed.end()) listed.erase(it);
    }
    out_.orphans += static_cast<std::int64_t>(listed.size());
  }

  void lost(const Recorded& r, const char* kind, const std::string& detail) {
    out_.findings.push_back({"", r.name, kind, detail});
    if (r.content_id) out_.lost_contents.push_back(r.content_id);
    else out_.lost_packs.push_back(r.hash);
  }

  // Least recently verified first until the share of stored bytes is
  // covered (all with --full); at least one object per pass.
  std::vector<const Recorded*> choose(std::vector<const Recorded*> present) const {
    std::stable_sort(present.begin(), present.end(),
                     [](const Recorded* a, const Recorded* b) { return a->verified_at < b->verified_at; });
    auto budget = static_cast<std::int64_t>(static_cast<double>(rep_.bytes_stored) * o_.share);
    std::size_t n = 0;
    std::int64_t planned = 0;
    while (n < present.size() && (o_.full || n == 0 || planned < budget)) planned += present[n++]->size;
    present.resize(n);
    return present;
  }

  std::vector<dest::ReadBack> read(const std::vector<std::string>& names) {
    if (!o_.download) return t_.read_back_many(names);
    std::vector<dest::ReadBack> out;
    for (const auto& n : names) out.push_back(dest::download_blake3(t_, n));
    return out;
  }

  void rehash(const std::vector<const Recorded*>& plan) {
    std::int64_t bytes = 0;
    for (const auto* r : plan) bytes += r->size;
    ProgressTally tally(listener_, "re-hashing", static_cast<std::int64_t>(plan.size()), bytes);
    for (std::size_t i = 0; i < plan.size();) {
      std::vector<std::string> names;
      std::int64_t group_bytes = 0;
      std::size_t end = i;
      while (end < plan.size() && names.size() < dest::kReadBackGroupFiles &&
             (names.empty() || group_bytes < dest::kReadBackGroupBytes)) {
        group_bytes += plan[end]->size;
        names.push_back(plan[end++]->name);
      }
      auto rbs = read(names);
      for (std::size_t k = i; k < end; ++k) take(*plan[k], rbs[k - i], tally);
      i = end;
    }
  }

  void take(const Recorded& r, const dest::ReadBack& rb, ProgressTally& tally) {
    rep_.rehashed += 1;
    rep_.bytes_rehashed += rb.bytes;
    bool unchecked = false;
    if (!judge(r, rb, unchecked)) lost(r, "changed", r.name + ": its bytes do not hash to what was stored");
    else if (unchecked) rep_.unchecked += 1;
    else if (rep_.volatile_fs.empty())  // a recorded checksum stays (store::kStampSet)
      out_.stamps.push_back({r.content_id, rb.algo, rb.checksum, now_ns(), r.content_id ? Digest{} : r.hash});
    tally.done(r.name, r.size);
  }

  // Every successful push left a segment; one that is gone loses the
  // landing evidence a restore without the index replays.
  void check_segments(const store::VolumeRow& v) {
    auto segments = listing(t_, v.name + "/" + kSegmentDir);
    store::Stmt st(db_, "SELECT id FROM runs WHERE kind = 'sync' AND status = 'success' AND volume_id = ? AND "
                        "destination = ? ORDER BY id");
    st.bind(1, v.id).bind(2, dest_);
    while (st.step()) {
      auto name = fmt::format("run-{}", st.i64(0));
      auto it = segments.find(name);
      if (it != segments.end() && it->second.type == dest::EntryType::file) continue;
      out_.findings.push_back({v.name, fmt::format("{}/{}", kSegmentDir, name), "missing",
                               fmt::format("the segment of sync run {} is gone from {}/{}", st.i64(0), v.name,
                                           kSegmentDir)});
    }
  }

  // Every run that landed packs here left a placement map naming each of
  // their members; a map gone, cut short or edited loses the way to them
  // without the index (the recovery guide's way).
  void check_maps() {
    std::map<std::int64_t, std::set<std::string>> expected;  // run -> content hexes its packs hold
    store::Stmt st(db_, "SELECT r.uploaded_run_id, c.blake3 FROM remote_packs r JOIN pack_members m ON m.pack_id = "
                        "r.pack_id JOIN contents c ON c.id = m.content_id WHERE r.destination = ?");
    st.bind(1, dest_);
    while (st.step()) expected[st.i64(0)].insert(to_hex(st.digest(1)));
    for (const auto& [run, contents] : expected) {
      auto name = fmt::format("packs/map-{}", run);
      auto named = map_contents(name);
      if (!named) {
        out_.findings.push_back({"", name, "missing", fmt::format("the placement map of sync run {} is gone", run)});
        continue;
      }
      auto absent = std::count_if(contents.begin(), contents.end(), [&](const auto& c) { return !named->contains(c); });
      if (absent > 0)
        out_.findings.push_back({"", name, "changed",
                                 fmt::format("it no longer names {} of the {} packed contents of run {} — cut short "
                                             "or edited",
                                             absent, contents.size(), run)});
    }
  }

  // The contents a map names; nullopt when it is not there. A line that is
  // cut off or not a map line ends the reading (what follows is unnamed).
  std::optional<std::set<std::string>> map_contents(const std::string& name) {
    if (t_.stat(name).type != dest::EntryType::file) return std::nullopt;
    std::string text;
    auto r = t_.get(name);
    char buf[65536];
    while (std::size_t n = r->read(buf, sizeof buf)) text.append(buf, n);
    std::set<std::string> out;
    for (std::size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
      try {
        out.insert(nlohmann::json::parse(text.substr(start, end - start)).at("blake3").get<std::string>());
      } catch (const std::exception&) {
        break;
      }
    }
    return out;
  }

  dest::Transport& t_;
  store::Db& db_;
  const std::string& dest_;
  const VerifyOptions& o_;
  VerifyReport& rep_;
  const ProgressListener& listener_;
  ObjectFindings out_;
};

}  // namespace

ObjectFindings verify_objects(dest::Transport& t, store::Db& db, const std::string& dest,
                              const std::vector<store::VolumeRow>& vols, const VerifyOptions& o, VerifyReport& rep,
                              const ProgressListener& listener) {
  return ObjectPass(t, db, dest, o, rep, listener).run(vols);
}

}  // namespace sq::engine::sync
