#include "hotd/protocol/plan_json.hpp"

#include <map>

namespace hotd::protocol {

using nlohmann::json;
using parser::ChangeOp;

namespace {

json string_or_null(const std::string& text) { return text.empty() ? json(nullptr) : json(text); }

std::size_t byte_offset_of_line(const std::string& source, std::uint32_t line) {
  std::size_t offset = 0;
  for (std::uint32_t i = 0; i < line && offset != std::string::npos; ++i) {
    offset = source.find('\n', offset);
    if (offset != std::string::npos) ++offset;
  }
  return offset == std::string::npos ? source.size() : offset;
}

}  // namespace

std::uint32_t character_column(const std::string& source, parser::Point point) {
  const std::size_t begin = byte_offset_of_line(source, point.line);
  std::uint32_t characters = 0;
  for (std::size_t i = begin; i < begin + point.column && i < source.size(); ++i) {
    if ((static_cast<unsigned char>(source[i]) & 0xC0) != 0x80) ++characters;  // not a continuation byte
  }
  return characters + 1;
}

json change_to_json(const parser::Change& change) {
  json out = {
      {"op", parser::to_string(change.op)},
      {"kind", change.kind_name},
      {"qualname", string_or_null(change.qualname)},
      {"line", change.line},
      {"end_line", change.end_line},
  };
  if (change.kind == parser::DefinitionKind::Function || change.kind == parser::DefinitionKind::Class) {
    out["occurrence"] = change.occurrence;
    out["header_line"] = change.header_line;
    if (change.accessor != parser::PropertyAccessor::None) out["accessor"] = parser::to_string(change.accessor);
  }
  if (change.old_line) out["old_line"] = *change.old_line;
  if (change.in_old_file) out["in_old_file"] = true;
  if (change.op == ChangeOp::Rude || change.op == ChangeOp::Skip) {
    out["reason"] = change.reason;
  } else if (!change.reason.empty()) {
    out["detail"] = change.reason;
  }
  const bool deletes_statement = change.op == ChangeOp::Delete && change.kind == parser::DefinitionKind::Statement;
  if (!change.source.empty()) out["source"] = change.source;
  if (!change.source.empty() || deletes_statement) out["scope"] = change.scope;
  if (!change.decorators.empty()) out["decorators"] = change.decorators;
  if (change.rebind) {
    out["rebind"] = true;
    out["old_decorators"] = change.old_decorators;
  }
  if (change.bases) out["bases"] = *change.bases;
  if (!change.label.empty()) out["label"] = change.label;
  if (change.op == ChangeOp::Exec || deletes_statement) out["binds"] = change.binds;
  if (change.in_function) out["in_function"] = true;
  if (change.is_docstring) out["docstring"] = true;
  if (change.is_async) out["async"] = true;
  if (change.is_generator) out["generator"] = true;
  return out;
}

json syntax_error_to_json(const parser::Module& module, const parser::SyntaxError& error) {
  return {{"line", error.start.line + 1},
          {"column", character_column(module.source, error.start)},
          {"end_line", error.end.line + 1},
          {"end_column", character_column(module.source, error.end)},
          {"message", error.message}};
}

json plan_to_json(const parser::Plan& plan, const parser::Module& after) {
  json changes = json::array();
  std::map<std::string, int> summary;
  for (const parser::Change& change : plan.changes) {
    changes.push_back(change_to_json(change));
    ++summary[std::string(parser::to_string(change.op))];
  }
  json errors = json::array();
  for (const parser::SyntaxError& error : plan.errors) errors.push_back(syntax_error_to_json(after, error));
  return {{"version", kPlanSchemaVersion}, {"ok", plan.ok},         {"errors", errors},
          {"changes", changes},            {"summary", summary}};
}

json outline_to_json(const parser::Module& module) {
  json definitions = json::array();
  for (const parser::Definition& definition : module.definitions) {
    json entry = {
        {"kind", parser::kind_name(definition)},
        {"qualname", string_or_null(definition.qualname)},
        {"occurrence", definition.occurrence},
        {"line", definition.span.start.line + 1},
        {"end_line", definition.span.end.line + 1},
        {"column", character_column(module.source, definition.span.start)},
        {"parent", definition.parent},
        {"content_hash", definition.content_hash},
    };
    if (definition.accessor != parser::PropertyAccessor::None) entry["accessor"] = parser::to_string(definition.accessor);
    if (!definition.decorators.empty()) entry["decorators"] = definition.decorators;
    if (definition.docstring) entry["docstring"] = *definition.docstring;
    if (definition.kind == parser::DefinitionKind::Class) {
      entry["bases"] = definition.binds;
      if (definition.field_model != parser::FieldModel::None) entry["field_model"] = parser::to_string(definition.field_model);
    } else if (!definition.binds.empty()) {
      entry["binds"] = definition.binds;
    }
    if (definition.is_async) entry["async"] = true;
    if (definition.is_generator) entry["generator"] = true;
    if (definition.in_function) entry["in_function"] = true;
    if (definition.is_block) entry["block"] = true;
    definitions.push_back(std::move(entry));
  }
  json errors = json::array();
  for (const parser::SyntaxError& error : module.errors) errors.push_back(syntax_error_to_json(module, error));
  return {{"version", kPlanSchemaVersion}, {"definitions", definitions}, {"errors", errors}};
}

}  // namespace hotd::protocol
