#include "hotd/parser/patch_plan.hpp"

#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace hotd::parser {

std::string_view to_string(ChangeOp op) {
  switch (op) {
    case ChangeOp::Update: return "update";
    case ChangeOp::Shift: return "shift";
    case ChangeOp::Add: return "add";
    case ChangeOp::Delete: return "delete";
    case ChangeOp::Exec: return "exec";
    case ChangeOp::Rude: return "rude";
    case ChangeOp::Skip: return "skip";
  }
  return "?";
}

namespace {

constexpr std::string_view kRestart = "Restart the process to apply it.";

std::string quoted(std::string_view name) { return "`" + std::string(name) + "`"; }

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

std::string decorator_list(const std::vector<std::string>& decorators) {
  if (decorators.empty()) return "none";
  std::string out;
  for (const std::string& decorator : decorators) {
    if (!out.empty()) out += ", ";
    out += "@" + decorator;
  }
  return out;
}

std::string_view why_fields_are_fixed(FieldModel model) {
  switch (model) {
    case FieldModel::Dataclass:
    case FieldModel::Attrs: return "the generated __init__, __repr__ and __eq__ are made once, when the class is created";
    case FieldModel::Enum: return "enum members are created once, with the class";
    case FieldModel::NamedTuple: return "the tuple layout is fixed when the class is created";
    case FieldModel::TypedDict: return "its keys are collected when the class is created";
    case FieldModel::Model: return "model fields are collected when the class is created";
    case FieldModel::None: break;
  }
  return "";
}

class Differ {
 public:
  Differ(const Module& before, const Module& after, const RunningDrift& drift)
      : before_(before), after_(after), drift_(drift) {}

  Plan run() {
    Plan plan;
    if (after_.has_errors()) {
      plan.ok = false;
      plan.errors = after_.errors;
      return plan;
    }
    match();
    for (const std::int32_t index : after_.top_level) visit_new(index);
    for (const std::int32_t index : before_.top_level) visit_old(index);
    plan.changes = std::move(removals_);
    plan.changes.insert(plan.changes.end(), std::make_move_iterator(changes_.begin()),
                        std::make_move_iterator(changes_.end()));
    if (plan.changes.empty() && before_.source != after_.source) {
      Change change;
      change.op = ChangeOp::Skip;
      change.kind_name = "module";
      change.line = 1;
      change.end_line = 1;
      change.reason = "only comments or formatting changed";
      plan.changes.push_back(std::move(change));
    }
    return plan;
  }

 private:
  // --- Matching -----------------------------------------------------------------------------

  std::string key_of(const Module& module, const Definition& definition) const {
    std::string key;
    switch (definition.kind) {
      case DefinitionKind::Function:
      case DefinitionKind::Class:
        key = "d:" + definition.qualname + ':' + std::string(to_string(definition.accessor));
        break;
      case DefinitionKind::Statement:
        key = "s:" + scope_qualname(module, definition) + ':' + std::to_string(definition.content_hash);
        break;
      case DefinitionKind::MainBlock:
        key = "m:";
        break;
    }
    key += '#';
    key += std::to_string(definition.occurrence);
    return key;
  }

  static std::string scope_qualname(const Module& module, const Definition& definition) {
    std::int32_t parent = definition.parent;
    while (parent >= 0 && module.definitions[parent].kind == DefinitionKind::Statement) {
      parent = module.definitions[parent].parent;
    }
    return parent < 0 ? std::string() : module.definitions[parent].qualname;
  }

  void match() {
    std::unordered_map<std::string, std::int32_t> old_by_key;
    old_by_key.reserve(before_.definitions.size());
    for (std::int32_t i = 0; i < static_cast<std::int32_t>(before_.definitions.size()); ++i) {
      old_by_key.emplace(key_of(before_, before_.definitions[i]), i);
    }
    new_to_old_.assign(after_.definitions.size(), -1);
    old_matched_.assign(before_.definitions.size(), false);
    old_suppressed_.assign(before_.definitions.size(), false);
    for (std::int32_t i = 0; i < static_cast<std::int32_t>(after_.definitions.size()); ++i) {
      const auto found = old_by_key.find(key_of(after_, after_.definitions[i]));
      if (found == old_by_key.end()) continue;
      new_to_old_[i] = found->second;
      old_matched_[found->second] = true;
    }
  }

