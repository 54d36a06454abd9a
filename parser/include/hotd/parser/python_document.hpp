// One version of a Python source file, parsed, with its definition model.
//
// An update reparses only the module-level region the edit touched. The edit is the changed middle
// between the common prefix and suffix; the region runs from the last unchanged module-level
// statement before it to the first one after it (both starting at column 0), is parsed alone with
// tree-sitter's included ranges, and the definitions outside it are copied from the previous model,
// moved. Tree-sitter's own incremental reparse does not help here: with tree-sitter-python 0.23 on
// libtree-sitter 0.20 it reuses nothing after an edit, so its cost grows with the text below the
// edit (0.3 ms at the end of a 5,000-line file, 21 ms at its top). Any syntax error in the region,
// or in the previous version, means a full parse, so that errors are reported exactly.
#pragma once

#include <memory>
#include <string>

#include "hotd/parser/definition.hpp"

struct TSParser;

namespace hotd::parser {

class PythonDocument {
 public:
  // Parses `source` from scratch. Never fails: syntax errors are in module().errors, and so is the
  // reason for a text the parser cannot read safely or in time (then there are no definitions).
  explicit PythonDocument(std::string source);
  ~PythonDocument();
  PythonDocument(PythonDocument&&) noexcept;
  PythonDocument& operator=(PythonDocument&&) noexcept;

  // Replaces the text with `new_source`, reparsing only the region the edit touched when it can.
  void update(std::string new_source);
  // Whether the last update reparsed a region (true) or the whole text (false); for tests.
  bool last_update_was_partial() const { return last_update_partial_; }

  const Module& module() const { return *module_; }
  const std::string& source() const { return module_->source; }

 private:
  struct ParserDeleter { void operator()(TSParser*) const; };

  // Fills `next` by reparsing the region the edit touched; false if only a full parse can.
  bool reparse_region(Module& next, std::size_t edit_start, std::size_t old_edit_end, std::size_t new_edit_end);
  void parse_whole(Module& next);

  std::unique_ptr<TSParser, ParserDeleter> parser_;
  std::unique_ptr<Module> module_;
  bool last_update_partial_ = false;
};

// Parses once and returns only the model, for callers that keep no document.
Module parse_module(std::string source);

}  // namespace hotd::parser
