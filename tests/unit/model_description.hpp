// Every field of every definition of a model, one line each, so that two models compare as text.
// Shared by the unit tests and the parser fuzzer (tests/fuzz).
#pragma once

#include <string>

#include "hotd/parser/definition.hpp"

namespace hotd::testing {

std::string describe(const parser::Module& module);

// Empty when both describe the same; otherwise the first differing line of each.
std::string first_difference(const parser::Module& left, const parser::Module& right);

}  // namespace hotd::testing
