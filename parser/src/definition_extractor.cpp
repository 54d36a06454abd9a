#include "definition_extractor.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

#include "content_hasher.hpp"

extern "C" const TSLanguage* tree_sitter_python();

namespace hotd::parser {

const TSLanguage* python_language() { return tree_sitter_python(); }

namespace {

// Grammar symbols we dispatch on, looked up once by name.
struct Symbols {
  TSSymbol module, function_definition, class_definition, decorated_definition, decorator, block;
  TSSymbol expression_statement, string, concatenated_string, assignment, augmented_assignment;
  TSSymbol identifier, attribute, call, subscript, keyword_argument, argument_list;
  TSSymbol pattern_list, tuple_pattern, list_pattern, tuple, list, list_splat_pattern, parenthesized_expression;
  TSSymbol import_statement, import_from_statement, aliased_import, dotted_name, wildcard_import;
  TSSymbol if_statement, elif_clause, else_clause, try_statement, except_clause, except_group_clause;
  TSSymbol finally_clause, with_statement, for_statement, while_statement, match_statement;
  TSSymbol yield_expression, lambda, comparison_operator, async_keyword;

  static TSSymbol named(const char* name) {
    return ts_language_symbol_for_name(python_language(), name, static_cast<uint32_t>(std::strlen(name)), true);
  }
  static TSSymbol anonymous(const char* name) {
    return ts_language_symbol_for_name(python_language(), name, static_cast<uint32_t>(std::strlen(name)), false);
  }

  Symbols()
      : module(named("module")),
        function_definition(named("function_definition")),
        class_definition(named("class_definition")),
        decorated_definition(named("decorated_definition")),
        decorator(named("decorator")),
        block(named("block")),
        expression_statement(named("expression_statement")),
        string(named("string")),
        concatenated_string(named("concatenated_string")),
        assignment(named("assignment")),
        augmented_assignment(named("augmented_assignment")),
        identifier(named("identifier")),
        attribute(named("attribute")),
        call(named("call")),
        subscript(named("subscript")),
        keyword_argument(named("keyword_argument")),
        argument_list(named("argument_list")),
        pattern_list(named("pattern_list")),
        tuple_pattern(named("tuple_pattern")),
        list_pattern(named("list_pattern")),
        tuple(named("tuple")),
        list(named("list")),
        list_splat_pattern(named("list_splat_pattern")),
        parenthesized_expression(named("parenthesized_expression")),
        import_statement(named("import_statement")),
        import_from_statement(named("import_from_statement")),
        aliased_import(named("aliased_import")),
        dotted_name(named("dotted_name")),
        wildcard_import(named("wildcard_import")),
        if_statement(named("if_statement")),
        elif_clause(named("elif_clause")),
        else_clause(named("else_clause")),
        try_statement(named("try_statement")),
        except_clause(named("except_clause")),
        except_group_clause(named("except_group_clause")),
        finally_clause(named("finally_clause")),
        with_statement(named("with_statement")),
        for_statement(named("for_statement")),
        while_statement(named("while_statement")),
        match_statement(named("match_statement")),
        yield_expression(named("yield")),
        lambda(named("lambda")),
        comparison_operator(named("comparison_operator")),
        async_keyword(anonymous("async")) {}
};

const Symbols& symbols() {
  static const Symbols instance;
  return instance;
}

constexpr std::uint64_t kExitMarker = 0xE817'0000'0000'0001ull;
constexpr std::uint64_t kNestedDefinitionMarker = 0xDEF0'0000'0000'0002ull;

// libtree-sitter 0.20 has no ts_node_is_error: ERROR nodes carry the builtin error symbol.
bool is_error_node(TSNode node) { return ts_node_symbol(node) == static_cast<TSSymbol>(-1); }

Point point_of(TSPoint p) { return Point{p.row, p.column}; }

Span span_of(TSNode node) {
  return Span{ts_node_start_byte(node), ts_node_end_byte(node), point_of(ts_node_start_point(node)),
              point_of(ts_node_end_point(node))};
}

bool is_definition_node(TSSymbol s) {
  const Symbols& sym = symbols();
  return s == sym.function_definition || s == sym.class_definition || s == sym.decorated_definition;
}

bool is_scope_node(TSSymbol s) {
  const Symbols& sym = symbols();
  return s == sym.function_definition || s == sym.class_definition || s == sym.lambda;
}

// Compound statements whose bodies bind names in the enclosing scope.
bool is_compound_statement(TSSymbol s) {
  const Symbols& sym = symbols();
  return s == sym.if_statement || s == sym.try_statement || s == sym.with_statement ||
         s == sym.for_statement || s == sym.while_statement || s == sym.match_statement;
}

// The last dotted component of an expression, without call arguments or subscripts:
// "functools.lru_cache(maxsize=3)" -> "lru_cache", "typing.Generic[T]" -> "Generic".
std::string_view last_component(std::string_view expression) {
  expression = expression.substr(0, expression.find_first_of("([ \t\r\n"));
  const auto dot = expression.rfind('.');
  return dot == std::string_view::npos ? expression : expression.substr(dot + 1);
}

std::string_view strip_call(std::string_view expression) {
  return expression.substr(0, expression.find_first_of("( \t\r\n"));
}

class Extractor {
 public:
  explicit Extractor(Module& module) : module_(module), source_(module.source) {}

