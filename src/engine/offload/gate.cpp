#include "engine/offload/gate.hpp"

#include <fmt/format.h>

#include "core/text.hpp"

namespace sq::engine {

std::string_view to_string(GateCause c) {
  switch (c) {
    case GateCause::no_evidence: return "no-evidence";
    case GateCause::evidence_behind: return "evidence-behind";
    case GateCause::evidence_stale: return "evidence-stale";
    case GateCause::not_pushed: return "not-pushed";
    case GateCause::not_content_verified: return "not-content-verified";
    case GateCause::uncheckable_target: return "uncheckable-target";
    case GateCause::alarm_latched: return "alarm-latched";
    case GateCause::volatile_destination: return "volatile-destination";
    case GateCause::destination_unreachable: return "destination-unreachable";
    case GateCause::copy_missing: return "copy-missing";
    case GateCause::copy_changed: return "copy-changed";
    case GateCause::copy_damaged: return "copy-damaged";
    case GateCause::copy_unreadable: return "copy-unreadable";
  }
  return "unknown";
}

bool is_world_cause(GateCause c) { return c >= GateCause::uncheckable_target; }

std::string next_step(GateCause c, const std::string& volume, const std::string& target) {
  switch (c) {
    case GateCause::evidence_stale:
      return fmt::format("squirrel verify {} (on an SFTP server that cannot run a hash command: squirrel verify {} "
                         "--download --full)",
                         target, target);
    case GateCause::not_content_verified:
      return fmt::format("squirrel verify {} --full (on an SFTP server that cannot run a hash command: squirrel "
                         "verify {} --download --full)",
                         target, target);
    case GateCause::alarm_latched:
      return fmt::format("squirrel verify {} --full (a clean pass clears the alarm), or `squirrel verify ack {}` once "
                         "you know why",
                         target, target);
    case GateCause::uncheckable_target:
      return fmt::format("remove {} from offload_requires of {}, or require a local or sftp mirror", target, volume);
    case GateCause::volatile_destination:
      return fmt::format("point destination {} at a disk that survives a reboot", target);
    case GateCause::destination_unreachable:
      return fmt::format("mount the disk of {} (or fix its root), then retry", target);
    case GateCause::copy_missing:
    case GateCause::copy_changed:
    case GateCause::copy_damaged:
    case GateCause::copy_unreadable:
      return fmt::format("squirrel sync {} --to {}, then squirrel verify {} --full", volume, target, target);
    default:
      return fmt::format("squirrel sync {} --to {}", volume, target);
  }
}

OffloadGate::OffloadGate(store::Db& db, std::int64_t volume_id, std::vector<std::string> targets,
                         std::optional<std::int64_t> max_age_ns, std::int64_t now)
    : db_(db), volume_id_(volume_id), targets_(std::move(targets)), max_age_ns_(max_age_ns), now_ns_(now),
      fingerprint_(db,
                   "SELECT 1 FROM remote_paths WHERE destination = ?1 AND content_id = ?2 AND state IN "
                   "('live','displaced') AND checksum IS NOT NULL AND verified_at_ns IS NOT NULL UNION ALL SELECT 1 "
                   "FROM remote_objects WHERE destination = ?1 AND content_id = ?2 AND checksum IS NOT NULL AND "
                   "verified_at_ns IS NOT NULL UNION ALL SELECT 1 FROM pack_members m JOIN remote_packs r ON r.pack_id "
                   "= m.pack_id WHERE r.destination = ?1 AND m.content_id = ?2 AND r.checksum IS NOT NULL AND "
                   "r.verified_at_ns IS NOT NULL LIMIT 1") {
  for (const auto& name : targets_) {
    Target t;
    for (auto& c : store::vector_of(db, volume_id, name)) t.vector.emplace(c.origin_node_id, std::move(c));
    t.last_push = db.query_i64("SELECT MAX(id) FROM runs WHERE kind = 'sync' AND status = 'success' AND volume_id = ? "
                               "AND destination = ?",
                               {store::Value{volume_id}, store::Value{name}})
                      .value_or(0);
    store::Stmt st(db, "SELECT origin_node_id, origin_run_id FROM destination_push_freshness WHERE volume_id = ? AND "
                       "destination = ?");
    st.bind(1, volume_id).bind(2, name);
    while (st.step()) t.freshness[st.i64(0)] = st.i64(1);
    loaded_.emplace(name, std::move(t));
  }
}

bool OffloadGate::fingerprint_backs(const std::string& target, std::int64_t content_id) {
  fingerprint_.reset();
  fingerprint_.bind(1, target).bind(2, content_id);
  bool backed = fingerprint_.step();
  fingerprint_.reset();  // not left on a row: the gate lives across the offload's commits
  return backed;
}

std::optional<GateRefusal> OffloadGate::judge_target(const std::string& name, const Target& t, const GateFile& f) {
  auto it = t.vector.find(f.origin_node);
  if (it == t.vector.end())
    return GateRefusal{name, GateCause::no_evidence, fmt::format("no evidence for origin node {} at all", f.origin_node)};
  const auto& c = it->second;
  if (c.origin_run_id < f.origin_run)
    return GateRefusal{name, GateCause::evidence_behind,
                       fmt::format("its evidence reaches run {} of {} (the node that indexed the file), the "
                                   "file needs run {}",
                                   c.origin_run_id, c.origin_node_name, f.origin_run)};
  if (max_age_ns_ && (!c.verified_at_ns || *c.verified_at_ns < now_ns_ - *max_age_ns_))
    return GateRefusal{name, GateCause::evidence_stale,
                       c.verified_at_ns ? fmt::format("last verified {} ago, limit {}",
                                                      format_duration_ns(now_ns_ - *c.verified_at_ns),
                                                      format_duration_ns(*max_age_ns_))
                                        : "never verified (unknown age counts as too old)"};
  bool pushed = t.last_push > 0 ? t.last_push >= f.appeared_run
                                : (t.freshness.count(f.origin_node) && t.freshness.at(f.origin_node) >= f.origin_run);
  if (!pushed)
    return GateRefusal{name, GateCause::not_pushed,
                       fmt::format("last push run {} is older than the file's run {}", t.last_push, f.appeared_run)};
  if (store::is_content_verified(c.method)) return std::nullopt;
  if (c.method == store::VerifyMethod::presence_size && fingerprint_backs(name, f.content_id)) return std::nullopt;
  return GateRefusal{name, GateCause::not_content_verified,
                     fmt::format("method {}", c.method ? store::to_string(*c.method) : "unknown")};
}

std::vector<GateRefusal> OffloadGate::judge(const GateFile& f) {
  std::vector<GateRefusal> out;
  for (const auto& name : targets_)
    if (auto r = judge_target(name, loaded_.at(name), f)) out.push_back(std::move(*r));
  return out;
}

}  // namespace sq::engine
