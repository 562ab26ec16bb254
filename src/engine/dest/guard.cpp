// THE name guard (spec sync-offload-restore.md §6.4): the only code that
// decides whether bytes at a destination may be moved or removed. It is a
// pair of pure functions over names, so it can be tested exhaustively; the
// guarded transport only asks them before every rename and removal.
#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <optional>
#include <string_view>

#include "core/text.hpp"
#include "engine/dest/transport.hpp"

namespace sq::dest {

std::optional<std::int64_t> run_id_in(std::string_view name, std::string_view prefix) {
  if (!name.starts_with(prefix)) return std::nullopt;
  auto digits = name.substr(prefix.size());
  if (digits.empty() || digits[0] < '1' || digits[0] > '9') return std::nullopt;
  std::int64_t id = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return id;
}

namespace {

constexpr std::string_view kStaging = ".squirrel-staging";
constexpr std::string_view kHistory = ".squirrel-history";
constexpr std::string_view kIndex = ".squirrel-index";
constexpr std::string_view kMarker = ".squirrel-volume";
constexpr std::string_view kStagedMarker = "volume-marker";
constexpr std::string_view kFoldProbePrefix = "fold-probe-";
constexpr std::string_view kReservedPrefix = ".squirrel-";

// A name split as <volume>/<rest>.
struct VolumeName {
  std::string volume;
  std::string rest;                // the path inside the volume; "" for the volume itself
  std::vector<std::string> parts;  // the components of rest
};

std::optional<VolumeName> parse(const std::string& name) {
  if (!is_clean_name(name)) return std::nullopt;
  VolumeName out;
  auto slash = name.find('/');
  out.volume = name.substr(0, slash);
  if (!valid_name(out.volume)) return std::nullopt;
  if (slash == std::string::npos) return out;
  out.rest = name.substr(slash + 1);
  std::size_t start = 0;
  while (start <= out.rest.size()) {
    auto end = std::min(out.rest.find('/', start), out.rest.size());
    out.parts.push_back(out.rest.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::int64_t run_dir_id(std::string_view component) { return run_id_in(component).value_or(0); }

bool is_staging_key(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// True when a component would name a reserved ".squirrel-*" entry. The
// comparison folds ASCII case and the two non-ASCII letters whose upper
// case is ASCII (U+017F long s -> S, U+0131 dotless i -> I), because a
// case-folding destination (exFAT, ext4 casefold, a macOS sftp server)
// resolves ".SQUIRREL-history" or ".ſquirrel-history" to the reserved
// directory itself.
bool is_reserved(std::string_view component) {
  std::size_t i = 0;
  for (char want : kReservedPrefix) {
    if (want == 's' && component.substr(i, 2) == "\xC5\xBF") {
      i += 2;
      continue;
    }
    if (want == 'i' && component.substr(i, 2) == "\xC4\xB1") {
      i += 2;
      continue;
    }
    if (i >= component.size()) return false;
    char c = component[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != want) return false;
    ++i;
  }
  return true;
}

bool is_live_path(const VolumeName& n) { return !n.parts.empty() && !is_reserved(n.parts[0]); }

bool is_staged_by(const VolumeName& n, std::int64_t run) {
  return n.parts.size() == 3 && n.parts[0] == kStaging && run_dir_id(n.parts[1]) == run && is_staging_key(n.parts[2]);
}

bool is_receipt_of(const VolumeName& n, std::int64_t run) {
  return n.parts.size() == 2 && n.parts[0] == kIndex && run_dir_id(n.parts[1]) == run;
}

// index-<stamp>.db, where the stamp is a non-empty run of [A-Za-z0-9._-].
bool is_index_snapshot(const VolumeName& n) {
  if (n.parts.size() != 2 || n.parts[0] != kIndex) return false;
  std::string_view file = n.parts[1];
  if (!file.starts_with("index-") || !file.ends_with(".db") || file.size() <= 9) return false;
  for (char c : file.substr(6, file.size() - 9))
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

bool is_staged_marker(const VolumeName& n) {
  return n.parts.size() == 2 && n.parts[0] == kStaging && n.parts[1] == kStagedMarker;
}

bool is_marker(const VolumeName& n) { return n.parts.size() == 1 && n.parts[0] == kMarker; }

bool is_fold_probe(const VolumeName& n) {
  return n.parts.size() == 2 && n.parts[0] == kStaging && n.parts[1].starts_with(kFoldProbePrefix) &&
         n.parts[1].size() > kFoldProbePrefix.size();
}

// The run id of staging another run left behind: run-<id> or run-<id>/<key>; 0 when not that shape.
std::int64_t staging_run_of(const VolumeName& n) {
  if (n.parts.size() < 2 || n.parts.size() > 3 || n.parts[0] != kStaging) return 0;
  if (n.parts.size() == 3 && !is_staging_key(n.parts[2])) return 0;
  return run_dir_id(n.parts[1]);
}

bool is_segment_of(const VolumeName& n, std::int64_t run) {
  return n.parts.size() == 2 && n.parts[0] == "index" && run_dir_id(n.parts[1]) == run;
}

// objects/<64-hex>, and in a packed layout packs/<64-hex> or packs/map-<this run>:
// the names a content layout stores beside its volumes.
bool is_artifact_name(const GuardContext& g, const std::string& name) {
  if (g.layout == Layout::mirror) return false;
  auto slash = name.find('/');
  if (slash == std::string::npos || name.find('/', slash + 1) != std::string::npos) return false;
  std::string_view dir(name.data(), slash), file(name.data() + slash + 1, name.size() - slash - 1);
  if (dir == "objects") return is_staging_key(file);
  if (dir != "packs" || g.layout != Layout::packed) return false;
  return is_staging_key(file) || run_id_in(file, "map-") == g.run_id;
}

// Where this run's staged bytes may go in the destination's layout.
bool is_landing_of(const GuardContext& g, const VolumeName& t) {
  if (is_index_snapshot(t)) return true;
  if (g.layout == Layout::mirror) return is_live_path(t) || is_receipt_of(t, g.run_id);
  return is_segment_of(t, g.run_id);
}

std::string refuse_rename(const std::string& from, const std::string& to, const std::string& why) {
  return fmt::format("guard refused rename {} -> {}: {}", escape_for_display(from), escape_for_display(to), why);
}

std::string refuse_remove(const std::string& name, const std::string& why) {
  return fmt::format("guard refused removal of {}: {}", escape_for_display(name), why);
}

}  // namespace

std::string guard_rename(const GuardContext& g, const std::string& from, const std::string& to) {
  auto f = parse(from), t = parse(to);
  if (f && g.run_id > 0 && is_staged_by(*f, g.run_id) && is_artifact_name(g, to)) return "";
  if (!f || !t) return refuse_rename(from, to, "not a clean name inside a volume directory");
  if (f->volume != t->volume) return refuse_rename(from, to, "a move never crosses volumes");
  if (is_staged_marker(*f)) {
    if (g.bootstrap && is_marker(*t)) return "";
    return refuse_rename(from, to, fmt::format("only `--init` may move the staged marker, and only onto {}", kMarker));
  }
  if (g.run_id <= 0) return refuse_rename(from, to, "no run holds this guard");
  if (is_staged_by(*f, g.run_id)) {
    if (is_landing_of(g, *t)) return "";
    if (g.layout != Layout::mirror)
      return refuse_rename(from, to, "in a content layout staged bytes move only onto an object, a pack, this run's "
                                     "map or segment, or an index snapshot");
    return refuse_rename(from, to, "staged bytes move only onto a live path, this run's receipt or an index snapshot");
  }
  if (g.layout != Layout::mirror) return refuse_rename(from, to, "a content layout never moves what it stored");
  if (is_live_path(*f)) {
    if (t->rest == fmt::format("{}/run-{}/{}", kHistory, g.run_id, f->rest)) return "";
    return refuse_rename(from, to, fmt::format("a live path moves only to {}/run-{}/<the same path>", kHistory, g.run_id));
  }
  return refuse_rename(from, to, fmt::format("the source is neither staged by run {} nor a live path", g.run_id));
}

std::string guard_remove(const GuardContext& g, const std::string& name) {
  auto n = parse(name);
  if (!n) return refuse_remove(name, "not a clean name inside a volume directory");
  if (is_staged_marker(*n)) return g.bootstrap ? "" : refuse_remove(name, "only `--init` removes the staged marker");
  if (g.run_id <= 0) return refuse_remove(name, "no run holds this guard");
  if (is_fold_probe(*n) || is_index_snapshot(*n)) return "";
  if (std::int64_t owner = staging_run_of(*n)) {
    // A run's own staged bytes stay until another run judges them; its
    // emptied staging directory it removes itself, once it has finished.
    bool own_dir = owner == g.run_id && n->parts.size() == 2;
    if (owner == g.run_id && !own_dir) return refuse_remove(name, "a run never removes its own staged files");
    if (own_dir && (!g.run_finished || !g.run_finished(owner)))
      return refuse_remove(name, "a run removes its own staging directory only once it has finished");
    if (!g.run_finished || !g.run_finished(owner))
      return refuse_remove(name, fmt::format("run {} has not finished", owner));
    return "";
  }
  return refuse_remove(name, "only staging of finished runs, the fold probe and index snapshots are removable");
}

namespace {

// Every call passes through except rename and remove, which the guard
// judges first; a refusal touches nothing.
class GuardedTransport final : public ForwardingTransport {
 public:
  GuardedTransport(std::unique_ptr<Transport> inner, GuardContext g)
      : ForwardingTransport(std::move(inner)), g_(std::move(g)) {}
  void rename(const std::string& from, const std::string& to) override {
    if (auto why = guard_rename(g_, from, to); !why.empty()) throw TransportError(EPERM, why);
    ForwardingTransport::rename(from, to);
  }
  void remove(const std::string& name) override {
    if (auto why = guard_remove(g_, name); !why.empty()) throw TransportError(EPERM, why);
    ForwardingTransport::remove(name);
  }

 private:
  GuardContext g_;
};

}  // namespace

std::unique_ptr<Transport> guarded(std::unique_ptr<Transport> inner, GuardContext g) {
  return std::make_unique<GuardedTransport>(std::move(inner), std::move(g));
}

}  // namespace sq::dest
