// Sealing a push (its receipt) and the index snapshot that rides along.
#include <fmt/format.h>

#include <algorithm>

#include "core/text.hpp"
#include "engine/sync/push.hpp"
#include "store/snapshots.hpp"

namespace sq::engine::sync {

namespace {

dest::ReadFn string_reader(const std::string& text) {
  auto off = std::make_shared<std::size_t>(0);
  return [&text, off](char* buf, std::size_t len) {
    std::size_t n = std::min(len, text.size() - *off);
    std::copy(text.data() + *off, text.data() + *off + n, buf);
    *off += n;
    return n;
  };
}

dest::ReadFn file_reader(std::FILE* f) {
  return [f](char* buf, std::size_t len) {
    std::size_t n = std::fread(buf, 1, len, f);
    if (n == 0 && std::ferror(f)) throw Error(ErrorKind::io, "cannot read the index snapshot");
    return n;
  };
}

// Lands bytes at `final_name` through this run's staging: put, flush,
// rename (never replacing), flush, then confirm the size.
void land(Push& p, const std::string& key, const std::string& final_name, const dest::ReadFn& read) {
  std::string staged = p.staging_dir(p.run_id) + "/" + to_hex(blake3(key));
  auto put = p.t->put(staged, read, now_ns());
  p.t->flush();
  p.t->rename(staged, final_name);
  p.t->flush();
  auto st = p.t->stat(final_name);
  if (st.type != dest::EntryType::file || st.size != put.bytes)
    throw Error(ErrorKind::io, fmt::format("{} landed at the wrong size", final_name));
}

void rotate_remote(Push& p, int keep) {
  if (keep <= 0) return;
  auto dir = p.in_volume(kIndexDir);
  std::vector<std::string> snaps;
  for (const auto& e : p.t->list(dir))
    if (e.name.starts_with("index-") && e.name.ends_with(".db")) snaps.push_back(e.name);
  std::sort(snaps.begin(), snaps.end());
  for (std::size_t i = 0; i + keep < snaps.size(); ++i) p.t->remove(dir + "/" + snaps[i]);
}

}  // namespace

void seal_receipt(Push& p, std::int64_t since_run, const std::string* pack_map) {
  if (pack_map) land(p, "map", fmt::format("packs/map-{}", p.run_id), string_reader(*pack_map));
  auto text = render_segment(path_delta_since(p.db(), p.volume_id(), since_run));
  land(p, "receipt", p.receipt(p.run_id), string_reader(text));
}

void ride_along_snapshot(Push& p) {
  const auto& b = p.cfg.backups;
  if (!b.enabled) return;
  try {
    auto dir = b.dir ? *b.dir : p.db().path().parent_path() / "backups";
    auto name = fmt::format("index-{}-run-{}.db", compact_utc(now_ns()), p.run_id);
    store::backup_to(p.db(), dir / name);
    store::rotate_backups(dir, b.keep);
    if (!b.cloud) return;
    std::FILE* f = std::fopen((dir / name).c_str(), "rb");
    if (!f) throw Error(ErrorKind::io, "cannot reopen the local snapshot");
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, &std::fclose);
    land(p, name, p.in_volume(std::string(kIndexDir) + "/" + name), file_reader(f));
    rotate_remote(p, b.cloud_keep);
  } catch (const Error& e) {
    p.report.snapshot_warning = e.what();
    p.warn("", fmt::format("index snapshot not taken along: {} (the sync's own result stands)", e.what()));
  }
}

}  // namespace sq::engine::sync
