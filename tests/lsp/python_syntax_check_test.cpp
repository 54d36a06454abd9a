// The embedded CPython compiler behind the `python-syntax-error` diagnostics: real interpreter, real
// worker thread.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <unistd.h>

#include "python_syntax_check.hpp"

using hotd::server::kMaxPythonCheckBytes;
using hotd::server::PythonSyntaxCheck;
using hotd::server::PythonSyntaxChecker;

namespace {

PythonSyntaxChecker& checker() {
  static PythonSyntaxChecker instance;  // one per process: CPython is initialized once
  return instance;
}

PythonSyntaxCheck check(const std::string& text, const std::string& file = "/tmp/app.py") {
  std::promise<PythonSyntaxCheck> result;
  checker().check(file, text, [&](PythonSyntaxCheck checked, std::string) { result.set_value(std::move(checked)); });
  return result.get_future().get();
}

}  // namespace

TEST_CASE("python check: an over-indented class field is Python's IndentationError") {
  const auto result = check("class A:\n    x: int = 1\n        y: int = 2\n");
  REQUIRE(result.error);
  CHECK(result.error->type == "IndentationError");
  CHECK(result.error->message == "unexpected indent");
  CHECK(result.error->line == 3);
  CHECK(result.error->column == 8);
  CHECK(result.error->end_line == 3);
  CHECK(result.error->end_column == 0);  // Python says -1: none
  CHECK(result.not_checked.empty());
}

TEST_CASE("python check: the file on disk is never read, its buffer may differ") {
  const auto path = std::filesystem::temp_directory_path() / ("hotd-check-" + std::to_string(::getpid()) + ".py");
  std::ofstream(path) << "class A:\n    x: int = 1\n\n";  // CPython would take the error's line from here
  const auto result = check("class A:\n    x: int = 1\n        y: int = 2\n", path.string());
  std::filesystem::remove(path);
  REQUIRE(result.error);
  CHECK(result.error->line == 3);
  CHECK(result.error->column == 8);
}

TEST_CASE("python check: valid text has no error") {
  const auto result = check("import os\n\nclass A:\n    def f(self):\n        return '\\d'\n");
  CHECK_FALSE(result.error);
  CHECK(result.not_checked.empty());
}

TEST_CASE("python check: errors of the compiler proper, past the parser") {
  const auto result = check("def f(a, a):\n    pass\n");
  REQUIRE(result.error);
  CHECK(result.error->type == "SyntaxError");
  CHECK(result.error->message == "duplicate argument 'a' in function definition");
}

TEST_CASE("python check: columns count code points of UTF-8 text") {
  const auto result = check("s = '\xF0\x9F\x98\x80\xF0\x9F\x98\x80' + (1 2)\n");  // two emoji
  REQUIRE(result.error);
  CHECK(result.error->message == "invalid syntax. Perhaps you forgot a comma?");
  CHECK(result.error->column == 13);
  CHECK(result.error->end_column == 16);
}

TEST_CASE("python check: text that is not UTF-8 is decoded as an import would") {
  const auto invalid = check("x = 1\n\xFF = 2\n");
  REQUIRE(invalid.error);
  CHECK(invalid.error->type == "SyntaxError");
  CHECK(invalid.error->message.find("'utf-8' codec can't decode byte 0xff") != std::string::npos);
  CHECK_FALSE(check("# -*- coding: latin-1 -*-\nx = '\xE9'\n").error);
}

TEST_CASE("python check: a NUL byte is Python's ValueError, placed at the byte") {
  const auto result = check(std::string("x = 1\ny = '\xC3\xA9\0'\n", 16));
  REQUIRE(result.error);
  CHECK(result.error->type == "ValueError");
  CHECK(result.error->message == "source code string cannot contain null bytes");
  CHECK(result.error->line == 2);
  CHECK(result.error->column == 7);
}

TEST_CASE("python check: a text over the size limit is refused, not compiled") {
  const auto result = check(std::string(kMaxPythonCheckBytes + 1, '('));
  CHECK_FALSE(result.error);
  CHECK(result.not_checked == "larger than 1 MiB");
}

TEST_CASE("python check: the text is compiled, never run") {
  const auto marker = std::filesystem::temp_directory_path() / ("hotd-check-ran-" + std::to_string(::getpid()));
  const auto result = check("open(" + std::string("'") + marker.string() + "', 'w').write('ran')\nraise SystemExit(3)\n");
  CHECK_FALSE(result.error);
  CHECK_FALSE(std::filesystem::exists(marker));
}

TEST_CASE("python check: a queued check of the same file is replaced by the newer one") {
  // The worker is busy with a larger file meanwhile, so both checks of b.py are still queued.
  std::string large;
  for (int line = 0; line < 20000; ++line) large += "x" + std::to_string(line) + " = " + std::to_string(line) + "\n";
  std::promise<void> large_done;
  checker().check("/tmp/large.py", large,
                  [&](PythonSyntaxCheck, std::string) { large_done.set_value(); });
  std::vector<std::string> checked;
  std::promise<void> newest_done;
  checker().check("/tmp/b.py", "x = (\n", [&](PythonSyntaxCheck, std::string text) { checked.push_back(text); });
  checker().check("/tmp/b.py", "x = 2\n", [&](PythonSyntaxCheck result, std::string text) {
    CHECK_FALSE(result.error);
    checked.push_back(text);
    newest_done.set_value();
  });
  large_done.get_future().get();
  newest_done.get_future().get();
  CHECK(checked == std::vector<std::string>{"x = 2\n"});
}
