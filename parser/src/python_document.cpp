#include "hotd/parser/python_document.hpp"

#include <algorithm>
#include <stdexcept>

#include <tree_sitter/api.h>

#include "definition_extractor.hpp"

namespace hotd::parser {

namespace {

TSTree* parse_tree(TSParser* parser, const TSTree* old_tree, const std::string& source) {
  TSTree* tree = ts_parser_parse_string_encoding(parser, old_tree, source.data(),
                                                 static_cast<uint32_t>(source.size()), TSInputEncodingUTF8);
  if (!tree) throw std::runtime_error("tree-sitter failed to parse (parser has no language?)");
  return tree;
}

// The point after walking `text` from `start`.
TSPoint advance(TSPoint start, std::string_view text) {
  for (const char c : text) {
    if (c == '\n') {
      ++start.row;
      start.column = 0;
    } else {
      ++start.column;
    }
  }
  return start;
}

std::int64_t count_lines(std::string_view text) { return std::count(text.begin(), text.end(), '\n'); }

}  // namespace

void PythonDocument::TreeDeleter::operator()(TSTree* tree) const { ts_tree_delete(tree); }
void PythonDocument::ParserDeleter::operator()(TSParser* parser) const { ts_parser_delete(parser); }

PythonDocument::PythonDocument(std::string source)
    : parser_(ts_parser_new()), module_(std::make_unique<Module>()) {
  if (!ts_parser_set_language(parser_.get(), python_language())) {
    throw std::runtime_error("tree-sitter-python's ABI is not accepted by this libtree-sitter");
  }
  module_->source = std::move(source);
  tree_.reset(parse_tree(parser_.get(), nullptr, module_->source));
  extract_definitions(tree_.get(), *module_, nullptr);
}

PythonDocument::~PythonDocument() = default;
PythonDocument::PythonDocument(PythonDocument&&) noexcept = default;
PythonDocument& PythonDocument::operator=(PythonDocument&&) noexcept = default;

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
  const std::string_view before(old_source.data(), prefix);
  const std::string_view removed(old_source.data() + prefix, old_source.size() - suffix - prefix);
  const std::string_view inserted(new_source.data() + prefix, new_source.size() - suffix - prefix);

  TSInputEdit edit;
  edit.start_byte = static_cast<uint32_t>(prefix);
  edit.old_end_byte = static_cast<uint32_t>(prefix + removed.size());
  edit.new_end_byte = static_cast<uint32_t>(prefix + inserted.size());
  edit.start_point = advance(TSPoint{0, 0}, before);
  edit.old_end_point = advance(edit.start_point, removed);
  edit.new_end_point = advance(edit.start_point, inserted);
  ts_tree_edit(tree_.get(), &edit);

  std::unique_ptr<TSTree, TreeDeleter> new_tree(parse_tree(parser_.get(), tree_.get(), new_source));

  ReuseHints hints;
  hints.previous = module_.get();
  hints.edit_start_byte = edit.start_byte;
  hints.edit_new_end_byte = edit.new_end_byte;
  hints.edit_new_end = Point{edit.new_end_point.row, edit.new_end_point.column};
  hints.byte_delta = static_cast<std::int64_t>(new_source.size()) - static_cast<std::int64_t>(old_source.size());
  hints.line_delta = count_lines(inserted) - count_lines(removed);
  hints.affected.emplace_back(edit.start_byte, edit.new_end_byte);
  uint32_t range_count = 0;
  TSRange* ranges = ts_tree_get_changed_ranges(tree_.get(), new_tree.get(), &range_count);
  for (uint32_t i = 0; i < range_count; ++i) hints.affected.emplace_back(ranges[i].start_byte, ranges[i].end_byte);
  free(ranges);

  auto next = std::make_unique<Module>();
  next->source = std::move(new_source);
  extract_definitions(new_tree.get(), *next, &hints);
  module_ = std::move(next);
  tree_ = std::move(new_tree);
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