  // Appends the module-level definitions of `root` (a whole module, or a region of it) and its
  // syntax errors. `starts_module`: its first statement is the module's first (a docstring).
  void extract_top_level(TSNode root, bool starts_module) {
    Context context{Context::Scope::Module, -1, "", false};
    extract_body(root, context, /*is_module=*/true, starts_module);
    collect_errors(root);
  }

 private:
  // Where a body's definitions live: decides qualnames and function roles.
  struct Context {
    enum class Scope { Module, Class, Function } scope;
    std::int32_t parent;           // the definition new children attach to (class, function or block)
    std::string qualname_prefix;   // "" at module level, "C." in class C, "f.<locals>." in function f
    bool in_function;
  };

  std::string_view text(TSNode node) const {
    const auto start = ts_node_start_byte(node);
    return std::string_view(source_).substr(start, ts_node_end_byte(node) - start);
  }

  std::int32_t add_definition(Definition definition, std::int32_t parent) {
    const auto index = static_cast<std::int32_t>(module_.definitions.size());
    definition.parent = parent;
    module_.definitions.push_back(std::move(definition));
    if (parent < 0) {
      module_.top_level.push_back(index);
    } else {
      module_.definitions[parent].children.push_back(index);
    }
    return index;
  }

  // --- Bodies -------------------------------------------------------------------------------

  // Walks the statements of a module, class body or block and records each as a definition.
  void extract_body(TSNode body, const Context& context, bool is_module, bool starts_body = true) {
    const Symbols& sym = symbols();
    bool first_statement = starts_body;
    const uint32_t count = ts_node_child_count(body);
    TSTreeCursor cursor = ts_tree_cursor_new(body);
    if (count > 0 && ts_tree_cursor_goto_first_child(&cursor)) {
      do {
        const TSNode child = ts_tree_cursor_current_node(&cursor);
        if (ts_node_is_extra(child) || !ts_node_is_named(child) || ts_node_is_missing(child)) continue;
        const TSSymbol s = ts_node_symbol(child);
        if (is_error_node(child)) continue;  // reported by collect_errors
        const bool was_first = first_statement;
        first_statement = false;
        if (is_definition_node(s)) {
          extract_definition(child, context);
        } else if (is_module && s == sym.if_statement && is_main_guard(child)) {
          Definition main;
          main.kind = DefinitionKind::MainBlock;
          main.span = span_of(child);
          main.header_line = main.span.start.line;
          hash_statement(child, main, /*skeleton=*/false);
          add_definition(std::move(main), context.parent);
        } else {
          extract_statement(child, context, was_first);
        }
      } while (ts_tree_cursor_goto_next_sibling(&cursor));
    }
    ts_tree_cursor_delete(&cursor);
  }

