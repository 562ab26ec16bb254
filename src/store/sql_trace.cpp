#include "store/sql_trace.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "store/db.hpp"

namespace sq::store {

namespace {

class Tracer final : public StatementObserver {
 public:
  explicit Tracer(std::string path) : path_(std::move(path)) {}
  // Written once, when the process ends normally; a killed process leaves
  // no trace, which the tests that read it never do.
  ~Tracer() override {
    set_statement_observer(nullptr);
    FILE* f = std::fopen(path_.c_str(), "a");
    if (!f) return;
    for (const auto& [sql, t] : totals_) std::fprintf(f, "%lld\t%lld\t%s\n", t.uses, t.steps, one_line(sql).c_str());
    std::fclose(f);
  }
  void used(const std::string& sql, std::int64_t vm_steps) override {
    std::lock_guard lock(mu_);
    auto& t = totals_[sql];
    ++t.uses;
    t.steps += vm_steps;
  }

 private:
  struct Total {
    long long uses = 0, steps = 0;
  };
  static std::string one_line(std::string s) {
    for (char& c : s)
      if (c == '\n' || c == '\t' || c == '\r') c = ' ';
    return s;
  }
  std::string path_;
  std::mutex mu_;
  std::map<std::string, Total> totals_;
};

}  // namespace

void install_sql_trace_from_env() {
  const char* path = std::getenv("SQUIRREL_SQL_TRACE");
  if (!path || !*path) return;
  static Tracer tracer(path);
  set_statement_observer(&tracer);
}

}  // namespace sq::store
