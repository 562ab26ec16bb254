// Restore without an index (a fresh machine): the mirror itself says which
// files exist, and the receipts every sealed push left in
// <volume>/.squirrel-index/run-<id> say what their bytes must hash to.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/text.hpp"
#include "engine/restore_internal.hpp"
#include "engine/volume.hpp"

namespace sq::engine::restore_detail {

namespace {

constexpr const char* kIndexDir = ".squirrel-index";
constexpr const char* kReservedPrefix = ".squirrel-";
constexpr std::size_t kMaxReceiptBytes = std::size_t{1} << 30;

struct Vouched {
  Digest hash{};
  std::int64_t size = 0, mtime_ns = 0;
};
using Receipts = std::map<std::string, Vouched>;  // path -> the latest receipt entry

// "run-<canonical positive decimal>" -> the run id.
std::optional<std::int64_t> receipt_run(const std::string& name) {
  if (!name.starts_with("run-") || name.size() < 5 || name[4] == '0') return std::nullopt;
  std::int64_t id = 0;
  auto [end, ec] = std::from_chars(name.data() + 4, name.data() + name.size(), id);
  if (ec != std::errc() || end != name.data() + name.size()) return std::nullopt;
  return id;
}

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
  Vouched v;
};

// One JSONL line of a receipt; nullopt when it is not one.
std::optional<ReceiptLine> parse_line(const std::string& line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto text = [&](const char* k) { return j.contains(k) && j[k].is_string(); };
  auto integer = [&](const char* k) { return j.contains(k) && j[k].is_number_integer(); };
  if (!text("path") || !text("blake3") || !text("status") || !integer("size_bytes") || !integer("mtime_ns"))
    return std::nullopt;
  auto hash = digest_from_hex(j["blake3"].get<std::string>());
  if (!hash) return std::nullopt;
  return ReceiptLine{j["path"].get<std::string>(), j["status"].get<std::string>(),
                     {*hash, j["size_bytes"].get<std::int64_t>(), j["mtime_ns"].get<std::int64_t>()}};
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
Receipts fold_receipts(dest::Transport& t, const std::string& volume, MirrorListing& out, const WarnFn& warn) {
  Receipts vouched;
  std::string dir = volume + "/" + kIndexDir;
  if (t.stat(dir).type != dest::EntryType::directory) return vouched;
  std::map<std::int64_t, std::string> runs;
  for (const auto& e : t.list(dir))
    if (auto id = receipt_run(e.name); id && e.stat.type == dest::EntryType::file) runs[*id] = dir + "/" + e.name;
  for (const auto& [id, name] : runs) {
    try {
      for (auto& l : parse_receipt(read_all(t, name)))
        if (l.status == "present" || l.status == "missing" || l.status == "offloaded") vouched[l.path] = l.v;
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
    if (auto v = vouched.find(path); v != vouched.end()) {
      it.hash = v->second.hash;
      it.size = v->second.size;
      it.mtime_ns = v->second.mtime_ns;
    } else {
      out.unnamed += 1;
    }
    out.items.push_back(std::move(it));
  }

  // An AppleDouble companion "._X" beside X that no receipt names belongs
  // to the file system that made it, not to the user.
  bool companion(const std::string& dir_prefix, const std::string& name, const std::set<std::string>& siblings) {
    return name.starts_with("._") && siblings.contains(name.substr(2)) && !vouched.contains(dir_prefix + name);
  }

  void dir(const std::string& rel) {
    std::string listed = rel.empty() ? volume : volume + "/" + rel;
    std::string prefix = rel.empty() ? "" : rel + "/";
    auto entries = t.list(listed);
    std::set<std::string> names;
    for (const auto& e : entries) names.insert(e.name);
    for (const auto& e : entries) {
      if (rel.empty() && (e.name.starts_with(kReservedPrefix) || e.name == kMarkerName)) continue;
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

}  // namespace

MirrorListing list_mirror(dest::Transport& t, const std::string& volume, const WarnFn& warn) {
  MirrorListing out;
  auto vouched = fold_receipts(t, volume, out, warn);
  Walk{t, volume, vouched, out, warn}.dir("");
  return out;
}

}  // namespace sq::engine::restore_detail
