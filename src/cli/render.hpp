#pragma once
// Output helpers for front ends: aligned tables and JSON.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace sq::cli {

// Columns padded by two spaces, like a tabwriter.
std::string render_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
void print(const std::string& text);
void print_json(const nlohmann::json& j);
void warn(const std::string& line);

}  // namespace sq::cli