  void extract_statement(TSNode node, const Context& context, bool first_in_body) {
    const Symbols& sym = symbols();
    Definition statement;
    statement.kind = DefinitionKind::Statement;
    statement.span = span_of(node);
    statement.header_line = statement.span.start.line;
    statement.in_function = context.in_function;
    const TSSymbol s = ts_node_symbol(node);
    if (first_in_body && context.scope != Context::Scope::Function && s == sym.expression_statement &&
        ts_node_named_child_count(node) == 1 && ts_node_symbol(ts_node_named_child(node, 0)) == sym.string) {
      statement.is_docstring = true;
      statement.docstring = std::string(text(ts_node_named_child(node, 0)));
    }
    collect_binds(node, statement.binds);
    statement.binds_slots = context.scope == Context::Scope::Class &&
                            std::find(statement.binds.begin(), statement.binds.end(), "__slots__") !=
                                statement.binds.end();
    const bool block = is_compound_statement(s) && contains_definition(node);
    statement.is_block = block;
    hash_statement(node, statement, /*skeleton=*/block);
    const auto index = add_definition(std::move(statement), context.parent);
    if (block) {
      Context inner = context;
      inner.parent = index;
      extract_block_bodies(node, inner);
    }
  }

  // Finds the blocks of a compound statement (if/elif/else, try/except/finally, with, for, while,
  // match cases) and extracts the definitions in them as if they were in the enclosing scope.
  void extract_block_bodies(TSNode node, const Context& context) {
    const Symbols& sym = symbols();
    TSTreeCursor cursor = ts_tree_cursor_new(node);
    if (ts_tree_cursor_goto_first_child(&cursor)) {
      do {
        const TSNode child = ts_tree_cursor_current_node(&cursor);
        if (!ts_node_is_named(child) || ts_node_is_extra(child)) continue;
        const TSSymbol s = ts_node_symbol(child);
        if (s == sym.block) {
          extract_block_statements(child, context);
        } else if (!is_definition_node(s) && ts_node_named_child_count(child) > 0 &&
                   !is_error_node(child) && contains_definition(child)) {
          extract_block_bodies(child, context);  // clauses, match cases
        }
      } while (ts_tree_cursor_goto_next_sibling(&cursor));
    }
    ts_tree_cursor_delete(&cursor);
  }

  // Inside a block only definitions and nested blocks are recorded: the block itself is the
  // statement that runs.
  void extract_block_statements(TSNode block, const Context& context) {
    TSTreeCursor cursor = ts_tree_cursor_new(block);
    if (ts_tree_cursor_goto_first_child(&cursor)) {
      do {
        const TSNode child = ts_tree_cursor_current_node(&cursor);
        if (!ts_node_is_named(child) || ts_node_is_extra(child) || is_error_node(child)) continue;
        const TSSymbol s = ts_node_symbol(child);
        if (is_definition_node(s)) {
          extract_definition(child, context);
        } else if (is_compound_statement(s) && contains_definition(child)) {
          extract_block_bodies(child, context);
        }
      } while (ts_tree_cursor_goto_next_sibling(&cursor));
    }
    ts_tree_cursor_delete(&cursor);
  }

  // --- Definitions --------------------------------------------------------------------------

