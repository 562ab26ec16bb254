#include "engine/backup.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/text.hpp"

namespace sq::engine {

namespace {

Light light_of_run(store::RunStatus s) {
  switch (s) {
    case store::RunStatus::success: return Light::green;
    case store::RunStatus::partial: return Light::amber;
    default: return Light::red;
  }
}

void sync_every_target(const config::Config& cfg, store::Store& st, const BackupOptions& opts,
                       const BackupListeners& l, BackupVolume& v, Light& worst) {
  sync::SyncOptions so;
  so.init = opts.init;
  so.transport = opts.transport;
  for (const auto& dest : cfg.volume(v.name)->sync_to) {
    if (l.step) l.step(v.name, dest);
    BackupSync s{dest, std::nullopt, ""};
    try {
      s.report = sync::run_mirror_sync(cfg, st, v.name, dest, so, l.sync);
      worst = std::max(worst, light_of_run(s.report->status));
    } catch (const Error& e) {
      s.error = e.what();
      worst = Light::red;
    }
    v.syncs.push_back(std::move(s));
  }
}

}  // namespace

std::vector<std::string> volumes_to_back_up(const config::Config& cfg, const BackupOptions& opts) {
  for (const auto& name : opts.volumes)
    if (!cfg.volume(name))
      throw config::unknown_volume(name, cfg.file);
  std::vector<std::string> out = opts.volumes;
  if (out.empty())
    for (const auto& [name, vol] : cfg.volumes)
      if (!vol.sync_to.empty()) out.push_back(name);
  if (out.empty())
    throw Error(ErrorKind::usage, fmt::format("no volume has a sync_to — add a destination to a volume's sync_to in {}",
                                              cfg.file.string()));
  return out;
}

BackupReport run_backup(const config::Config& cfg, store::Store& st, const BackupOptions& opts,
                        const BackupListeners& l, std::int64_t now_ns) {
  BackupReport rep;
  Light worst = Light::neutral;
  for (const auto& name : volumes_to_back_up(cfg, opts)) {
    BackupVolume v{name, std::nullopt, "", {}};
    if (l.step) l.step(name, "index");
    try {
      IndexOptions io;
      io.shallow = opts.shallow;
      v.index = run_index(cfg, st, name, io, l.index);
      worst = std::max(worst, light_of_run(v.index->status));
    } catch (const Error& e) {
      v.index_error = e.what();
      worst = Light::red;
    }
    if (v.index && v.index->status != store::RunStatus::failed) sync_every_target(cfg, st, opts, l, v, worst);
    rep.volumes.push_back(std::move(v));
  }
  Light light = Light::neutral;
  for (const auto& v : rep.volumes) {
    auto one = build_status(cfg, &st, v.name, now_ns);
    light = std::max(light, one.overall);
    for (auto& vs : one.volumes) rep.status.volumes.push_back(std::move(vs));
  }
  rep.status.now_ns = now_ns;
  rep.status.overall = light;
  rep.light = std::max(light, worst == Light::green ? Light::neutral : worst);
  return rep;
}

}  // namespace sq::engine
