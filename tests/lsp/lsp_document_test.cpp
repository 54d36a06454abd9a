// Positions and URIs as LSP defines them: UTF-16 code units, three kinds of line breaks, clamping.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "lsp_document.hpp"

using namespace hotd::server;

TEST_CASE("UTF-16 positions map to UTF-8 bytes for 1- to 4-byte characters") {
  const std::string text = "aé€😀z\n";  // bytes: 1, 2, 3, 4, 1; UTF-16 units: 1, 1, 1, 2, 1
  CHECK(byte_offset(text, {0, 0}) == 0);
  CHECK(byte_offset(text, {0, 1}) == 1);
  CHECK(byte_offset(text, {0, 2}) == 3);
  CHECK(byte_offset(text, {0, 3}) == 6);
  CHECK(byte_offset(text, {0, 5}) == 10);  // after the surrogate pair
  CHECK(byte_offset(text, {0, 4}) == 6);   // inside the pair: rounds down to the code point
  CHECK(byte_offset(text, {0, 6}) == 11);
  CHECK(byte_offset(text, {0, 99}) == 11);  // past the end of the line: the end of the line
  CHECK(byte_offset(text, {7, 0}) == text.size());  // past the last line: the end of the text
}

TEST_CASE("lines end at \\n, \\r\\n and \\r") {
  const std::string text = "a\r\nb\rc\nd";
  CHECK(byte_offset(text, {1, 0}) == 3);
  CHECK(byte_offset(text, {2, 0}) == 5);
  CHECK(byte_offset(text, {3, 0}) == 7);
  CHECK(byte_offset(text, {1, 5}) == 4);
}

namespace {

// One character at a time, as the specification reads: the model the word-at-a-time walk must match.
std::size_t byte_offset_by_characters(const std::string& text, LspPosition position) {
  std::size_t offset = 0;
  for (std::uint32_t line = 0; line < position.line; ++line) {
    while (offset < text.size() && text[offset] != '\n' && text[offset] != '\r') ++offset;
    if (offset == text.size()) return text.size();
    offset += text.compare(offset, 2, "\r\n") == 0 ? 2 : 1;
  }
  for (std::uint32_t units = 0; offset < text.size() && text[offset] != '\n' && text[offset] != '\r';) {
    const auto lead = static_cast<unsigned char>(text[offset]);
    const std::size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    units += length == 4 ? 2 : 1;
    if (units > position.character) break;
    offset += length;
  }
  return offset;
}

}  // namespace

TEST_CASE("runs of ASCII of every length around 8 (the walk's word) map like one character at a time") {
  const std::string wide[] = {"é", "€", "😀"};
  for (std::size_t run = 0; run <= 17; ++run) {
    for (const std::string& character : wide) {
      const std::string text = std::string(run, 'a') + character + std::string(17 - run, 'b') + character +
                               "\r\n" + std::string(run, 'c') + character + "\rz";
      for (std::uint32_t line = 0; line < 4; ++line) {
        for (std::uint32_t unit = 0; unit < 40; ++unit) {
          CAPTURE(run);
          CAPTURE(line);
          CAPTURE(unit);
          CHECK(byte_offset(text, {line, unit}) == byte_offset_by_characters(text, {line, unit}));
        }
      }
      CHECK(end_of_line(text, 0).character == 17 + 2 * (character == "😀" ? 2u : 1u));  // 17 ASCII, two wide
    }
  }
}

TEST_CASE("incremental changes replace ranges and refuse reversed ones") {
  LspDocument document("x = '😀'\ny = 1\n", 1);
  CHECK(document.apply_change({{0, 7}, {0, 7}}, "!"));
  CHECK(document.text() == "x = '😀!'\ny = 1\n");
  CHECK(document.apply_change({{0, 9}, {1, 4}}, "\nz = "));
  CHECK(document.text() == "x = '😀!'\nz = 1\n");
  CHECK_FALSE(document.apply_change({{1, 3}, {1, 1}}, "?"));
  CHECK(document.text() == "x = '😀!'\nz = 1\n");
}

TEST_CASE("code point columns (Python's) become UTF-16 characters") {
  const std::string text = "s = '😀' + (\n";
  CHECK(position_of_code_point_column(text, 1, 1).character == 0);
  CHECK(position_of_code_point_column(text, 1, 7).character == 7);  // after the emoji: one point, two units
  CHECK(position_of_code_point_column(text, 1, 12).character == 12);
  CHECK(end_of_line(text, 0).character == 12);
  CHECK(end_of_line("a\nbé😀\n", 1).character == 4);
}

TEST_CASE("file URIs and paths, with percent-encoding") {
  CHECK(uri_to_path("file:///tmp/a%20b/c%C3%A9.py") == std::optional<std::string>("/tmp/a b/cé.py"));
  CHECK(uri_to_path("FILE:///x.py") == std::optional<std::string>("/x.py"));
  CHECK(uri_to_path("file://localhost/x.py") == std::optional<std::string>("/x.py"));
  CHECK_FALSE(uri_to_path("untitled:Untitled-1").has_value());
  CHECK_FALSE(uri_to_path("file://server/share/x.py").has_value());
  CHECK_FALSE(uri_to_path("file:///bad%2").has_value());
  CHECK_FALSE(uri_to_path("file:///nul%00.py").has_value());
  CHECK(path_to_uri("/tmp/a b/cé.py") == "file:///tmp/a%20b/c%C3%A9.py");
  CHECK(uri_to_path(path_to_uri("/odd #?%/x.py")) == std::optional<std::string>("/odd #?%/x.py"));
}
