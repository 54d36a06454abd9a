#include "hotd/protocol/plan_text.hpp"

#include <map>

#include "hotd/protocol/plan_json.hpp"

namespace hotd::protocol {

using parser::ChangeOp;

namespace {

std::string pad(std::string text, std::size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

}  // namespace

std::string change_subject(const parser::Change& change) {
  if (change.kind_name == "module") return "(whole file)";
  if (change.kind == parser::DefinitionKind::MainBlock) return "__main__ block";
  if (change.kind == parser::DefinitionKind::Statement) return "`" + change.label + "`";
  std::string subject = change.qualname;
  if (change.accessor != parser::PropertyAccessor::None) subject += " (" + std::string(to_string(change.accessor)) + ")";
  if (change.occurrence > 0) subject += " #" + std::to_string(change.occurrence + 1);
  return subject;
}

std::string format_plan(const parser::Plan& plan, const parser::Module& after) {
  std::string out;
  if (!plan.ok) {
    for (const parser::SyntaxError& error : plan.errors) {
      out += "syntax error: line " + std::to_string(error.start.line + 1) + ", column " +
             std::to_string(character_column(after.source, error.start)) + ": " + error.message + "\n";
    }
    out += "nothing to apply until the syntax errors are fixed\n";
    return out;
  }
  if (plan.changes.empty()) return "no changes\n";
  std::map<std::string, int> counts;
  for (const parser::Change& change : plan.changes) {
    std::string where = "line " + std::to_string(change.line);
    if (change.in_old_file) {
      where += " (old file)";
    } else if (change.old_line && *change.old_line != change.line) {
      where += " (was " + std::to_string(*change.old_line) + ")";
    }
    std::string line = pad(std::string(to_string(change.op)), 7) + " " + pad(change.kind_name, 12) + " " +
                       change_subject(change) + "  " + where;
    if (change.in_function) line += " [inside a function]";
    if (!change.reason.empty()) line += ": " + change.reason;
    out += line + "\n";
    ++counts[std::string(to_string(change.op))];
  }
  std::string summary;
  for (const char* op : {"update", "shift", "add", "delete", "exec", "rude", "skip"}) {
    const auto found = counts.find(op);
    if (found == counts.end()) continue;
    if (!summary.empty()) summary += ", ";
    summary += std::to_string(found->second) + " " + op;
  }
  out += std::to_string(plan.changes.size()) + (plan.changes.size() == 1 ? " change: " : " changes: ") + summary + "\n";
  return out;
}

}  // namespace hotd::protocol
