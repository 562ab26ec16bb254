// Restore without an index (a fresh machine): the mirror itself says which
// files exist, and the receipts every sealed push left in
// <volume>/.squirrel-index/run-<id> say what their bytes must hash to.
//
// A receipt names a path byte-exactly in `path_b64` when `path` cannot
// (sync/plan.hpp). A line without it whose `path` holds U+FFFD — written by
// the reference, which replaces every byte that is not UTF-8 with it — only
// spells a name: it vouches for a file only when exactly one file at the
// mirror is spelled that way, so two names that read alike never borrow
// each other's hash.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/reserved.hpp"
#include "core/text.hpp"
#include "engine/restore/internal.hpp"
#include "engine/sync/plan.hpp"
#include "engine/volume.hpp"

namespace sq::engine::restore_detail {

namespace {

constexpr const char* kIndexDir = ".squirrel-index";
constexpr std::size_t kMaxReceiptBytes = std::size_t{1} << 30;

struct Vouched {
  Digest hash{};
  std::int64_t size = 0, mtime_ns = 0;
  std::int64_t run = 0;  // the receipt's run: the later entry wins
  bool missing = false;  // the latest entry says the file was deleted
};

// How a receipt spells a name that is not plain UTF-8 (the reference's way).
std::string spelling_of(const std::string& name) { return utf8_replacing_invalid(name); }

bool spelled_only(const std::string& path) { return path.find(kReplacementCharacter) != std::string::npos; }

struct Receipts {
  std::map<std::string, Vouched> exact;    // name bytes -> the latest entry
  std::map<std::string, Vouched> spelled;  // spelling with U+FFFD, bytes unknown -> the latest entry

  bool names(const std::string& path) const {
    return exact.contains(path) || (!spelled.empty() && spelled.contains(spelling_of(path)));
  }
};

std::string read_all(dest::Transport& t, const std::string& name) {
  auto in = t.get(name);
  std::string out;
  std::vector<char> buf(1 << 16);
  while (std::size_t n = in->read(buf.data(), buf.size())) {
    out.append(buf.data(), n);
    if (out.size() > kMaxReceiptBytes) throw Error(ErrorKind::corrupt, "larger than any receipt squirrel writes");
  }
  return out;
}

struct ReceiptLine {
  std::string path, status;
  bool exact = true;  // `path` holds the name's bytes, not only a spelling of them
  Vouched v;
};

// The name's bytes from `path_b64`, which must spell as `path` does; or
// `path` itself. nullopt when the two disagree or path_b64 is not base64.
std::optional<std::string> exact_name(const nlohmann::json& j, const std::string& path) {
  if (!j.contains(sync::kExactPathField)) return path;
  const auto& field = j[sync::kExactPathField];
  if (!field.is_string()) return std::nullopt;
  auto bytes = base64_decode(field.get<std::string>());
  if (!bytes || spelling_of(*bytes) != path) return std::nullopt;
  return bytes;
}

// One JSONL line of a receipt; nullopt when it is not one.
std::optional<ReceiptLine> parse_line(const std::string& line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto text = [&](const char* k) { return j.contains(k) && j[k].is_string(); };
  auto integer = [&](const char* k) { return j.contains(k) && j[k].is_number_integer(); };
  if (!text("path") || !text("blake3") || !text("status") || !integer("size_bytes") || !integer("mtime_ns"))
    return std::nullopt;
  auto hash = digest_from_hex(j["blake3"].get<std::string>());
  auto path = exact_name(j, j["path"].get<std::string>());
  if (!hash || !path) return std::nullopt;
  bool exact = j.contains(sync::kExactPathField) || !spelled_only(*path);
  return ReceiptLine{std::move(*path), j["status"].get<std::string>(), exact,
                     {*hash, j["size_bytes"].get<std::int64_t>(), j["mtime_ns"].get<std::int64_t>(), 0}};
}

// All lines of one receipt, or an error naming the first bad line: a
// receipt is trusted whole or not at all.
std::vector<ReceiptLine> parse_receipt(const std::string& text) {
  std::vector<ReceiptLine> out;
  std::size_t start = 0, line_no = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    auto parsed = parse_line(line);
    if (!parsed) throw Error(ErrorKind::corrupt, fmt::format("line {} is not a receipt entry", line_no));
    out.push_back(std::move(*parsed));
  }
  return out;
}

// Replays receipts oldest first: present, missing and offloaded entries set
// a path's content (the latest wins); superseded entries are history only.
Receipts fold_receipts(dest::Transport& t, const std::string& dir, MirrorListing& out, const WarnFn& warn) {
  Receipts vouched;
  if (t.stat(dir).type != dest::EntryType::directory) return vouched;
  std::map<std::int64_t, std::string> runs;
  for (const auto& e : t.list(dir))
    if (auto id = dest::run_id_in(e.name); id && e.stat.type == dest::EntryType::file) runs[*id] = dir + "/" + e.name;
  for (const auto& [id, name] : runs) {
    try {
      for (auto& l : parse_receipt(read_all(t, name))) {
        if (l.status != "present" && l.status != "missing" && l.status != "offloaded") continue;
        l.v.run = id;
        l.v.missing = l.status == "missing";
        (l.exact ? vouched.exact : vouched.spelled)[l.path] = l.v;
      }
      out.receipts_read += 1;
    } catch (const std::exception& e) {
      out.receipts_unreadable += 1;
      warn(name, fmt::format("receipt skipped, cannot read it: {}", e.what()));
    }
  }
  return vouched;
}

struct Walk {
  dest::Transport& t;
  const std::string& volume;
  const Receipts& vouched;
  MirrorListing& out;
  const WarnFn& warn;

