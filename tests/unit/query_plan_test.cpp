// Every command linear in the number of files (issue 13), checked two ways
// on the real binary, which reports every statement it ran through
// SQUIRREL_SQL_TRACE (store/sql_trace.hpp):
//  - the query-plan guard: each statement any command ran is planned
//    (EXPLAIN QUERY PLAN) against a database padded with tens of thousands
//    of rows in every large table, with and without ANALYZE statistics. A
//    loop that scans a large table, or searches one only by a column that
//    cannot narrow it (a destination, a volume, a state), fails it; only the
//    outermost loop of a statement run once per command may walk (a command
//    reads a volume once).
//  - the growth test: the SQLite VM steps each command takes on N files and
//    on 4N; linear growth is 4×, quadratic 16×. Steps, not time: the same
//    data always costs the same steps, whatever the machine is doing.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "loop_util.hpp"

using namespace sq::test;
namespace fs = std::filesystem;

namespace {

struct Use {
  long long uses = 0, steps = 0;
};
using Trace = std::map<std::string, Use>;  // sql -> totals

Trace read_trace(const fs::path& file) {
  Trace out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find('\t'), b = line.find('\t', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    auto& u = out[line.substr(b + 1)];
    u.uses += std::stoll(line.substr(0, a));
    u.steps += std::stoll(line.substr(a + 1, b - a - 1));
  }
  return out;
}

// A volume of `files` small files in folders of 20, two levels deep, a
// tenth of them duplicates, put through every command.
class Workload {
 public:
  explicit Workload(int files) {
    for (int i = 0; i < files; ++i) {
      auto rel = "g" + std::to_string(i / 200) + "/f" + std::to_string(i / 20) + "/n" + std::to_string(i) + ".txt";
      sb.put(rel, i % 10 == 9 ? "duplicate " + std::to_string(i / 100) : "content of file " + std::to_string(i));
    }
  }

  // Each command with the label it is known by, and what it ran.
  std::vector<std::pair<std::string, Trace>> run() {
    std::vector<std::pair<std::string, Trace>> out;
    auto step = [&](const std::string& label, const std::vector<std::string>& args, int want = 0,
                    const fs::path& db = {}) { out.emplace_back(label, traced(label, args, want, db)); };
    step("first index", {"index", "photos"});
    fs::remove(sb.vol("g0/f0/n0.txt"));
    step("shallow re-index", {"index", "photos"});
    step("first sync", {"sync", "--init"});
    step("unchanged sync", {"sync", "photos"});
    step("verify", {"verify", "usb"});
    step("verify --full", {"verify", "usb", "--full"});
    step("offload", {"offload", "photos", "."});
    step("status", {"status"});
    step("query --duplicates", {"query", "--duplicates"});
    step("query --missing", {"query", "--missing"});
    step("restore one folder", {"restore", "photos", "g0/f1"});
    step("restore everything", {"restore", "photos"});
    step("sync after a restore", {"sync", "photos"});
    demote_one_copy();
    step("offload (presence+size)", {"offload", "photos", "."});
    // The demoted copy is damaged, so one file cannot come back.
    step("restore without an index", {"restore", "photos", "--to", (sb.root() / "elsewhere").string()}, 1,
         sb.root() / "db" / "fresh.db");
    step("audit", {"audit", "photos"});
    step("db check", {"db", "check"});
    step("destination reset", {"destination", "reset", "usb", "--yes"});
    return out;
  }

  LoopSandbox sb;

 private:
  // A copy rewritten with other bytes of the same size and mtime: a full
  // verify finds it, demotes the evidence to presence+size and latches the
  // alarm, which a person acknowledges. Offload then rests on each copy's
  // own read-back checksum, one ledger probe per file.
  void demote_one_copy() {
    auto copy = sb.vdest() / "g0/f1/n20.txt";
    rewrite_same_size_and_mtime(copy, std::string(read_file(copy).size(), '#'));
    EXPECT_EQ(sb.run({"verify", "usb", "--full"}).status, 1);
    EXPECT_EQ(sb.run({"verify", "ack", "usb"}).status, 0);
  }

