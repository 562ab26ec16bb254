// Adoption at a first push: a mirror that holds copies squirrel has no
// ledger row for (a lost database, a volume restored on a new machine) is
// adopted copy by copy, never on trust. A file is adopted only when
//   - a receipt at the destination vouches for its path with a hash,
//   - the index holds that path with exactly that content, and
//   - reading it back now gives those bytes (size and BLAKE3).
// Everything else stays foreign: a later write to its path moves it to
// history as unrecorded, and it is never counted as a copy.
#include <fmt/format.h>

#include "core/text.hpp"
#include "engine/restore/internal.hpp"
#include "engine/sync/push.hpp"
#include "store/evidence.hpp"
#include "store/files.hpp"
#include "store/remote_paths.hpp"

namespace sq::engine::sync {

namespace {

struct Candidate {
  std::string path;
  std::int64_t content_id = 0, size = 0;
  Digest hash{};
};

struct Candidates {
  std::vector<Candidate> list;
  std::int64_t files = 0;     // regular files found at the destination
  std::int64_t recorded = 0;  // of them, those the ledger already holds (an interrupted adoption)
};

// Vouched, indexed files at the destination, in walk order; reads no bytes.
Candidates find_candidates(Push& p) {
  auto warn = [&p](const std::string& path, const std::string& msg) { p.warn(path, msg); };
  auto listing = restore_detail::list_mirror(*p.t, p.name(), warn);
  store::Stmt q(p.db(),
                "SELECT f.content_id, EXISTS (SELECT 1 FROM remote_paths r WHERE r.destination = ?6 AND r.folder_id "
                "= f.folder_id AND r.name = f.name AND r.state IN ('committing','live')) FROM files f JOIN folders d "
                "ON d.id = f.folder_id JOIN contents c ON c.id = f.content_id WHERE d.volume_id = ?1 AND d.path = ?2 "
                "AND f.name = ?3 AND c.blake3 = ?4 AND c.size_bytes = ?5 LIMIT 1");
  Candidates out;
  out.files = static_cast<std::int64_t>(listing.items.size());
  for (const auto& it : listing.items) {
    auto [folder, name] = store::split_path(it.path);
    if (!it.hash || !store::outside_reserved(folder, name)) continue;
    q.reset();
    q.bind(1, p.volume_id()).bind(2, store::blob_of(folder)).bind(3, store::blob_of(name));
    q.bind(4, store::Value{store::Blob(it.hash->begin(), it.hash->end())}).bind(5, it.size).bind(6, p.dest());
    if (!q.step()) continue;
    if (q.i64(1)) out.recorded += 1;
    else out.list.push_back({it.path, q.i64(0), it.size, *it.hash});
  }
  return out;
}

// Reads the copy back past the cache (or has the server hash it with
// BLAKE3); the ledger row it earns, if any. A copy nobody could hash with
// BLAKE3 cannot be compared with the index, so it is not adopted.
std::optional<store::CommitIntent> confirm(Push& p, const Candidate& c) {
  auto rb = p.t->read_back(p.in_volume(c.path));
  auto st = p.t->stat(p.in_volume(c.path));
  if (rb.algo != "blake3" || rb.hash != c.hash || rb.bytes != c.size || st.type != dest::EntryType::file ||
      st.size != c.size) {
    p.warn(c.path, "at the destination does not hold what its receipt vouches for; not adopted");
    return std::nullopt;
  }
  store::CommitIntent in{c.path, c.content_id, st.size, st.mtime_ns, std::nullopt, std::nullopt};
  if (rb.from_medium || rb.by_server) {
    in.checksum = to_hex(rb.hash);
    in.verified_at_ns = now_ns();
  }
  return in;
}

// Each batch is journaled as committing first, like a write, so a crash
// between the two steps leaves rows reconcile settles by looking.
void record(Push& p, const std::vector<store::CommitIntent>& intents) {
  auto ids = store::begin_commits(p.db(), p.dest(), p.volume_id(), p.run_id, intents);
  store::transition(p.db(), ids, "committing", "live");
  store::append_audit(p.db(), p.run_id, "adopt", std::nullopt, now_ns(),
                      fmt::format("{} copy(ies) adopted after read-back", ids.size()));
}

[[noreturn]] void refuse_foreign(Push& p, std::int64_t files) {
  throw Error(ErrorKind::refused,
              fmt::format("{}/{} holds {} file(s) squirrel has no record of writing, and no receipt there vouches for "
                          "any of them with the content the index holds — a mirror does not adopt a foreign tree; use "
                          "an empty directory as the root (if these are this volume's copies, restore and index it "
                          "first: see `squirrel recover --from {}`)",
                          p.root, p.name(), files, p.dest()));
}

}  // namespace

std::int64_t adopt_vouched_copies(Push& p, bool required) {
  auto found = find_candidates(p);
  if (found.list.empty() && required) refuse_foreign(p, found.files);
  if (p.opts.dry_run) {
    for (const auto& c : found.list) p.adoptable.emplace(c.path, c.content_id);
    p.report.adopted = static_cast<std::int64_t>(found.list.size());
    p.report.left_foreign = found.files - found.recorded - p.report.adopted;
    return p.report.adopted;
  }
  std::vector<store::CommitIntent> batch;
  for (const auto& c : found.list) {
    if (auto in = confirm(p, c)) batch.push_back(std::move(*in));
    if (batch.size() < 1024) continue;
    p.report.adopted += static_cast<std::int64_t>(batch.size());
    record(p, std::exchange(batch, {}));
  }
  p.report.adopted += static_cast<std::int64_t>(batch.size());
  if (!batch.empty()) record(p, batch);
  if (p.report.adopted == 0 && required) refuse_foreign(p, found.files);
  p.report.left_foreign = found.files - found.recorded - p.report.adopted;
  if (p.report.adopted > 0)
    p.warn("", fmt::format("adopted {} copy(ies) at the destination that its receipts vouch for, each read back; {} "
                           "other file(s) there stay foreign",
                           p.report.adopted, p.report.left_foreign));
  return p.report.adopted;
}

}  // namespace sq::engine::sync
