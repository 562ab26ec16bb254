// The packs of a packed push (spec sync-offload-restore.md §3.4). Contents
// under the threshold are grouped in hash order until a group holds
// pack_size bytes; each group is built into a temp file beside the index
// (packed/pack.hpp), put into this run's staging, flushed, read back, moved
// onto packs/<key> without replacing, and flushed. Rows come later, after
// the map and the segment landed (record_packs), so a pack_members row
// always has its bytes at the destination.
//
//  packs/<key> at the destination | what the push does
//  -------------------------------+-----------------------------------------
//  absent                         | stage, flush, read back, rename, flush
//  a file that hashes to the key  | take it (a crash after landing; the
//                                 | same contents rebuild the same bytes)
//  anything else                  | refuse the group's contents (partial)
//  a member changed on the way in | drift: it leaves the group, which is
//                                 | built again without it
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/fs.hpp"
#include "core/text.hpp"
#include "engine/sync/packed/pack.hpp"
#include "engine/sync/push.hpp"
#include "store/artifacts.hpp"

namespace sq::engine::sync {

namespace {

using packed::BuiltPack;

std::vector<std::vector<const PlannedWrite*>> groups_of(const std::vector<const PlannedWrite*>& small,
                                                        std::int64_t pack_size) {
  std::vector<std::vector<const PlannedWrite*>> out;
  std::int64_t bytes = 0;
  for (const auto* w : small) {
    if (out.empty() || bytes >= pack_size) {
      out.emplace_back();
      bytes = 0;
    }
    out.back().push_back(w);
    bytes += w->size;
  }
  return out;
}

packed::PackInput input_of(Push& p, const PlannedWrite& w) {
  packed::PackInput in;
  in.hash = w.hash;
  in.size = w.size;
  int root = p.vol.root.get();
  std::string path = w.path;
  in.open = [root, path] {
    int fd = open_beneath(root, path, O_RDONLY);
    if (fd < 0) throw Error(ErrorKind::io, fmt::format("cannot read {}: {}", path, std::strerror(-fd)));
    auto src = std::make_shared<Fd>(fd);
    return [src](char* buf, std::size_t len) {
      for (;;) {
        ssize_t n = ::read(src->get(), buf, len);
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno != EINTR) fail_errno("reading the source", errno);
      }
    };
  };
  return in;
}

// A temp file beside the index: the pack is built before its key is known.
// Unnamed where the filesystem allows (O_TMPFILE), so a killed push
// leaves nothing behind; elsewhere a named file removed when done.
class TempPack {
 public:
  explicit TempPack(const std::filesystem::path& dir, std::int64_t run_id) {
    fd_ = Fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (fd_.get() >= 0) return;
    path_ = dir / fmt::format("pack-run-{}.tmp", run_id);
    fd_ = Fd(::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd_.get() < 0) fail_errno(fmt::format("cannot create {}", path_.string()), errno);
  }
  ~TempPack() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempPack(const TempPack&) = delete;
  TempPack& operator=(const TempPack&) = delete;
  void write(const char* d, std::size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_.get(), d, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) fail_errno("writing a pack", errno);
      d += w;
      n -= static_cast<std::size_t>(w);
    }
  }
  dest::ReadFn reader() {
    if (::lseek(fd_.get(), 0, SEEK_SET) != 0) fail_errno("rewinding a pack", errno);
    int fd = fd_.get();
    return [fd](char* buf, std::size_t len) {
      for (;;) {
        ssize_t n = ::read(fd, buf, len);
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno != EINTR) fail_errno("reading a pack", errno);
      }
    };
  }

 private:
  std::filesystem::path path_;
  Fd fd_;
};

// Builds the group into a new `tmp`; a member that drifted leaves the group.
std::optional<BuiltPack> build_group(Push& p, std::vector<const PlannedWrite*>& group, int level,
                                     std::optional<TempPack>& tmp) {
  while (!group.empty()) {
    tmp.emplace(p.db().path().parent_path(), p.run_id);
    std::vector<packed::PackInput> inputs;
    for (const auto* w : group) inputs.push_back(input_of(p, *w));
    try {
      return packed::build_pack(inputs, level, [&tmp](const char* d, std::size_t n) { tmp->write(d, n); });
    } catch (const packed::DriftError& e) {
      auto it = std::find_if(group.begin(), group.end(), [&](const PlannedWrite* w) { return w->hash == e.content(); });
      p.report.drift += 1;
      p.warn((*it)->path, "changed since it was indexed; not packed under the indexed hash — re-index and sync again");
      group.erase(it);
    }
  }
  return std::nullopt;
}

