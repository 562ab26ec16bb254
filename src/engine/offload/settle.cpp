// Settling a killed offload: an intent names a row the offload was about to
// unlink. Whether it did is a fact of the disk, so the disk decides.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "core/fs.hpp"
#include "engine/offload/offload.hpp"
#include "store/files.hpp"

namespace sq::engine {

namespace {

enum class OnDisk { present, gone, unknown };

OnDisk look(int root, const std::string& path) {
  auto [folder, name] = store::split_path(path);
  int pfd = folder.empty() ? ::dup(root) : open_beneath(root, folder, O_RDONLY | O_DIRECTORY);
  if (pfd == -ENOENT) return OnDisk::gone;  // its folder went too
  if (pfd < 0) return OnDisk::unknown;
  Fd parent(pfd);
  struct stat st {};
  if (::fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return OnDisk::present;
  return errno == ENOENT ? OnDisk::gone : OnDisk::unknown;
}

}  // namespace

SettleReport settle_interrupted_offloads(store::Db& db, int volume_root, std::int64_t volume_id) {
  SettleReport rep;
  if (store::count_offload_intents(db, volume_id) == 0) return rep;
  std::vector<store::OffloadIntent> gone, kept;
  for (auto& i : store::pending_offload_intents(db, volume_id)) {
    switch (look(volume_root, i.row.path)) {
      case OnDisk::gone: gone.push_back(std::move(i)); break;
      case OnDisk::present: kept.push_back(std::move(i)); break;
      case OnDisk::unknown: rep.undecided += 1; break;
    }
  }
  store::settle_offload_intents(db, volume_id, gone, kept);
  rep.offloaded = static_cast<std::int64_t>(gone.size());
  rep.kept = static_cast<std::int64_t>(kept.size());
  return rep;
}

}  // namespace sq::engine
