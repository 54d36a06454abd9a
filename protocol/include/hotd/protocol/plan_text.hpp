// The human-readable form of a patch plan: one line per change, what `hotd diff` prints.
#pragma once

#include <string>

#include "hotd/parser/definition.hpp"
#include "hotd/parser/patch_plan.hpp"

namespace hotd::protocol {

// "update  method        Cart.total  line 12 (was 10)" ...; syntax errors as
// "syntax error: line 3, column 9: expected ':'". `after` is the module the plan was made for.
std::string format_plan(const parser::Plan& plan, const parser::Module& after);

// What a change is called for people: its qualname, a statement's first line, "module", "__main__ block".
std::string change_subject(const parser::Change& change);

}  // namespace hotd::protocol
