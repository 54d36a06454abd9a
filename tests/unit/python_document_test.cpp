// The definition model: what is found, how it is named, and that an incrementally updated document
// always equals a fresh parse of the same text.
#include <random>
#include <string>

#include <doctest/doctest.h>

#include "expected_output.hpp"
#include "model_description.hpp"
#include "hotd/parser/python_document.hpp"

using namespace hotd;
using parser::DefinitionKind;
using parser::Module;

namespace {

// Reports the first differing line, which is far more readable than two whole models.
void check_same_model(const Module& incremental, const Module& fresh, const std::string& what) {
  const std::string difference = testing::first_difference(incremental, fresh);
  CHECK_MESSAGE(difference.empty(), what << ": incremental model (left) differs from a fresh parse (right) " << difference);
}

const parser::Definition& find(const Module& module, const std::string& qualname, unsigned occurrence = 0) {
  for (const auto& d : module.definitions) {
    if (d.qualname == qualname && d.occurrence == occurrence) return d;
  }
  FAIL("no definition " << qualname);
  throw;
}

}  // namespace

TEST_CASE("qualified names follow Python's __qualname__") {
  const Module m = parser::parse_module(
      "class A:\n"
      "    class B:\n"
      "        def m(self):\n"
      "            def inner():\n"
      "                class Local:\n"
      "                    def lm(self): pass\n"
      "                return Local\n"
      "            return inner\n"
      "def f():\n"
      "    lambda: 0\n"
      "    if True:\n"
      "        def g(): pass\n");
  CHECK(find(m, "A").kind == DefinitionKind::Class);
  CHECK(find(m, "A.B.m").role == parser::FunctionRole::Method);
  CHECK(find(m, "A.B.m.<locals>.inner").in_function);
  CHECK(find(m, "A.B.m.<locals>.inner.<locals>.Local.lm").in_function);
  CHECK(find(m, "f.<locals>.g").in_function);
  CHECK(m.top_level.size() == 2);
}

TEST_CASE("a lone \\r ends a line, as CPython reads it, in a fresh parse and an update") {
  const std::string text = "import os\rdef f():\r    return 1\r\rclass K:\r\n    def m(self):\r        return 2\r";
  const Module m = parser::parse_module(text);
  CHECK(m.errors.empty());
  CHECK(find(m, "f").span.start.line == 1);
  CHECK(find(m, "K").span.start.line == 4);
  CHECK(find(m, "K.m").span.start.line == 5);
  parser::PythonDocument document("import os\r");
  document.update(text);
  check_same_model(document.module(), m, "after an update to lone \\r line endings");
}

TEST_CASE("methods: static, class, property accessors are distinct definitions") {
  const Module m = parser::parse_module(
      "class C:\n"
      "    @staticmethod\n"
      "    def s(): pass\n"
      "    @classmethod\n"
      "    def c(cls): pass\n"
      "    @property\n"
      "    def x(self): return 1\n"
      "    @x.setter\n"
      "    def x(self, v): pass\n"
      "    @x.deleter\n"
      "    def x(self): pass\n");
  CHECK(find(m, "C.s").role == parser::FunctionRole::StaticMethod);
  CHECK(find(m, "C.c").role == parser::FunctionRole::ClassMethod);
  int getters = 0, setters = 0, deleters = 0;
  for (const auto& d : m.definitions) {
    if (d.qualname != "C.x") continue;
    CHECK(d.role == parser::FunctionRole::Property);
    CHECK(d.occurrence == 0);  // each accessor is the first of its kind
    getters += d.accessor == parser::PropertyAccessor::None;
    setters += d.accessor == parser::PropertyAccessor::Setter;
    deleters += d.accessor == parser::PropertyAccessor::Deleter;
  }
  CHECK(getters == 1);
  CHECK(setters == 1);
  CHECK(deleters == 1);
  CHECK(find(m, "C.x").decorators == std::vector<std::string>{"property"});
}

TEST_CASE("flags: async, generators (not counting nested ones), docstrings") {
  const Module m = parser::parse_module(
      "async def a():\n"
      "    '''Doc.'''\n"
      "    await x\n"
      "def g():\n"
      "    yield 1\n"
      "def not_g():\n"
      "    def inner():\n"
      "        yield 2\n"
      "    return [y for y in (lambda: (yield))()]\n");
  CHECK(find(m, "a").is_async);
  CHECK(find(m, "a").docstring.value_or("") == "'''Doc.'''");
  CHECK(find(m, "g").is_generator);
  CHECK_FALSE(find(m, "not_g").is_generator);
  CHECK(find(m, "not_g.<locals>.inner").is_generator);
}