  // --- Walking the new version --------------------------------------------------------------

  // Returns whether anything was reported for this definition or inside it.
  bool visit_new(std::int32_t index) {
    const Definition& now = after_.definitions[index];
    const std::int32_t old_index = new_to_old_[index];
    const Definition* was = old_index >= 0 ? &before_.definitions[old_index] : nullptr;
    switch (now.kind) {
      case DefinitionKind::MainBlock:
        if (!was || before_.text(was->span) != after_.text(now.span)) {
          emit(ChangeOp::Skip, after_, now, was,
               "inside the `if __name__ == \"__main__\":` block, which hotd never re-runs");
          return true;
        }
        return false;
      case DefinitionKind::Statement: return visit_new_statement(index, now, was);
      case DefinitionKind::Function: return visit_new_function(now, was, old_index);
      case DefinitionKind::Class: return visit_new_class(now, was, old_index);
    }
    return false;
  }

  bool visit_new_statement(std::int32_t index, const Definition& now, const Definition* was) {
    if (was) {
      bool reported = false;
      if (now.is_block) {
        for (const std::int32_t child : now.children) reported |= visit_new(child);
      }
      if (!reported && before_.text(was->span) != after_.text(now.span)) {
        emit(ChangeOp::Skip, after_, now, was, "only comments or formatting changed");
        reported = true;
      }
      return reported;
    }
    // Recorded first: a removed statement whose names are bound again here was changed, not removed.
    const std::string scope = scope_qualname(after_, now);
    for (const std::string& name : now.binds) rebound_.emplace(scope, name);
    const Definition* owner = enclosing_class(after_, index);
    if (owner && owner->field_model != FieldModel::None && !now.is_docstring) {
      emit(ChangeOp::Rude, after_, now, nullptr, fields_reason(*owner));
      return true;
    }
    if (owner && now.binds_slots) {
      emit(ChangeOp::Rude, after_, now, nullptr, slots_reason(*owner));
      return true;
    }
    emit(ChangeOp::Exec, after_, now, nullptr, "");
    return true;
  }

  bool visit_new_function(const Definition& now, const Definition* was, std::int32_t old_index) {
    if (!was) {
      emit(ChangeOp::Add, after_, now, nullptr, "");
      return true;
    }
    if (now.in_function) {
      // Part of the outer function's code, recompiled with it: reported so that existing closures
      // can follow; moves and formatting follow the outer function.
      if (was->content_hash == now.content_hash) return false;
      emit(ChangeOp::Update, after_, now, was, "");
      for (const std::int32_t child : now.children) visit_new(child);
      return true;
    }
    if (was->kind != now.kind) {
      old_suppressed_[old_index] = true;
      emit(ChangeOp::Rude, after_, now, was,
           quoted(now.qualname) + " changed from a class to a function: existing references keep the class. " +
               std::string(kRestart));
      return true;
    }
    if (was->header_hash != now.header_hash) {
      old_suppressed_[old_index] = true;
      emit(ChangeOp::Rude, after_, now, was,
           "decorators of " + quoted(now.qualname) + " changed (" + decorator_list(was->decorators) + " -> " +
               decorator_list(now.decorators) +
               "): the decorated object must be re-created and references taken earlier would keep the old "
               "one. " + std::string(kRestart));
      return true;
    }
    if (was->content_hash != now.content_hash) {
      emit(ChangeOp::Update, after_, now, was, "");
      for (const std::int32_t child : now.children) visit_new(child);
      return true;
    }
    if (emit_drift(now)) return true;
    if (was->layout_hash != now.layout_hash) {
      emit(ChangeOp::Update, after_, now, was,
           "only comments or blank lines changed inside it; recompiled so that line numbers stay right");
      return true;
    }
    if (was->span.start.line != now.span.start.line) {
      emit(ChangeOp::Shift, after_, now, was, "");
      return true;
    }
    if (before_.text(was->span) != after_.text(now.span)) {
      emit(ChangeOp::Skip, after_, now, was, "only comments or formatting changed");
      return true;
    }
    return false;
  }

