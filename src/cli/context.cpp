#include "cli/context.hpp"

#include <fmt/format.h>

#include <stdlib.h>

#include <cstdlib>

#include "core/error.hpp"
#include "core/private_files.hpp"

namespace sq::cli {

std::filesystem::path Context::config_path() const {
  if (!config_flag.empty()) return config::expand_path(config_flag);
  return config::default_config_path();
}

const config::Config& Context::config() {
  if (!config_) config_ = config::load(config_path());
  return *config_;
}

const config::Config* Context::config_if_present() {
  if (config_) return &*config_;
  if (config_probed_) return nullptr;
  config_probed_ = true;
  auto path = config_path();
  std::error_code ec;
  if (config_flag.empty() && !std::filesystem::exists(path, ec)) return nullptr;
  return &config();
}

std::filesystem::path Context::db_path() {
  std::string raw;
  if (!db_flag.empty()) {
    raw = db_flag;
  } else if (auto* cfg = config_if_present(); cfg && cfg->db) {
    return *cfg->db;
  } else {
    const char* home = std::getenv("HOME");
    if (!home || !*home) throw Error(ErrorKind::usage, "HOME is not set — pass --db PATH");
    return std::filesystem::path(home) / ".squirrel" / "index.db";
  }
  config::validate_db_path(raw);
  return config::expand_path(raw);
}

bool Context::db_exists() {
  std::error_code ec;
  return std::filesystem::exists(db_path(), ec);
}

store::Store& Context::open_store(bool create) {
  if (store_) return *store_;
  auto path = db_path();
  store::StoreOptions opts;
  opts.create = create;
  if (auto* cfg = config_if_present()) {
    opts.node_name = cfg->node_name;
    if (cfg->backups.dir) opts.snapshot_dir = *cfg->backups.dir;
  }
  if (create) {
    // The DB's own directory (~/.squirrel by default) is squirrel's to make.
    std::error_code ec;
    create_private_directories(path.parent_path(), ec);
  }
  store_ = std::make_unique<store::Store>(store::Store::open(path, opts));
  return *store_;
}

store::Store& Context::store() { return open_store(true); }

store::Store& Context::scratch_store() {
  if (store_) return *store_;
  std::string tmpl = (std::filesystem::temp_directory_path() / "squirrel-dry-run-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw Error(ErrorKind::io, "cannot create a scratch directory for the dry run");
  scratch_dir_ = tmpl;
  store::StoreOptions opts;
  if (auto* cfg = config_if_present()) opts.node_name = cfg->node_name;
  store_ = std::make_unique<store::Store>(store::Store::open(scratch_dir_ / "index.db", opts));
  return *store_;
}

Context::~Context() {
  store_.reset();
  std::error_code ec;
  if (!scratch_dir_.empty()) std::filesystem::remove_all(scratch_dir_, ec);
}
store::Store& Context::existing_store() { return open_store(false); }

}  // namespace sq::cli