TEST_CASE("conditional definitions are definitions, with occurrences") {
  const Module m = parser::parse_module(
      "import sys\n"
      "if sys.platform == 'linux':\n"
      "    def f(): return 1\n"
      "else:\n"
      "    def f(): return 2\n"
      "try:\n"
      "    from fast import g\n"
      "except ImportError:\n"
      "    def g(): return 3\n"
      "if __name__ == '__main__':\n"
      "    def h(): pass\n");
  CHECK(find(m, "f", 0).span.start.line == 2);
  CHECK(find(m, "f", 1).span.start.line == 4);
  CHECK(find(m, "g").kind == DefinitionKind::Function);
  const auto& block = m.definitions[find(m, "f").parent];
  CHECK(block.is_block);
  CHECK(block.kind == DefinitionKind::Statement);
  bool main_found = false;
  for (const auto& d : m.definitions) {
    CHECK(d.qualname != "h");  // the main block is opaque
    main_found |= d.kind == DefinitionKind::MainBlock;
  }
  CHECK(main_found);
}

TEST_CASE("statements bind names; classes know their field model") {
  const Module m = parser::parse_module(
      "import os.path, json as j\n"
      "from a import b, c as d\n"
      "x, (y, *z) = w = 1, (2, 3)\n"
      "obj.attr = 3\n"
      "from enum import Enum\n"
      "class Color(Enum):\n"
      "    RED = 1\n"
      "class Shade(Color):\n"
      "    pass\n"
      "@dataclasses.dataclass(frozen=True)\n"
      "class P:\n"
      "    __slots__ = ('x',)\n"
      "    x: int\n");
  CHECK(m.definitions[0].binds == std::vector<std::string>{"os", "j"});
  CHECK(m.definitions[1].binds == std::vector<std::string>{"b", "d"});
  CHECK(m.definitions[2].binds == std::vector<std::string>{"x", "y", "z", "w"});
  CHECK(m.definitions[3].binds.empty());
  CHECK(find(m, "Color").field_model == parser::FieldModel::Enum);
  CHECK(find(m, "Shade").field_model == parser::FieldModel::Enum);
  CHECK(find(m, "P").field_model == parser::FieldModel::Dataclass);
  bool slots = false;
  for (const auto& d : m.definitions) slots |= d.binds_slots;
  CHECK(slots);
}

TEST_CASE("comments and formatting do not change the content hash, but new lines change the layout") {
  const Module a = parser::parse_module("def f(a,b):\n    return a+b\n");
  const Module b = parser::parse_module("def f(a, b):  # adds\n    return a + b  # sum\n");
  const Module c = parser::parse_module("def f(a, b):\n    # a new line\n    return a + b\n");
  const Module d = parser::parse_module("def f(a, b):\n    return a - b\n");
  CHECK(a.definitions[0].content_hash == b.definitions[0].content_hash);
  CHECK(a.definitions[0].layout_hash == b.definitions[0].layout_hash);
  CHECK(a.definitions[0].content_hash == c.definitions[0].content_hash);
  CHECK(a.definitions[0].layout_hash != c.definitions[0].layout_hash);
  CHECK(a.definitions[0].content_hash != d.definitions[0].content_hash);
}

TEST_CASE("parsing never fails: syntax errors come with the definitions that could be read") {
  const Module m = parser::parse_module("def ok():\n    return 1\n\ndef broken(:\n    pass\n\ndef later():\n    pass\n");
  REQUIRE(m.has_errors());
  CHECK(m.errors[0].start.line == 3);
  CHECK(find(m, "ok").kind == DefinitionKind::Function);
  CHECK(find(m, "later").kind == DefinitionKind::Function);

  const Module empty = parser::parse_module("");
  CHECK(empty.definitions.empty());
  CHECK_FALSE(empty.has_errors());
}

TEST_CASE("incremental update equals a fresh parse, for every fixture in both directions") {
  for (const auto& entry : std::filesystem::directory_iterator(testing::fixtures_dir() / "diff")) {
    const std::string before = testing::read_text(entry.path() / "before.py");
    const std::string after = testing::read_text(entry.path() / "after.py");
    parser::PythonDocument forward(before);
    forward.update(after);
    check_same_model(forward.module(), parser::parse_module(after), entry.path().filename().string() + " forward");
    parser::PythonDocument backward(after);
    backward.update(before);
    check_same_model(backward.module(), parser::parse_module(before), entry.path().filename().string() + " backward");
  }
}