  void extract_definition(TSNode outer, const Context& context) {
    const Symbols& sym = symbols();
    TSNode node = outer;
    Definition definition;
    if (ts_node_symbol(outer) == sym.decorated_definition) {
      node = ts_node_child_by_field_name(outer, "definition", 10);
      const uint32_t count = ts_node_named_child_count(outer);
      for (uint32_t i = 0; i < count; ++i) {
        const TSNode child = ts_node_named_child(outer, i);
        if (ts_node_symbol(child) != sym.decorator) continue;
        const TSNode expression = ts_node_named_child(child, 0);
        if (!ts_node_is_null(expression)) definition.decorators.emplace_back(text(expression));
      }
    }
    if (ts_node_is_null(node)) return;
    const TSNode name = ts_node_child_by_field_name(node, "name", 4);
    if (ts_node_is_null(name)) return;  // a broken definition: the syntax error says why

    const bool is_class = ts_node_symbol(node) == sym.class_definition;
    definition.kind = is_class ? DefinitionKind::Class : DefinitionKind::Function;
    definition.name = std::string(text(name));
    definition.qualname = context.qualname_prefix + definition.name;
    definition.span = span_of(outer);
    definition.header_line = ts_node_start_point(node).row;
    definition.in_function = context.in_function;
    const TSNode body = ts_node_child_by_field_name(node, "body", 4);
    definition.docstring = docstring_of(body);

    if (is_class) {
      const TSNode superclasses = ts_node_child_by_field_name(node, "superclasses", 12);
      if (!ts_node_is_null(superclasses)) {
        const uint32_t count = ts_node_named_child_count(superclasses);
        for (uint32_t i = 0; i < count; ++i) {
          const TSNode base = ts_node_named_child(superclasses, i);
          if (!ts_node_is_extra(base)) definition.binds.emplace_back(text(base));
        }
      }
      const TSNode type_parameters = ts_node_child_by_field_name(node, "type_parameters", 15);
      if (!ts_node_is_null(type_parameters)) definition.type_parameters = std::string(text(type_parameters));
    } else {
      definition.is_async = is_async_function(node);
      if (context.scope == Context::Scope::Class) {
        definition.role = FunctionRole::Method;
        classify_method(definition);
      }
    }

    hash_definition(outer, node, definition);
    const auto index = add_definition(std::move(definition), context.parent);
    if (ts_node_is_null(body)) return;

    Context inner;
    inner.parent = index;
    inner.in_function = context.in_function || !is_class;
    const std::string& qualname = module_.definitions[index].qualname;
    if (is_class) {
      inner.scope = Context::Scope::Class;
      inner.qualname_prefix = qualname + ".";
      if (context.in_function) {
        // A class inside a function is part of that function's code: only its definitions matter.
        extract_nested_definitions(body, inner);
      } else {
        extract_body(body, inner, /*is_module=*/false);
      }
    } else {
      inner.scope = Context::Scope::Function;
      inner.qualname_prefix = qualname + ".<locals>.";
      extract_nested_definitions(body, inner);
    }
  }

  // Definitions anywhere inside a function body (or a class nested in a function), at any depth of
  // compound statements, but not inside nested definitions: those recurse themselves.
  void extract_nested_definitions(TSNode node, const Context& context) {
    TSTreeCursor cursor = ts_tree_cursor_new(node);
    if (ts_tree_cursor_goto_first_child(&cursor)) {
      do {
        const TSNode child = ts_tree_cursor_current_node(&cursor);
        if (!ts_node_is_named(child) || ts_node_is_extra(child)) continue;
        const TSSymbol s = ts_node_symbol(child);
        if (is_definition_node(s)) {
          extract_definition(child, context);
        } else if (s != symbols().lambda && ts_node_named_child_count(child) > 0 && contains_definition(child)) {
          extract_nested_definitions(child, context);
        }
      } while (ts_tree_cursor_goto_next_sibling(&cursor));
    }
    ts_tree_cursor_delete(&cursor);
  }

  void classify_method(Definition& definition) const {
    for (const std::string& decorator : definition.decorators) {
      const std::string_view callee = strip_call(decorator);
      const std::string_view last = last_component(decorator);
      if (callee == "staticmethod") {
        definition.role = FunctionRole::StaticMethod;
      } else if (callee == "classmethod") {
        definition.role = FunctionRole::ClassMethod;
      } else if (last == "property" || last == "cached_property" || last == "abstractproperty") {
        definition.role = FunctionRole::Property;
      } else if (callee.find('.') != std::string_view::npos) {
        // `@x.setter` / `@x.deleter` / `@x.getter` where x is a property of this class.
        const std::string_view owner = callee.substr(0, callee.rfind('.'));
        if (owner == definition.name) {
          if (last == "setter") {
            definition.role = FunctionRole::Property;
            definition.accessor = PropertyAccessor::Setter;
          } else if (last == "deleter") {
            definition.role = FunctionRole::Property;
            definition.accessor = PropertyAccessor::Deleter;
          } else if (last == "getter") {
            definition.role = FunctionRole::Property;
          }
        }
      }
    }
  }

