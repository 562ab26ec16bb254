#pragma once
// Where a long run stands, for commands whose engines report nothing else
// while they work (verify, offload). Engines only emit these; front ends
// decide whether and how to draw them.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace sq::engine {

struct ProgressEvent {
  std::string stage;  // the phase, as a verb: "checking", "re-hashing", "offloading"
  std::string path;   // the file whose turn just ended; empty for the announcement of a phase
  // Of what the phase planned: done reaches total when the phase ends.
  std::int64_t files_done = 0, files_total = 0, bytes_done = 0, bytes_total = 0;
};
using ProgressListener = std::function<void(const ProgressEvent&)>;

// Counts one phase for a listener (which may be empty): announces the plan
// when there is one, then one event per file whose turn is over. Not
// thread-safe; a phase is counted where it runs.
class ProgressTally {
 public:
  ProgressTally(const ProgressListener& listener, std::string stage, std::int64_t files, std::int64_t bytes)
      : listener_(listener) {
    e_.stage = std::move(stage);
    e_.files_total = files;
    e_.bytes_total = bytes;
    if (listener_ && files > 0) listener_(e_);
  }
  void done(const std::string& path, std::int64_t bytes) {
    e_.path = path;
    e_.files_done += 1;
    e_.bytes_done += bytes;
    if (listener_) listener_(e_);
  }

 private:
  const ProgressListener& listener_;
  ProgressEvent e_;
};

}  // namespace sq::engine
