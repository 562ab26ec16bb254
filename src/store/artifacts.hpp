#pragma once
// The ledgers of the content-addressed and packed layouts: which content a
// destination holds as an object (objects/<hex>) or as a member of a pack
// it holds (packs/<key>). A row is written only after the bytes were
// confirmed at the destination, so a recorded artifact is a confirmed one;
// a crash in between lands the same bytes again on the next push.
//
//  rule                                   | where it holds
//  ---------------------------------------+-----------------------------------
//  one object row per (content, dest)     | remote_objects primary key
//  a content is in a pack at most once    | pack_members primary key (pack, content)
//  a pack row per destination holding it  | remote_packs primary key
//  checksum and its algorithm go together | CHECK on both ledgers
//  "already there" = object or member of  | content_at_destination()
//  a pack the destination holds           |
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/hash.hpp"

#include "store/db.hpp"

namespace sq::store {

// A checksum the destination measured of stored bytes.
struct Measured {
  std::string algo;  // blake3, sha256, ...
  std::string checksum;  // lowercase hex
  std::int64_t at_ns = 0;
};

// How a verify stamps a copy it confirmed (remote_paths, remote_objects,
// remote_packs), with ?1 the checksum it measured, ?2 when, ?4 the
// algorithm:
//
//  recorded checksum           | the stamp
//  ----------------------------+------------------------------------------
//  none                        | takes the measured one
//  the same algorithm, equal   | refreshes verified_at_ns
//  the same algorithm, other   | refused (judged changed before; never
//                              | reaches a stamp)
//  another algorithm           | refreshes verified_at_ns and keeps it: only
//                              | BLAKE3 is compared with the content itself,
//                              | and the server's checksum is what lets the
//                              | server check that copy again later
inline constexpr const char* kStampSet =
    "checksum_algo = COALESCE(checksum_algo, ?4), checksum = COALESCE(checksum, ?1), verified_at_ns = ?2";
inline constexpr const char* kStampAllowed = "(checksum IS NULL OR checksum_algo != ?4 OR checksum = ?1)";
// A verify's confirmation of a recorded object or pack (kStampSet).
void stamp_object_in_tx(Db& db, std::int64_t content_id, const std::string& destination, const Measured& m);
void stamp_pack_in_tx(Db& db, const Digest& key, const std::string& destination, const Measured& m);

// Records that `destination` holds `content_id` as an object, uploaded by
// `run_id`; throws if it is recorded already (an object is uploaded once).
void record_object(Db& db, std::int64_t content_id, const std::string& destination, std::int64_t run_id,
                   const std::optional<Measured>& m);
// True when the destination holds the content as an object or inside a
// pack it holds: content there is never uploaded again, whichever layout
// threshold put it there.
bool content_at_destination(Db& db, std::int64_t content_id, const std::string& destination);
// True when the destination holds the content as an object (not a pack member).
bool object_recorded(Db& db, std::int64_t content_id, const std::string& destination);
// A pack landed at `destination` by `run_id`: its row (kept when the same
// bytes were recorded before, for another destination), its members, and
// the destination's row. Returns the pack id. Call inside a transaction,
// only once the pack, the run's map and its segment are confirmed there.
struct PackRecord {
  Digest key{};
  std::int64_t size = 0;
  struct Member {
    std::int64_t content_id = 0, offset = 0, length = 0;
  };
  std::vector<Member> members;
};
std::int64_t record_pack_in_tx(Db& db, const PackRecord& pack, const std::string& destination, std::int64_t run_id,
                               const std::optional<Measured>& m);
// Where the destination holds the content inside a pack it holds.
struct PackPlace {
  Digest key{};
  std::int64_t offset = 0, length = 0;
  std::int64_t pack_size = 0;
};
std::optional<PackPlace> pack_place(Db& db, std::int64_t content_id, const std::string& destination);
// Forgets that the destination holds the pack (found gone or damaged).
void forget_remote_pack(Db& db, const Digest& key, const std::string& destination);

// Forgets that the destination holds the content as an object: it was found
// gone or damaged there, so the next push uploads it again (a damaged name
// is never replaced: that push refuses it until a person removes it).
void forget_object(Db& db, std::int64_t content_id, const std::string& destination);
// Every present content of the volume is held at the destination (an
// object or a member of a pack it holds) — with a verified checksum, when
// `fingerprinted`.
bool volume_contents_held(Db& db, std::int64_t volume_id, const std::string& destination, bool fingerprinted);
// Objects and packs recorded at a destination (the watermark rule's "squirrel
// holds upload records", with the mirror ledger).
std::int64_t count_objects(Db& db, const std::string& destination);
std::int64_t count_remote_packs(Db& db, const std::string& destination);

}  // namespace sq::store