  bool visit_new_class(const Definition& now, const Definition* was, std::int32_t old_index) {
    if (!was) {
      emit(ChangeOp::Add, after_, now, nullptr, "");
      return true;
    }
    if (was->kind != now.kind) {
      old_suppressed_[old_index] = true;
      emit(ChangeOp::Rude, after_, now, was,
           quoted(now.qualname) + " changed from a function to a class: existing references keep the function. " +
               std::string(kRestart));
      return true;
    }
    if (now.in_function) {
      // Part of the outer function's code: report what changed inside for closures, nothing else.
      bool reported = false;
      if (was->content_hash != now.content_hash) {
        for (const std::int32_t child : now.children) reported |= visit_new(child);
      }
      return reported;
    }
    if (drift_.missing.contains(now.qualname)) return emit_drift(now);
    if (was->content_hash == now.content_hash && was->layout_hash == now.layout_hash) {
      bool reported = false;
      for (const std::int32_t child : now.children) reported |= visit_drifted(child);
      if (reported) return true;
      if (was->span.start.line != now.span.start.line) {
        emit(ChangeOp::Shift, after_, now, was, "");  // covers everything inside the class
        return true;
      }
      if (before_.text(was->span) != after_.text(now.span)) {
        emit(ChangeOp::Skip, after_, now, was, "only comments or formatting changed");
        return true;
      }
      return false;
    }
    bool reported = false;
    if (was->header_hash != now.header_hash) {
      emit(ChangeOp::Rude, after_, now, was, class_header_reason(*was, now));
      reported = true;
    }
    for (const std::int32_t child : now.children) reported |= visit_new(child);
    return reported;
  }

  // A definition the process does not run as `before` says, though unchanged from it: sent as an
  // update (no old line: the running one may sit elsewhere) or, when the process lacks it, an add.
  bool emit_drift(const Definition& now) {
    if (now.in_function) return false;
    if (drift_.missing.contains(now.qualname)) {
      emit(ChangeOp::Add, after_, now, nullptr, "the running module lacks it: the file changed after the process imported it");
      return true;
    }
    if (now.kind != DefinitionKind::Function || !drift_.differs.contains(now.qualname)) return false;
    emit(ChangeOp::Update, after_, now, nullptr,
         "the running code differs from it: the file changed after the process imported it");
    return true;
  }

  // Inside a class whose text did not change: the methods (and nested classes) that drifted.
  bool visit_drifted(std::int32_t index) {
    if (drift_.empty()) return false;
    const Definition& now = after_.definitions[index];
    if (emit_drift(now)) return true;
    bool reported = false;
    if (now.kind != DefinitionKind::Function) {
      for (const std::int32_t child : now.children) reported |= visit_drifted(child);
    }
    return reported;
  }

  // --- Walking the old version for what was removed ------------------------------------------

