// Builds the definition model from a tree-sitter tree. Internal to the parser library.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include <tree_sitter/api.h>

#include "hotd/parser/definition.hpp"

namespace hotd::parser {

// What an incremental reparse knows about the edit, so that definitions it did not touch can be
// copied from the previous model instead of being walked and hashed again.
struct ReuseHints {
  const Module* previous = nullptr;
  std::uint32_t edit_start_byte = 0;     // same in both versions
  std::uint32_t edit_new_end_byte = 0;   // in the new version
  Point edit_new_end;                    // in the new version
  std::int64_t byte_delta = 0;           // new length minus old length
  std::int64_t line_delta = 0;           // new line count minus old line count
  // Byte ranges of the new text whose syntax changed (tree-sitter's changed ranges), plus the edit.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> affected;
};

// Fills `module.definitions`, `top_level` and `errors` from `tree`, whose text is `module.source`.
void extract_definitions(const TSTree* tree, Module& module, const ReuseHints* hints);

const TSLanguage* python_language();

}  // namespace hotd::parser
