#include "engine/destination_check.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/fsinfo.hpp"
#include "core/text.hpp"
#include "engine/dest/sftp/sftp.hpp"
#include "engine/sync/mirror.hpp"
#include "engine/sync/plan.hpp"
#include "engine/volume.hpp"
#include "store/volumes.hpp"

namespace sq::engine {

bool DestinationCheck::ok() const {
  return std::none_of(findings.begin(), findings.end(), [](const auto& f) { return f.level == "FAIL"; });
}

namespace {

namespace fs = std::filesystem;

struct Probe {
  const config::Config& cfg;
  store::Db* db;
  const config::Destination& dest;
  DestinationCheck& out;
  bool root_is_dir = false;

  void add(std::string check, std::string level, std::string detail) {
    out.findings.push_back({std::move(check), std::move(level), std::move(detail)});
  }
  std::string root() const { return escape_for_display(dest.root); }
};

// The volumes that name this destination, in sync_to or offload_requires.
std::vector<const config::Volume*> volumes_using(const config::Config& cfg, const std::string& dest) {
  std::vector<const config::Volume*> out;
  for (const auto& [name, v] : cfg.volumes) {
    auto names = [&](const std::vector<std::string>& list) {
      return std::find(list.begin(), list.end(), dest) != list.end();
    };
    if (names(v.sync_to) || names(v.offload_requires)) out.push_back(&v);
  }
  return out;
}

bool ever_synced(store::Db* db, const std::string& dest, const std::string& volume) {
  if (!db) return false;
  auto row = store::find_volume(*db, volume);
  return row && db->query_i64("SELECT EXISTS(SELECT 1 FROM runs WHERE kind = 'sync' AND volume_id = ? AND "
                              "destination = ? AND status = 'success')",
                              {store::Value{row->id}, store::Value{dest}})
                        .value_or(0) != 0;
}

void check_reachable(Probe& p) {
  std::error_code ec;
  auto status = fs::status(p.dest.root, ec);
  p.root_is_dir = fs::is_directory(status);
  if (p.root_is_dir) return p.add("reachable", "ok", fmt::format("root {} is a directory", p.root()));
  bool used = false;
  for (const auto* v : volumes_using(p.cfg, p.dest.name)) used = used || ever_synced(p.db, p.dest.name, v->name);
  if (status.type() == fs::file_type::not_found)
    return p.add("reachable", used ? "FAIL" : "warn",
                 used ? fmt::format("root {} does not exist although copies were made there — is the disk mounted?",
                                    p.root())
                      : fmt::format("root {} does not exist yet — the first `squirrel sync --init` creates it",
                                    p.root()));
  p.add("reachable", "FAIL",
        ec ? fmt::format("root {} cannot be examined: {} — check the path and its permissions", p.root(), ec.message())
           : fmt::format("root {} is not a directory — point root at a directory", p.root()));
}

void check_filesystem(Probe& p) {
  FsInfo info;
  try {
    info = fs_info(p.dest.root);
  } catch (const Error& e) {
    return p.add("filesystem", "FAIL", e.what());
  }
  std::string where = info.exists ? "" : fmt::format(" (where it would be created, {})",
                                                      escape_for_display(info.probed.string()));
  if (info.is_volatile)
    return p.add("filesystem", "FAIL",
                 fmt::format("{}{} does not survive a reboot — copies there never count as durable; if a disk belongs "
                             "at {}, mount it, otherwise choose a root on a disk",
                             info.type, where, p.root()));
  p.add("filesystem", "ok", fmt::format("{}{}", info.type, where));
}

void check_layout(Probe& p) {
  for (const auto& c : config::real_layout_clashes(p.cfg))
    if (c.first == p.dest.name || c.second == p.dest.name)
      p.add("layout", "FAIL", fmt::format("{} — {}", c.problem, c.todo));
}

void check_same_disk(Probe& p) {
  for (const auto* v : volumes_using(p.cfg, p.dest.name)) {
    try {
      auto vol = fs_info(v->path), dest = fs_info(p.dest.root);
      if (!dest.is_volatile && same_filesystem(vol, dest))
        p.add("same-disk", "warn",
              fmt::format("on the same filesystem ({}) as volume \"{}\" — its copies survive a deleted file but not a "
                          "dead disk; add a destination on another disk",
                          dest.type, v->name));
    } catch (const Error&) {
      // an unreachable volume or root has its own finding
    }
  }
}

}  // namespace

namespace {

bool native_mirror(const config::Destination& d) { return d.type == "local" && d.layout == "mirror"; }

// What the next sync writes, from the records (the same plan a sync
// makes); empty when no volume that syncs here is indexed.
std::optional<std::int64_t> bytes_to_write(Probe& p) {
  std::optional<std::int64_t> bytes;
  if (!p.db) return bytes;
  for (const auto* v : volumes_using(p.cfg, p.dest.name)) {
    if (std::find(v->sync_to.begin(), v->sync_to.end(), p.dest.name) == v->sync_to.end()) continue;
    if (auto row = store::find_volume(*p.db, v->name))
      bytes = bytes.value_or(0) + sync::plan_mirror(*p.db, row->id, p.dest.name).bytes;
  }
  return bytes;
}

// Free space against the next sync's bytes; `estimate`: the layout is one
// whose next sync plan_mirror predicts.
void report_free_space(Probe& p, std::int64_t free_bytes, bool estimate) {
  auto needed = estimate ? bytes_to_write(p) : std::nullopt;
  std::string next = !estimate ? std::string("the next sync's size is not estimated for this layout")
                     : needed  ? fmt::format("the next sync writes about {}", format_bytes(*needed))
                               : std::string("nothing that syncs here is indexed yet");
  if (needed && *needed > free_bytes)
    return p.add("free-space", "FAIL",
                 fmt::format("{} free but {} — free space there or choose a larger disk", format_bytes(free_bytes),
                             next));
  p.add("free-space", "ok", fmt::format("{} free; {}", format_bytes(free_bytes), next));
}

void check_free_space(Probe& p) {
  FsInfo info;
  try {
    info = fs_info(p.dest.root);
  } catch (const Error&) {
    return;  // the filesystem finding says why
  }
  report_free_space(p, info.free_bytes, native_mirror(p.dest));
}

// A volume that syncs here has no marker: expected before its first sync,
// alarming after one (another disk, or another directory, is at the root).
void missing_marker(Probe& p, const std::string& shown, const config::Volume& v) {
  if (ever_synced(p.db, p.dest.name, v.name))
    return p.add("marker", "FAIL",
                 fmt::format("{} is missing although \"{}\" was synced here — is the right disk mounted?", shown,
                             v.name));
  p.add("marker", "warn",
        fmt::format("\"{}\" has no copies here yet — the first `squirrel sync {} --to {} --init` starts them", v.name,
                    v.name, p.dest.name));
}

// The volumes whose sync_to names this destination (offload_requires alone
// writes no marker).
std::vector<const config::Volume*> volumes_syncing(const Probe& p) {
  std::vector<const config::Volume*> synced;
  for (const auto* v : volumes_using(p.cfg, p.dest.name))
    if (std::find(v->sync_to.begin(), v->sync_to.end(), p.dest.name) != v->sync_to.end()) synced.push_back(v);
  return synced;
}

void check_marker(Probe& p, const Fd& root, const config::Volume& v) {
  std::string rel = v.name + "/" + kMarkerName;
  std::string shown = fmt::format("{}/{}", p.root(), rel);
  std::optional<std::string> text;
  try {
    text = read_small_file(root.get(), rel);
  } catch (const Error& e) {
    return p.add("marker", "FAIL", fmt::format("{} cannot be read: {} — fix access to it", shown, e.what()));
  }
  if (!text) return missing_marker(p, shown, v);
  auto m = parse_marker(*text);
  if (!m) return p.add("marker", "FAIL", fmt::format("{} is not a valid squirrel marker — inspect it", shown));
  if (m->volume != v.name)
    return p.add("marker", "FAIL",
                 fmt::format("{} names volume \"{}\", not \"{}\" — check root of destination \"{}\"", shown,
                             escape_for_display(m->volume), v.name, p.dest.name));
  p.add("marker", "ok", fmt::format("{} names \"{}\"", shown, v.name));
}

void check_markers(Probe& p) {
  auto synced = volumes_syncing(p);
  if (synced.empty() || !p.root_is_dir || !native_mirror(p.dest)) return;
  Fd root;
  try {
    root = open_root(p.dest.root);
  } catch (const Error& e) {
    return p.add("marker", "FAIL", fmt::format("cannot open root {}: {}", p.root(), e.what()));
  }
  for (const auto* v : synced) check_marker(p, root, *v);
}

}  // namespace

// ---- sftp ----------------------------------------------------------------------
// The server is examined through probe_sftp, which never sends a credential
// to a server whose host key is not trusted; each finding below that needs
// the step before it stops at the first FAIL.

namespace {

// "SHA256:... (ssh-ed25519) is trusted by <file>"
bool check_host_key(Probe& p, const dest::SftpFacts& f) {
  if (!f.host_key_trusted) {
    p.add("host-key", "FAIL", f.host_key_problem);
    return false;
  }
  p.add("host-key", "ok",
        fmt::format("{} ({}) is trusted by {}", f.host_key_fingerprint, f.host_key_type,
                    escape_for_display(f.known_hosts_file)));
  return true;
}

bool check_login(Probe& p, const dest::SftpFacts& f) {
  if (!f.authenticated) {
    p.add("login", "FAIL",
          f.auth_problem.empty() ? fmt::format("{} did not log in — check user, and the key or password", f.endpoint)
                                 : f.auth_problem);
    return false;
  }
  p.add("login", "ok", fmt::format("logged in to {}", f.endpoint));
  return true;
}

// The extensions squirrel relies on; without fsync@openssh.com a put cannot
// be made durable, so such copies count only as presence+size.
void check_extensions(Probe& p, const dest::SftpFacts& f) {
  std::vector<std::string> has, lacks;
  for (const char* name : {"fsync@openssh.com", "posix-rename@openssh.com", "statvfs@openssh.com"})
    (std::find(f.extensions.begin(), f.extensions.end(), name) != f.extensions.end() ? has : lacks).push_back(name);
  std::string offered = has.empty() ? fmt::format("offers none of {}", fmt::join(lacks, ", "))
                        : lacks.empty() ? fmt::format("offers {}", fmt::join(has, ", "))
                                        : fmt::format("offers {}; not {}", fmt::join(has, ", "), fmt::join(lacks, ", "));
  if (std::find(lacks.begin(), lacks.end(), "fsync@openssh.com") != lacks.end())
    return p.add("extensions", "warn",
                 fmt::format("the server {} — without fsync@openssh.com written bytes may not survive a power cut on "
                             "the server; copies are recorded as presence+size",
                             offered));
  p.add("extensions", "ok", fmt::format("the server {}", offered));
}

void check_server_hash(Probe& p, const dest::SftpFacts& f) {
  if (!f.hash_algo.empty())
    return p.add("server-hash", "ok",
                 fmt::format("{} works", f.hash_algo == "blake3" ? std::string("b3sum") : f.hash_algo + "sum"));
  p.add("server-hash", "warn",
        fmt::format("{} — copies stay presence+size until `squirrel verify {} --download --full`",
                    f.hash_problem.empty() ? std::string("no hash command works on the server") : f.hash_problem,
                    p.dest.name));
}

void check_remote_free_space(Probe& p, const dest::SftpFacts& f) {
  if (!f.root_exists) return;  // the root finding says why
  if (!f.free_bytes)
    return p.add("free-space", "warn",
                 "the server does not report free space (no statvfs@openssh.com) — make sure the next sync fits");
  report_free_space(p, *f.free_bytes, true);
}

// FAIL even before the first sync, unlike a local root: a missing remote
// root is as likely a wrong path as a fresh destination.
bool check_remote_root(Probe& p, const dest::SftpFacts& f) {
  if (f.root_exists) {
    p.add("root", "ok", fmt::format("root {} is a directory on {}", p.root(), f.endpoint));
    return true;
  }
  p.add("root", "FAIL",
        fmt::format("root {} does not exist on the server (or is not a directory) — the first `squirrel sync "
                    "<volume> --to {} --init` creates it",
                    p.root(), p.dest.name));
  return false;
}

void check_remote_marker(Probe& p, dest::Transport& t, const config::Volume& v) {
  std::string rel = v.name + "/" + kMarkerName;
  std::string shown = fmt::format("{}/{}", p.root(), rel);
  try {
    if (t.stat(rel).type == dest::EntryType::none) return missing_marker(p, shown, v);
  } catch (const Error& e) {
    return p.add("marker", "FAIL", fmt::format("{} cannot be examined: {} — fix access to it", shown, e.what()));
  }
  if (auto problem = sync::marker_problem(t, v.name))
    return p.add("marker", "FAIL",
                 fmt::format("in root {}: {} — check root of destination \"{}\"", p.root(), *problem, p.dest.name));
  p.add("marker", "ok", fmt::format("{} names \"{}\"", shown, v.name));
}

// Opens the transport only now, with the host key, login and root known
// good; create_root=false, so it creates nothing.
void check_remote_markers(Probe& p, const dest::SftpOptions& o) {
  auto synced = volumes_syncing(p);
  if (synced.empty()) return;
  std::unique_ptr<dest::Transport> t;
  try {
    t = dest::open_sftp_transport(o, false);
  } catch (const Error& e) {
    return p.add("marker", "FAIL", fmt::format("cannot open root {}: {}", p.root(), e.what()));
  }
  for (const auto* v : synced) check_remote_marker(p, *t, *v);
}

void check_sftp(Probe& p) {
  auto o = sync::sftp_options_of(p.dest);
  dest::SftpFacts f;
  try {
    f = dest::probe_sftp(o);
  } catch (const Error& e) {  // TransportError: no connection or handshake at all
    return p.add("reachable", "FAIL", e.what());
  }
  p.add("reachable", "ok", fmt::format("connected to {}", f.endpoint));
  if (!check_host_key(p, f) || !check_login(p, f)) return;
  check_extensions(p, f);
  check_server_hash(p, f);
  check_remote_free_space(p, f);
  if (check_remote_root(p, f)) check_remote_markers(p, o);
}

}  // namespace

DestinationCheck check_destination(const config::Config& cfg, store::Db* db, const std::string& destination) {
  const auto* d = cfg.destination(destination);
  if (!d)
    throw Error(ErrorKind::not_found, fmt::format("unknown destination \"{}\" — declare it under [destinations] in {}",
                                                  escape_for_display(destination), cfg.file.string()));
  DestinationCheck out;
  out.destination = destination;
  Probe p{cfg, db, *d, out};
  if (d->type == "sftp" && d->native_mirror()) {
    check_sftp(p);
    return out;
  }
  if (!d->has_local_root()) {
    p.add("transport", "warn",
          fmt::format("a {} destination cannot be examined by this squirrel yet; only local roots are checked", d->type));
    return out;
  }
  check_reachable(p);
  check_filesystem(p);
  check_layout(p);
  check_same_disk(p);
  check_free_space(p);
  check_markers(p);
  return out;
}

}  // namespace sq::engine
