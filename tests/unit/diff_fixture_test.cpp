// Every folder under tests/fixtures/diff/ is a case: before.py, after.py and expected.txt, the plan
// as `hotd diff` prints it. The plan is computed twice, from fresh parses and from an incrementally
// updated document, and both must match the expected text.
#include <algorithm>
#include <filesystem>
#include <vector>

#include <doctest/doctest.h>

#include "expected_output.hpp"
#include "hotd/parser/patch_plan.hpp"
#include "hotd/parser/python_document.hpp"
#include "hotd/protocol/plan_text.hpp"

namespace fs = std::filesystem;
using namespace hotd;

namespace {

std::vector<fs::path> diff_cases() {
  std::vector<fs::path> cases;
  for (const auto& entry : fs::directory_iterator(testing::fixtures_dir() / "diff")) {
    if (entry.is_directory()) cases.push_back(entry.path());
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

}  // namespace

TEST_CASE("diff fixtures: the plan matches expected.txt") {
  const auto cases = diff_cases();
  REQUIRE(cases.size() >= 40);
  for (const fs::path& dir : cases) {
    SUBCASE(dir.filename().string().c_str()) {
      const std::string before_source = testing::read_text(dir / "before.py");
      const std::string after_source = testing::read_text(dir / "after.py");
      const parser::Module before = parser::parse_module(before_source);
      const parser::Module after = parser::parse_module(after_source);
      const parser::Plan plan = parser::diff_modules(before, after);
      testing::check_expected(dir / "expected.txt", protocol::format_plan(plan, after));

      parser::PythonDocument document(before_source);
      document.update(after_source);
      const parser::Plan incremental = parser::diff_modules(before, document.module());
      CHECK(protocol::format_plan(incremental, document.module()) == protocol::format_plan(plan, after));
    }
  }
}
