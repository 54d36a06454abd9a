// Builds the definition model from a tree-sitter tree. Internal to the parser library.
#pragma once

#include <cstdint>

#include <tree_sitter/api.h>

#include "hotd/parser/definition.hpp"

namespace hotd::parser {

// Appends the module-level definitions found under `root` to `module`, and its syntax errors.
// `root` is a whole module's tree, or the tree of a region of `module.source` parsed with included
// ranges (positions are absolute either way). `starts_module`: the region begins the file, so its
// first statement may be the module docstring.
void extract_top_level(TSNode root, Module& module, bool starts_module);

// Appends a module-level definition of `from`, with everything inside it, to `to`, moved by the
// given number of bytes and lines (columns do not change: the definition starts at column 0).
void copy_top_level(const Module& from, std::int32_t index, Module& to, std::int64_t byte_shift,
                    std::int64_t line_shift);

// The passes over the whole module once all definitions are in: field models, occurrence indices.
void finish_module(Module& module);

const TSLanguage* python_language();

}  // namespace hotd::parser