  bool is_async_function(TSNode function) const {
    const TSNode first = ts_node_child(function, 0);
    return !ts_node_is_null(first) && ts_node_symbol(first) == symbols().async_keyword;
  }

  std::optional<std::string> docstring_of(TSNode body) const {
    if (ts_node_is_null(body)) return std::nullopt;
    const uint32_t count = ts_node_named_child_count(body);
    for (uint32_t i = 0; i < count; ++i) {
      const TSNode statement = ts_node_named_child(body, i);
      if (ts_node_is_extra(statement)) continue;
      if (ts_node_symbol(statement) == symbols().expression_statement &&
          ts_node_named_child_count(statement) == 1) {
        const TSNode value = ts_node_named_child(statement, 0);
        if (ts_node_symbol(value) == symbols().string) return std::string(text(value));
      }
      return std::nullopt;
    }
    return std::nullopt;
  }

  bool is_main_guard(TSNode if_statement) const {
    const TSNode condition = ts_node_child_by_field_name(if_statement, "condition", 9);
    if (ts_node_is_null(condition) || ts_node_symbol(condition) != symbols().comparison_operator) return false;
    std::string compact;
    for (const char c : text(condition)) {
      if (c != ' ' && c != '\t') compact.push_back(c == '\'' ? '"' : c);
    }
    return compact == "__name__==\"__main__\"" || compact == "\"__main__\"==__name__";
  }

  bool contains_definition(TSNode node) const {
    TSTreeCursor cursor = ts_tree_cursor_new(node);
    bool found = false;
    // Depth-first, not entering definitions (finding one is enough) or lambdas.
    if (ts_tree_cursor_goto_first_child(&cursor)) {
      for (;;) {
        const TSNode current = ts_tree_cursor_current_node(&cursor);
        const TSSymbol s = ts_node_symbol(current);
        if (is_definition_node(s)) {
          found = true;
          break;
        }
        const bool descend = ts_node_is_named(current) && s != symbols().lambda && !ts_node_is_extra(current);
        if (descend && ts_tree_cursor_goto_first_child(&cursor)) continue;
        bool advanced = false;
        while (!(advanced = ts_tree_cursor_goto_next_sibling(&cursor))) {
          if (!ts_tree_cursor_goto_parent(&cursor)) break;
          if (ts_node_eq(ts_tree_cursor_current_node(&cursor), node)) break;
        }
        if (!advanced) break;
      }
    }
    ts_tree_cursor_delete(&cursor);
    return found;
  }

  // --- Names bound by a statement -----------------------------------------------------------

  void collect_binds(TSNode statement, std::vector<std::string>& out) const {
    const Symbols& sym = symbols();
    const TSSymbol s = ts_node_symbol(statement);
    if (s == sym.expression_statement) {
      const uint32_t count = ts_node_named_child_count(statement);
      for (uint32_t i = 0; i < count; ++i) {
        TSNode expression = ts_node_named_child(statement, i);
        while (!ts_node_is_null(expression) && (ts_node_symbol(expression) == sym.assignment ||
                                                ts_node_symbol(expression) == sym.augmented_assignment)) {
          collect_targets(ts_node_child_by_field_name(expression, "left", 4), out);
          expression = ts_node_child_by_field_name(expression, "right", 5);  // a = b = 1
        }
      }
    } else if (s == sym.import_statement) {
      const uint32_t count = ts_node_named_child_count(statement);
      for (uint32_t i = 0; i < count; ++i) {
        const TSNode name = ts_node_named_child(statement, i);
        if (ts_node_symbol(name) == sym.aliased_import) {
          const TSNode alias = ts_node_child_by_field_name(name, "alias", 5);
          if (!ts_node_is_null(alias)) out.emplace_back(text(alias));
        } else if (ts_node_symbol(name) == sym.dotted_name && ts_node_named_child_count(name) > 0) {
          out.emplace_back(text(ts_node_named_child(name, 0)));  // `import a.b` binds `a`
        }
      }
    } else if (s == sym.import_from_statement) {
      const uint32_t count = ts_node_named_child_count(statement);
      for (uint32_t i = 1; i < count; ++i) {  // child 0 is the module name
        const TSNode name = ts_node_named_child(statement, i);
        if (ts_node_symbol(name) == sym.aliased_import) {
          const TSNode alias = ts_node_child_by_field_name(name, "alias", 5);
          if (!ts_node_is_null(alias)) out.emplace_back(text(alias));
        } else if (ts_node_symbol(name) == sym.dotted_name) {
          out.emplace_back(last_component(text(name)));
        } else if (ts_node_symbol(name) == sym.wildcard_import) {
          out.emplace_back("*");
        }
      }
    }
  }

