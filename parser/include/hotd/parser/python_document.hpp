// One version of a Python source file, parsed, with its definition model.
//
// The document keeps its tree-sitter tree so the next version is reparsed incrementally: the edit is
// found as the changed middle between common prefix and suffix, the old tree is edited and reused,
// and definitions outside the edited region are copied from the previous model instead of being
// walked and hashed again. This is what keeps a one-line edit in a large file well under a millisecond.
#pragma once

#include <memory>
#include <string>

#include "hotd/parser/definition.hpp"

struct TSTree;
struct TSParser;

namespace hotd::parser {

class PythonDocument {
 public:
  // Parses `source` from scratch. Never fails: syntax errors are in module().errors.
  explicit PythonDocument(std::string source);
  ~PythonDocument();
  PythonDocument(PythonDocument&&) noexcept;
  PythonDocument& operator=(PythonDocument&&) noexcept;

  // Replaces the text with `new_source`, reparsing incrementally from the current tree.
  void update(std::string new_source);

  const Module& module() const { return *module_; }
  const std::string& source() const { return module_->source; }

 private:
  struct TreeDeleter { void operator()(TSTree*) const; };
  struct ParserDeleter { void operator()(TSParser*) const; };

  std::unique_ptr<TSParser, ParserDeleter> parser_;
  std::unique_ptr<TSTree, TreeDeleter> tree_;
  std::unique_ptr<Module> module_;
};

// Parses once and returns only the model, for callers that keep no document.
Module parse_module(std::string source);

}  // namespace hotd::parser
