#include "hotd/parser/python_document.hpp"

#include <algorithm>
#include <stdexcept>

#include <tree_sitter/api.h>

#include "definition_extractor.hpp"

namespace hotd::parser {

namespace {

struct TreeDeleter {
  void operator()(TSTree* tree) const { ts_tree_delete(tree); }
};
using Tree = std::unique_ptr<TSTree, TreeDeleter>;

// Parses with the included ranges already set on `parser`. Each parse starts with a fresh external
// scanner: tree-sitter-python 0.23.6's scanner does not reset `inside_f_string` between parses, so a
// text that ends inside an unterminated f-string would change how the next text is read (found by
// tests/fuzz/parser_fuzzer). Setting the language again recreates the scanner and keeps the ranges.
Tree parse_tree(TSParser* parser, const std::string& source) {
  ts_parser_set_language(parser, python_language());
  TSTree* tree = ts_parser_parse_string_encoding(parser, nullptr, source.data(), static_cast<uint32_t>(source.size()),
                                                 TSInputEncodingUTF8);
  if (!tree) throw std::runtime_error("tree-sitter failed to parse (parser has no language?)");
  return Tree(tree);
}

// The point of byte `offset`, counting from a known point at byte `from`.
TSPoint point_at(const std::string& text, std::size_t from, TSPoint point, std::size_t offset) {
  for (std::size_t i = from; i < offset; ++i) {
    if (text[i] == '\n') {
      ++point.row;
      point.column = 0;
    } else {
      ++point.column;
    }
  }
  return point;
}

std::int64_t count_lines(std::string_view text) { return std::count(text.begin(), text.end(), '\n'); }

}  // namespace

void PythonDocument::ParserDeleter::operator()(TSParser* parser) const { ts_parser_delete(parser); }

PythonDocument::PythonDocument(std::string source) : parser_(ts_parser_new()), module_(std::make_unique<Module>()) {
  if (!ts_parser_set_language(parser_.get(), python_language())) {
    throw std::runtime_error("tree-sitter-python's ABI is not accepted by this libtree-sitter");
  }
  module_->source = std::move(source);
  parse_whole(*module_);
}

PythonDocument::~PythonDocument() = default;
PythonDocument::PythonDocument(PythonDocument&&) noexcept = default;
PythonDocument& PythonDocument::operator=(PythonDocument&&) noexcept = default;

void PythonDocument::parse_whole(Module& next) {
  ts_parser_set_included_ranges(parser_.get(), nullptr, 0);
  const Tree tree = parse_tree(parser_.get(), next.source);
  next.definitions.clear();
  next.top_level.clear();
  next.errors.clear();
  extract_top_level(ts_tree_root_node(tree.get()), next, /*starts_module=*/true);
  finish_module(next);
}

void PythonDocument::update(std::string new_source) {
  const std::string& old_source = module_->source;
  if (new_source == old_source) return;
  // The edit is the changed middle between the common prefix and the common suffix.
  const std::size_t max_common = std::min(old_source.size(), new_source.size());
  std::size_t prefix = 0;
  while (prefix < max_common && old_source[prefix] == new_source[prefix]) ++prefix;
  std::size_t suffix = 0;
  while (suffix < max_common - prefix &&
         old_source[old_source.size() - 1 - suffix] == new_source[new_source.size() - 1 - suffix]) {
    ++suffix;
  }
  auto next = std::make_unique<Module>();
  next->source = std::move(new_source);
  last_update_partial_ = reparse_region(*next, prefix, old_source.size() - suffix, next->source.size() - suffix);
  if (!last_update_partial_) parse_whole(*next);
  module_ = std::move(next);
}

bool PythonDocument::reparse_region(Module& next, std::size_t edit_start, std::size_t old_edit_end,
                                    std::size_t new_edit_end) {
  const Module& previous = *module_;
  if (previous.has_errors()) return false;  // spans of a broken version are no safe boundaries
  const auto& top = previous.top_level;
  const auto at_line_start = [&](std::size_t item) { return previous.definitions[top[item]].span.start.column == 0; };
  const auto start_of = [&](std::size_t item) -> std::size_t { return previous.definitions[top[item]].span.start_byte; };

  // The region starts at the last module-level item that starts strictly before the edit (an edit at
  // an item's first byte can change how the item before it ends: an indented line joins its body),
  // moved back to one that starts a line. No such item: the region starts the file.
  std::ptrdiff_t first = -1;
  for (std::size_t item = 0; item < top.size() && start_of(item) < edit_start; ++item) first = static_cast<std::ptrdiff_t>(item);
  while (first > 0 && !at_line_start(static_cast<std::size_t>(first))) --first;
  if (first == 0 && !at_line_start(0)) first = -1;
  // It ends where the first item starting strictly after the edit, on a line of its own, begins.
  std::size_t after = static_cast<std::size_t>(first + 1);
  while (after < top.size() && (start_of(after) <= old_edit_end || !at_line_start(after))) ++after;

  const bool starts_module = first <= 0;
  const std::size_t begin = first < 0 ? 0 : start_of(static_cast<std::size_t>(first));
  const std::size_t old_end = after < top.size() ? start_of(after) : previous.source.size();
  const std::int64_t byte_delta = static_cast<std::int64_t>(new_edit_end) - static_cast<std::int64_t>(old_edit_end);
  const auto region_end = static_cast<std::size_t>(static_cast<std::int64_t>(old_end) + byte_delta);
  const std::string_view region = std::string_view(next.source).substr(begin, region_end - begin);
  // A trailing line continuation would join the next item in a full parse but may pass alone.
  if (region.ends_with("\\\n") || region.ends_with("\\\r\n")) return false;

  TSRange range;
  range.start_byte = static_cast<uint32_t>(begin);
  range.end_byte = static_cast<uint32_t>(region_end);
  range.start_point = first < 0 ? TSPoint{0, 0} : TSPoint{previous.definitions[top[first]].span.start.line, 0};
  range.end_point = point_at(next.source, begin, range.start_point, region_end);
  if (!ts_parser_set_included_ranges(parser_.get(), &range, 1)) return false;
  const Tree tree = parse_tree(parser_.get(), next.source);
  const TSNode root = ts_tree_root_node(tree.get());
  if (ts_node_has_error(root)) return false;  // a full parse says exactly what is wrong

  const std::int64_t line_delta =
      count_lines(region) - count_lines(std::string_view(previous.source).substr(begin, old_end - begin));
  for (std::ptrdiff_t item = 0; item < first; ++item) copy_top_level(previous, top[item], next, 0, 0);
  extract_top_level(root, next, starts_module);
  for (std::size_t item = after; item < top.size(); ++item) copy_top_level(previous, top[item], next, byte_delta, line_delta);
  finish_module(next);
  return true;
}

Module parse_module(std::string source) {
  PythonDocument document(std::move(source));
  return document.module();
}

std::string_view to_string(DefinitionKind kind) {
  switch (kind) {
    case DefinitionKind::Function: return "function";
    case DefinitionKind::Class: return "class";
    case DefinitionKind::Statement: return "statement";
    case DefinitionKind::MainBlock: return "main";
  }
  return "?";
}

std::string_view to_string(FunctionRole role) {
  switch (role) {
    case FunctionRole::Plain: return "function";
    case FunctionRole::Method: return "method";
    case FunctionRole::StaticMethod: return "staticmethod";
    case FunctionRole::ClassMethod: return "classmethod";
    case FunctionRole::Property: return "property";
  }
  return "?";
}

std::string_view to_string(PropertyAccessor accessor) {
  switch (accessor) {
    case PropertyAccessor::None: return "getter";
    case PropertyAccessor::Setter: return "setter";
    case PropertyAccessor::Deleter: return "deleter";
  }
  return "?";
}

std::string_view to_string(FieldModel model) {
  switch (model) {
    case FieldModel::None: return "class";
    case FieldModel::Dataclass: return "dataclass";
    case FieldModel::Attrs: return "attrs class";
    case FieldModel::Enum: return "enum";
    case FieldModel::NamedTuple: return "NamedTuple";
    case FieldModel::TypedDict: return "TypedDict";
    case FieldModel::Model: return "model";
  }
  return "?";
}

std::string_view kind_name(const Definition& definition) {
  return definition.kind == DefinitionKind::Function ? to_string(definition.role) : to_string(definition.kind);
}

}  // namespace hotd::parser
