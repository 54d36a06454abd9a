// Fuzzes the parser and the diff with two versions of a module: the input is A, a NUL byte, then B
// (the seeds are real before/after pairs); without a NUL byte, B is A after a few random edits.
//
// Checked: no crash or hang (libFuzzer's -timeout) in parsing, region reparse or diff_modules(A, B);
// a PythonDocument updated from A to B equals a fresh parse of B, field for field; the plan describes
// B: ok exactly when B has no syntax errors, lines within the file they refer to, and every change
// that carries source carries B's lines from `line` to `end_line`.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "hotd/parser/patch_plan.hpp"
#include "hotd/parser/python_document.hpp"
#include "model_description.hpp"

namespace {

using namespace hotd::parser;

[[noreturn]] void fail(const std::string& what) {
  std::cerr << "parser_fuzzer: " << what << "\n";
  std::abort();
}

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  for (std::size_t start = 0;;) {
    const std::size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return lines;
    start = end + 1;
  }
}

// Edits of the kinds people make: inserted Python fragments, deleted spans, changed characters.
std::string edited(std::string text, std::uint32_t seed) {
  static const char* const fragments[] = {
      "\n", "    ", "pass\n", "x = 1\n", "def f(a, b=2):\n    return a\n", "class K(Base):\n    y: int = 0\n",
      "@property\n", "if __name__ == '__main__':\n    main()\n", "return ", "yield\n", "async ", "\"\"\"doc\"\"\"\n",
      "(", ")", ":", "# comment\n", "\\\n", "\t", "\r\n", "é", "lambda: 0", "try:\n    import a\nexcept E:\n    a = None\n"};
  std::minstd_rand random(seed);
  for (int edits = 1 + static_cast<int>(random() % 4); edits > 0; --edits) {
    const std::size_t at = text.empty() ? 0 : random() % (text.size() + 1);
    switch (random() % 3) {
      case 0: text.insert(at, fragments[random() % std::size(fragments)]); break;
      case 1: text.erase(at, 1 + random() % 40); break;
      default:
        if (at < text.size()) text[at] = "abcxyz =()\n:#@'\""[random() % 16];
    }
  }
  return text;
}

void check_plan_describes(const Plan& plan, const Module& before, const Module& after) {
  if (plan.ok == after.has_errors()) fail("plan.ok must be false exactly when B has syntax errors");
  const auto before_lines = lines_of(before.source);
  const auto after_lines = lines_of(after.source);
  for (const Change& change : plan.changes) {
    const auto& lines = change.in_old_file ? before_lines : after_lines;
    const std::string where = std::string(to_string(change.op)) + " " + change.qualname + " at line " +
                              std::to_string(change.line) + "-" + std::to_string(change.end_line);
    if (change.line < 1 || change.line > change.end_line || change.end_line > lines.size()) {
      fail(where + ": lines outside the file (" + std::to_string(lines.size()) + " lines)");
    }
    if (change.source.empty()) continue;
    std::string expected;
    for (std::uint32_t line = change.line; line <= change.end_line; ++line) {
      expected.append(lines[line - 1]).push_back('\n');
    }
    if (change.source != expected) fail(where + ": source is not B's text at those lines");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t separator = input.find('\0');
  const std::string a(input.substr(0, separator));
  std::uint32_t seed = 0;
  for (const char c : input) seed = seed * 31 + static_cast<unsigned char>(c);
  const std::string b = separator == std::string_view::npos ? edited(a, seed) : std::string(input.substr(separator + 1));

  PythonDocument document(a);
  const Module before = document.module();
  document.update(b);
  const Module fresh = parse_module(b);
  if (const auto difference = hotd::testing::first_difference(document.module(), fresh); !difference.empty()) {
    fail("updating A to B differs (left) from a fresh parse of B (right) " + difference);
  }
  check_plan_describes(diff_modules(before, fresh), before, fresh);
  return 0;
}
