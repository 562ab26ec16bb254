// Two scans of a sync are computed in C++ rather than by one SQL query: the
// advance snapshot (aggregated per content) and the mirror plan (a merge of
// the files with the live ledger). Their definitions are the SQL queries
// they replaced; random rows — every status and ledger state, reserved
// names, names that sort differently as text, shared content, peer and
// half-null origins — must give the same answer both ways.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "engine/sync/plan.hpp"
#include "store/evidence.hpp"
#include "test_util.hpp"

using namespace sq;
using namespace sq::store;

namespace {

std::vector<std::pair<std::int64_t, std::int64_t>> reference_maxima(Db& db, std::int64_t volume, std::int64_t self) {
  std::string sql = fmt::format(
      "WITH per_content AS (SELECT f.content_id AS cid, MIN(f.first_seen_run_id) AS intro, "
      "MAX(f.status = 'present' AND {0}) AS present FROM files f JOIN folders d ON d.id = f.folder_id "
      "WHERE d.volume_id = ?1 GROUP BY f.content_id) "
      "SELECT CASE WHEN c.origin_node_id IS NOT NULL AND c.origin_run_id IS NOT NULL THEN c.origin_node_id ELSE ?2 END "
      "AS node, MAX(CASE WHEN c.origin_node_id IS NOT NULL AND c.origin_run_id IS NOT NULL THEN c.origin_run_id "
      "ELSE pc.intro END) FROM per_content pc JOIN contents c ON c.id = pc.cid WHERE pc.present "
      "GROUP BY node ORDER BY node",
      kOutsideReserved);
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (const auto& r : db.query_rows(sql, {Value{volume}, Value{self}}))
    out.emplace_back(std::get<std::int64_t>(r[0]), std::get<std::int64_t>(r[1]));
  return out;
}

const char* const kStatuses[] = {"present", "missing", "superseded", "offloaded"};
// "A" comes last by id but sorts before "a" by path.
const char* const kFolders[] = {"", "a", ".squirrel-history", "a/.squirrel-x", ".squirrel-historyx/b", "A"};
const char* const kNames[] = {"f", ".squirrel-index", ".squirrel-", "g.squirrel-", "\xff"};

struct Row {
  int folder, name, content, first_seen, status;
};

rc::Gen<Row> gen_row() {
  return rc::gen::build<Row>(rc::gen::set(&Row::folder, rc::gen::inRange(0, 6)),
                             rc::gen::set(&Row::name, rc::gen::inRange(0, 5)),
                             rc::gen::set(&Row::content, rc::gen::inRange(0, 6)),
                             rc::gen::set(&Row::first_seen, rc::gen::inRange(0, 4)),
                             rc::gen::set(&Row::status, rc::gen::inRange(0, 4)));
}

// A database with one volume, its folders, four runs, a peer and six
// contents whose origins are none, the peer (at 40 or 42), or half null.
struct Ledger {
  test::TempDir dir;
  Store store = test::open_store(dir);
  Db& db = store.db();
  std::int64_t volume = 0, peer = 0;
  std::vector<std::int64_t> folders, runs, contents;

