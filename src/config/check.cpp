// `config check`: read-only checks of what a loaded config names on disk.
// Nothing here creates, opens for writing or repairs anything.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "config/config.hpp"
#include "core/error.hpp"
#include "core/fsinfo.hpp"
#include "core/text.hpp"

namespace sq::config {

namespace {

namespace fs = std::filesystem;

std::string shown(const fs::path& path) { return escape_for_display(path.string()); }

// "30d", "6h", "90m" read better than "30d0h" for a round configured value.
std::string round_duration(std::int64_t ns) {
  const std::int64_t second = 1000000000LL;
  if (ns % (86400 * second) == 0) return fmt::format("{}d", ns / (86400 * second));
  if (ns % (3600 * second) == 0) return fmt::format("{}h", ns / (3600 * second));
  if (ns % (60 * second) == 0) return fmt::format("{}m", ns / (60 * second));
  return format_duration_ns(ns);
}

CheckLine check_volume(const Volume& v) {
  CheckLine line{"volumes", v.name, "ok", shown(v.path)};
  std::error_code ec;
  fs::file_status status = fs::status(v.path, ec);
  if (ec && status.type() != fs::file_type::not_found) {
    line.level = "FAIL";
    line.detail = fmt::format("{} cannot be checked: {}", shown(v.path), ec.message());
  } else if (status.type() == fs::file_type::not_found) {
    line.level = "FAIL";
    line.detail = fmt::format("{} does not exist", shown(v.path));
  } else if (!fs::is_directory(status)) {
    line.level = "FAIL";
    line.detail = fmt::format("{} is not a directory", shown(v.path));
  } else if (fs::directory_iterator it(v.path, ec); ec) {
    line.level = "FAIL";
    line.detail = fmt::format("{} cannot be read: {}", shown(v.path), ec.message());
  } else if (it == fs::directory_iterator()) {
    line.level = "warn";
    line.detail = fmt::format("{} is empty", shown(v.path));
  }
  return line;
}

std::string bucket_path(const Destination& d) {
  std::string_view root = d.root;
  while (root.starts_with("/")) root.remove_prefix(1);
  return root.empty() ? d.bucket : d.bucket + "/" + std::string(root);
}

std::string describe(const Destination& d) {
  std::string where;
  if (d.type == "local" || d.type == "kopia" || d.type == "restic")
    where = escape_for_display(d.root);
  else if (d.type == "sftp")
    where = d.port ? fmt::format("{}@{}:{}:{}", d.user, d.host, *d.port, d.root)
                   : fmt::format("{}@{}:{}", d.user, d.host, d.root);
  else
    where = bucket_path(d);
  if (d.type == "s3") where += fmt::format(" ({})", d.provider);
  std::string kind = d.layout.empty() ? "repository" : d.layout;
  return fmt::format("{} {} {}{}", d.type, kind, escape_for_display(where), d.crypt ? " + crypt" : "");
}

// Only roots squirrel can see on this machine are checked; remote ones are
// reached at sync time.
CheckLine check_destination(const Destination& d) {
  CheckLine line{"destinations", d.name, "ok", describe(d)};
  if (!d.has_local_root()) return line;
  std::error_code ec;
  fs::file_status status = fs::status(d.root, ec);
  if (status.type() == fs::file_type::not_found) {
    line.level = "warn";
    line.detail += d.type == "local" ? " — root does not exist yet; `squirrel sync --init` creates it"
                                     : " — repository does not exist yet; initialise it with --init";
  } else if (ec) {
    line.level = "FAIL";
    line.detail += fmt::format(" — cannot be checked: {}", ec.message());
  } else if (!fs::is_directory(status)) {
    line.level = "FAIL";
    line.detail += " — root is not a directory";
  }
  return line;
}

CheckLine check_node(const Node& n) {
  std::string pin = n.cert_fingerprint ? " (pinned)" : "";
  return {"nodes", n.name, "ok", escape_for_display(n.endpoint) + pin};
}

CheckLine offload_policy(const Volume& v) {
  std::string age = v.offload_max_evidence_age_ns ? round_duration(*v.offload_max_evidence_age_ns) : std::string("off");
  return {"offload", v.name, "ok",
          fmt::format("requires {}; max evidence age {}", fmt::join(v.offload_requires, ", "), age)};
}

// A reference config may name a target only a peer pushes to; the loader
// accepts it, and this is where the user learns what it will (not) do.
void external_targets(const Config& cfg, std::vector<CheckLine>& lines) {
  for (const auto& [vname, v] : cfg.volumes)
    for (const auto& t : cfg.external_targets(v))
      lines.push_back({"offload", t, "warn",
                       fmt::format("external target of volume \"{}\": declared nowhere here, so only evidence a peer "
                                   "relays could count and offload refuses until it can check it — declare it, or fix "
                                   "the name if it is a typo",
                                   vname)});
}

void repeated_sync_targets(const Config& cfg, std::vector<CheckLine>& lines) {
  for (const auto& [vname, v] : cfg.volumes)
    for (const auto& t : v.sync_to_repeated)
      lines.push_back({"volumes", vname, "warn",
                       fmt::format("sync_to lists \"{}\" more than once — it is synced once; remove the repeat", t)});
}

// What the disk knows and the config strings cannot show.
std::optional<FsInfo> probe(const std::filesystem::path& path) {
  try {
    return fs_info(path);
  } catch (const Error&) {
    return std::nullopt;  // unreachable paths have their own line above
  }
}

void volatile_roots(const Config& cfg, std::vector<CheckLine>& lines) {
  for (const auto& [name, d] : cfg.destinations) {
    if (!d.has_local_root()) continue;
    auto fs = probe(d.root);
    if (fs && fs->is_volatile)
      lines.push_back({"layout", name, "warn",
                       fmt::format("root {} is on {}, which does not survive a reboot — copies there never count as "
                                   "durable; if a disk belongs there, mount it, otherwise choose a root on a disk",
                                   escape_for_display(d.root), fs->type)});
  }
}

// A copy on the volume's own disk survives a deleted file, not a dead disk.
void shared_disks(const Config& cfg, std::vector<CheckLine>& lines) {
  for (const auto& [vname, v] : cfg.volumes) {
    auto vol_fs = probe(v.path);
    std::vector<std::string> targets = v.sync_to;
    targets.insert(targets.end(), v.offload_requires.begin(), v.offload_requires.end());
    std::sort(targets.begin(), targets.end());
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
    for (const auto& t : targets) {
      const Destination* d = cfg.destination(t);
      auto dest_fs = d && d->has_local_root() && vol_fs ? probe(d->root) : std::nullopt;
      if (!dest_fs || dest_fs->is_volatile || !same_filesystem(*vol_fs, *dest_fs)) continue;
      lines.push_back({"layout", t, "warn",
                       fmt::format("is on the same filesystem ({}) as volume \"{}\" — its copies survive a deleted "
                                   "file but not a dead disk; add a destination on another disk",
                                   dest_fs->type, vname)});
    }
  }
}

}  // namespace

std::vector<CheckLine> check(const Config& cfg) {
  std::vector<CheckLine> lines;
  for (const auto& [name, v] : cfg.volumes) lines.push_back(check_volume(v));
  repeated_sync_targets(cfg, lines);
  for (const auto& [name, d] : cfg.destinations) lines.push_back(check_destination(d));
  for (const auto& [name, n] : cfg.nodes) lines.push_back(check_node(n));
  for (const auto& [name, v] : cfg.volumes)
    if (!v.offload_requires.empty()) lines.push_back(offload_policy(v));
  external_targets(cfg, lines);
  // Loading already refuses such a destination in offload_requires; here the
  // user learns before naming it that it will never count.
  for (const auto& [name, d] : cfg.destinations)
    if (!d.can_ever_gate_offload())
      lines.push_back({"offload", name, "warn",
                       "a mirror behind crypt can never prove content for offload — use layout "
                       "\"content-addressed\" or \"packed\" if it should count"});
  // Loading refused these on the configured paths; symlinks and mounts can
  // still hide them.
  for (const auto& c : real_layout_clashes(cfg))
    lines.push_back({"layout", c.name, "FAIL", fmt::format("{} — {}", c.problem, c.todo)});
  volatile_roots(cfg, lines);
  shared_disks(cfg, lines);
  return lines;
}

}  // namespace sq::config