  void visit_old(std::int32_t index) {
    const Definition& was = before_.definitions[index];
    if (old_suppressed_[index]) return;
    if (old_matched_[index]) {
      for (const std::int32_t child : was.children) visit_old(child);
      return;
    }
    switch (was.kind) {
      case DefinitionKind::Function:
      case DefinitionKind::Class:
        emit_removal(ChangeOp::Delete, was, "");
        return;
      case DefinitionKind::MainBlock:
        emit_removal(ChangeOp::Skip, was, "the `if __name__ == \"__main__\":` block was removed; nothing to undo");
        return;
      case DefinitionKind::Statement:
        break;
    }
    if (was.is_block) {
      // The block was replaced or removed: its definitions that exist nowhere else are deleted.
      for (const std::int32_t child : was.children) visit_old(child);
      return;
    }
    const std::string scope = scope_qualname(before_, was);
    bool replaced = !was.binds.empty();
    for (const std::string& name : was.binds) replaced = replaced && rebound_.contains({scope, name});
    if (replaced || was.is_docstring) return;  // a changed statement: its new version was reported
    const Definition* owner = enclosing_class(before_, index);
    if (owner && owner->field_model != FieldModel::None) {
      emit_removal(ChangeOp::Rude, was, fields_reason(*owner));
      return;
    }
    if (owner && was.binds_slots) {
      emit_removal(ChangeOp::Rude, was, slots_reason(*owner));
      return;
    }
    std::string reason = "a removed statement cannot be un-run";
    if (was.binds.size() == 1) {
      reason = "a removed statement is not undone: " + quoted(was.binds[0]) +
               " keeps its current value in running processes";
    } else if (!was.binds.empty()) {
      reason = "a removed statement is not undone: " + join(was.binds, ", ") +
               " keep their current values in running processes";
    }
    emit_removal(ChangeOp::Skip, was, reason);
  }

  // --- Reasons ------------------------------------------------------------------------------

  static const Definition* enclosing_class(const Module& module, std::int32_t index) {
    std::int32_t parent = module.definitions[index].parent;
    while (parent >= 0 && module.definitions[parent].kind == DefinitionKind::Statement) {
      parent = module.definitions[parent].parent;
    }
    if (parent < 0 || module.definitions[parent].kind != DefinitionKind::Class) return nullptr;
    return &module.definitions[parent];
  }

  static std::string fields_reason(const Definition& owner) {
    return "fields of " + std::string(to_string(owner.field_model)) + " " + quoted(owner.qualname) +
           " changed, and " + std::string(why_fields_are_fixed(owner.field_model)) + ". " + std::string(kRestart);
  }

  static std::string slots_reason(const Definition& owner) {
    return "`__slots__` of " + quoted(owner.qualname) +
           " changed: the memory layout of existing instances cannot change. " + std::string(kRestart);
  }

  static std::string class_header_reason(const Definition& was, const Definition& now) {
    if (was.decorators != now.decorators) {
      return "decorators of class " + quoted(now.qualname) + " changed (" + decorator_list(was.decorators) +
             " -> " + decorator_list(now.decorators) +
             "): the class must be re-created and existing instances would keep the old one. " +
             std::string(kRestart);
    }
    auto is_keyword = [](const std::string& base) { return base.find('=') != std::string::npos; };
    bool keywords_changed = false;
    for (const auto* list : {&was.binds, &now.binds}) {
      for (const std::string& base : *list) {
        if (is_keyword(base)) keywords_changed = true;
      }
    }
    const std::string what = keywords_changed ? "bases or metaclass" : "bases";
    return what + " of class " + quoted(now.qualname) + " changed (" + join(was.binds, ", ") + " -> " +
           join(now.binds, ", ") + "): existing instances and subclasses keep the old class. " +
           std::string(kRestart);
  }

  // --- Building changes ---------------------------------------------------------------------

  void fill(Change& change, const Module& module, const Definition& definition) const {
    change.kind = definition.kind;
    change.kind_name = std::string(kind_name(definition));
    change.qualname = definition.qualname;
    change.accessor = definition.accessor;
    change.occurrence = definition.occurrence;
    change.line = definition.span.start.line + 1;
    change.end_line = definition.span.end.line + 1;
    change.header_line = definition.header_line + 1;
    change.decorators = definition.decorators;
    change.in_function = definition.in_function;
    change.is_docstring = definition.is_docstring;
    change.is_async = definition.is_async;
    change.is_generator = definition.is_generator;
    if (definition.kind == DefinitionKind::Statement || definition.kind == DefinitionKind::MainBlock) {
      change.owner = scope_qualname(module, definition);
      change.binds = definition.binds;
      std::string_view first = module.text(definition.span);
      first = first.substr(0, first.find_first_of("\r\n"));
      change.label = first.size() > 60 ? std::string(first.substr(0, 57)) + "..." : std::string(first);
    }
  }

