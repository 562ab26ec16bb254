#pragma once
// Walks a volume depth-first on its own thread, so directory listing and
// stat calls overlap with hashing and database work. Listings come out in a
// deterministic order (entries sorted bytewise, subdirectories visited in
// name order).
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "engine/walk.hpp"

namespace sq::engine {

struct WalkedDir {
  std::string rel;  // "" for the root
  DirListing listing;
};

// Whether the walk descends into directory `e` listed in folder `rel`.
// Called on the walker's thread.
using EnterFn = std::function<bool(const std::string& rel, const DirEntry& e)>;

class Walker {
 public:
  // `stat_files`: see list_directory. Without `enter`, every directory.
  Walker(int root, std::size_t max_queued, bool stat_files = true, EnterFn enter = {});
  ~Walker();
  Walker(const Walker&) = delete;
  Walker& operator=(const Walker&) = delete;
  // The next directory, or nullopt when the walk is complete.
  std::optional<WalkedDir> next();

 private:
  void run();
  int root_;
  std::size_t max_queued_;
  bool stat_files_;
  EnterFn enter_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WalkedDir> queue_;
  bool done_ = false, stopping_ = false;
  std::thread thread_;
};

}  // namespace sq::engine
