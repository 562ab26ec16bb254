#include "engine/recover.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.hpp"
#include "core/private_files.hpp"
#include "core/text.hpp"
#include "engine/volume.hpp"
#include "store/migrations.hpp"
#include "store/runs.hpp"
#include "store/volumes.hpp"

namespace sq::engine {

namespace {

constexpr const char* kIndexDir = ".squirrel-index";

std::unique_ptr<dest::Transport> open_destination(const config::Destination& d, const sync::TransportFactory& transport) {
  dest::StallOptions stall;
  stall.destination = d.name;
  return dest::stall_guarded(sync::open_mirror_transport(d, transport), std::move(stall));
}

// "yyyymmddThhmmss.mmmZ" -> ns since the epoch.
std::optional<std::int64_t> parse_compact_utc(std::string_view s) {
  if (s.size() != 20 || s[8] != 'T' || s[15] != '.' || s[19] != 'Z') return std::nullopt;
  auto text = fmt::format("{}-{}-{}T{}:{}:{}.{}Z", s.substr(0, 4), s.substr(4, 2), s.substr(6, 2), s.substr(9, 2),
                          s.substr(11, 2), s.substr(13, 2), s.substr(16, 3));
  return parse_rfc3339_ns(text);
}

// index-<time>.db (db backup) or index-<time>-run-<id>.db (a sync's).
RemoteSnapshot parse_snapshot_name(const std::string& volume, const dest::Entry& e) {
  RemoteSnapshot s{volume, e.name, volume + "/" + kIndexDir + "/" + e.name, std::nullopt, std::nullopt, e.stat.size};
  std::string_view core(e.name);
  core.remove_prefix(6);
  core.remove_suffix(3);
  s.taken_at_ns = parse_compact_utc(core.substr(0, std::min<std::size_t>(20, core.size())));
  if (core.size() > 25 && core.substr(20, 5) == "-run-") {
    try {
      s.run_id = std::stoll(std::string(core.substr(25)));
    } catch (const std::exception&) {
    }
  }
  return s;
}

// Snapshots and receipts under <volume>/.squirrel-index/.
void scan_volume(dest::Transport& t, const std::string& volume, RecoverPlan& plan) {
  plan.highest_run = std::max(plan.highest_run, sync::highest_run_named(t, volume));
  auto dir = volume + "/" + kIndexDir;
  if (t.stat(dir).type != dest::EntryType::directory) return;
  for (const auto& e : t.list(dir)) {
    if (e.stat.type != dest::EntryType::file) continue;
    if (e.name.starts_with("index-") && e.name.ends_with(".db")) plan.snapshots.push_back(parse_snapshot_name(volume, e));
    if (auto id = dest::run_id_in(e.name)) plan.newest_receipt[volume] = std::max(plan.newest_receipt[volume], *id);
  }
}

}  // namespace

RecoverPlan plan_recover(const config::Config& cfg, const std::string& destination,
                         const sync::TransportFactory& transport) {
  const auto& d = sync::require_native_mirror(cfg, destination);
  RecoverPlan plan;
  plan.destination = destination;
  plan.root = d.root;
  plan.dest = d;
  std::error_code ec;
  if (d.type == "local" && !std::filesystem::is_directory(d.root, ec))
    throw Error(ErrorKind::refused, fmt::format("destination root {} is not there — is the disk mounted?",
                                                escape_for_display(d.root)));
  auto t = open_destination(d, transport);
  for (const auto& e : t->list(""))
    if (e.stat.type == dest::EntryType::directory && dest::is_clean_name(e.name))
      scan_volume(*t, e.name, plan);
  std::stable_sort(plan.snapshots.begin(), plan.snapshots.end(), [](const auto& a, const auto& b) {
    return std::pair(a.taken_at_ns.value_or(-1), a.name) > std::pair(b.taken_at_ns.value_or(-1), b.name);
  });
  return plan;
}

namespace {

void copy_out(dest::Transport& t, const std::string& name, const std::filesystem::path& to) {
  auto fd = create_private_file(to);
  auto in = t.get(name);
  std::vector<char> buf(1 << 20);
  for (std::size_t n; (n = in->read(buf.data(), buf.size())) > 0;)
    for (std::size_t off = 0; off < n;) {
      ssize_t w = ::write(fd.get(), buf.data() + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) throw Error(ErrorKind::io, fmt::format("cannot write {}: {}", to.string(), std::strerror(errno)));
      off += static_cast<std::size_t>(w);
    }
}

// Why this squirrel cannot install the snapshot; "" when it can. An older
// schema is fine: opening it migrates (after a pre-migration snapshot).
std::string unusable(const store::SnapshotInfo& info) {
  if (!info.problem.empty()) return info.problem;
  if (info.schema_version > store::current_schema_version())
    return fmt::format("schema v{} is newer than this squirrel's v{} — use a newer squirrel", info.schema_version,
                       store::current_schema_version());
  return "";
}

const RemoteSnapshot& chosen(const RecoverPlan& plan, const std::string& choice) {
  for (const auto& s : plan.snapshots)
    if (s.name == choice || s.location == choice) return s;
  std::size_t pos = 0;
  try {
    pos = std::stoul(choice);
  } catch (const std::exception&) {
  }
  if (pos >= 1 && pos <= plan.snapshots.size() && std::to_string(pos) == choice) return plan.snapshots[pos - 1];
  throw Error(ErrorKind::usage, fmt::format("--snapshot {} names none of the {} snapshot(s) at \"{}\" — give its "
                                            "number or file name as `squirrel recover --from {}` lists them",
                                            escape_for_display(choice), plan.snapshots.size(), plan.destination,
                                            plan.destination));
}

}  // namespace

FetchedSnapshot fetch_snapshot(const RecoverPlan& plan, const std::optional<std::string>& choice,
                               const std::filesystem::path& dir, const RecoverWarn& warn,
                               const sync::TransportFactory& transport) {
  auto t = open_destination(plan.dest, transport);
  std::vector<const RemoteSnapshot*> order;
  if (choice) order.push_back(&chosen(plan, *choice));
  else for (const auto& s : plan.snapshots) order.push_back(&s);
  for (const auto* s : order) {
    auto file = dir / fmt::format("{}-{}", order.size() > 1 ? s->volume : "chosen", s->name);
    copy_out(*t, s->location, file);
    auto info = store::inspect_snapshot(file);
    auto why = unusable(info);
    if (why.empty()) return {*s, file, info};
    if (choice) throw Error(ErrorKind::refused, fmt::format("{} cannot be installed: {} — choose another snapshot",
                                                            s->location, why));
    warn(fmt::format("skipped {}: {}", s->location, why));
  }
  throw Error(ErrorKind::not_found,
              fmt::format("no usable index snapshot at \"{}\" — restore each volume from the mirror instead: "
                          "`squirrel restore <volume>` reads its receipts",
                          plan.destination));
}


// ---- the volumes --------------------------------------------------------

std::string_view to_string(VolumeRecovery::State s) {
  using S = VolumeRecovery::State;
  switch (s) {
    case S::ready: return "ready";
    case S::marker_written: return "marker-written";
    case S::marker_wanted: return "marker-wanted";
    case S::folder_missing: return "folder-missing";
    case S::holds_files: return "holds-files";
    case S::path_differs: return "path-differs";
    case S::not_indexed: return "not-indexed";
  }
  return "?";
}

namespace {

using State = VolumeRecovery::State;

bool positively_empty(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) throw Error(ErrorKind::io, fmt::format("cannot list {}: {}", dir.string(), ec.message()));
  return it == std::filesystem::directory_iterator();
}

// The folder exists and the index knows the volume at this path.
void judge_folder(store::Db& db, const std::filesystem::path& path, bool write, VolumeRecovery& r) {
  auto root = open_root(path);
  auto text = read_small_file(root.get(), kMarkerName);
  auto self = store::database_identity(db);
  if (text) {
    auto m = parse_marker(*text);
    bool ours = m && m->volume == r.volume && (!m->index_db || *m->index_db == self);
    r.detail = fmt::format("{} holds the volume's marker", path.string());
    if (ours) return;
    r.state = State::holds_files;
    r.detail = fmt::format("{}/{} does not name volume \"{}\" of this database — inspect it", path.string(),
                           kMarkerName, r.volume);
    r.next.clear();
    return;
  }
  if (!positively_empty(path)) {
    r.state = State::holds_files;
    r.detail = fmt::format("{} holds files but no marker — squirrel takes over only an empty folder; move them away, "
                           "or restore elsewhere with `squirrel restore {} --to <dir>`",
                           path.string(), r.volume);
    r.next.clear();
    return;
  }
  r.state = write ? State::marker_written : State::marker_wanted;
  r.detail = fmt::format("{} is empty: {} the volume marker", path.string(), write ? "wrote" : "would write");
  if (write)
    create_file_exclusive(root.get(), kMarkerName,
                          render_marker({r.volume, now_ns(), self, store::self_node_name(db)}));
}

VolumeRecovery judge(store::Db& db, const std::string& name, const config::Volume& v, const std::string& dest,
                     bool write) {
  VolumeRecovery r;
  r.volume = name;
  r.next = "squirrel restore " + name;
  auto row = store::find_volume(db, name);
  std::error_code ec;
  bool exists = std::filesystem::is_directory(v.path, ec);
  if (!row) {
    r.state = State::not_indexed;
    r.detail = "the index does not know this volume; restore reads the mirror and checks each file against its "
               "receipts";
    if (!exists) r.next = fmt::format("mkdir -p {} && squirrel restore {}", v.path.string(), name);
    return r;
  }
  if (auto why = path_disagreement(*row, v.path)) {
    r.state = State::path_differs;
    r.detail = *why;
    r.next.clear();
    return r;
  }
  if (!exists) {
    r.state = State::folder_missing;
    r.detail = fmt::format("{} is not there — create it (or mount its disk), then run `squirrel recover --from {} "
                           "--execute --keep-database`",
                           v.path.string(), dest);
    r.next = fmt::format("mkdir -p {}", v.path.string());
    return r;
  }
  judge_folder(db, v.path, write, r);
  return r;
}

// A receipt newer than the index's last successful push means a push the
// index never heard of changed the mirror: its copies may differ from what
// the ledger says. Verify finds each such copy and marks it lost.
void warn_if_mirror_is_newer(store::Db& db, const RecoverPlan& plan, VolumeRecovery& r) {
  auto receipt = plan.newest_receipt.find(r.volume);
  auto row = store::find_volume(db, r.volume);
  if (receipt == plan.newest_receipt.end() || !row) return;
  auto known = db.query_i64("SELECT MAX(id) FROM runs WHERE kind = 'sync' AND status = 'success' AND volume_id = ? AND "
                            "destination = ?",
                            {store::Value{row->id}, store::Value{plan.destination}})
                   .value_or(0);
  if (receipt->second <= known) return;
  r.warning = fmt::format("the destination holds a receipt of run {}, newer than any push this index knows (run {}) "
                          "— choose a newer snapshot if there is one; otherwise, after restoring, run `squirrel verify "
                          "{} --full`, which marks every copy that changed since as lost",
                          receipt->second, known, plan.destination);
}

}  // namespace

