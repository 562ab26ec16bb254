#include "engine/sync/mirror.hpp"

#include <fmt/format.h>

#include <cerrno>

#include "core/text.hpp"
#include "engine/layout_check.hpp"
#include "engine/offload/offload.hpp"
#include "engine/sync/push.hpp"
#include "store/evidence.hpp"
#include "store/remote_paths.hpp"

namespace sq::engine::sync {

namespace {

std::unique_ptr<dest::Transport> guard_for(Push& p, std::int64_t run_id, bool bootstrap) {
  store::Db* db = &p.db();
  dest::GuardContext g{run_id, bootstrap,
                       [db](std::int64_t id) {
                         auto r = store::get_run(*db, id);
                         return r && store::is_terminal(r->status);
                       },
                       p.layout};
  // Borrowed, not owned: one open destination is guarded first for
  // bootstrap and then for the run.
  return dest::guarded(std::make_unique<dest::ForwardingTransport>(*p.raw), g);
}

}  // namespace

const config::Destination& require_native_mirror(const config::Config& cfg, const std::string& name) {
  const auto* d = cfg.destination(name);
  if (!d) throw Error(ErrorKind::not_found, fmt::format("unknown destination \"{}\" — declare it under [destinations] "
                                                        "in {}", escape_for_display(name), cfg.file.string()));
  if (!d->native_mirror())
    throw Error(ErrorKind::usage, fmt::format("destination \"{}\" is {} {}{}; this squirrel writes local and sftp "
                                              "mirrors (and, with sync, content-addressed destinations) only so far",
                                              name, d->type, d->layout, d->crypt ? " with crypt" : ""));
  return *d;
}

const config::Destination& require_push_target(const config::Config& cfg, const std::string& name) {
  const auto* d = cfg.destination(name);
  if (d && (d->native_content() || d->native_packed())) return *d;
  return require_native_mirror(cfg, name);
}

dest::Layout layout_of(const config::Destination& d) {
  if (d.layout == "content-addressed") return dest::Layout::content_addressed;
  if (d.layout == "packed") return dest::Layout::packed;
  return dest::Layout::mirror;
}

dest::SftpOptions sftp_options_of(const config::Destination& d) {
  dest::SftpOptions o;
  o.host = d.host;
  o.port = d.port.value_or(22);
  o.user = d.user;
  o.root = d.root;
  o.key_file = d.key_file;
  o.password = d.password;
  o.known_hosts_file = d.known_hosts_file;
  o.host_key_algorithms = d.host_key_algorithms;
  o.hash_algo = d.hash_algo;
  o.label = d.name;
  if (d.concurrency) o.max_sessions = *d.concurrency;
  return o;
}

std::size_t default_in_flight(const config::Destination& d) {
  if (d.concurrency) return static_cast<std::size_t>(*d.concurrency);
  return d.type == "sftp" ? 8 : 4;
}

std::unique_ptr<dest::Transport> open_mirror_transport(const config::Destination& d, const TransportFactory& factory,
                                                       bool create_root) {
  if (factory) return factory(d.root);
  if (d.type != "sftp") return dest::open_local_transport(d.root);
  try {
    return dest::open_sftp_transport(sftp_options_of(d), create_root);
  } catch (const dest::TransportError& e) {
    throw Error(ErrorKind::refused, fmt::format("destination \"{}\": {}", d.name, e.what()));
  }
}

namespace {

void require_index_run(store::Db& db, std::int64_t volume_id, const std::string& name) {
  auto n = db.query_i64("SELECT count(*) FROM runs WHERE kind = 'index' AND volume_id = ? AND status IN "
                        "('success','partial')",
                        {store::Value{volume_id}});
  if (n.value_or(0) == 0)
    throw Error(ErrorKind::refused, fmt::format("volume \"{}\" has no completed index run — run `squirrel index {}` "
                                                "first", name, name));
}

void refuse_shallow(const Push& p) {
  if (p.opts.shallow)
    throw Error(ErrorKind::refused,
                fmt::format("--shallow is refused for destination \"{}\": squirrel writes it itself and reads every "
                            "copy back, so there is no checksum comparison to skip — sync without --shallow",
                            p.dest()));
}

// A copy in memory is not a durable copy: a tmpfs root (or the empty mount
// point of a disk that is not mounted, which often lies on tmpfs) loses
// everything at the next unmount. Judged before the root is created.
void judge_volatility(Push& p) {
  if (p.cfg.destination(p.dest())->type == "sftp") return;  // the server's filesystem cannot be seen from here
  auto where = std::filesystem::path(p.root) / p.name();
  FsInfo fs = p.opts.fs_probe ? p.opts.fs_probe(where) : fs_info(where);
  if (!fs.is_volatile) return;
  if (p.opts.init && !p.opts.allow_volatile)
    throw Error(ErrorKind::refused,
                fmt::format("destination \"{}\" root {} is on {}, which does not survive a reboot, so its copies "
                            "would never count as durable — if a disk belongs there, mount it; otherwise choose a "
                            "root on a disk, or pass --allow-volatile if a volatile destination is intended",
                            p.dest(), escape_for_display(p.root), fs.type));
  p.volatile_fs = fs.type;
  p.report.volatile_fs = fs.type;
  p.warn("", fmt::format("{} is on {}, which does not survive a reboot; its copies are recorded as presence+size "
                         "and never count as durable",
                         escape_for_display(p.root), fs.type));
}

// A call given up as stalled may still complete in the kernel, even a move
// into place; a push beside it could record what that move then replaces.
void refuse_while_calls_hang(const Push& p) {
  if (auto hung = dest::given_up_calls(p.dest()); hung > 0)
    throw Error(ErrorKind::refused,
                fmt::format("{} earlier call(s) to destination \"{}\" made no progress and have not returned yet — "
                            "wait until its disk or mount recovers (or restart squirrel), then sync again",
                            hung, p.dest()));
}

const config::Destination& dest_of(const Push& p) { return *p.cfg.destination(p.dest()); }

// An SFTP root is created on the server only by --init (and not by its dry run).
void open_remote_root(Push& p) {
  bool create = p.opts.init && !p.opts.dry_run;
  try {
    p.raw = p.opts.transport ? p.opts.transport(p.root)
                             : dest::open_sftp_transport(sftp_options_of(dest_of(p)), create);
  } catch (const dest::TransportError& e) {
    // Only the root is looked up while opening: ENOENT is the root missing.
    if (p.opts.init && p.opts.dry_run && e.err() == ENOENT) return;  // a first sync's dry run: it would be created
    throw Error(ErrorKind::refused, fmt::format("destination \"{}\": {}", p.dest(), e.what()));
  }
  auto stall = p.opts.stall;
  stall.destination = p.dest();
  p.raw = dest::stall_guarded(std::move(p.raw), std::move(stall));
  p.t = guard_for(p, 0, p.opts.init);
}

void open_destination_root(Push& p) {
  refuse_while_calls_hang(p);
  if (dest_of(p).type == "sftp") return open_remote_root(p);
  std::error_code ec;
  if (!std::filesystem::exists(p.root, ec)) {
    if (!p.opts.init)
      throw Error(ErrorKind::refused, fmt::format("destination root {} does not exist — is the disk mounted? For the "
                                                  "first sync pass --init", p.root));
    if (!p.opts.dry_run) std::filesystem::create_directories(p.root, ec);
    if (ec) throw Error(ErrorKind::io, fmt::format("cannot create {}: {}", p.root, ec.message()));
    if (p.opts.dry_run) return;
  }
  auto stall = p.opts.stall;
  stall.destination = p.dest();
  p.raw = dest::stall_guarded(p.opts.transport ? p.opts.transport(p.root) : dest::open_local_transport(p.root),
                              std::move(stall));
  p.t = guard_for(p, 0, p.opts.init);
}

}  // namespace

// ---- preflight ----------------------------------------------------------

namespace {

// objects/ and packs/ sit beside the volumes of a content layout.
void refuse_artifact_volume_name(const Push& p) {
  if (p.content_layout() && (p.name() == kObjectsDir || p.name() == "packs"))
    throw Error(ErrorKind::refused, fmt::format("volume \"{}\" cannot be stored at destination \"{}\": its layout "
                                                "keeps its {} there — rename the volume or use a mirror",
                                                p.name(), p.dest(), p.name()));
}

void preflight(Push& p) {
  auto vol_row = store::find_volume(p.db(), p.name());
  try {
    p.vol = resolve_volume(p.cfg, p.db(), p.name(), ResolveMode::existing);
    require_destination_layout(p.cfg, p.dest());
    refuse_shallow(p);
    refuse_artifact_volume_name(p);
    require_index_run(p.db(), p.volume_id(), p.name());
    judge_volatility(p);
    open_destination_root(p);
    if (p.raw) check_destination_marker(p);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::refused && !p.opts.dry_run)
      p.report.run_id = store::record_terminal_run(
          p.db(), {store::RunKind::sync, vol_row ? std::optional(vol_row->id) : std::nullopt, p.dest()},
          store::RunStatus::refused, e.what());
    throw;
  }
}

void begin(Push& p) {
  store::BeginOptions bo;
  bo.shallow = false;  // a native mirror always compares content
  if (!store::has_ledger_rows(p.db(), p.dest(), p.volume_id())) bo.id_above = highest_run_named(*p.t, p.name(), p.content_layout());
  p.run_id = store::begin_run_or_throw(p.db(), {store::RunKind::sync, p.volume_id(), p.dest()}, bo);
  p.report.run_id = p.run_id;
  // A file a killed offload unlinked must not be planned as present.
  try {
    settle_interrupted_offloads(p.db(), p.vol.root.get(), p.volume_id());
  } catch (const std::exception& e) {
    store::finish_run(p.db(), p.run_id, {store::RunStatus::failed, e.what(), 0, std::nullopt});
    throw;
  }
  p.t = guard_for(p, p.run_id, false);
}

}  // namespace

