#pragma once
// Offload looks at the world before the one irreversible act. The offline
// gate (gate.hpp) judges records; this module judges the destinations the
// records point at, so that a deleted, corrupted or unmounted copy never
// lets a local file go. Its rules:
//
// | check                                   | when                        | refusal cause           | scope                        |
// |-----------------------------------------|-----------------------------|-------------------------|------------------------------|
// | the target is a local or sftp mirror or | before any file             | uncheckable-target      | the whole target             |
// | content-addressed destination           |                             |                         |                              |
// | no alarm latched on the target          | before any file             | alarm-latched           | the whole target             |
// | the root's filesystem survives a reboot | before any file             | volatile-destination    | the whole target             |
// | the volume's marker is there and ours   | before any file; again when | destination-unreachable | the whole target             |
// |                                         | a copy is missing           |                         |                              |
// | a recorded copy of the content exists,  | per file, before its unlink | copy-missing            | the file; the finding is     |
// | with the recorded size and mtime (an    |                             | copy-changed            | recorded (copy lost, alarm), |
// | object: its name, the recorded size; a  |                             |                         |                              |
// | pack member: its pack, the pack's size) |                             |                         |                              |
// | the copy re-hashes to the content (a    | per file, before its unlink | copy-damaged            | then the rest of the target  |
// | pack: to its key; once per run)         |                             |                         |                              |
//
// A batch of files is looked at together, with the verdicts of looking at
// each file in turn: the copies are stat'ed with one stat_many (a server
// lists a folder once), the stat-clean ones hashed with one read_back_many
// (a server runs one hash command; one without BLAKE3 sends each copy back
// to be hashed here), and then each file is judged in order, so a finding
// still refuses every later file of the target.
//
// A finding is recorded like a verify finding (the copy marked lost, the
// evidence demoted, the alarm latched), so it outlives the run.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/dest/transport.hpp"
#include "engine/offload/gate.hpp"
#include "engine/sync/mirror.hpp"
#include "store/db.hpp"

namespace sq::engine::offload_detail {

class WorldCheck {
 public:
  WorldCheck(const config::Config& cfg, store::Db& db, std::string volume, const std::vector<std::string>& targets,
             const sync::TransportFactory& transport);
  // The refusal that holds for every file of the target, if any.
  const std::optional<GateRefusal>& target_refusal(const std::string& target) const;
  // A file whose copies are to be confirmed, and its content.
  struct Want {
    const GateFile* file = nullptr;
    Digest hash{};
    std::int64_t size = 0;
  };
  // Confirms the copy each target holds of each file's content,
  // re-hashing it: per file (in the batch's order) one refusal per target
  // that could not be confirmed. A finding (copy gone, changed or damaged)
  // is recorded at once and refuses the rest of the target.
  std::vector<std::vector<GateRefusal>> confirm_batch(const std::vector<Want>& batch, std::int64_t run_id);
  std::int64_t copies_rehashed() const { return rehashed_; }

 private:
  struct Target {
    std::string name, root;
    std::unique_ptr<dest::Transport> t;
    std::optional<GateRefusal> refusal;
    bool objects = false;  // content-addressed or packed: copies are objects or packs
    // Packs re-hashed clean during this run: a pack holds thousands of
    // files, so it is hashed once per run and only stat'ed for every later
    // batch (its size, and the alarm state, are still looked at each time).
    std::map<std::string, dest::ReadBack> packs_hashed;
  };
  struct Copy {
    std::int64_t ledger_id = 0, volume_id = 0, size = 0, mtime_ns = 0;
    std::string located;  // name at the destination
    // An object of a content-addressed destination (objects/<hex>): no
    // ledger row and no mtime to compare; a finding forgets its record.
    std::int64_t object_content = 0;
    // A member of the pack `located` (packed layout): the whole pack is
    // re-hashed against its key, which its map ties to the member's bytes.
    std::optional<Digest> pack_key;
  };
  void open_target(Target& t, const config::Config& cfg, const sync::TransportFactory& transport);
  // What was seen of one file's copy at a target before judging it.
  struct Look {
    std::optional<Copy> copy;  // none: no copy is recorded
    dest::Stat st;
    std::optional<dest::ReadBack> rb;
    std::string error;  // an I/O error stat'ing or hashing the copy
  };
  std::vector<Copy> copies_of(const std::string& target, const GateFile& f);
  std::vector<Copy> object_of(const std::string& target, const Want& w);
  std::vector<Look> look_at(Target& t, const std::vector<Want>& batch);
  void hash_copies(Target& t, std::vector<Look*>& clean);
  std::optional<GateRefusal> judge(Target& t, const Want& w, const Look& l, std::int64_t run_id);
  void record_finding(Target& t, const Copy& c, GateCause cause, const std::string& detail, std::int64_t run_id);

  store::Db& db_;
  std::string volume_;
  std::int64_t volume_id_;
  std::map<std::string, Target> targets_;
  std::int64_t rehashed_ = 0;
};

}  // namespace sq::engine::offload_detail