std::vector<VolumeRecovery> prepare_volumes(const config::Config& cfg, store::Db& db, const RecoverPlan& plan,
                                            bool write_markers) {
  std::vector<VolumeRecovery> out;
  for (const auto& [name, v] : cfg.volumes) {
    if (std::find(v.sync_to.begin(), v.sync_to.end(), plan.destination) == v.sync_to.end()) continue;
    out.push_back(judge(db, name, v, plan.destination, write_markers));
    warn_if_mirror_is_newer(db, plan, out.back());
  }
  return out;
}

std::int64_t record_recovery(store::Db& db, const RecoverPlan& plan, const FetchedSnapshot* snapshot,
                             const std::vector<VolumeRecovery>& volumes) {
  std::string note = fmt::format("recover --from {}: ", plan.destination);
  if (snapshot)
    note += fmt::format("installed {} (run {}, taken {})", snapshot->from.location,
                        snapshot->from.run_id ? std::to_string(*snapshot->from.run_id) : "unknown",
                        snapshot->from.taken_at_ns ? rfc3339_utc(*snapshot->from.taken_at_ns) : "at an unknown time");
  else
    note += "kept the database";
  for (const auto& v : volumes) note += fmt::format("; {}: {}", v.volume, to_string(v.state));
  return store::record_terminal_run(db, {store::RunKind::audit, std::nullopt, ""}, store::RunStatus::success, "", note,
                                    plan.highest_run);
}

}  // namespace sq::engine