// ---- finishing ----------------------------------------------------------

namespace {

// fingerprint-verified only when every copy this push wrote was read back
// and every live copy of the volume at the destination carries a read-back
// checksum; otherwise the weaker method, and no verification is claimed.
// A read-back from memory proves the bytes are there now, not that they
// survive a reboot, so a volatile destination never gets more than
// presence+size.
std::pair<store::VerifyMethod, bool> measured_method(Push& p) {
  if (!p.all_read_back || !p.volatile_fs.empty() || !p.raw->durability_gap().empty())
    return {store::VerifyMethod::presence_size, false};
  if (p.content_layout() && !all_contents_fingerprinted(p)) return {store::VerifyMethod::presence_size, false};
  // Literal state and NULL test: they select the partial index of
  // unverified live rows, which is empty on a fully verified mirror.
  auto pending = p.content_layout() ? std::optional<std::int64_t>(0) : p.db().query_i64(
      "SELECT EXISTS (SELECT 1 FROM remote_paths WHERE destination = ? AND state = 'live' AND checksum IS NULL AND "
      "folder_id IN (SELECT id FROM folders WHERE volume_id = ?))",
      {store::Value{p.dest()}, store::Value{p.volume_id()}});
  if (pending.value_or(0) != 0) return {store::VerifyMethod::presence_size, false};
  return {p.raw->hashes_on_server() ? store::VerifyMethod::server_hash : store::VerifyMethod::fingerprint_verified,
          true};
}

void finish_success(Push& p, const std::vector<store::OriginMax>& snapshot) {
  // Plain variables, not a structured binding: clang 14 cannot capture
  // those in the lambda below.
  const auto measured = measured_method(p);
  const store::VerifyMethod method = measured.first;
  const bool verified = measured.second;
  auto& r = p.report;
  store::Assignments cols{{"file_count", store::Value{r.written + r.already_live}},
                          {"changed_count", store::Value{r.written}}};
  store::finish_record(p.db(), store::kRunsTable, p.run_id, "success", cols,
                       [&](store::Db& d, std::int64_t id, std::int64_t at, std::string_view status) {
                         store::append_audit(d, id, "finish", std::nullopt, at, std::string(status));
                         store::advance_to_snapshot_in_tx(d, p.volume_id(), p.dest(), method, verified, snapshot);
                       });
  r.status = store::RunStatus::success;
  r.method = std::string(store::to_string(method));
  r.evidence_advanced = !snapshot.empty();
}

void finish_partial(Push& p) {
  auto& r = p.report;
  r.status = store::RunStatus::partial;
  r.error = fmt::format("{} path(s) failed, {} drifted since the index — nothing sealed, evidence unchanged; fix and "
                        "sync again", r.failed, r.drift);
  store::finish_run(p.db(), p.run_id, {r.status, r.error, r.written + r.already_live, r.written});
}

// A refusal after the run began (the watermark rule) is recorded as
// `refused`, like every other safety gate; anything else is `failed`.
void finish_failed(Push& p, const std::string& what, bool refused) {
  auto& r = p.report;
  r.status = refused ? store::RunStatus::refused : store::RunStatus::failed;
  r.error = what;
  try {
    store::finish_run(p.db(), p.run_id, {r.status, what, r.written, r.written});
  } catch (const Error&) {
    // the run row keeps its first terminal state (or stays running for runs fail)
  }
}

// The real push's refusals too: the watermark rule runs (reading only), so
// a dry run refuses what the push would refuse, and copies a first push
// would adopt count as already there.
std::vector<const PlannedWrite*> take_small(Push& p, ObjectPlan& plan);

// What a packed push would bundle: contents, bytes, and packs at pack_size
// each (an estimate: a pack closes on the first content past the size).
void preview_packs(Push& p, const std::vector<const PlannedWrite*>& small) {
  auto pack_size = p.cfg.destination(p.dest())->pack_size.value_or(512LL << 20);
  for (const auto* w : small) p.report.pack_bytes += w->size;
  p.report.pack_contents = static_cast<std::int64_t>(small.size());
  p.report.packs_estimated = small.empty() ? 0 : std::max<std::int64_t>(1, (p.report.pack_bytes + pack_size - 1) / pack_size);
  p.report.planned += p.report.pack_contents;
  p.report.bytes += p.report.pack_bytes;
}

void dry_run_plan(Push& p) {
  std::int64_t since = p.raw ? watermark(p) : 0;
  Plan plan;
  if (p.content_layout()) {
    auto objects = plan_objects(p, since);
    preview_packs(p, take_small(p, objects));
    plan = std::move(objects.uploads);
  } else {
    plan = plan_mirror(p.db(), p.volume_id(), p.dest());
  }
  for (const auto& w : plan.writes) {
    if (auto a = p.adoptable.find(w.path); a != p.adoptable.end() && a->second == w.content_id) {
      p.report.already_live += 1;
      continue;
    }
    p.report.planned += 1;
    p.report.bytes += w.size;
  }
  p.report.already_live += plan.already_live;
}

// Contents under a packed destination's threshold go into packs; the rest
// (and everything on a content-addressed one) become objects.
std::vector<const PlannedWrite*> take_small(Push& p, ObjectPlan& plan) {
  std::vector<const PlannedWrite*> small;
  if (p.layout != dest::Layout::packed) return small;
  auto threshold = p.cfg.destination(p.dest())->pack_threshold.value_or(32LL << 20);
  auto& writes = plan.uploads.writes;
  auto large = std::stable_partition(writes.begin(), writes.end(), [&](const PlannedWrite& w) { return w.size >= threshold; });
  p.small_writes.assign(std::make_move_iterator(large), std::make_move_iterator(writes.end()));
  writes.erase(large, writes.end());
  for (const auto& w : p.small_writes) plan.uploads.bytes -= w.size;
  for (const auto& w : p.small_writes) small.push_back(&w);
  std::sort(small.begin(), small.end(), [](const PlannedWrite* a, const PlannedWrite* b) { return a->hash < b->hash; });
  return small;
}

// A content layout uploads the contents not yet there (objects, then
// packs), then seals map and segment; any failure leaves them unwritten
// (the watermark holds) and records no pack.
void content_body(Push& p, const std::vector<store::OriginMax>& snapshot, std::int64_t since) {
  auto plan = plan_objects(p, since);
  auto small = take_small(p, plan);
  p.report.planned = static_cast<std::int64_t>(plan.uploads.writes.size() + small.size());
  p.report.already_live = plan.uploads.already_live;
  push_objects(p, plan);
  auto packs = small.empty() ? std::vector<LandedPack>{} : push_packs(p, small);
  if (p.report.failed || p.report.drift) return finish_partial(p);
  if (p.layout == dest::Layout::packed) {
    auto map = render_pack_map(packs);
    seal_receipt(p, since, &map);
    record_packs(p, packs);
  } else {
    seal_receipt(p, since);
  }
  finish_success(p, snapshot);
}

void push_body(Push& p) {
  auto snapshot = store::present_origin_maxima(p.db(), p.volume_id(), p.st.self_node_id());
  reconcile(p);
  std::int64_t since = watermark(p);
  if (p.content_layout()) return content_body(p, snapshot, since);
  auto plan = plan_mirror(p.db(), p.volume_id(), p.dest());
  p.report.planned = static_cast<std::int64_t>(plan.writes.size());
  p.report.already_live = plan.already_live;
  if (!plan.writes.empty() && destination_folds_case(p)) {
    p.warn("", "the destination folds letter case; paths that differ only in case are refused");
    refuse_fold_collisions(p, plan);
  }
  execute_plan(p, plan);
  if (!p.report.failed && !p.report.drift && !plan.writes.empty()) {
    // Success claims every present path is live with its current content.
    // A recorded copy found missing while clearing the way (under a name
    // that was not a directory) is written by the next push, not this one.
    for (const auto& w : plan_mirror(p.db(), p.volume_id(), p.dest()).writes) {
      p.report.failed += 1;
      p.file_error(w.path, "its recorded copy was lost at the destination during this sync; the next sync writes it "
                           "again");
    }
  }
  if (p.report.failed || p.report.drift) return finish_partial(p);
  seal_receipt(p, since);
  finish_success(p, snapshot);
}

}  // namespace

SyncReport run_mirror_sync(const config::Config& cfg, store::Store& st, const std::string& volume,
                           const std::string& destination, const SyncOptions& opts, const SyncListener& listener) {
  SyncReport report;
  report.volume = volume;
  report.destination = destination;
  report.dry_run = opts.dry_run;
  const auto& d = require_push_target(cfg, destination);
  Push p(cfg, st, opts, listener, report, d.root);
  p.layout = layout_of(d);
  p.in_flight = opts.in_flight ? opts.in_flight : default_in_flight(d);
  preflight(p);
  if (opts.dry_run) {
    dry_run_plan(p);
    return report;
  }
  begin(p);
  try {
    push_body(p);
  } catch (const Error& e) {
    finish_failed(p, e.what(), e.kind() == ErrorKind::refused);
    throw;
  } catch (const std::exception& e) {
    finish_failed(p, e.what(), false);
    throw;
  }
  ride_along_snapshot(p);
  remove_own_staging(p);
  return report;
}

}  // namespace sq::engine::sync
