#include "store/evidence.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <unordered_map>

#include "core/error.hpp"
#include "core/reserved.hpp"
#include "core/text.hpp"

namespace sq::store {

namespace {
constexpr std::pair<VerifyMethod, std::string_view> kMethods[] = {
    {VerifyMethod::size_mtime, "size+mtime"},
    {VerifyMethod::presence_size, "presence+size"},
    {VerifyMethod::checksum, "checksum"},
    {VerifyMethod::fingerprint_verified, "fingerprint-verified"},
    {VerifyMethod::server_hash, "server-hash"},
    {VerifyMethod::download_blake3, "download-blake3"},
    {VerifyMethod::peer_blake3, "peer-blake3"},
    {VerifyMethod::kopia_verify, "kopia-verify"},
    {VerifyMethod::restic_check, "restic-check"},
};
}  // namespace

namespace {
// core/reserved.hpp in SQL: a reserved subtree at the top, a reserved name
// at the top, a restore's temp file anywhere.
const std::string kOutsideReservedSql = fmt::format(
    "CAST(d.path AS TEXT) NOT GLOB '.squirrel-*' AND NOT (d.path = X'' AND CAST(f.name AS TEXT) GLOB '.squirrel-*') "
    "AND CAST(f.name AS TEXT) NOT GLOB '{}'",
    kRestoreTempGlob);
}  // namespace

const char* const kOutsideReserved = kOutsideReservedSql.c_str();

std::string_view to_string(VerifyMethod m) {
  for (const auto& [k, v] : kMethods)
    if (k == m) return v;
  return "unknown";
}

std::optional<VerifyMethod> parse_verify_method(std::string_view s) {
  for (const auto& [k, v] : kMethods)
    if (v == s) return k;
  return std::nullopt;
}

bool is_content_verified(std::optional<VerifyMethod> m) {
  if (!m) return false;
  switch (*m) {
    case VerifyMethod::fingerprint_verified:
    case VerifyMethod::server_hash:
    case VerifyMethod::download_blake3:
    case VerifyMethod::peer_blake3:
    case VerifyMethod::kopia_verify:
    case VerifyMethod::restic_check:
      return true;
    default:
      return false;
  }
}

namespace {

struct Current {
  std::int64_t run = 0;
  std::optional<std::string> method;
  std::optional<std::int64_t> source, verified_at;
};

std::optional<Current> read_current(Db& db, const VectorWrite& w) {
  Stmt st(db,
          "SELECT origin_run_id, verify_method, source_node_id, verified_at_ns FROM destination_run_ids WHERE "
          "volume_id = ? AND destination = ? AND origin_node_id = ?");
  st.bind(1, w.volume_id).bind(2, w.destination).bind(3, w.origin_node_id);
  if (!st.step()) return std::nullopt;
  return Current{st.i64(0), st.opt_text(1), st.opt_i64(2), st.opt_i64(3)};
}

Value opt(const std::optional<std::int64_t>& v) { return v ? Value{*v} : Value{}; }
Value opt(const std::optional<std::string>& v) { return v ? Value{*v} : Value{}; }

void log_write(Db& db, const VectorWrite& w, const std::optional<std::string>& method,
               const std::optional<std::int64_t>& source, std::int64_t now, bool rewind) {
  db.execute(
      "INSERT INTO destination_run_ids_history(volume_id, destination, origin_node_id, origin_run_id, at_ns, "
      "verify_method, source_node_id, verified, rewind) VALUES (?,?,?,?,?,?,?,?,?)",
      {Value{w.volume_id}, Value{w.destination}, Value{w.origin_node_id}, Value{w.origin_run_id}, Value{now},
       opt(method), opt(source), Value{std::int64_t{w.verified}}, Value{std::int64_t{rewind}}});
}

void validate(const VectorWrite& w) {
  if (w.destination.empty()) throw Error(ErrorKind::internal, "evidence write without a destination");
  if (w.origin_run_id < 0) throw Error(ErrorKind::internal, "evidence write with a negative run");
  if (w.verified && !w.method) throw Error(ErrorKind::internal, "a verified evidence write must name its method");
  // Seed property 3: a content-verified method can only be written by a
  // write that actually verified, so no caller can overclaim.
  if (is_content_verified(w.method) && !w.verified)
    throw Error(ErrorKind::internal, "a content-verified method needs a verification behind it");
}

}  // namespace

UpsertOutcome upsert_vector_in_tx(Db& db, const VectorWrite& w) {
  validate(w);
  std::int64_t now = now_ns();
  std::optional<std::int64_t> stamp;
  if (w.verified) stamp = std::min(w.verified_at.value_or(now), now);
  std::optional<std::string> method = w.method ? std::optional(std::string(to_string(*w.method))) : std::nullopt;
  std::optional<std::int64_t> source = w.source_node;
  auto cur = read_current(db, w);
  UpsertOutcome outcome = UpsertOutcome::inserted;
  if (cur) {
    if (w.origin_run_id < cur->run && !w.allow_rewind) return UpsertOutcome::refused_rewind;
    bool strict = w.origin_run_id > cur->run;
    outcome = strict ? UpsertOutcome::advanced
                     : (w.origin_run_id == cur->run ? UpsertOutcome::reconfirmed : UpsertOutcome::rewound);
    if (outcome == UpsertOutcome::reconfirmed) {
      // An equal-run write that keeps the recorded method (it names none,
      // or a peer names the same one) keeps the source that measured it:
      // a peer never takes over provenance it did not establish.
      if (!method) {
        method = cur->method;
        source = cur->source;
      } else if (method == cur->method && w.source_node) {
        source = cur->source;
      }
    }
    if (!w.verified) stamp = strict || outcome == UpsertOutcome::rewound ? std::nullopt : cur->verified_at;
    else if (w.keep_older_stamp) stamp = cur->verified_at ? std::optional(std::min(*cur->verified_at, *stamp)) : std::nullopt;
  }
  // Method and source always describe the same write.
  db.execute(
      "INSERT INTO destination_run_ids(volume_id, destination, origin_node_id, origin_run_id, updated_at_ns, "
      "verify_method, source_node_id, verified_at_ns) VALUES (?,?,?,?,?,?,?,?) "
      "ON CONFLICT(volume_id, destination, origin_node_id) DO UPDATE SET origin_run_id = excluded.origin_run_id, "
      "updated_at_ns = excluded.updated_at_ns, verify_method = excluded.verify_method, "
      "source_node_id = excluded.source_node_id, verified_at_ns = excluded.verified_at_ns",
      {Value{w.volume_id}, Value{w.destination}, Value{w.origin_node_id}, Value{w.origin_run_id}, Value{now},
       opt(method), opt(source), opt(stamp)});
  log_write(db, w, method, source, now, outcome == UpsertOutcome::rewound);
  return outcome;
}

std::vector<Component> vector_of(Db& db, std::int64_t volume_id, const std::string& destination) {
  Stmt st(db,
          "SELECT r.volume_id, r.destination, r.origin_node_id, n.name, r.origin_run_id, r.updated_at_ns, "
          "r.verify_method, r.source_node_id, r.verified_at_ns FROM destination_run_ids r JOIN nodes n ON n.id = "
          "r.origin_node_id WHERE r.volume_id = ? AND r.destination = ? ORDER BY n.name");
  st.bind(1, volume_id).bind(2, destination);
  std::vector<Component> out;
  while (st.step()) {
    Component c{st.i64(0), st.text(1), st.i64(2), st.text(3), st.i64(4), st.i64(5), std::nullopt, st.opt_i64(7),
                st.opt_i64(8)};
    if (auto m = st.opt_text(6)) c.method = parse_verify_method(*m);
    out.push_back(std::move(c));
  }
  return out;
}

std::int64_t count_history(Db& db, std::int64_t volume_id, const std::string& destination) {
  return db
      .query_i64("SELECT count(*) FROM destination_run_ids_history WHERE volume_id = ? AND destination = ?",
                 {Value{volume_id}, Value{destination}})
      .value_or(0);
}

bool outside_reserved(std::string_view folder_path, std::string_view name) {
  return !reserved_file(folder_path, name);
}

namespace {

struct ContentSeen {
  std::int64_t intro = 0;  // earliest first_seen run of the content in the volume
  bool present = false;
};

// One pass over the volume's rows in key order, aggregated per content
// here rather than by a GROUP BY, which would sort 100k rows.
std::unordered_map<std::int64_t, ContentSeen> contents_seen(Db& db, std::int64_t volume_id) {
  std::unordered_map<std::int64_t, std::string> reserved_or_root;  // folders whose rows need the full test
  Stmt folders(db, "SELECT id, path FROM folders WHERE volume_id = ?");
  folders.bind(1, volume_id);
  while (folders.step())
    if (!outside_reserved(folders.bytes(1), "") || folders.bytes(1).empty())
      reserved_or_root.emplace(folders.i64(0), std::string(folders.bytes(1)));
  Stmt st(db, "SELECT f.folder_id, f.name, f.content_id, f.first_seen_run_id, f.status = 'present' FROM files f "
              "WHERE f.folder_id IN (SELECT id FROM folders WHERE volume_id = ?)");
  st.bind(1, volume_id);
  std::unordered_map<std::int64_t, ContentSeen> seen;
  while (st.step()) {
    bool present = st.i64(4) != 0;
    if (present) {
      auto special = reserved_or_root.find(st.i64(0));
      present = special == reserved_or_root.end() ? !restore_temp_like(st.bytes(1))
                                                  : outside_reserved(special->second, st.bytes(1));
    }
    auto [it, fresh] = seen.try_emplace(st.i64(2), ContentSeen{st.i64(3), present});
    if (fresh) continue;
    it->second.intro = std::min(it->second.intro, st.i64(3));
    it->second.present = it->second.present || present;
  }
  return seen;
}

}  // namespace

std::vector<OriginMax> present_origin_maxima(Db& db, std::int64_t volume_id, std::int64_t self_node_id) {
  auto seen = contents_seen(db, volume_id);
  std::map<std::int64_t, std::int64_t> maxima;
  auto raise = [&](std::int64_t node, std::int64_t run) {
    auto [it, fresh] = maxima.try_emplace(node, run);
    if (!fresh) it->second = std::max(it->second, run);
  };
  // Content a peer introduced counts at its origin; this is usually no
  // rows at all, and read through the partial index on origin_node_id.
  Stmt origins(db, "SELECT id, origin_node_id, origin_run_id FROM contents WHERE origin_node_id IS NOT NULL AND "
                   "origin_run_id IS NOT NULL");
  while (origins.step()) {
    auto it = seen.find(origins.i64(0));
    if (it == seen.end()) continue;
    if (it->second.present) raise(origins.i64(1), origins.i64(2));
    seen.erase(it);
  }
  for (const auto& [content, s] : seen)
    if (s.present) raise(self_node_id, s.intro);
  std::vector<OriginMax> out;
  for (const auto& [node, run] : maxima) out.push_back({node, run});
  return out;
}

void advance_to_snapshot_in_tx(Db& db, std::int64_t volume_id, const std::string& destination,
                               std::optional<VerifyMethod> method, bool verified,
                               const std::vector<OriginMax>& snapshot) {
  std::int64_t now = now_ns();
  for (const auto& c : snapshot) {
    VectorWrite w{volume_id, destination, c.node_id, c.run_id, method, verified, std::nullopt, std::nullopt, false, true};
    upsert_vector_in_tx(db, w);
    db.execute(
        "INSERT INTO destination_push_freshness(volume_id, destination, origin_node_id, origin_run_id, updated_at_ns) "
        "VALUES (?,?,?,?,?) ON CONFLICT(volume_id, destination, origin_node_id) DO UPDATE SET origin_run_id = "
        "excluded.origin_run_id, updated_at_ns = excluded.updated_at_ns",
        {Value{volume_id}, Value{destination}, Value{c.node_id}, Value{c.run_id}, Value{now}});
  }
}

}  // namespace sq::store
