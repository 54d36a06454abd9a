// The one check helper for data-driven tests: compares `actual` with the expected file, or rewrites
// the file when HOTD_UPDATE_EXPECTED=1 (then review the change with git diff).
#pragma once

#include <filesystem>
#include <string>

namespace hotd::testing {

std::string read_text(const std::filesystem::path& path);

// Fails the current doctest check, showing both texts, when they differ.
void check_expected(const std::filesystem::path& expected_file, const std::string& actual);

std::filesystem::path fixtures_dir();

}  // namespace hotd::testing