  Trace traced(const std::string& label, const std::vector<std::string>& args, int want, const fs::path& db) {
    auto file = sb.root() / ("trace-" + std::to_string(++n_));
    auto o = sb.options();
    o.env.emplace_back("SQUIRREL_SQL_TRACE", file.string());
    std::vector<std::string> all{"--config", sb.config_path().string(), "--db",
                                 (db.empty() ? sb.db_path() : db).string()};
    all.insert(all.end(), args.begin(), args.end());
    auto r = run_cli(all, o);
    EXPECT_EQ(r.status, want) << label << "\n" << r.out << r.err;
    auto t = read_trace(file);
    EXPECT_FALSE(t.empty()) << label << " ran no statement, or the trace was not written";
    return t;
  }
  int n_ = 0;
};

// ---- the query-plan guard -------------------------------------------------------

// Tables that grow with the files, the runs or the copies. The others hold
// a row per volume, destination or node.
const std::set<std::string> kLargeTables = {"files",    "folders",   "contents",  "remote_paths",
                                            "runs",     "runs_audit", "hook_runs", "destination_run_ids_history",
                                            "offload_intents"};

// Columns that cannot narrow a large table: every row of a destination or
// a volume shares them.
const std::set<std::string> kCoarseColumns = {"destination", "volume_id", "status", "state", "kind", "trigger"};

// alias -> table, from every "FROM t a", "JOIN t AS a" and bare "FROM t".
std::map<std::string, std::string> aliases(const std::string& sql) {
  std::map<std::string, std::string> out;
  static const std::regex re(R"re(\b(?:FROM|JOIN|UPDATE|INTO)\s+"?(\w+)"?(?:\s+(?:AS\s+)?(\w+))?)re",
                             std::regex::icase);
  static const std::set<std::string> keywords = {"WHERE", "JOIN", "LEFT", "INNER", "ON", "SET", "GROUP", "ORDER",
                                                 "LIMIT", "VALUES", "SELECT", "USING", "CROSS", "NATURAL", "UNION",
                                                 "AND", "OR", "WITH", "AS", "DEFAULT", "RETURNING", "EXCEPT"};
  for (std::sregex_iterator it(sql.begin(), sql.end(), re), end; it != end; ++it) {
    std::string table = (*it)[1], alias = (*it)[2];
    out[table] = table;
    std::string upper = alias;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (!alias.empty() && !keywords.contains(upper)) out[alias] = table;
  }
  return out;
}

struct PlanLine {
  int id, parent;
  std::string detail;
};

std::vector<PlanLine> plan_of(sqlite3* db, const std::string& sql) {
  std::vector<PlanLine> lines;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &st, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot plan: " << sqlite3_errmsg(db) << "\n" << sql;
    return lines;
  }
  while (sqlite3_step(st) == SQLITE_ROW)
    lines.push_back({sqlite3_column_int(st, 0), sqlite3_column_int(st, 1),
                     reinterpret_cast<const char*>(sqlite3_column_text(st, 3))});
  sqlite3_finalize(st);
  return lines;
}

bool is_loop(const std::string& detail) { return detail.starts_with("SCAN ") || detail.starts_with("SEARCH "); }

// The loops that run once per execution of the statement: in the statement
// and in each subquery that is not correlated (a correlated one runs once
// per row of its outer loop), the first loop, and every loop after it as
// long as the loops before it walk small tables (a constant factor).
std::set<int> outer_loops(const std::vector<PlanLine>& plan, const std::map<std::string, std::string>& alias) {
  std::map<int, const PlanLine*> by_id;
  for (const auto& l : plan) by_id[l.id] = &l;
  auto runs_once = [&](int parent) {
    for (int p = parent; p != 0 && by_id.count(p); p = by_id[p]->parent)
      if (by_id[p]->detail.starts_with("CORRELATED") || is_loop(by_id[p]->detail)) return false;
    return true;
  };
  static const std::regex loop_table(R"(^(?:SCAN|SEARCH) (\w+))");
  std::set<int> nested_under, out;  // parents whose loops so far include a large table
  for (const auto& l : plan) {
    std::smatch m;
    if (!std::regex_search(l.detail, m, loop_table)) continue;
    auto it = alias.find(m[1]);
    bool large = kLargeTables.contains(it == alias.end() ? std::string(m[1]) : it->second);
    if (!nested_under.contains(l.parent) && runs_once(l.parent)) out.insert(l.id);
    if (large) nested_under.insert(l.parent);
  }
  return out;
}

