// The definition model of one Python module: what hotd can patch, as a flat tree.
//
// A module is a list of definitions in document order. Each definition knows its parent (the
// enclosing class, function or block) and its children, so the diff can walk both trees in step.
// Nothing here knows about JSON, sockets or processes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hotd::parser {

// A position as tree-sitter reports it: 0-based line, 0-based byte column.
struct Point {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  friend bool operator==(const Point&, const Point&) = default;
};

struct Span {
  std::uint32_t start_byte = 0;
  std::uint32_t end_byte = 0;
  Point start;
  Point end;
};

enum class DefinitionKind {
  Function,   // def / async def, at any depth
  Class,      // class
  Statement,  // a module- or class-level statement other than a def or class
  MainBlock,  // `if __name__ == "__main__":` at module level: never re-executed
};

// How a function is bound in its class; decides how the agent finds the live function object.
enum class FunctionRole {
  Plain,         // module-level function, or a function nested in a function
  Method,        // plain method in a class body
  StaticMethod,  // @staticmethod
  ClassMethod,   // @classmethod
  Property,      // @property, @functools.cached_property, or @x.getter/@x.setter/@x.deleter
};

// Which accessor of a property a function is. `def x` under `@property` and a later `@x.setter def x`
// are distinct definitions with the same qualified name; the accessor tells them apart.
enum class PropertyAccessor { None, Setter, Deleter };

// Classes whose fields are read once, when the class is created (generated __init__, enum members,
// tuple layout). Editing their fields in place would half-apply the edit.
enum class FieldModel { None, Dataclass, Attrs, Enum, NamedTuple, TypedDict, Model };

struct Definition {
  DefinitionKind kind = DefinitionKind::Statement;
  FunctionRole role = FunctionRole::Plain;
  PropertyAccessor accessor = PropertyAccessor::None;
  FieldModel field_model = FieldModel::None;  // classes only

  std::string name;      // identifier; empty for statements and the main block
  std::string qualname;  // as Python spells __qualname__ ("C.m", "f.<locals>.g"); empty for statements
  // Among definitions of the same parent with the same (qualname, accessor), or for statements the
  // same content hash: 0 for the first, 1 for the second... Stable across edits that keep order.
  std::uint32_t occurrence = 0;

  Span span;                     // including decorators
  std::uint32_t header_line = 0; // 0-based line of the `def`/`class` keyword

  bool is_async = false;
  bool is_generator = false;
  bool in_function = false;    // nested inside a function body: part of that function's code
  bool is_block = false;       // a compound statement (if/try/with/for/while) holding definitions
  bool is_docstring = false;   // a bare string as the first statement of a module or class body
  bool binds_slots = false;    // a class-level statement that binds __slots__

  std::vector<std::string> decorators;  // source text of each decorator expression, without '@'
  std::optional<std::string> docstring; // the literal as written (quotes included)
  std::vector<std::string> binds;       // statements: the names they bind (assignment targets, imports); classes: bases and keywords
  std::string type_parameters;          // classes: `[T]` of `class A[T]:` as written, else empty

  // Behaviour hash: tokens and structure of the whole definition; comments, line continuations and
  // formatting whitespace do not count. For blocks, nested definitions count only by name.
  std::uint64_t content_hash = 0;
  // Each token's line relative to the definition's first line: changes when lines are added or
  // removed inside the definition even if its behaviour does not (a new comment line in a body).
  std::uint64_t layout_hash = 0;
  // Decorators, and for classes the bases, keywords and type parameters: a change means the object
  // must be re-created.
  std::uint64_t header_hash = 0;

  std::int32_t parent = -1;          // index into Module::definitions; -1 for module level
  std::vector<std::int32_t> children;
};

struct SyntaxError {
  Point start;
  Point end;
  std::string message;
};

struct Module {
  std::string source;
  std::vector<Definition> definitions;  // document order; parents before their children
  std::vector<std::int32_t> top_level;  // indices of module-level definitions, in order
  std::vector<SyntaxError> errors;

  bool has_errors() const { return !errors.empty(); }
  std::string_view text(const Span& span) const {
    return std::string_view(source).substr(span.start_byte, span.end_byte - span.start_byte);
  }
};

std::string_view to_string(DefinitionKind);
std::string_view to_string(FunctionRole);
std::string_view to_string(PropertyAccessor);
std::string_view to_string(FieldModel);

// The word users see for a definition: function, method, staticmethod, classmethod, property, class,
// statement, main.
std::string_view kind_name(const Definition&);

}  // namespace hotd::parser