TEST_CASE("incremental update equals a fresh parse under hundreds of random edits") {
  std::string source;
  for (int i = 0; i < 40; ++i) {
    source += "class C" + std::to_string(i) + "(Base):\n    '''Doc.'''\n    X = " + std::to_string(i) +
              "\n\n    def m(self, a=1):\n        # comment\n        return a + " + std::to_string(i) +
              "\n\n    @property\n    def p(self):\n        return 1\n\n";
    source += "def f" + std::to_string(i) + "(x):\n    def g():\n        return x\n    return g\n\n";
    source += "if FLAG:\n    def c" + std::to_string(i) + "(): pass\n\n";
  }
  const std::vector<std::string> snippets = {
      "\n", "# note\n", "    ", "x = 1\n", "def new():\n    pass\n", "(", ")", ":", "class K:\n    pass\n",
      "\"\"\"", "yield 3\n", "@deco\n", "  # trailing", "if __name__ == '__main__':\n    run()\n", "é", "\r\n"};
  std::mt19937 random(20261122);
  parser::PythonDocument document(source);
  for (int step = 0; step < 300; ++step) {
    std::string next = document.source();
    const std::size_t at = next.empty() ? 0 : random() % next.size();
    switch (random() % 3) {
      case 0: next.insert(at, snippets[random() % snippets.size()]); break;
      case 1: next.erase(at, 1 + random() % 40); break;
      default: next[at] = "abcxyz =()\n:#"[random() % 13]; break;
    }
    document.update(next);
    check_same_model(document.module(), parser::parse_module(next), "random edit " + std::to_string(step));
  }
}

TEST_CASE("valid edits reparse only a region, and the model still equals a fresh parse") {
  std::string source = "\"\"\"Module doc.\"\"\"\nimport os\n\n";
  for (int i = 0; i < 30; ++i) {
    const std::string n = std::to_string(i);
    source += "class C" + n + "(Base):\n    X = " + n + "\n\n    def m(self, a=1):\n        return a + " + n +
              "\n\n\ndef f" + n + "(x):\n    return x * " + n + "\n\nVALUE_" + n + " = " + n + "; OTHER_" + n +
              " = 2\n\n";
  }
  // Edits that keep the module valid: all of them must take the region path.
  const std::vector<std::pair<std::string, std::string>> edits = {
      {"return a + 7\n", "return a + 700\n"},              // a method body
      {"def f12(x):\n", "# moved\ndef f12(x):\n"},         // a comment line before an item (at its first byte)
      {"def f3(x):\n    return x * 3\n", "def f3(x):\n    y = 1\n    return x * 3 + y\n"},
      {"VALUE_20 = 20", "VALUE_20 = 21"},                  // the first of two statements on one line
      {"OTHER_21 = 2", "OTHER_21 = 3"},                    // the second of two statements on one line
      {"\"\"\"Module doc.\"\"\"", "\"\"\"New doc.\"\"\""}, // the module docstring
      {"class C29(Base):\n", "class C29(Base, Mixin):\n"},
      {"import os\n", "import os\nimport sys\n"},
      {"    X = 5\n", "    X = 5\n    Y = 6\n"},
      {"def f29(x):\n    return x * 29\n", "def f29(x):\n    return x * 29\n\ndef added():\n    pass\n"},
  };
  parser::PythonDocument document(source);
  for (const auto& [from, to] : edits) {
    std::string next = document.source();
    const std::size_t at = next.find(from);
    REQUIRE(at != std::string::npos);
    next.replace(at, from.size(), to);
    document.update(next);
    CHECK_MESSAGE(document.last_update_was_partial(), "edit " << from << " reparsed everything");
    check_same_model(document.module(), parser::parse_module(next), "edit " + from);
    document.update(source);  // and back
    CHECK(document.last_update_was_partial());
    check_same_model(document.module(), parser::parse_module(source), "undo " + from);
  }
}

