// Layouts that eat themselves. A destination root inside its volume makes
// every index and sync nest another copy, and offloading the volume would
// delete originals, copies and the copies' marker alike; a nested volume
// loses its files and its marker when the outer one is offloaded; two
// volumes on one folder claim the same files.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "config/loader.hpp"
#include "core/real_path.hpp"
#include "core/text.hpp"

namespace sq::config {

namespace {

struct Scan {
  const InsidePath& inside;
  ShowPath show;
  std::vector<LayoutClash> out;
};

void volume_vs_destination(Scan& s, const Volume& v, const Destination& d) {
  const std::filesystem::path root = d.root;
  if (s.inside(v.path, root)) {
    s.out.push_back({"destinations", d.name, "root", d.line, v.name, d.name,
                     fmt::format("destination \"{}\" root {} is inside volume \"{}\" ({})", d.name, s.show(root),
                                 v.name, s.show(v.path)),
                     "every sync would copy the copies again and offloading the volume would delete them; put the "
                     "destination root outside the volume"});
  } else if (s.inside(root, v.path)) {
    s.out.push_back({"volumes", v.name, "path", v.line, v.name, d.name,
                     fmt::format("volume \"{}\" ({}) is inside the root of destination \"{}\" ({})", v.name,
                                 s.show(v.path), d.name, s.show(root)),
                     "syncs would write copies into the volume's tree; keep volumes and destination roots apart"});
  }
}

// `a` is declared before `b` in the file, so the message points at `b`.
void volume_vs_volume(Scan& s, const Volume& a, const Volume& b) {
  bool b_in_a = s.inside(a.path, b.path), a_in_b = s.inside(b.path, a.path);
  if (b_in_a && a_in_b) {
    s.out.push_back({"volumes", b.name, "path", b.line, a.name, b.name,
                     fmt::format("volume \"{}\" ({}) has the same path as volume \"{}\" ({})", b.name, s.show(b.path),
                                 a.name, s.show(a.path)),
                     "two volumes on one folder claim the same files and one marker; give each volume its own folder"});
    return;
  }
  if (!b_in_a && !a_in_b) return;
  const Volume& inner = b_in_a ? b : a;
  const Volume& outer = b_in_a ? a : b;
  s.out.push_back({"volumes", inner.name, "path", inner.line, outer.name, inner.name,
                   fmt::format("volume \"{}\" ({}) is inside volume \"{}\" ({})", inner.name, s.show(inner.path),
                               outer.name, s.show(outer.path)),
                   fmt::format("offloading \"{}\" would delete the files and the marker of \"{}\"; make them separate "
                               "folders or drop one of the two volumes",
                               outer.name, inner.name)});
}

std::vector<const Volume*> in_file_order(const Config& cfg) {
  std::vector<const Volume*> out;
  for (const auto& [name, v] : cfg.volumes) out.push_back(&v);
  std::stable_sort(out.begin(), out.end(), [](const Volume* x, const Volume* y) { return x->line < y->line; });
  return out;
}

}  // namespace

std::vector<LayoutClash> layout_clashes(const Config& cfg, const InsidePath& inside, const ShowPath& show) {
  Scan s{inside, show ? show : ShowPath([](const std::filesystem::path& p) { return escape_for_display(p.string()); }),
         {}};
  auto volumes = in_file_order(cfg);
  for (const Volume* v : volumes)
    for (const auto& [name, d] : cfg.destinations)
      if (d.has_local_root()) volume_vs_destination(s, *v, d);
  for (std::size_t i = 0; i < volumes.size(); ++i)
    for (std::size_t j = i + 1; j < volumes.size(); ++j) volume_vs_volume(s, *volumes[i], *volumes[j]);
  return std::move(s.out);
}

std::vector<LayoutClash> real_layout_clashes(const Config& cfg) {
  auto mounts = read_mounts();
  std::map<std::filesystem::path, RealLocation> seen;
  auto where = [&](const std::filesystem::path& p) -> const RealLocation& {
    auto it = seen.find(p);
    if (it == seen.end()) it = seen.emplace(p, locate(p, mounts)).first;
    return it->second;
  };
  auto inside = [&](const std::filesystem::path& outer, const std::filesystem::path& inner) {
    return contains_real(where(outer), where(inner));
  };
  auto show = [&](const std::filesystem::path& p) {
    const auto& real = where(p).real;
    std::string shown = escape_for_display(p.string());
    return real == p.lexically_normal() ? shown : fmt::format("{} (really {})", shown, escape_for_display(real.string()));
  };
  auto clashes = layout_clashes(cfg, inside, show);
  for (auto& c : clashes) c.problem += " on disk (through a symlink or a mount)";
  return clashes;
}

namespace detail {

void check_layout(const std::string& file, const Config& cfg) {
  auto clashes = layout_clashes(
      cfg, [](const std::filesystem::path& outer, const std::filesystem::path& inner) { return path_within(inner, outer); });
  if (clashes.empty()) return;
  const auto& c = clashes.front();
  fail_at(file, c.line, c.section + "." + c.name + "." + c.key, c.problem, c.todo);
}

}  // namespace detail

}  // namespace sq::config
