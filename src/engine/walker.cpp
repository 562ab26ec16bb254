#include "engine/walker.hpp"

#include <vector>

namespace sq::engine {

Walker::Walker(int root, std::size_t max_queued, bool stat_files, EnterFn enter)
    : root_(root),
      max_queued_(max_queued),
      stat_files_(stat_files),
      enter_(std::move(enter)),
      thread_([this] { run(); }) {}

Walker::~Walker() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Walker::run() {
  std::vector<std::string> stack{""};
  while (!stack.empty()) {
    WalkedDir dir{std::move(stack.back()), {}};
    stack.pop_back();
    dir.listing = list_directory(root_, dir.rel, stat_files_);
    const auto& entries = dir.listing.entries;
    for (auto it = entries.rbegin(); it != entries.rend(); ++it)
      if (it->type == DirEntry::Type::directory && (!enter_ || enter_(dir.rel, *it)))
        stack.push_back(join_rel(dir.rel, it->name));
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return stopping_ || queue_.size() < max_queued_; });
    if (stopping_) return;
    queue_.push_back(std::move(dir));
    cv_.notify_all();
  }
  std::lock_guard lock(mu_);
  done_ = true;
  cv_.notify_all();
}

std::optional<WalkedDir> Walker::next() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return done_ || !queue_.empty(); });
  if (queue_.empty()) return std::nullopt;
  WalkedDir d = std::move(queue_.front());
  queue_.pop_front();
  cv_.notify_all();
  return d;
}

}  // namespace sq::engine
