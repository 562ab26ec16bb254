#pragma once
// Reading one member out of a pack: the pack is streamed from the
// destination and decompressed, the bytes before the member are dropped,
// and exactly the member's length is returned. The caller hashes what it
// reads against the content (a pack is never trusted for its name alone).
//
// A restore asks for many members of one pack. MemberCursors keeps the
// streams of members read to their end, so a request at a later offset of
// the same pack goes on from there instead of decompressing the pack from
// its start again: members asked for in offset order cost one pass over
// the pack per reader in flight, not one per member.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "engine/dest/transport.hpp"

namespace sq::engine::sync::packed {

struct Cursor;

class MemberCursors {
 public:
  MemberCursors();
  ~MemberCursors();
  MemberCursors(const MemberCursors&) = delete;
  MemberCursors& operator=(const MemberCursors&) = delete;
  // The kept stream of `pack` furthest along but not past `offset`, if any.
  std::unique_ptr<Cursor> take(const std::string& pack, std::int64_t offset);
  void keep(const std::string& pack, std::unique_ptr<Cursor> c);

 private:
  std::mutex mu_;
  std::multimap<std::string, std::unique_ptr<Cursor>> idle_;
};

// `cursors` may be null (every member streams its pack from the start).
// The returned reader must not outlive `cursors` or `t`.
std::unique_ptr<dest::Reader> open_member(dest::Transport& t, const std::string& pack, std::int64_t offset,
                                          std::int64_t length, MemberCursors* cursors = nullptr);

}  // namespace sq::engine::sync::packed
