// The diff between two versions of a module: a patch plan the agent can apply in order.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "hotd/parser/definition.hpp"

namespace hotd::parser {

enum class ChangeOp {
  Update,  // a function's code, signature, defaults, docstring or annotations changed: swap in place;
           // or decorators of a function or class changed (`rebind`), or a class's bases (`bases`)
  Shift,   // only its position changed: move line numbers (co_firstlineno), do not recompile
  Add,     // a new function or class: execute it in its namespace
  Delete,  // a function, class or class attribute no longer exists: remove it from its namespace
  Exec,    // a new or changed module or class statement: re-run it, in order
  Rude,    // cannot be applied faithfully in place; `reason` says why and what to do
  Skip,    // nothing to do (main block, comments or formatting, a removed statement); `reason` says why
};

std::string_view to_string(ChangeOp);

struct Change {
  ChangeOp op = ChangeOp::Update;
  DefinitionKind kind = DefinitionKind::Statement;
  std::string kind_name;            // function, method, staticmethod, classmethod, property, class, statement, main, module
  std::string qualname;             // empty for statements, the main block and the module
  std::string owner;                // statements: the qualname of the enclosing class ("" at module level)
  PropertyAccessor accessor = PropertyAccessor::None;
  std::uint32_t occurrence = 0;

  // 1-based lines: in the new file, or in the old file for deletes and removed statements.
  std::uint32_t line = 0;
  std::uint32_t end_line = 0;
  std::uint32_t header_line = 0;  // the `def`/`class` keyword's line; lines before it are decorators
  std::optional<std::uint32_t> old_line;  // where the definition was in the old file (matched ones)
  bool in_old_file = false;               // deletes and removed statements: `line` is in the old file

  std::string reason;  // rude and skip: for the user; update: an optional detail
  // Update, add, exec: the full source lines of the definition (decorators included), to compile at
  // `line`; `scope` holds one header line per enclosing class or block, innermost last, with the
  // original indentation ("class Cart:", blocks as "if True:"), so that compiling
  // "\n" * (line - 1 - scope.size()) + scope lines + source gives the right lines, qualname and
  // `__class__` cell.
  std::string source;
  std::vector<std::string> scope;

  std::vector<std::string> decorators;
  std::vector<std::string> binds;  // exec: names the statement binds; delete of a class statement: names to delete
  // Update of a function or class whose decorators changed: run the decorators again and bind the name
  // to what they return (functions: the definition runs again; classes: on the live class, after the
  // changes inside it). `old_decorators` are those the running object was made with.
  bool rebind = false;
  std::vector<std::string> old_decorators;
  // Update of a class whose positional bases changed: the new base expressions, for `__bases__`.
  std::optional<std::vector<std::string>> bases;
  bool in_function = false;        // a definition nested in a function: part of the outer function's code
  bool is_docstring = false;       // exec of a module or class docstring
  bool is_async = false;
  bool is_generator = false;
  std::string label;               // statements: their first line, shortened, for people
};

struct Plan {
  bool ok = true;                      // false: NEW has syntax errors and nothing may be applied
  std::vector<SyntaxError> errors;     // of NEW
  std::vector<Change> changes;         // in the order to apply them
};

// Where a process does not run `before` although that is the text hotd has for it: its agent compared
// the live code with that text (the file changed between the import and the report, e.g. before an
// attach). By qualname, as the agent found them.
struct RunningDrift {
  std::set<std::string> differs;  // functions whose running code is not what `before` compiles to
  std::set<std::string> missing;  // functions and classes of `before` the running module lacks
  bool empty() const { return differs.empty() && missing.empty(); }
};

// Diffs `before` (what runs) against `after` (what was saved). Matching is by key in hash maps,
// linear in the number of definitions. Definitions of `drift` are updated or added even where
// `before` and `after` agree.
Plan diff_modules(const Module& before, const Module& after, const RunningDrift& drift = {});

}  // namespace hotd::parser
