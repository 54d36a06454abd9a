#include "expected_output.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>

namespace hotd::testing {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

std::filesystem::path fixtures_dir() { return HOTD_FIXTURES_DIR; }

void check_expected(const std::filesystem::path& expected_file, const std::string& actual) {
  const char* update = std::getenv("HOTD_UPDATE_EXPECTED");
  if (update && std::string(update) == "1") {
    std::ofstream(expected_file, std::ios::binary) << actual;
    return;
  }
  INFO("expected output file: " << expected_file.string() << " (HOTD_UPDATE_EXPECTED=1 rewrites it)");
  REQUIRE_MESSAGE(std::filesystem::exists(expected_file), "missing expected file");
  CHECK(read_text(expected_file) == actual);
}

}  // namespace hotd::testing