  void file(const std::string& path, const dest::Stat& st) {
    RestoreItem it;
    it.path = path;
    it.source = volume + "/" + path;
    it.mtime_ns = st.mtime_ns;
    it.size = st.size;  // what was listed; a file changing underfoot is refused
    out.items.push_back(std::move(it));
  }

  // An AppleDouble companion "._X" beside X that no receipt names belongs
  // to the file system that made it, not to the user.
  bool companion(const std::string& dir_prefix, const std::string& name, const std::set<std::string>& siblings) {
    return name.starts_with("._") && siblings.contains(name.substr(2)) && !vouched.names(dir_prefix + name);
  }

  void dir(const std::string& rel) {
    std::string listed = rel.empty() ? volume : volume + "/" + rel;
    std::string prefix = rel.empty() ? "" : rel + "/";
    auto entries = t.list(listed);
    std::set<std::string> names;
    for (const auto& e : entries) names.insert(e.name);
    for (const auto& e : entries) {
      if (rel.empty() && reserved_at_root(e.name)) continue;  // the marker among them
      if (!dest::is_clean_name(listed + "/" + e.name))
        throw Error(ErrorKind::corrupt, fmt::format("the mirror lists an invalid name {} under {} — inspect the "
                                                    "destination",
                                                    escape_for_display(e.name), listed));
      std::string path = prefix + e.name;
      if (e.stat.type == dest::EntryType::directory) dir(path);
      else if (e.stat.type != dest::EntryType::file) skip_other(path);
      else if (companion(prefix, e.name, names)) out.companions_skipped += 1;
      else file(path, e.stat);
    }
  }

  void skip_other(const std::string& path) {
    out.others_skipped += 1;
    warn(path, "not a regular file or directory at the destination; skipped");
  }
};

// The entry that vouches for each file: its exact one, or the one spelling
// its name when no other file at the mirror is spelled the same, whichever
// is later. A later spelling that cannot tell the files apart vouches for
// none of them. A file nothing vouches for is unnamed.
void vouch_items(const Receipts& r, MirrorListing& out) {
  std::map<std::string, int> spelled_files;  // spelling -> files at the mirror spelled so
  if (!r.spelled.empty())
    for (const auto& it : out.items)
      if (auto sp = spelling_of(it.path); spelled_only(sp)) spelled_files[sp] += 1;
  for (auto& it : out.items) {
    const Vouched* best = nullptr;
    if (auto e = r.exact.find(it.path); e != r.exact.end()) best = &e->second;
    if (!r.spelled.empty()) {
      auto sp = spelling_of(it.path);
      if (auto s = r.spelled.find(sp); s != r.spelled.end() && (!best || s->second.run > best->run))
        best = spelled_files[sp] == 1 ? &s->second : nullptr;
    }
    if (!best) {
      out.unnamed += 1;
      continue;
    }
    it.hash = best->hash;
    it.size = best->size;
    it.mtime_ns = best->mtime_ns;
  }
}

}  // namespace

MirrorListing list_mirror(dest::Transport& t, const std::string& volume, const WarnFn& warn) {
  MirrorListing out;
  auto vouched = fold_receipts(t, volume + "/" + kIndexDir, out, warn);
  Walk{t, volume, vouched, out, warn}.dir("");
  vouch_items(vouched, out);
  return out;
}

// A content layout keeps no paths: the segments are the listing. A name
// a segment only spells (U+FFFD, no path_b64) cannot be written back
// byte-exactly, so it is skipped loudly rather than guessed.
namespace {

struct Placed {
  std::string pack;
  std::int64_t offset = 0, length = 0;
};

// Every placement map's lines: content hex -> its place in a pack. A map
// that cannot be read is skipped loudly (its contents may still be objects).
std::map<std::string, Placed> read_maps(dest::Transport& t, const WarnFn& warn) {
  std::map<std::string, Placed> out;
  if (t.stat("packs").type != dest::EntryType::directory) return out;
  for (const auto& e : t.list("packs")) {
    if (!e.name.starts_with("map-") || e.stat.type != dest::EntryType::file) continue;
    std::string name = "packs/" + e.name;
    try {
      auto text = read_all(t, name);
      std::size_t start = 0;
      while (start < text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string::npos) throw Error(ErrorKind::corrupt, "its last line is cut off");
        auto j = nlohmann::json::parse(text.substr(start, end - start));
        out[j.at("blake3").get<std::string>()] = {"packs/" + j.at("pack").get<std::string>(),
                                                  j.at("offset").get<std::int64_t>(), j.at("length").get<std::int64_t>()};
        start = end + 1;
      }
    } catch (const std::exception& ex) {
      warn(name, fmt::format("placement map skipped, cannot read it: {}", ex.what()));
    }
  }
  return out;
}

}  // namespace

MirrorListing list_content(dest::Transport& t, const std::string& volume, const WarnFn& warn) {
  MirrorListing out;
  auto vouched = fold_receipts(t, volume + "/index", out, warn);
  auto placed = read_maps(t, warn);
  for (const auto& [path, v] : vouched.exact) {
    if (v.missing) continue;
    RestoreItem it;
    it.path = path;
    it.hash = v.hash;
    it.size = v.size;
    it.mtime_ns = v.mtime_ns;
    it.source = "objects/" + to_hex(v.hash);
    if (auto pl = placed.find(to_hex(v.hash)); pl != placed.end()) {
      it.source = pl->second.pack;
      it.member_offset = pl->second.offset;
      it.member_length = pl->second.length;
    }
    out.items.push_back(std::move(it));
  }
  for (const auto& [spelled, v] : vouched.spelled) {
    if (v.missing) continue;
    out.others_skipped += 1;
    warn(spelled, "a segment spells this name without its exact bytes; not restored — restore it by its hash from "
                  "objects/");
  }
  return out;
}

}  // namespace sq::engine::restore_detail