  void collect_targets(TSNode target, std::vector<std::string>& out) const {
    if (ts_node_is_null(target)) return;
    const Symbols& sym = symbols();
    const TSSymbol s = ts_node_symbol(target);
    if (s == sym.identifier) {
      out.emplace_back(text(target));
    } else if (s == sym.pattern_list || s == sym.tuple_pattern || s == sym.list_pattern || s == sym.tuple ||
               s == sym.list || s == sym.list_splat_pattern || s == sym.parenthesized_expression) {
      const uint32_t count = ts_node_named_child_count(target);
      for (uint32_t i = 0; i < count; ++i) collect_targets(ts_node_named_child(target, i), out);
    }
    // Attributes and subscripts bind no name in this scope.
  }

  // --- Hashing ------------------------------------------------------------------------------

  struct HashResult {
    std::uint64_t content = 0;
    std::uint64_t layout = 0;
    bool has_yield = false;
  };

  // One pre-order walk over the tokens of `root`: structure and token text into the content hash,
  // each token's relative line into the layout hash. Comments and line continuations are extras and
  // do not count. With `skeleton`, nested definitions count only by kind and name.
  // `own_scope` is the function whose yields make it a generator; yields in scopes nested below it
  // do not count.
  HashResult hash_tokens(TSNode root, bool skeleton, TSNode own_scope = TSNode{}) const {
    const Symbols& sym = symbols();
    ContentHasher content;
    ContentHasher layout;
    const std::uint32_t base_line = ts_node_start_point(root).row;
    bool has_yield = false;
    int scope_depth = 0;  // nested functions, classes and lambdas below the root

    TSTreeCursor cursor = ts_tree_cursor_new(root);
    for (;;) {
      const TSNode node = ts_tree_cursor_current_node(&cursor);
      const TSSymbol s = ts_node_symbol(node);
      bool descend = false;
      if (!ts_node_is_extra(node)) {
        const bool is_root = ts_node_eq(node, root);
        if (skeleton && !is_root && is_definition_node(s)) {
          content.add(kNestedDefinitionMarker);
          TSNode named = node;
          if (s == sym.decorated_definition) named = ts_node_child_by_field_name(node, "definition", 10);
          const TSNode name = ts_node_is_null(named) ? named : ts_node_child_by_field_name(named, "name", 4);
          if (!ts_node_is_null(name)) content.add_bytes(text(name));
        } else if (s == sym.string || ts_node_child_count(node) == 0) {
          content.add(s);
          content.add_bytes(text(node));
          layout.add(ts_node_start_point(node).row - base_line);
          layout.add(ts_node_end_point(node).row - base_line);
          if (s == sym.yield_expression && scope_depth == 0) has_yield = true;
        } else {
          content.add(s);
          if (s == sym.yield_expression && scope_depth == 0) has_yield = true;
          if (!is_root && is_scope_node(s) && !ts_node_eq(node, own_scope)) ++scope_depth;
          descend = true;
        }
      }
      if (descend && ts_tree_cursor_goto_first_child(&cursor)) continue;
      // Climb until a sibling is found, closing every inner node left behind.
      bool finished = false;
      while (!ts_tree_cursor_goto_next_sibling(&cursor)) {
        if (!ts_tree_cursor_goto_parent(&cursor)) {
          finished = true;
          break;
        }
        const TSNode parent = ts_tree_cursor_current_node(&cursor);
        content.add(kExitMarker);
        if (ts_node_eq(parent, root)) {
          finished = true;
          break;
        }
        if (is_scope_node(ts_node_symbol(parent)) && !ts_node_eq(parent, own_scope)) --scope_depth;
      }
      if (finished) break;
    }
    ts_tree_cursor_delete(&cursor);
    return HashResult{content.value(), layout.value(), has_yield};
  }