  void emit(ChangeOp op, const Module& module, const Definition& now, const Definition* was, std::string reason) {
    Change change;
    change.op = op;
    fill(change, module, now);
    if (was) change.old_line = was->span.start.line + 1;
    change.reason = std::move(reason);
    const bool compiles = op == ChangeOp::Update || op == ChangeOp::Add || op == ChangeOp::Exec;
    if (compiles && !now.in_function) {
      change.source = full_lines(module, now.span);
      change.scope = scope_headers(module, now);
    }
    changes_.push_back(std::move(change));
  }

  void emit_removal(ChangeOp op, const Definition& was, std::string reason) {
    Change change;
    change.op = op;
    fill(change, before_, was);
    change.in_old_file = true;
    change.reason = std::move(reason);
    removals_.push_back(std::move(change));
  }

  static std::size_t line_start(const std::string& source, std::size_t offset) {
    const std::size_t newline = offset == 0 ? std::string::npos : source.rfind('\n', offset - 1);
    return newline == std::string::npos ? 0 : newline + 1;
  }

  // The definition's lines, from the start of its first line to the end of its last, with a final
  // newline: what the agent compiles.
  static std::string full_lines(const Module& module, const Span& span) {
    const std::string& source = module.source;
    const std::size_t begin = line_start(source, span.start_byte);
    const std::size_t last_byte = span.end_byte > begin ? span.end_byte - 1 : begin;
    std::size_t end = source.find('\n', last_byte);
    if (end == std::string::npos) end = source.size();
    std::string text = source.substr(begin, end - begin);
    text.push_back('\n');
    return text;
  }

  static std::string indentation_of_line(const Module& module, std::uint32_t start_byte) {
    const std::string& source = module.source;
    const std::size_t begin = line_start(source, start_byte);
    std::size_t end = begin;
    while (end < source.size() && (source[end] == ' ' || source[end] == '\t' || source[end] == '\f')) ++end;
    return source.substr(begin, end - begin);
  }

  static std::string scope_headers_line_start(const Module& module, const Definition& ancestor) {
    // For a class, the line of the `class` keyword (decorators may come before it).
    std::uint32_t byte = ancestor.span.start_byte;
    if (ancestor.kind == DefinitionKind::Class && ancestor.header_line != ancestor.span.start.line) {
      std::size_t offset = ancestor.span.start_byte;
      for (std::uint32_t line = ancestor.span.start.line; line < ancestor.header_line; ++line) {
        offset = module.source.find('\n', offset) + 1;
      }
      byte = static_cast<std::uint32_t>(offset);
    }
    return indentation_of_line(module, byte);
  }

  static std::vector<std::string> scope_headers(const Module& module, const Definition& definition) {
    std::vector<std::string> headers;
    for (std::int32_t parent = definition.parent; parent >= 0; parent = module.definitions[parent].parent) {
      const Definition& ancestor = module.definitions[parent];
      const std::string indentation = scope_headers_line_start(module, ancestor);
      headers.push_back(indentation + (ancestor.kind == DefinitionKind::Class ? "class " + ancestor.name + ":"
                                                                              : std::string("if True:")));
    }
    return {headers.rbegin(), headers.rend()};
  }

  const Module& before_;
  const Module& after_;
  const RunningDrift& drift_;
  std::vector<std::int32_t> new_to_old_;
  std::vector<bool> old_matched_;
  std::vector<bool> old_suppressed_;
  std::set<std::pair<std::string, std::string>> rebound_;  // (scope, name) bound by an exec'd statement
  std::vector<Change> changes_;
  std::vector<Change> removals_;
};

}  // namespace

Plan diff_modules(const Module& before, const Module& after, const RunningDrift& drift) {
  return Differ(before, after, drift).run();
}

}  // namespace hotd::parser
