#include "engine/offload/world.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "core/fsinfo.hpp"
#include "core/text.hpp"
#include "engine/sync/verify.hpp"
#include "store/alarms.hpp"
#include "store/files.hpp"

namespace sq::engine::offload_detail {

namespace {

GateRefusal refusal(const std::string& target, GateCause cause, std::string detail) {
  return {target, cause, std::move(detail)};
}

bool alarm_latched(store::Db& db, const std::string& target, std::string& detail) {
  for (const auto& a : store::list_alarms(db))
    if (a.destination == target) {
      detail = fmt::format("alarm {} since run {}: {}", a.kind, a.raised_run_id, a.detail);
      return true;
    }
  return false;
}

}  // namespace

WorldCheck::WorldCheck(const config::Config& cfg, store::Db& db, std::string volume,
                       const std::vector<std::string>& targets, const sync::TransportFactory& transport)
    : db_(db), volume_(std::move(volume)) {
  for (const auto& name : targets) {
    auto& t = targets_[name];
    t.name = name;
    open_target(t, cfg, transport);
  }
}

void WorldCheck::open_target(Target& t, const config::Config& cfg, const sync::TransportFactory& transport) {
  const auto* d = cfg.destination(t.name);
  std::string detail;
  if (!d || !d->native_mirror()) {
    t.refusal = refusal(t.name, GateCause::uncheckable_target, "this squirrel can look only at local and sftp mirrors");
    return;
  }
  t.root = d->root;
  if (alarm_latched(db_, t.name, detail)) {
    t.refusal = refusal(t.name, GateCause::alarm_latched, detail);
    return;
  }
  std::error_code ec;
  bool local = d->type == "local";
  if (local && !std::filesystem::is_directory(t.root, ec)) {
    t.refusal = refusal(t.name, GateCause::destination_unreachable, fmt::format("{} is not there", t.root));
    return;
  }
  if (local && is_volatile_fs(std::filesystem::path(t.root) / volume_)) {
    t.refusal = refusal(t.name, GateCause::volatile_destination,
                        fmt::format("{} is on a memory filesystem that does not survive a reboot", t.root));
    return;
  }
  try {
    t.t = sync::open_mirror_transport(*d, transport);
    if (auto why = sync::marker_problem(*t.t, volume_)) t.refusal = refusal(t.name, GateCause::destination_unreachable, *why);
  } catch (const Error& e) {
    t.refusal = refusal(t.name, GateCause::destination_unreachable, e.what());
  }
}

const std::optional<GateRefusal>& WorldCheck::target_refusal(const std::string& target) const {
  return targets_.at(target).refusal;
}

std::vector<WorldCheck::Copy> WorldCheck::copies_of(const std::string& target, const GateFile& f) {
  store::Stmt st(db_,
                 "SELECT p.id, d.volume_id, v.name, d.path, p.name, p.state, p.displaced_run_id, p.size_bytes, "
                 "p.mtime_ns FROM remote_paths p JOIN folders d ON d.id = p.folder_id JOIN volumes v ON v.id = "
                 "d.volume_id WHERE p.destination = ? AND p.content_id = ? AND p.state IN ('live','displaced') "
                 "ORDER BY p.state = 'live' DESC, (p.checksum IS NOT NULL AND p.verified_at_ns IS NOT NULL) DESC, "
                 "p.verified_at_ns DESC, p.id DESC");
  st.bind(1, target).bind(2, f.content_id);
  std::vector<Copy> out;
  while (st.step()) {
    auto path = store::join_path(st.bytes_str(3), st.bytes_str(4));
    auto vol = st.text(2);
    auto located = st.text(5) == "live" ? vol + "/" + path
                                        : fmt::format("{}/.squirrel-history/run-{}/{}", vol, st.i64(6), path);
    out.push_back({st.i64(0), st.i64(1), st.i64(7), st.i64(8), std::move(located)});
  }
  // The file's own copy first: it is the one a restore of this path reads.
  std::stable_partition(out.begin(), out.end(), [&](const Copy& c) { return c.located == volume_ + "/" + f.path; });
  return out;
}

void WorldCheck::record_finding(Target& t, const Copy& c, GateCause cause, const std::string& detail,
                                std::int64_t run_id) {
  auto what = fmt::format("offload found {} at {}: {}", to_string(cause), escape_for_display(c.located), detail);
  store::Tx tx(db_);
  sync::record_lost_copies_in_tx(db_, c.volume_id, t.name, {c.ledger_id}, "offload-check", what, run_id);
  tx.commit();
  t.refusal = refusal(t.name, GateCause::alarm_latched, "raised during this offload: " + what);
}

std::optional<GateRefusal> WorldCheck::confirm(Target& t, const GateFile& f, const Digest& hash, std::int64_t size,
                                               std::int64_t run_id) {
  auto copies = copies_of(t.name, f);
  if (copies.empty()) return refusal(t.name, GateCause::copy_missing, "no live or history copy is recorded");
  const auto& c = copies.front();
  auto st = t.t->stat(c.located);
  if (st.type == dest::EntryType::none) {
    if (auto why = sync::marker_problem(*t.t, volume_)) {  // the disk went away: not a finding about copies
      t.refusal = refusal(t.name, GateCause::destination_unreachable, *why);
      return t.refusal;
    }
    record_finding(t, c, GateCause::copy_missing, "gone", run_id);
    return refusal(t.name, GateCause::copy_missing, fmt::format("{} is gone", escape_for_display(c.located)));
  }
  if (st.type != dest::EntryType::file || st.size != c.size || st.mtime_ns != c.mtime_ns || c.size != size) {
    auto detail = fmt::format("{} bytes, mtime {} (recorded {} bytes, mtime {})", st.size, st.mtime_ns, c.size,
                              c.mtime_ns);
    record_finding(t, c, GateCause::copy_changed, detail, run_id);
    return refusal(t.name, GateCause::copy_changed, detail);
  }
  // A server that hashes with another algorithm, or not at all: the copy
  // comes back over the wire and is hashed here.
  auto rb = dest::read_back_blake3(*t.t, c.located);
  rehashed_ += 1;
  if (rb.hash != hash || rb.bytes != size) {
    record_finding(t, c, GateCause::copy_damaged, "BLAKE3 differs from the content's", run_id);
    return refusal(t.name, GateCause::copy_damaged,
                   fmt::format("{}: BLAKE3 differs from the content's", escape_for_display(c.located)));
  }
  return std::nullopt;
}

std::vector<GateRefusal> WorldCheck::confirm_copies(const GateFile& f, const Digest& hash, std::int64_t size,
                                                    std::int64_t run_id) {
  std::vector<GateRefusal> out;
  for (auto& [name, t] : targets_) {
    if (t.refusal) {
      out.push_back(*t.refusal);
      continue;
    }
    try {
      if (auto r = confirm(t, f, hash, size, run_id)) out.push_back(std::move(*r));
    } catch (const Error& e) {  // an I/O error reading the copy: never a pass
      out.push_back(refusal(name, GateCause::copy_unreadable, fmt::format("cannot check the copy: {}", e.what())));
    }
  }
  return out;
}

}  // namespace sq::engine::offload_detail