// Partial indexes that hold only rows in a passing state (running runs,
// unsettled or unread-back copies): a search of one by a coarse column
// walks what the command is there to settle, not the table.
const std::set<std::string> kTransientIndexes = {"idx_runs_running", "idx_remote_paths_unsettled",
                                                 "idx_remote_paths_live_unverified"};

// Why one plan line walks a large table, or "" when it does not.
std::string walks(const std::string& line, const std::map<std::string, std::string>& alias) {
  static const std::regex scan(R"(^SCAN (\w+))"), search(R"(^SEARCH (\w+) USING (?:COVERING )?INDEX (\w+) \((.*)\)$)");
  std::smatch m;
  auto table_of = [&](const std::string& a) {
    auto it = alias.find(a);
    return it == alias.end() ? a : it->second;
  };
  if (std::regex_search(line, m, scan) && kLargeTables.contains(table_of(m[1])))
    return "scans " + table_of(m[1]);
  // An index SQLite builds for one execution walks the whole table to build
  // it; the schema must hold the index instead.
  static const std::regex automatic(R"(^SEARCH (\w+) USING AUTOMATIC)");
  if (std::regex_search(line, m, automatic) && kLargeTables.contains(table_of(m[1])))
    return "builds an automatic index on " + table_of(m[1]);
  if (!std::regex_search(line, m, search) || !kLargeTables.contains(table_of(m[1])) ||
      kTransientIndexes.contains(m[2]))
    return "";
  static const std::regex column(R"((\w+)[=><])");
  std::string constraint = m[3];
  for (std::sregex_iterator it(constraint.begin(), constraint.end(), column), end; it != end; ++it)
    if (!kCoarseColumns.contains((*it)[1])) return "";
  return "searches " + table_of(m[1]) + " only by (" + constraint + ")";
}

// A statement a command ran more often than this runs per file or per batch.
constexpr long long kOncePerCommand = 3;

// Every finding, one line each: "<why> [<plan line>] in: <sql>". A
// statement run once per command may walk its outermost loop (a command
// reads a whole volume once); no loop nested in another may walk, and a
// statement run per file or per batch may walk nowhere.
std::vector<std::string> guard(sqlite3* db, const std::map<std::string, long long>& statements) {
  std::vector<std::string> findings;
  for (const auto& [sql, uses] : statements) {
    auto alias = aliases(sql);
    auto plan = plan_of(db, sql);
    auto outer = outer_loops(plan, alias);
    std::string why;
    for (const auto& l : plan)
      if (uses > kOncePerCommand || !outer.contains(l.id))
        if (auto w = walks(l.detail, alias); !w.empty()) why += (why.empty() ? "" : "; ") + w;
    if (why.empty()) continue;
    std::string text = why + " (run up to " + std::to_string(uses) + " times by one command) in:\n  " + sql + "\n";
    for (const auto& l : plan) text += "    " + std::to_string(l.parent) + "/" + std::to_string(l.id) + " " + l.detail + "\n";
    findings.push_back(text);
  }
  return findings;
}