  void hash_statement(TSNode node, Definition& statement, bool skeleton) const {
    const HashResult result = hash_tokens(node, skeleton);
    statement.content_hash = result.content;
    statement.layout_hash = result.layout;
  }

  void hash_definition(TSNode outer, TSNode definition_node, Definition& definition) const {
    const HashResult whole = hash_tokens(outer, /*skeleton=*/false, definition_node);
    definition.content_hash = whole.content;
    definition.layout_hash = whole.layout;
    definition.is_generator = definition.kind == DefinitionKind::Function && whole.has_yield;
    ContentHasher header;
    for (const std::string& decorator : definition.decorators) {
      header.add_bytes(decorator);  // decorator text is short; formatting inside it rarely changes
    }
    if (definition.kind == DefinitionKind::Class) {
      for (const char* field : {"superclasses", "type_parameters"}) {
        const TSNode part = ts_node_child_by_field_name(definition_node, field, static_cast<uint32_t>(std::strlen(field)));
        header.add(ts_node_is_null(part) ? 0 : hash_tokens(part, false).content);
      }
    }
    definition.header_hash = header.value();
  }

  // --- Post passes --------------------------------------------------------------------------

  void collect_errors(TSNode root) {
    if (!ts_node_has_error(root)) return;
    TSTreeCursor cursor = ts_tree_cursor_new(root);
    for (;;) {
      const TSNode node = ts_tree_cursor_current_node(&cursor);
      bool descend = ts_node_has_error(node);
      if (ts_node_is_missing(node)) {
        std::string expected = ts_node_type(node);
        module_.errors.push_back({point_of(ts_node_start_point(node)), point_of(ts_node_end_point(node)),
                                  ts_node_is_named(node) ? "missing " + expected : "expected '" + expected + "'"});
        descend = false;
      } else if (is_error_node(node)) {
        std::string_view snippet = text(node);
        snippet = snippet.substr(0, std::min<std::size_t>(snippet.find('\n'), 40));
        module_.errors.push_back({point_of(ts_node_start_point(node)), point_of(ts_node_end_point(node)),
                                  snippet.empty() ? "invalid syntax"
                                                  : "invalid syntax near '" + std::string(snippet) + "'"});
        descend = false;
      }
      if (descend && ts_tree_cursor_goto_first_child(&cursor)) continue;
      bool finished = false;
      while (!ts_tree_cursor_goto_next_sibling(&cursor)) {
        if (!ts_tree_cursor_goto_parent(&cursor)) {
          finished = true;
          break;
        }
      }
      if (finished) break;
    }
    ts_tree_cursor_delete(&cursor);
  }

