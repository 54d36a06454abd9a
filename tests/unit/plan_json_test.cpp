// The JSON plan: the fields the agent and editors rely on (docs/PROTOCOL.md).
#include <doctest/doctest.h>

#include "hotd/parser/patch_plan.hpp"
#include "hotd/parser/python_document.hpp"
#include "hotd/protocol/plan_json.hpp"

using namespace hotd;
using nlohmann::json;

namespace {

json plan_json(const std::string& before, const std::string& after) {
  const parser::Module old_module = parser::parse_module(before);
  const parser::Module new_module = parser::parse_module(after);
  return protocol::plan_to_json(parser::diff_modules(old_module, new_module), new_module);
}

}  // namespace

TEST_CASE("a method update carries its source lines and enclosing scope headers") {
  const json plan = plan_json(
      "if True:\n    class Shop:\n        @staticmethod\n        def price(x):\n            return x\n",
      "if True:\n    class Shop:\n        @staticmethod\n        def price(x):\n            return x * 2\n");
  REQUIRE(plan["ok"] == true);
  REQUIRE(plan["changes"].size() == 1);
  const json& change = plan["changes"][0];
  CHECK(change["op"] == "update");
  CHECK(change["kind"] == "staticmethod");
  CHECK(change["qualname"] == "Shop.price");
  CHECK(change["line"] == 3);
  CHECK(change["old_line"] == 3);
  CHECK(change["source"] == "        @staticmethod\n        def price(x):\n            return x * 2\n");
  CHECK(change["scope"] == json::array({"if True:", "    class Shop:"}));
  CHECK(change["decorators"] == json::array({"staticmethod"}));
  CHECK(plan["summary"]["update"] == 1);
}

TEST_CASE("statements have a null qualname, a label and the names they bind") {
  const json plan = plan_json("RATE = 1\n", "RATE = 2\n");
  REQUIRE(plan["changes"].size() == 1);
  const json& change = plan["changes"][0];
  CHECK(change["op"] == "exec");
  CHECK(change["kind"] == "statement");
  CHECK(change["qualname"].is_null());
  CHECK(change["label"] == "RATE = 2");
  CHECK(change["binds"] == json::array({"RATE"}));
  CHECK(change["source"] == "RATE = 2\n");
}

TEST_CASE("rude and skip changes carry a reason; deletes point into the old file") {
  const json plan = plan_json("class A(metaclass=M):\n    pass\ndef gone():\n    pass\n", "class A(metaclass=N):\n    pass\n");
  REQUIRE(plan["changes"].size() == 2);
  CHECK(plan["changes"][0]["op"] == "delete");
  CHECK(plan["changes"][0]["line"] == 3);
  CHECK(plan["changes"][0]["in_old_file"] == true);
  CHECK(plan["changes"][1]["op"] == "rude");
  CHECK(plan["changes"][1]["reason"].get<std::string>().find("class keywords of `A` changed (metaclass=M -> metaclass=N)") !=
        std::string::npos);
}

TEST_CASE("new bases are an update with `bases`; a removed class attribute a delete with its names and scope") {
  const json plan = plan_json("class A(B, metaclass=M):\n    x = 1\n    y = 2\n", "class A(B, C, metaclass=M):\n    y = 2\n");
  REQUIRE(plan["changes"].size() == 2);
  const json& bases = plan["changes"][0];
  CHECK(bases["op"] == "update");
  CHECK(bases["kind"] == "class");
  CHECK(bases["bases"] == json::array({"B", "C"}));
  CHECK_FALSE(bases.contains("source"));
  const json& removed = plan["changes"][1];
  CHECK(removed["op"] == "delete");
  CHECK(removed["kind"] == "statement");
  CHECK(removed["binds"] == json::array({"x"}));
  CHECK(removed["scope"] == json::array({"class A:"}));
  CHECK(removed["in_old_file"] == true);
}

TEST_CASE("changed decorators are an update with `rebind`, the old decorators and the whole source") {
  const json plan = plan_json("@route('/a')\ndef index():\n    return 1\n", "@route('/b')\n@cache\ndef index():\n    return 1\n");
  REQUIRE(plan["changes"].size() == 1);
  const json& change = plan["changes"][0];
  CHECK(change["op"] == "update");
  CHECK(change["rebind"] == true);
  CHECK(change["decorators"] == json::array({"route('/b')", "cache"}));
  CHECK(change["old_decorators"] == json::array({"route('/a')"}));
  CHECK(change["source"] == "@route('/b')\n@cache\ndef index():\n    return 1\n");
  CHECK(change["header_line"] == 3);
  CHECK(plan_json("def f():\n    return 1\n", "def f():\n    return 2\n")["changes"][0].contains("rebind") == false);
}

TEST_CASE("a syntax error yields no plan and 1-based positions in characters") {
  const json plan = plan_json("t = 1\n", "t = 'éé' + [1 2]\n");
  CHECK(plan["ok"] == false);
  CHECK(plan["changes"].empty());
  REQUIRE_FALSE(plan["errors"].empty());
  CHECK(plan["errors"][0]["line"] == 1);
  CHECK(plan["errors"][0]["column"] == 15);  // the `2`, counted in characters, not bytes (17)
  CHECK(plan["errors"][0]["message"].is_string());
}