// Tens of thousands of rows in every large table, in a second volume whose
// copies sit at the same destination as the workload's: what a person has
// after a few years.
void pad(sqlite3* db) {
  const char* sql = R"sql(
    PRAGMA foreign_keys=OFF;
    BEGIN;
    INSERT INTO volumes(name, path, created_at_ns) VALUES ('padding', '/nonexistent/padding', 1);
    CREATE TEMP TABLE n(i INTEGER PRIMARY KEY);
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 40000) INSERT INTO n SELECT i FROM c;
    INSERT INTO runs(kind, volume_id, started_at_ns, ended_at_ns, status)
      SELECT 'index', (SELECT id FROM volumes WHERE name = 'padding'), i, i + 1, 'success' FROM n WHERE i <= 5000;
    INSERT INTO runs_audit(run_id, transition, at_ns) SELECT i, 'finished', i FROM n WHERE i <= 20000;
    INSERT INTO hook_runs(volume_id, trigger, triggering_run_id, changed, started_at_ns, ended_at_ns, status)
      SELECT (SELECT id FROM volumes WHERE name = 'padding'), 'change', 1, 1, i, i + 1, 'success' FROM n WHERE i <= 5000;
    INSERT INTO folders(volume_id, parent_id, path) VALUES ((SELECT id FROM volumes WHERE name = 'padding'), NULL, X'');
    CREATE TEMP TABLE root AS SELECT max(id) AS id FROM folders;
    INSERT INTO folders(volume_id, parent_id, path)
      SELECT (SELECT id FROM volumes WHERE name = 'padding'), root.id, CAST('p' || i AS BLOB) FROM n, root
      WHERE i <= 2000;
    INSERT INTO contents(blake3, size_bytes) SELECT randomblob(32), i FROM n;
    INSERT INTO files(folder_id, name, content_id, mtime_ns, status, first_seen_run_id, last_seen_run_id,
                      status_changed_run_id, indexed_at_ns)
      SELECT (SELECT max(id) FROM folders) - (i % 2000), CAST('f' || i AS BLOB),
             (SELECT max(id) FROM contents) - i + 1, i, CASE WHEN i % 3 = 0 THEN 'offloaded' ELSE 'present' END,
             1, 1, 1, i FROM n;
    INSERT INTO remote_paths(destination, folder_id, name, content_id, written_run_id, state, displaced_run_id,
                             size_bytes, mtime_ns, checksum_algo, checksum, verified_at_ns)
      SELECT 'usb', folder_id, name, content_id, 1, 'live', NULL, 1, 1, 'blake3', 'x', 1
      FROM files WHERE CAST(name AS TEXT) LIKE 'f%';
    INSERT INTO destination_run_ids_history(volume_id, destination, origin_node_id, origin_run_id, at_ns, verified,
                                            rewind)
      SELECT (SELECT id FROM volumes WHERE name = 'padding'), 'usb', 1, i, i, 1, 0 FROM n WHERE i <= 5000;
    COMMIT;
    DROP TABLE n;
    DROP TABLE root;)sql";
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) ADD_FAILURE() << "padding failed: " << err;
  sqlite3_free(err);
}

struct Planned {
  std::map<std::string, long long> statements;  // sql -> most uses by one command
  fs::path db;
};

// The workload once, small, and the statements it ran.
Planned& workload_statements() {
  static Workload* w = nullptr;
  static Planned p;
  if (!w) {
    w = new Workload(60);
    for (auto& [label, trace] : w->run())
      for (auto& [sql, use] : trace) p.statements[sql] = std::max(p.statements[sql], use.uses);
    p.db = w->sb.db_path();
  }
  return p;
}

class Db {
 public:
  explicit Db(const fs::path& path) { EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK); }
  ~Db() { sqlite3_close(db_); }
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace

TEST(QueryPlan, NoCommandWalksALargeTableWithOrWithoutStatistics) {
  auto& p = workload_statements();
  ASSERT_GT(p.statements.size(), 50u) << "the trace should hold every statement of every command";
  auto copy = p.db.parent_path() / "planned.db";
  fs::copy_file(p.db, copy, fs::copy_options::overwrite_existing);
  Db db(copy);
  sqlite3_exec(db.get(), "DROP TABLE IF EXISTS sqlite_stat1; ANALYZE sqlite_master", nullptr, nullptr, nullptr);
  pad(db.get());
  EXPECT_EQ(join(guard(db.get(), p.statements)), "") << "without statistics";
  ASSERT_EQ(sqlite3_exec(db.get(), "ANALYZE", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(join(guard(db.get(), p.statements)), "") << "with ANALYZE statistics";
}

// Statistics taken while the database was small (PRAGMA optimize renews
// them only after a table grew a lot) must not lead the planner astray.
TEST(QueryPlan, NoCommandWalksALargeTableWithStatisticsOfASmallDatabase) {
  auto& p = workload_statements();
  auto copy = p.db.parent_path() / "small-stats.db";
  fs::copy_file(p.db, copy, fs::copy_options::overwrite_existing);
  Db db(copy);
  ASSERT_EQ(sqlite3_exec(db.get(), "ANALYZE", nullptr, nullptr, nullptr), SQLITE_OK);
  pad(db.get());
  EXPECT_EQ(join(guard(db.get(), p.statements)), "");
}

// The guard can fail: drop the indexes that restore's statement, or the
// offload gate's probe for a verified copy of a content, searches the
// ledger by, and the guard names that statement.
TEST(QueryPlan, TheGuardNamesRestoreAndTheGateWhenTheirIndexesAreDropped) {
  auto& p = workload_statements();
  for (std::string fragment : {"LEFT JOIN remote_paths l ON", "FROM remote_paths WHERE destination = ?1 AND content_id"}) {
    SCOPED_TRACE(fragment);
    auto copy = p.db.parent_path() / "dropped.db";
    fs::copy_file(p.db, copy, fs::copy_options::overwrite_existing);
    Db db(copy);
    sqlite3_exec(db.get(), "DROP TABLE IF EXISTS sqlite_stat1; ANALYZE sqlite_master", nullptr, nullptr, nullptr);
    pad(db.get());
    std::map<std::string, long long> chosen;
    static const std::regex index(R"(^SEARCH \w+ USING (?:COVERING )?INDEX (\w+))");
    for (const auto& [sql, uses] : p.statements)
      if (sql.find(fragment) != std::string::npos) chosen[sql] = uses;
    ASSERT_FALSE(chosen.empty()) << "the workload ran no such statement";
    ASSERT_EQ(guard(db.get(), chosen), std::vector<std::string>{}) << "with its indexes";
    // Each index it searches the ledger by, dropped in turn, until the
    // planner has none of ours left to turn to.
    std::set<std::string> dropped;
    for (bool more = true; more;) {
      more = false;
      for (const auto& [sql, uses] : chosen)
        for (const auto& l : plan_of(db.get(), sql))
          if (std::smatch m; std::regex_search(l.detail, m, index) && m.str(1).find("remote_paths") != std::string::npos) {
            ASSERT_EQ(sqlite3_exec(db.get(), ("DROP INDEX IF EXISTS " + m.str(1)).c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
            dropped.insert(m[1]);
            more = true;
          }
    }
    ASSERT_FALSE(dropped.empty()) << "its plan searches the ledger by no index of ours";
    EXPECT_EQ(guard(db.get(), chosen).size(), chosen.size()) << "without " << ::testing::PrintToString(dropped);
  }
}

// ---- growth with the number of files --------------------------------------------

TEST(QueryPlan, EveryCommandTakesLinearlyMoreStepsOnFourTimesTheFiles) {
  constexpr int kSmall = 250;
  auto small = Workload(kSmall).run();
  auto large = Workload(4 * kSmall).run();
  ASSERT_EQ(small.size(), large.size());
  for (std::size_t i = 0; i < small.size(); ++i) {
    long long a = 0, b = 0;
    for (const auto& [sql, u] : small[i].second) a += u.steps;
    for (const auto& [sql, u] : large[i].second) b += u.steps;
    // 4× the files: linear is 4×, with 30% slack 5.2×; quadratic is 16×.
    EXPECT_LE(b * 10, a * 52) << small[i].first << ": " << a << " steps on " << kSmall << " files, " << b << " on "
                              << 4 * kSmall;
  }
}