  Module& module_;
  const std::string& source_;
};

FieldModel own_field_model(const Definition& cls) {
  for (const std::string& decorator : cls.decorators) {
    const std::string_view callee = strip_call(decorator);
    if (last_component(callee) == "dataclass") return FieldModel::Dataclass;
    if (callee == "attr.s" || callee == "attr.attrs" || callee == "attrs.define" || callee == "attr.define" ||
        callee == "define" || callee == "attrs.frozen" || callee == "attr.frozen" || callee == "frozen" ||
        callee == "attrs.mutable" || callee == "attr.mutable" || callee == "mutable") {
      return FieldModel::Attrs;
    }
  }
  for (const std::string& base : cls.binds) {
    const std::string_view last = last_component(base);
    if (base.starts_with("metaclass=")) {
      if (last == "EnumMeta" || last == "EnumType") return FieldModel::Enum;
      continue;
    }
    if (last == "Enum" || last == "IntEnum" || last == "StrEnum" || last == "Flag" || last == "IntFlag" ||
        last == "ReprEnum") {
      return FieldModel::Enum;
    }
    if (last == "NamedTuple") return FieldModel::NamedTuple;
    if (last == "TypedDict") return FieldModel::TypedDict;
    if (last == "BaseModel" || last == "BaseSettings" || last == "SQLModel" || last == "Model" ||
        last == "DeclarativeBase") {
      return FieldModel::Model;
    }
  }
  return FieldModel::None;
}

// Field models come from decorators and well-known bases, and are inherited from classes of the
// same module whose members are fixed at creation (enum, TypedDict and model subclasses).
void resolve_field_models(Module& module) {
  std::unordered_map<std::string_view, FieldModel> module_classes;
  for (Definition& definition : module.definitions) {
    if (definition.kind != DefinitionKind::Class) continue;
    definition.field_model = own_field_model(definition);
    if (definition.field_model == FieldModel::None) {
      for (const std::string& base : definition.binds) {
        const auto found = module_classes.find(base);
        if (found != module_classes.end() &&
            (found->second == FieldModel::Enum || found->second == FieldModel::TypedDict ||
             found->second == FieldModel::Model)) {
          definition.field_model = found->second;
        }
      }
    }
    if (!definition.in_function) module_classes[definition.qualname] = definition.field_model;
  }
}

// Occurrence indices: the n-th definition of the same (qualname, accessor), or the n-th statement
// with the same content in the same scope, counted in document order.
void assign_occurrences(Module& module) {
  std::unordered_map<std::string, std::uint32_t> seen;
  seen.reserve(module.definitions.size());
  std::string key;
  for (Definition& definition : module.definitions) {
    key.clear();
    if (definition.kind == DefinitionKind::Statement || definition.kind == DefinitionKind::MainBlock) {
      // Statements live at module level or directly in a class body: the scope is that class.
      key.append("s:");
      if (definition.parent >= 0) key.append(module.definitions[definition.parent].qualname);
      key.push_back(':');
      key.append(std::to_string(definition.content_hash));
    } else {
      key.append("d:");
      key.append(definition.qualname);
      key.push_back(':');
      key.push_back(static_cast<char>('0' + static_cast<int>(definition.accessor)));
    }
    definition.occurrence = seen[key]++;
  }
}

}  // namespace

void extract_top_level(TSNode root, Module& module, bool starts_module) {
  Extractor(module).extract_top_level(root, starts_module);
}

void copy_top_level(const Module& from, std::int32_t index, Module& to, std::int64_t byte_shift,
                    std::int64_t line_shift) {
  const auto& definitions = from.definitions;
  const Definition& root = definitions[index];
  // Pre-order: the subtree is the run of definitions that start inside the root's span.
  std::int32_t last = index + 1;
  while (last < static_cast<std::int32_t>(definitions.size()) && definitions[last].span.start_byte < root.span.end_byte) {
    ++last;
  }
  const auto base = static_cast<std::int32_t>(to.definitions.size());
  to.top_level.push_back(base);
  for (std::int32_t i = index; i < last; ++i) {
    Definition copy = definitions[i];
    copy.span.start_byte = static_cast<std::uint32_t>(copy.span.start_byte + byte_shift);
    copy.span.end_byte = static_cast<std::uint32_t>(copy.span.end_byte + byte_shift);
    copy.span.start.line = static_cast<std::uint32_t>(copy.span.start.line + line_shift);
    copy.span.end.line = static_cast<std::uint32_t>(copy.span.end.line + line_shift);
    copy.header_line = static_cast<std::uint32_t>(copy.header_line + line_shift);
    copy.parent = i == index ? -1 : base + (definitions[i].parent - index);
    for (auto& child : copy.children) child = base + (child - index);
    to.definitions.push_back(std::move(copy));
  }
}

void finish_module(Module& module) {
  resolve_field_models(module);
  assign_occurrences(module);
}

}  // namespace hotd::parser