  Ledger() {
    db.execute("INSERT INTO volumes(name, path, created_at_ns) VALUES ('v', '/nowhere', 1)");
    volume = db.last_insert_id();
    db.execute("INSERT INTO nodes(name, endpoint) VALUES ('peer', 'https://peer')");
    peer = db.last_insert_id();
    for (const char* path : kFolders) {
      std::string p(path);
      Value parent = p.empty() ? Value{} : Value{folders.front()};
      db.execute("INSERT INTO folders(volume_id, parent_id, path) VALUES (?, ?, ?)",
                 {Value{volume}, parent, Value{Blob(p.begin(), p.end())}});
      folders.push_back(db.last_insert_id());
    }
    for (int i = 0; i < 4; ++i) {
      db.execute("INSERT INTO runs(kind, volume_id, started_at_ns, ended_at_ns, status) VALUES "
                 "('index', ?, 1, 2, 'success')",
                 {Value{volume}});
      runs.push_back(db.last_insert_id());
    }
    const std::vector<std::pair<Value, Value>> origins = {
        {Value{}, Value{}}, {Value{}, Value{}}, {Value{peer}, Value{std::int64_t{40}}},
        {Value{peer}, Value{std::int64_t{42}}}, {Value{peer}, Value{}}, {Value{}, Value{std::int64_t{7}}}};
    for (std::size_t i = 0; i < origins.size(); ++i) {
      auto hash = blake3(std::to_string(i));
      db.execute("INSERT INTO contents(blake3, size_bytes, origin_node_id, origin_run_id) VALUES (?, 1, ?, ?)",
                 {Value{Blob(hash.begin(), hash.end())}, origins[i].first, origins[i].second});
      contents.push_back(db.last_insert_id());
    }
  }

  // A path at the destination: a ledger row in `state` for the file row
  // `file` (or for an older content at the same path, superseded locally).
  void record(std::size_t file, const char* state, bool older_content) {
    auto row = db.query_rows("SELECT folder_id, name, content_id FROM files ORDER BY folder_id, name LIMIT 1 OFFSET ?",
                             {Value{static_cast<std::int64_t>(file)}});
    if (row.empty()) return;
    Value content = row[0][2];
    if (older_content) {
      auto other = contents[(std::find(contents.begin(), contents.end(), std::get<std::int64_t>(content)) -
                             contents.begin() + 1) % contents.size()];
      db.execute("INSERT INTO files(folder_id, name, content_id, mtime_ns, status, first_seen_run_id, "
                 "last_seen_run_id, status_changed_run_id, indexed_at_ns) VALUES (?, ?, ?, 1, 'superseded', ?, ?, ?, 1)",
                 {row[0][0], row[0][1], Value{other}, Value{runs[0]}, Value{runs[0]}, Value{runs[0]}});
      content = Value{other};
    }
    bool settled = std::string(state) == "displaced" || std::string(state) == "displacing";
    db.execute("INSERT INTO remote_paths(destination, folder_id, name, content_id, written_run_id, state, "
               "displaced_run_id, size_bytes, mtime_ns) VALUES ('d', ?, ?, ?, ?, ?, ?, 5, 6)",
               {row[0][0], row[0][1], content, Value{runs[0]}, Value{std::string(state)},
                settled ? Value{runs[1]} : Value{}});
  }

  // Each row gets its own name (the generated one plus its index), so the
  // one-live-row-per-path rule never rejects a generated ledger.
  void insert(const std::vector<Row>& rows) {
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      std::string name = kNames[r.name] + std::to_string(i);
      db.execute("INSERT INTO files(folder_id, name, content_id, mtime_ns, status, first_seen_run_id, "
                 "last_seen_run_id, status_changed_run_id, indexed_at_ns) VALUES (?, ?, ?, 1, ?, ?, ?, ?, 1)",
                 {Value{folders[r.folder]}, Value{Blob(name.begin(), name.end())}, Value{contents[r.content]},
                  Value{std::string(kStatuses[r.status])}, Value{runs[r.first_seen]}, Value{runs[r.first_seen]},
                  Value{runs[r.first_seen]}});
    }
  }
};

// The plan as the query it replaced defined it: path, content, replaced
// row, and the count of paths already live.
struct Planned {
  std::vector<std::tuple<std::string, std::int64_t, std::int64_t, std::int64_t>> writes;
  std::int64_t already_live = 0, bytes = 0;
  bool operator==(const Planned&) const = default;
};