TEST_CASE("edits whose effect crosses the region fall back to a full parse and stay exact") {
  const std::string source = "def a():\n    return 1\n\ndef b():\n    return 2\n\ndef c():\n    return 3\n";
  const std::vector<std::pair<std::string, std::string>> edits = {
      {"return 1\n", "return '''1\n"},    // an unterminated string swallows what follows
      {"return 1\n", "return (1\n"},      // an unclosed bracket
      {"return 1\n", "return 1 + \\\n"},  // a line continuation into the next item
  };
  for (const auto& [from, to] : edits) {
    parser::PythonDocument document(source);
    std::string next = source;
    next.replace(next.find(from), from.size(), to);
    document.update(next);
    CHECK_FALSE(document.last_update_was_partial());
    check_same_model(document.module(), parser::parse_module(next), "edit " + to);
    CHECK(document.module().has_errors());
  }
}

TEST_CASE("a text ending inside an unterminated f-string does not change how the next text is read") {
  // Found by tests/fuzz/parser_fuzzer: the grammar's scanner kept `inside_f_string` across parses.
  const std::string valid = "def f():\n    return 1\ndef g():\n    return 2\n";
  parser::PythonDocument document("x = f\"");
  REQUIRE(document.module().has_errors());
  document.update(valid);
  CHECK_FALSE(document.module().has_errors());
  check_same_model(document.module(), parser::parse_module(valid), "after an unterminated f-string");
}

TEST_CASE("a run of comment or continuation lines libtree-sitter 0.20 cannot free is refused, not parsed") {
  // 65,535 extras in a row corrupt libtree-sitter 0.20's heap (tree-sitter/tree-sitter#2134); under
  // the sanitizers, parsing any of these texts fails the run.
  auto repeat = [](const std::string& line, int times) {
    std::string text;
    for (int i = 0; i < times; ++i) text += line;
    return text;
  };
  const std::string code = "def f():\n    return 1\n";
  for (const std::string& text : {repeat("#\n", 70'000), repeat("# note\n\n", 66'000), repeat("\\\n", 70'000),
                                  code + repeat("#\n\\\n", 35'000) + code,
                                  "def g():\n    x = 1\n" + repeat("    #\n", 70'000) + "    return x\n"}) {
    const Module m = parser::parse_module(text);
    REQUIRE(m.errors.size() == 1);
    CHECK(m.errors[0].message.find("comment or line-continuation lines in a row") != std::string::npos);
    CHECK(m.definitions.empty());
  }

  SUBCASE("one line fewer than the limit is parsed") {
    const Module m = parser::parse_module(repeat("#\n", 59'999) + code);
    CHECK_FALSE(m.has_errors());
    CHECK(find(m, "f").span.start.line == 59'999);
  }
  SUBCASE("an edit that makes the run reach the limit is refused, and one that breaks it parses again") {
    parser::PythonDocument document(code + repeat("#\n", 59'999) + code);
    REQUIRE_FALSE(document.module().has_errors());
    document.update(code + repeat("#\n", 60'000) + code);
    REQUIRE(document.module().errors.size() == 1);
    CHECK(document.module().errors[0].start.line == 2);
    const std::string broken = code + repeat("#\n", 30'000) + "x = 1\n" + repeat("#\n", 30'000) + code;
    document.update(broken);
    CHECK_FALSE(document.module().has_errors());
    check_same_model(document.module(), parser::parse_module(broken), "after the run was broken");
  }
}

TEST_CASE("a text the grammar's scanner would take minutes over is given up on within its time budget") {
  // tree-sitter-python 0.23.6 reads all the comment lines ahead at each end of line in a block:
  // 59,990 of them take minutes. The budget for this 0.36 MB text is 1.7 s.
  std::string body;
  for (int i = 0; i < 59'990; ++i) body += "    #\n";
  const std::string text = "def g():\n    x = 1\n" + body + "    return x\n";
  parser::PythonDocument document(text);
  REQUIRE(document.module().errors.size() == 1);
  CHECK(document.module().errors[0].message.find("the parser gave up after 1.7 s") != std::string::npos);
  CHECK(document.module().definitions.empty());

  // The parser is usable again at once, and a region reparse that runs out of time gives up too.
  const std::string fine = "def g():\n    x = 1\n    return x\n\ndef h():\n    pass\n";
  document.update(fine);
  CHECK_FALSE(document.module().has_errors());
  document.update("def g():\n    x = 1\n" + body + "    return x\n\ndef h():\n    pass\n");
  REQUIRE(document.module().errors.size() == 1);
  CHECK(document.module().errors[0].message.find("gave up") != std::string::npos);
}
