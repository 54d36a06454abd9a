#include "source_commands.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "hotd/parser/patch_plan.hpp"
#include "hotd/parser/python_document.hpp"
#include "hotd/protocol/plan_json.hpp"
#include "hotd/protocol/plan_text.hpp"

namespace hotd::cli {

namespace {

std::optional<std::string> read_file(const std::string& path, const char* command) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "hotd " << command << ": cannot read '" << path << "': " << std::strerror(errno) << "\n";
    return std::nullopt;
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) {
    std::cerr << "hotd " << command << ": error while reading '" << path << "'\n";
    return std::nullopt;
  }
  return content.str();
}

}  // namespace

int run_diff(const DiffOptions& options) {
  const auto old_source = read_file(options.old_path, "diff");
  if (!old_source) return kExitUsage;
  const auto new_source = read_file(options.new_path, "diff");
  if (!new_source) return kExitUsage;

  const parser::Module before = parser::parse_module(*old_source);
  const parser::Module after = parser::parse_module(*new_source);
  const parser::Plan plan = parser::diff_modules(before, after);

  if (options.json) {
    std::cout << protocol::plan_to_json(plan, after).dump(2) << "\n";
  } else {
    if (!plan.ok) std::cout << options.new_path << ": ";
    std::cout << protocol::format_plan(plan, after);
  }
  return plan.ok ? kExitOk : kExitFailed;
}

int run_outline(const OutlineOptions& options) {
  const auto source = read_file(options.path, "outline");
  if (!source) return kExitUsage;
  const parser::Module module = parser::parse_module(*source);
  if (options.json) {
    std::cout << protocol::outline_to_json(module).dump(2) << "\n";
  } else {
    for (const parser::Definition& definition : module.definitions) {
      std::int32_t depth = 0;
      for (std::int32_t p = definition.parent; p >= 0; p = module.definitions[p].parent) ++depth;
      std::cout << std::string(static_cast<std::size_t>(depth) * 2, ' ') << parser::kind_name(definition) << " ";
      if (definition.qualname.empty()) {
        std::string_view first = module.text(definition.span);
        std::cout << "`" << first.substr(0, std::min<std::size_t>(first.find('\n'), 60)) << "`";
      } else {
        std::cout << definition.qualname;
      }
      std::cout << "  line " << definition.span.start.line + 1 << "-" << definition.span.end.line + 1 << "\n";
    }
    for (const parser::SyntaxError& error : module.errors) {
      std::cout << "syntax error: line " << error.start.line + 1 << ", column "
                << protocol::character_column(module.source, error.start) << ": " << error.message << "\n";
    }
  }
  return module.has_errors() ? kExitFailed : kExitOk;
}

}  // namespace hotd::cli