Planned reference_plan(Db& db, std::int64_t volume) {
  std::string sql = fmt::format(
      "SELECT d.path, f.name, f.content_id, c.size_bytes, p.id, p.content_id FROM files f "
      "JOIN folders d ON d.id = f.folder_id LEFT JOIN remote_paths p ON "
      "p.destination = 'd' AND p.folder_id = f.folder_id AND p.name = f.name AND p.state IN ('committing','live') "
      "JOIN contents c ON c.id = f.content_id "
      "WHERE d.volume_id = ?1 AND f.status = 'present' AND {} ORDER BY d.path, f.name",
      kOutsideReserved);
  Planned out;
  for (const auto& r : db.query_rows(sql, {Value{volume}})) {
    auto content = std::get<std::int64_t>(r[2]);
    auto* recorded = std::get_if<std::int64_t>(&r[5]);
    if (recorded && *recorded == content) {
      out.already_live += 1;
      continue;
    }
    const auto& folder = std::get<Blob>(r[0]);
    const auto& name = std::get<Blob>(r[1]);
    std::string path = folder.empty() ? std::string(name.begin(), name.end())
                                      : std::string(folder.begin(), folder.end()) + "/" +
                                            std::string(name.begin(), name.end());
    auto* replaced = std::get_if<std::int64_t>(&r[4]);
    out.writes.emplace_back(path, content, replaced ? *replaced : 0, std::get<std::int64_t>(r[3]));
    out.bytes += std::get<std::int64_t>(r[3]);
  }
  return out;
}

Planned computed_plan(Db& db, std::int64_t volume) {
  auto plan = engine::sync::plan_mirror(db, volume, "d");
  Planned out{{}, plan.already_live, plan.bytes};
  for (const auto& w : plan.writes) out.writes.emplace_back(w.path, w.content_id, w.replaces_row.value_or(0), w.size);
  return out;
}

const char* const kLedgerStates[] = {"live", "committing", "displacing", "displaced", "lost"};

struct Recorded {
  int file, state;
  bool older_content;
};

}  // namespace

RC_GTEST_PROP(MirrorPlan, TheMergeAgreesWithTheSqlDefinition, ()) {
  auto rows = *rc::gen::container<std::vector<Row>>(gen_row());
  auto recorded = *rc::gen::container<std::vector<Recorded>>(rc::gen::build<Recorded>(
      rc::gen::set(&Recorded::file, rc::gen::inRange(0, 40)), rc::gen::set(&Recorded::state, rc::gen::inRange(0, 5)),
      rc::gen::set(&Recorded::older_content, rc::gen::arbitrary<bool>())));
  Ledger l;
  l.insert(rows);
  for (const auto& r : recorded) {
    try {
      l.record(static_cast<std::size_t>(r.file), kLedgerStates[r.state], r.older_content);
    } catch (const Error&) {
      // a second live row at one path, or a second superseded row of one
      // content: the schema refuses it, as it should; skip that one
    }
  }
  RC_ASSERT(computed_plan(l.db, l.volume) == reference_plan(l.db, l.volume));
}

RC_GTEST_PROP(OriginMaxima, TheScanAgreesWithTheSqlDefinition, ()) {
  auto rows = *rc::gen::container<std::vector<Row>>(gen_row());
  Ledger l;
  l.insert(rows);
  std::vector<std::pair<std::int64_t, std::int64_t>> got;
  for (const auto& m : present_origin_maxima(l.db, l.volume, l.store.self_node_id()))
    got.emplace_back(m.node_id, m.run_id);
  RC_ASSERT(got == reference_maxima(l.db, l.volume, l.store.self_node_id()));
}

TEST(OriginMaxima, OutsideReservedAgreesWithTheSqlCondition) {
  Ledger l;
  for (const char* folder : kFolders)
    for (const char* name : kNames) {
      std::string f(folder), n(name);
      auto sql = l.db.query_i64(fmt::format("SELECT {} FROM (SELECT ? AS path) d, (SELECT ? AS name) f",
                                            kOutsideReserved),
                                {Value{Blob(f.begin(), f.end())}, Value{Blob(n.begin(), n.end())}});
      EXPECT_EQ(sql.value_or(-1) != 0, outside_reserved(f, n)) << "folder \"" << f << "\" name \"" << n << "\"";
    }
}
