#pragma once
// The per-file durability gate of offload, evaluated offline from the
// index alone: for every required target, coverage exists, reaches the
// file's origin run, is fresher than the maximum evidence age (unknown age
// refused), was pushed since the file appeared, and was content-verified.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "store/db.hpp"
#include "store/evidence.hpp"

namespace sq::engine {

// The first five are the offline gate's (judged from records); the rest come
// from looking at the destinations (world.hpp).
enum class GateCause {
  no_evidence,
  evidence_behind,
  evidence_stale,
  not_pushed,
  not_content_verified,
  uncheckable_target,
  alarm_latched,
  volatile_destination,
  destination_unreachable,
  copy_missing,
  copy_changed,
  copy_damaged,
  copy_unreadable,
};
// True for the causes that come from looking at a destination.
bool is_world_cause(GateCause c);
std::string_view to_string(GateCause c);
std::string next_step(GateCause c, const std::string& volume, const std::string& target);

struct GateFile {
  std::string path;
  std::int64_t content_id = 0;
  std::int64_t origin_node = 0, origin_run = 0;
  std::int64_t appeared_run = 0;  // status_changed_run (or first_seen)
};

struct GateRefusal {
  std::string target;
  GateCause cause = GateCause::no_evidence;
  std::string detail;  // exact coordinates
};

class OffloadGate {
 public:
  // Loads everything once: vectors, last pushes and freshness per target.
  OffloadGate(store::Db& db, std::int64_t volume_id, std::vector<std::string> targets,
              std::optional<std::int64_t> max_age_ns, std::int64_t now_ns);
  // Empty when every target passes; else the first failing check per target.
  std::vector<GateRefusal> judge(const GateFile& f);
  const std::vector<std::string>& targets() const { return targets_; }

 private:
  struct Target {
    std::map<std::int64_t, store::Component> vector;  // by origin node
    std::int64_t last_push = 0;
    std::map<std::int64_t, std::int64_t> freshness;  // origin node -> run
  };
  std::optional<GateRefusal> judge_target(const std::string& name, const Target& t, const GateFile& f);
  bool fingerprint_backs(const std::string& target, std::int64_t content_id);
  store::Db& db_;
  std::int64_t volume_id_;
  std::vector<std::string> targets_;
  std::optional<std::int64_t> max_age_ns_;
  std::int64_t now_ns_;
  std::map<std::string, Target> loaded_;
  store::Stmt fingerprint_;
};

}  // namespace sq::engine
