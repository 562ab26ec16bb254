#include "engine/offload/world.hpp"


#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <filesystem>

#include "core/fsinfo.hpp"
#include "core/text.hpp"
#include "engine/sync/push.hpp"
#include "engine/sync/verify.hpp"
#include "store/artifacts.hpp"
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

// The copy is where the ledger says, as the ledger recorded it, and the
// ledger's size is the content's.
// An object's mtime is not recorded (kObjectMtime): its name and size are.
constexpr std::int64_t kObjectMtime = -1;

bool stat_clean(const dest::Stat& st, std::int64_t recorded_size, std::int64_t recorded_mtime, std::int64_t size) {
  return st.type == dest::EntryType::file && st.size == recorded_size &&
         (recorded_mtime == kObjectMtime || st.mtime_ns == recorded_mtime) && recorded_size == size;
}

}  // namespace

WorldCheck::WorldCheck(const config::Config& cfg, store::Db& db, std::string volume,
                       const std::vector<std::string>& targets, const sync::TransportFactory& transport)
    : db_(db),
      volume_(std::move(volume)),
      volume_id_(db.query_i64("SELECT id FROM volumes WHERE name = ?", {store::Value{volume_}}).value_or(0)) {
  for (const auto& name : targets) {
    auto& t = targets_[name];
    t.name = name;
    open_target(t, cfg, transport);
  }
}

void WorldCheck::open_target(Target& t, const config::Config& cfg, const sync::TransportFactory& transport) {
  const auto* d = cfg.destination(t.name);
  std::string detail;
  t.objects = d && (d->native_content() || d->native_packed());
  if (!d || !(d->native_mirror() || t.objects)) {
    t.refusal = refusal(t.name, GateCause::uncheckable_target,
                        "this squirrel can look only at local and sftp mirrors and content-addressed destinations");
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
    out.push_back({st.i64(0), st.i64(1), st.i64(7), st.i64(8), std::move(located), 0, std::nullopt});
  }
  // The file's own copy first: it is the one a restore of this path reads.
  std::stable_partition(out.begin(), out.end(), [&](const Copy& c) { return c.located == volume_ + "/" + f.path; });
  return out;
}

std::vector<WorldCheck::Copy> WorldCheck::object_of(const std::string& target, const Want& w) {
  if (store::object_recorded(db_, w.file->content_id, target))
    return {Copy{0, volume_id_, w.size, kObjectMtime, sync::object_name(w.hash), w.file->content_id, std::nullopt}};
  auto place = store::pack_place(db_, w.file->content_id, target);
  if (!place) return {};
  return {Copy{0, volume_id_, place->pack_size, kObjectMtime, sync::pack_name(place->key), w.file->content_id,
               place->key}};
}

void WorldCheck::record_finding(Target& t, const Copy& c, GateCause cause, const std::string& detail,
                                std::int64_t run_id) {
  auto what = fmt::format("offload found {} at {}: {}", to_string(cause), escape_for_display(c.located), detail);
  store::Tx tx(db_);
  std::vector<std::int64_t> lost;
  if (c.pack_key) store::forget_remote_pack(db_, *c.pack_key, t.name);
  else if (c.object_content) store::forget_object(db_, c.object_content, t.name);
  else lost.push_back(c.ledger_id);
  sync::record_lost_copies_in_tx(db_, c.volume_id, t.name, lost, "offload-check", what, run_id);
  tx.commit();
  t.refusal = refusal(t.name, GateCause::alarm_latched, "raised during this offload: " + what);
}

std::vector<WorldCheck::Look> WorldCheck::look_at(Target& t, const std::vector<Want>& batch) {
  std::vector<Look> looks(batch.size());
  std::vector<std::size_t> recorded;  // batch positions with a recorded copy
  std::vector<std::string> names;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto copies = t.objects ? object_of(t.name, batch[i]) : copies_of(t.name, *batch[i].file);
    if (copies.empty()) continue;
    looks[i].copy = copies.front();
    recorded.push_back(i);
    names.push_back(copies.front().located);
  }
  std::vector<dest::Stat> stats;
  try {
    stats = t.t->stat_many(names);
  } catch (const Error& e) {
    for (auto i : recorded) looks[i].error = e.what();
    return looks;
  }
  std::vector<Look*> clean;
  for (std::size_t k = 0; k < recorded.size(); ++k) {
    auto& l = looks[recorded[k]];
    l.st = stats[k];
    auto expected = l.copy->pack_key ? l.copy->size : batch[recorded[k]].size;  // a pack is bigger than its member
    if (stat_clean(l.st, l.copy->size, l.copy->mtime_ns, expected)) clean.push_back(&l);
  }
  hash_copies(t, clean);
  return looks;
}

