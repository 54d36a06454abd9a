#include "hotd/parser/patch_plan.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
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
    plan.changes = assemble();
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
  // Removals first, then the rest; but removals inside a class whose bases change come right after
  // that update: when the bases cannot be assigned, the agent refuses what follows in the class.
  std::vector<Change> assemble() {
    std::unordered_map<std::size_t, std::vector<Change>> after_update;
    std::vector<Change> changes;
    for (std::size_t i = 0; i < removals_.size(); ++i) {
      const std::optional<std::size_t> update = bases_update_enclosing(removal_classes_[i]);
      if (update) {
        after_update[*update].push_back(std::move(removals_[i]));
      } else {
        changes.push_back(std::move(removals_[i]));
      }
    }
    for (std::size_t i = 0; i < changes_.size(); ++i) {
      changes.push_back(std::move(changes_[i]));
      const auto moved = after_update.find(i);
      if (moved == after_update.end()) continue;
      changes.insert(changes.end(), std::make_move_iterator(moved->second.begin()),
                     std::make_move_iterator(moved->second.end()));
    }
    return changes;
  }

  // The position in changes_ of the bases update of the innermost class around an old definition.
  std::optional<std::size_t> bases_update_enclosing(std::int32_t old_class) const {
    for (; old_class >= 0; old_class = enclosing_class_index(before_, old_class)) {
      const std::int32_t now = old_to_new_[old_class];
      const auto found = now >= 0 ? bases_updates_.find(now) : bases_updates_.end();
      if (found != bases_updates_.end()) return found->second;
    }
    return std::nullopt;
  }

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
    old_to_new_.assign(before_.definitions.size(), -1);
    old_matched_.assign(before_.definitions.size(), false);
    old_suppressed_.assign(before_.definitions.size(), false);
    for (std::int32_t i = 0; i < static_cast<std::int32_t>(after_.definitions.size()); ++i) {
      const auto found = old_by_key.find(key_of(after_, after_.definitions[i]));
      if (found == old_by_key.end()) continue;
      new_to_old_[i] = found->second;
      old_to_new_[found->second] = i;
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
      case DefinitionKind::Function: return visit_new_function(index, now, was, old_index);
      case DefinitionKind::Class: return visit_new_class(index, now, was, old_index);
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

  bool visit_new_function(std::int32_t index, const Definition& now, const Definition* was, std::int32_t old_index) {
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
      const std::string changed = "decorators of " + quoted(now.qualname) + " changed (" +
                                  decorator_list(was->decorators) + " -> " + decorator_list(now.decorators) + ")";
      std::string why_not = why_not_rebound(index, now);
      if (why_not.empty() && (was->accessor != PropertyAccessor::None || now.accessor != PropertyAccessor::None ||
                              has_accessor_sibling(after_, index) || has_accessor_sibling(before_, old_index))) {
        why_not = quoted(now.name) +
                  " is a property made by several definitions (getter, setter, deleter), and re-running one "
                  "of them would lose the others";
      }
      if (!why_not.empty()) {
        old_suppressed_[old_index] = true;
        emit(ChangeOp::Rude, after_, now, was, changed + ": " + why_not + ". " + std::string(kRestart));
        return true;
      }
      emit(ChangeOp::Update, after_, now, was,
           "decorators changed (" + decorator_list(was->decorators) + " -> " + decorator_list(now.decorators) +
               "): the definition runs again and " + quoted(now.name) + " is bound to what they return");
      changes_.back().rebind = true;
      changes_.back().old_decorators = was->decorators;
      for (const std::int32_t child : now.children) visit_new(child);
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

  bool visit_new_class(std::int32_t index, const Definition& now, const Definition* was, std::int32_t old_index) {
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
    if (was->header_hash == now.header_hash) {
      bool reported = false;
      for (const std::int32_t child : now.children) reported |= visit_new(child);
      return reported;
    }
    const std::string why_not = why_class_header_is_rude(index, now, *was);
    if (!why_not.empty()) {
      // Nothing of the class is applied: its methods must not run on a class whose header stays old.
      old_suppressed_[old_index] = true;
      emit(ChangeOp::Rude, after_, now, was, why_not + ", so nothing in the class is applied. " + std::string(kRestart));
      return true;
    }
    const std::vector<std::string> bases = positional_bases(now);
    if (bases != positional_bases(*was)) {
      emit(ChangeOp::Update, after_, now, was,
           "bases changed (" + join_or_none(positional_bases(*was)) + " -> " + join_or_none(bases) +
               "): assigned to `__bases__`, so instances and subclasses follow, where CPython allows it");
      changes_.back().bases = bases;
      changes_.back().source.clear();
      changes_.back().scope.clear();
      bases_updates_[index] = changes_.size() - 1;
    }
    for (const std::int32_t child : now.children) visit_new(child);
    if (was->decorators != now.decorators) {
      // After the changes inside: the decorators see the class as the new text makes it.
      emit(ChangeOp::Update, after_, now, was,
           "decorators changed (" + decorator_list(was->decorators) + " -> " + decorator_list(now.decorators) +
               "): they run again on the live class and " + quoted(now.name) + " is bound to what they return");
      changes_.back().rebind = true;
      changes_.back().old_decorators = was->decorators;
    }
    return true;
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
    if (owner && delete_class_attributes(index, was)) return;
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

  // A class-level statement removed from the body of a class that stays: the names it bound go from
  // the running class, but for those the new body still binds. Returns whether a delete was emitted.
  bool delete_class_attributes(std::int32_t index, const Definition& was) {
    const std::int32_t old_class = enclosing_class_index(before_, index);
    const std::int32_t new_class = old_to_new_[old_class];
    if (new_class < 0) return false;
    std::set<std::string> still_bound;
    for_each_in_scope(after_, new_class, [&](const Definition& member) {
      if (member.kind == DefinitionKind::Statement) {
        still_bound.insert(member.binds.begin(), member.binds.end());
      } else if (!member.name.empty()) {
        still_bound.insert(member.name);
      }
    });
    std::vector<std::string> gone;
    std::vector<std::string> kept;
    for (const std::string& name : was.binds) {
      if (name == "*") return false;  // a star import: which names it bound is not known here
      (still_bound.contains(name) ? kept : gone).push_back(name);
    }
    if (gone.empty()) return false;
    std::vector<std::string> quoted_kept;
    for (const std::string& name : kept) quoted_kept.push_back(quoted(name));
    emit_removal(ChangeOp::Delete, was,
                 kept.empty()        ? std::string()
                 : kept.size() == 1 ? quoted_kept[0] + " stays: the class body still binds it elsewhere"
                                    : join(quoted_kept, ", ") + " stay: the class body still binds them elsewhere");
    removals_.back().binds = std::move(gone);
    removals_.back().scope = scope_headers(before_, was);
    return true;
  }

  // Calls `visit` on each definition directly in the body of `scope` (-1: the module), through blocks.
  template <typename Visit>
  static void for_each_in_scope(const Module& module, std::int32_t scope, const Visit& visit) {
    for (const std::int32_t index : scope < 0 ? module.top_level : module.definitions[scope].children) {
      const Definition& member = module.definitions[index];
      visit(member);
      if (member.kind == DefinitionKind::Statement && member.is_block) for_each_in_scope(module, index, visit);
    }
  }

  static std::int32_t scope_index(const Module& module, std::int32_t index) {
    std::int32_t parent = module.definitions[index].parent;
    while (parent >= 0 && module.definitions[parent].kind == DefinitionKind::Statement) {
      parent = module.definitions[parent].parent;
    }
    return parent;
  }

  // Why running the decorators of a definition again and binding its name would not give what an
  // import of the new text gives; empty when it would.
  std::string why_not_rebound(std::int32_t index, const Definition& now) const {
    std::string why;
    for_each_in_scope(after_, scope_index(after_, index), [&](const Definition& member) {
      if (!why.empty() || member.kind != DefinitionKind::Statement) return;
      if (std::find(member.binds.begin(), member.binds.end(), now.name) != member.binds.end()) {
        why = "a statement (line " + std::to_string(member.span.start.line + 1) + ") binds " + quoted(now.name) +
              " too, and re-running the definition alone would not run it";
      }
    });
    return why;
  }

  static bool has_accessor_sibling(const Module& module, std::int32_t index) {
    const Definition& definition = module.definitions[index];
    bool found = false;
    for_each_in_scope(module, scope_index(module, index), [&](const Definition& member) {
      found = found || (&member != &definition && member.kind == DefinitionKind::Function &&
                        member.qualname == definition.qualname && member.accessor != PropertyAccessor::None);
    });
    return found;
  }

  // Why a class's new header cannot be applied to the live class; empty when it can (new positional
  // bases through `__bases__`, new decorators run on the live class).
  std::string why_class_header_is_rude(std::int32_t index, const Definition& now, const Definition& was) const {
    const std::string name = quoted(now.qualname);
    if (class_keywords(was) != class_keywords(now)) {
      return "the metaclass or class keywords of " + name + " changed (" + join_or_none(class_keywords(was)) +
             " -> " + join_or_none(class_keywords(now)) + "): they act once, when the class is created";
    }
    if (was.type_parameters != now.type_parameters) {
      return "the type parameters of " + name + " changed (" + (was.type_parameters.empty() ? "none" : was.type_parameters) +
             " -> " + (now.type_parameters.empty() ? "none" : now.type_parameters) + "): they are made with the class";
    }
    const FieldModel model = now.field_model != FieldModel::None ? now.field_model : was.field_model;
    const bool decorators_changed = was.decorators != now.decorators;
    const std::string what = decorators_changed ? "decorators of class " + name + " changed (" +
                                                      decorator_list(was.decorators) + " -> " +
                                                      decorator_list(now.decorators) + ")"
                                                : "bases of class " + name + " changed (" +
                                                      join_or_none(positional_bases(was)) + " -> " +
                                                      join_or_none(positional_bases(now)) + ")";
    if (model != FieldModel::None) {
      return what + ": " + std::string(to_string(model)) + " " + name + " has fields, and " +
             std::string(why_fields_are_fixed(model));
    }
    if (decorators_changed) {
      const std::string why = why_not_rebound(index, now);
      if (!why.empty()) return what + ": " + why;
    }
    return "";
  }

  static bool is_class_keyword(const std::string& entry) {
    if (entry.starts_with("**")) return true;
    std::size_t end = 0;
    while (end < entry.size() && (std::isalnum(static_cast<unsigned char>(entry[end])) || entry[end] == '_' ||
                                  static_cast<unsigned char>(entry[end]) >= 0x80)) {
      ++end;
    }
    while (end < entry.size() && entry[end] == ' ') ++end;
    return end > 0 && end + 1 < entry.size() && entry[end] == '=' && entry[end + 1] != '=';
  }

  static std::vector<std::string> class_keywords(const Definition& cls) {
    std::vector<std::string> keywords;
    for (const std::string& entry : cls.binds) {
      if (is_class_keyword(entry)) keywords.push_back(entry);
    }
    return keywords;
  }

  static std::vector<std::string> positional_bases(const Definition& cls) {
    std::vector<std::string> bases;
    for (const std::string& entry : cls.binds) {
      if (!is_class_keyword(entry)) bases.push_back(entry);
    }
    return bases;
  }

  static std::string join_or_none(const std::vector<std::string>& items) {
    return items.empty() ? std::string("none") : join(items, ", ");
  }

  // --- Reasons ------------------------------------------------------------------------------

  static std::int32_t enclosing_class_index(const Module& module, std::int32_t index) {
    const std::int32_t scope = scope_index(module, index);
    return scope >= 0 && module.definitions[scope].kind == DefinitionKind::Class ? scope : -1;
  }

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
    removal_classes_.push_back(enclosing_class_index(before_, static_cast<std::int32_t>(&was - before_.definitions.data())));
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
  std::vector<std::int32_t> old_to_new_;
  std::vector<bool> old_matched_;
  std::vector<bool> old_suppressed_;
  std::set<std::pair<std::string, std::string>> rebound_;  // (scope, name) bound by an exec'd statement
  std::vector<Change> changes_;
  std::vector<Change> removals_;
  std::vector<std::int32_t> removal_classes_;  // per removal: the old class around it, or -1
  std::unordered_map<std::int32_t, std::size_t> bases_updates_;  // new class index -> its bases update in changes_
};

}  // namespace

Plan diff_modules(const Module& before, const Module& after, const RunningDrift& drift) {
  return Differ(before, after, drift).run();
}

}  // namespace hotd::parser
