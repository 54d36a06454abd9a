#include "hotd/parser/python_document.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <stdexcept>

#include <tree_sitter/api.h>

#include "definition_extractor.hpp"

namespace hotd::parser {

namespace {

struct TreeDeleter {
  void operator()(TSTree* tree) const { ts_tree_delete(tree); }
};
using Tree = std::unique_ptr<TSTree, TreeDeleter>;

// The time libtree-sitter may take over one parse: linear in the bytes parsed, with room for a loaded
// machine (a plain parse runs at about 0.7 s per MB here). tree-sitter-python 0.23.6's scanner is
// quadratic in the consecutive comment or `\` lines inside a block (at each end of line it reads all of
// them ahead for the next line's indent): 16,000 take 4 s to 12 s, 60,000 minutes. Such a text is given
// up on, so that no save holds the daemon.
std::uint64_t parse_budget_micros(std::size_t bytes) { return 1'000'000 + 2 * std::uint64_t{bytes}; }

// Parses the `parsed_bytes` of `source` that the included ranges set on `parser` cover; none if the
// parse ran out of time. Each parse starts with a fresh external scanner: tree-sitter-python 0.23.6's
// scanner does not reset `inside_f_string` between parses, so a text that ends inside an unterminated
// f-string would change how the next text is read (found by tests/fuzz/parser_fuzzer). Setting the
// language again recreates the scanner and keeps the ranges.
Tree parse_tree(TSParser* parser, const std::string& source, std::size_t parsed_bytes) {
  ts_parser_set_language(parser, python_language());
  ts_parser_set_timeout_micros(parser, parse_budget_micros(parsed_bytes));
  TSTree* tree = ts_parser_parse_string_encoding(parser, nullptr, source.data(), static_cast<uint32_t>(source.size()),
                                                 TSInputEncodingUTF8);
  if (!tree) ts_parser_reset(parser);  // else the next parse would resume this one
  return Tree(tree);
}

SyntaxError gave_up(std::size_t parsed_bytes) {
  char budget[32];
  std::snprintf(budget, sizeof budget, "%.1f s", static_cast<double>(parse_budget_micros(parsed_bytes)) / 1e6);
  return {{0, 0}, {0, 0},
          "the parser gave up after " + std::string(budget) +
              " (tree-sitter-python is slow on thousands of comment or line-continuation lines in a row "
              "inside a block), so this text is not used"};
}

// `next` holds no definitions, only the reason its text is not used.
void refuse(Module& next, SyntaxError why) {
  next.definitions.clear();
  next.top_level.clear();
  next.errors.assign(1, std::move(why));
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

// libtree-sitter 0.20 (Debian's) corrupts its heap freeing a tree with 65,535 or more extras in a row
// (tree-sitter/tree-sitter#2134, fixed in later releases): comment lines and lone `\` continuation
// lines, blank lines between them included. A text with such a run is refused before tree-sitter
// sees it, with a margin below the limit. Lines are read as lines, without knowing strings: a
// string whose lines start with `#` counts too, which only makes the refusal early.
constexpr std::uint32_t max_extra_lines_in_a_row = 60'000;

// The first run of at least max_extra_lines_in_a_row such lines, as a syntax error; none if none.
std::optional<SyntaxError> too_many_extras_in_a_row(std::string_view text) {
  std::uint32_t line = 0, run = 0, run_start = 0, run_end = 0;
  for (std::size_t begin = 0; begin < text.size(); ++line) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    std::string_view content = text.substr(begin, end - begin);
    const std::size_t first = content.find_first_not_of(" \t\f\r");
    content = first == std::string_view::npos ? std::string_view() : content.substr(first);
    while (!content.empty() && (content.back() == '\r' || content.back() == ' ' || content.back() == '\t')) {
      content.remove_suffix(1);
    }
    if (content.starts_with('#') || content == "\\") {
      if (run++ == 0) run_start = line;
      run_end = line;
      if (run == max_extra_lines_in_a_row) break;
    } else if (!content.empty()) {
      run = 0;
    }
    begin = end + 1;
  }
  if (run < max_extra_lines_in_a_row) return std::nullopt;
  return SyntaxError{{run_start, 0}, {run_end, 0},
                     "more than " + std::to_string(max_extra_lines_in_a_row) +
                         " comment or line-continuation lines in a row (from line " + std::to_string(run_start + 1) +
                         "); the parser (libtree-sitter 0.20) cannot read that many, so this text is not used"};
}

// A lone "\r" ends a line for CPython (its tokenizer reads "\r\n" and "\r" as "\n") but not for
// tree-sitter-python, which would see one long line. Replaced in place, one byte for one, so offsets
// stay those of the editor's text and lines are counted as CPython counts them.
std::string with_lone_carriage_returns_as_newlines(std::string source) {
  for (std::size_t at = source.find('\r'); at != std::string::npos; at = source.find('\r', at + 1)) {
    if (at + 1 == source.size() || source[at + 1] != '\n') source[at] = '\n';
  }
  return source;
}

}  // namespace

void PythonDocument::ParserDeleter::operator()(TSParser* parser) const { ts_parser_delete(parser); }

PythonDocument::PythonDocument(std::string source) : parser_(ts_parser_new()), module_(std::make_unique<Module>()) {
  if (!ts_parser_set_language(parser_.get(), python_language())) {
    throw std::runtime_error("tree-sitter-python's ABI is not accepted by this libtree-sitter");
  }
  module_->source = with_lone_carriage_returns_as_newlines(std::move(source));
  parse_whole(*module_);
}

PythonDocument::~PythonDocument() = default;
PythonDocument::PythonDocument(PythonDocument&&) noexcept = default;
PythonDocument& PythonDocument::operator=(PythonDocument&&) noexcept = default;

void PythonDocument::parse_whole(Module& next) {
  if (auto refusal = too_many_extras_in_a_row(next.source)) return refuse(next, std::move(*refusal));
  ts_parser_set_included_ranges(parser_.get(), nullptr, 0);
  const Tree tree = parse_tree(parser_.get(), next.source, next.source.size());
  if (!tree) return refuse(next, gave_up(next.source.size()));
  next.definitions.clear();
  next.top_level.clear();
  next.errors.clear();
  extract_top_level(ts_tree_root_node(tree.get()), next, /*starts_module=*/true);
  finish_module(next);
}

void PythonDocument::update(std::string new_source) {
  new_source = with_lone_carriage_returns_as_newlines(std::move(new_source));
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
  // The region starts and ends with code (or the file), so a run of extras too long lies inside it.
  if (too_many_extras_in_a_row(region)) return false;  // the full parse refuses the text

  TSRange range;
  range.start_byte = static_cast<uint32_t>(begin);
  range.end_byte = static_cast<uint32_t>(region_end);
  range.start_point = first < 0 ? TSPoint{0, 0} : TSPoint{previous.definitions[top[first]].span.start.line, 0};
  range.end_point = point_at(next.source, begin, range.start_point, region_end);
  if (!ts_parser_set_included_ranges(parser_.get(), &range, 1)) return false;
  const Tree tree = parse_tree(parser_.get(), next.source, region.size());
  if (!tree) {  // the whole text would take longer still
    refuse(next, gave_up(region.size()));
    return true;
  }
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
