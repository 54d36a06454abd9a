// JSON forms of patch plans and definition outlines, as documented in docs/PROTOCOL.md.
#pragma once

#include <nlohmann/json.hpp>

#include "hotd/parser/definition.hpp"
#include "hotd/parser/patch_plan.hpp"

namespace hotd::protocol {

inline constexpr int kPlanSchemaVersion = 1;

// `after` is the module the plan was made for: syntax errors point into it.
nlohmann::json plan_to_json(const parser::Plan& plan, const parser::Module& after);
nlohmann::json change_to_json(const parser::Change& change);
nlohmann::json syntax_error_to_json(const parser::Module& module, const parser::SyntaxError& error);
// The definition tree of a module (`hotd outline --json`).
nlohmann::json outline_to_json(const parser::Module& module);

// 1-based column in code points, as Python's SyntaxError.offset counts, of a byte column on `line`.
std::uint32_t character_column(const std::string& source, parser::Point point);

}  // namespace hotd::protocol