// A pack already at its name: taken when it hashes to its key.
bool holds_pack(Push& p, const BuiltPack& b) {
  auto st = p.t->stat(pack_name(b.key));
  if (st.type != dest::EntryType::file || st.size != b.size) return false;
  auto rb = dest::read_back_blake3(*p.t, pack_name(b.key));
  return rb.bytes == b.size && rb.hash == b.key;
}

std::optional<store::Measured> land_pack(Push& p, const BuiltPack& b, TempPack& tmp) {
  auto name = pack_name(b.key);
  auto blake3_of_key = [&] { return store::Measured{"blake3", to_hex(b.key), now_ns()}; };
  if (p.t->stat(name).type != dest::EntryType::none) {
    if (!holds_pack(p, b)) throw Error(ErrorKind::io, fmt::format("{} exists at the destination with other bytes — "
                                                                  "squirrel never replaces it; inspect it", name));
    return p.volatile_fs.empty() ? std::optional(blake3_of_key()) : std::nullopt;
  }
  auto staged = p.staging_dir(p.run_id) + "/" + to_hex(blake3(name));
  auto put = p.t->put(staged, tmp.reader(), 0);
  if (put.bytes != b.size || put.hash != b.key) throw Error(ErrorKind::io, "the pack changed in its temp file");
  p.t->flush();
  auto rb = p.t->read_back(staged);
  if (rb.bytes != b.size || (rb.measured() && !rb.matches(b.key, put.sent_checksum)))
    throw Error(ErrorKind::io, fmt::format("{} read back differently from what was sent — the disk may be failing",
                                           name));
  try {
    p.t->rename(staged, name);
  } catch (const dest::TransportError& e) {
    if (e.err() != EEXIST || !holds_pack(p, b)) throw;
  }
  p.t->flush();
  if (rb.measured() && !rb.from_medium && !rb.by_server) p.all_read_back = false;  // hashed from the page cache
  if (!p.volatile_fs.empty() || !rb.measured() || !(rb.from_medium || rb.by_server)) return std::nullopt;
  return store::Measured{rb.algo, rb.checksum, now_ns()};
}

}  // namespace

std::vector<LandedPack> push_packs(Push& p, const std::vector<const PlannedWrite*>& small) {
  const auto& d = *p.cfg.destination(p.dest());
  int level = packed::zstd_level_of(d.zstd_level.value_or(3));
  std::vector<LandedPack> out;
  for (auto& group : groups_of(small, d.pack_size.value_or(512LL << 20))) {
    std::optional<TempPack> tmp;
    auto built = build_group(p, group, level, tmp);
    if (!built) continue;
    try {
      auto m = land_pack(p, *built, *tmp);
      LandedPack lp{*built, m, {}};
      for (const auto* w : group) lp.contents[w->hash] = w->content_id;
      for (const auto* w : group) {
        p.files_done += 1;
        p.bytes_done += w->size;
      }
      p.progress(group.back()->path);
      out.push_back(std::move(lp));
    } catch (const dest::StallError&) {
      throw;
    } catch (const Error& e) {
      p.report.failed += static_cast<std::int64_t>(group.size());
      p.file_error(group.front()->path, fmt::format("its pack did not land: {}", e.what()));
    }
  }
  return out;
}

std::string render_pack_map(const std::vector<LandedPack>& packs) {
  std::vector<packed::MapLine> lines;
  for (const auto& lp : packs)
    for (const auto& m : lp.pack.members) lines.push_back({m.hash, lp.pack.key, m.offset, m.length});
  return packed::render_map(lines);
}

void record_packs(Push& p, const std::vector<LandedPack>& packs) {
  store::Tx tx(p.db());
  for (const auto& lp : packs) {
    store::PackRecord r;
    r.key = lp.pack.key;
    r.size = lp.pack.size;
    for (const auto& m : lp.pack.members) r.members.push_back({lp.contents.at(m.hash), m.offset, m.length});
    store::record_pack_in_tx(p.db(), r, p.dest(), p.run_id, lp.measured);
    p.report.written += static_cast<std::int64_t>(r.members.size());
    for (const auto& m : lp.pack.members) p.report.bytes += m.length;
  }
  tx.commit();
  p.report.packs = static_cast<std::int64_t>(packs.size());
}

}  // namespace sq::engine::sync