// One request for the batch, each name once (the files of a batch often
// share a pack); a server that hashes with another algorithm (or not at
// all) sends each copy back to be hashed here.
void WorldCheck::hash_copies(Target& t, std::vector<Look*>& clean) {
  if (clean.empty()) return;
  std::vector<std::string> names;
  std::map<std::string, std::size_t> at;  // name -> its position in names
  for (auto* l : clean) {
    if (auto done = t.packs_hashed.find(l->copy->located); done != t.packs_hashed.end()) {
      l->rb = done->second;
      continue;
    }
    if (at.emplace(l->copy->located, names.size()).second) names.push_back(l->copy->located);
  }
  std::erase_if(clean, [](const Look* l) { return l->rb.has_value(); });
  if (names.empty()) return;
  std::vector<dest::ReadBack> rbs;
  try {
    rbs = t.t->read_back_many(names);
  } catch (const Error& e) {
    for (auto* l : clean) l->error = e.what();
    return;
  }
  std::vector<std::optional<dest::ReadBack>> hashed(names.size());
  std::vector<std::string> errors(names.size());
  for (std::size_t k = 0; k < names.size(); ++k) {
    try {
      hashed[k] = rbs[k].algo == "blake3" ? rbs[k] : dest::download_blake3(*t.t, names[k]);
    } catch (const Error& e) {
      errors[k] = e.what();
    }
  }
  for (auto* l : clean) {
    auto k = at.at(l->copy->located);
    l->rb = hashed[k];
    l->error = errors[k];
    if (l->copy->pack_key && hashed[k] && hashed[k]->hash == *l->copy->pack_key)
      t.packs_hashed.emplace(names[k], *hashed[k]);
  }
}

std::optional<GateRefusal> WorldCheck::judge(Target& t, const Want& w, const Look& l, std::int64_t run_id) {
  // An I/O error looking at the copy: never a pass.
  if (!l.error.empty()) return refusal(t.name, GateCause::copy_unreadable, "cannot check the copy: " + l.error);
  if (!l.copy) return refusal(t.name, GateCause::copy_missing, "no live or history copy is recorded");
  const auto& c = *l.copy;
  if (l.st.type == dest::EntryType::none) {
    if (auto why = sync::marker_problem(*t.t, volume_)) {  // the disk went away: not a finding about copies
      t.refusal = refusal(t.name, GateCause::destination_unreachable, *why);
      return t.refusal;
    }
    record_finding(t, c, GateCause::copy_missing, "gone", run_id);
    return refusal(t.name, GateCause::copy_missing, fmt::format("{} is gone", escape_for_display(c.located)));
  }
  if (!stat_clean(l.st, c.size, c.mtime_ns, c.pack_key ? c.size : w.size)) {
    auto detail = c.object_content ? fmt::format("{} bytes (recorded {} bytes)", l.st.size, c.size)
                                   : fmt::format("{} bytes, mtime {} (recorded {} bytes, mtime {})", l.st.size,
                                                 l.st.mtime_ns, c.size, c.mtime_ns);
    record_finding(t, c, GateCause::copy_changed, detail, run_id);
    return refusal(t.name, GateCause::copy_changed, detail);
  }
  rehashed_ += 1;
  if (l.rb->hash != c.pack_key.value_or(w.hash) || l.rb->bytes != (c.pack_key ? c.size : w.size)) {
    record_finding(t, c, GateCause::copy_damaged, "BLAKE3 differs from the content's", run_id);
    return refusal(t.name, GateCause::copy_damaged,
                   fmt::format("{}: BLAKE3 differs from the content's", escape_for_display(c.located)));
  }
  return std::nullopt;
}

std::vector<std::vector<GateRefusal>> WorldCheck::confirm_batch(const std::vector<Want>& batch, std::int64_t run_id) {
  std::vector<std::vector<GateRefusal>> out(batch.size());
  for (auto& [name, t] : targets_) {
    std::vector<Look> looks;
    if (!t.refusal) looks = look_at(t, batch);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (t.refusal) {
        out[i].push_back(*t.refusal);
        continue;
      }
      try {
        if (auto r = judge(t, batch[i], looks[i], run_id)) out[i].push_back(std::move(*r));
      } catch (const Error& e) {  // the marker check itself failed
        out[i].push_back(refusal(name, GateCause::copy_unreadable, fmt::format("cannot check the copy: {}", e.what())));
      }
    }
  }
  return out;
}

}  // namespace sq::engine::offload_detail
