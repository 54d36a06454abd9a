#include "lsp_document.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace hotd::server {

namespace {

// Length in bytes of the UTF-8 sequence starting with `lead` (1 for stray continuation bytes, so
// that a walk always advances; the JSON parser has already rejected invalid UTF-8).
std::size_t sequence_length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// The first line break ("\n" or "\r") at or after `from`, or the end of the text. Two memchr calls
// run at memory speed, where find_first_of tests every byte against each character of its set.
std::size_t next_break(std::string_view text, std::size_t from) {
  const char* const begin = text.data() + from;
  const std::size_t length = text.size() - from;
  const void* const newline = std::memchr(begin, '\n', length);
  const std::size_t limit = newline ? static_cast<std::size_t>(static_cast<const char*>(newline) - begin) : length;
  const void* const carriage = std::memchr(begin, '\r', limit);
  return from + (carriage ? static_cast<std::size_t>(static_cast<const char*>(carriage) - begin) : limit);
}

// Byte offset of the start of 0-based `line`, or nullopt past the last line. Line breaks are
// "\n", "\r\n" and "\r", as in the LSP specification.
std::optional<std::size_t> line_start(std::string_view text, std::uint32_t line) {
  std::size_t offset = 0;
  for (std::uint32_t current = 0; current < line; ++current) {
    const std::size_t brk = next_break(text, offset);
    if (brk == text.size()) return std::nullopt;
    offset = brk + (text[brk] == '\r' && brk + 1 < text.size() && text[brk + 1] == '\n' ? 2 : 1);
  }
  return offset;
}

// How many of the first `limit` bytes from `at` are ASCII: one code point and one UTF-16 unit each.
// Eight at a time, so that an edit at the end of a long line costs little more than one at its start.
std::size_t ascii_run(std::string_view text, std::size_t at, std::size_t limit) {
  constexpr std::uint64_t high_bits = 0x8080808080808080ull;
  std::size_t run = 0;
  for (std::uint64_t word; run + 8 <= limit; run += 8) {
    std::memcpy(&word, text.data() + at + run, 8);
    if (word & high_bits) break;
  }
  while (run < limit && static_cast<unsigned char>(text[at + run]) < 0x80) ++run;
  return run;
}

}  // namespace

std::size_t byte_offset(std::string_view text, LspPosition position) {
  const auto start = line_start(text, position.line);
  if (!start) return text.size();
  const std::size_t end = next_break(text, *start);
  std::size_t offset = *start;
  std::uint32_t units = 0;
  while (offset < end && units < position.character) {
    const std::size_t run = ascii_run(text, offset, std::min<std::size_t>(end - offset, position.character - units));
    offset += run;
    units += static_cast<std::uint32_t>(run);
    if (offset == end || units == position.character) break;
    const std::size_t length = sequence_length(static_cast<unsigned char>(text[offset]));
    const std::uint32_t width = length == 4 ? 2 : 1;  // outside the BMP: a surrogate pair
    if (units + width > position.character) break;
    units += width;
    offset += length;
  }
  return std::min(offset, end);
}

LspPosition position_of_code_point_column(std::string_view text, std::uint32_t line, std::uint32_t column) {
  LspPosition position{line > 0 ? line - 1 : 0, 0};
  const auto start = line_start(text, position.line);
  if (!start) return position;
  const std::size_t end = next_break(text, *start);
  std::size_t offset = *start;
  for (std::uint32_t point = 1; point < column && offset < end;) {
    const std::size_t run = ascii_run(text, offset, std::min<std::size_t>(end - offset, column - point));
    offset += run;
    point += static_cast<std::uint32_t>(run);
    position.character += static_cast<std::uint32_t>(run);
    if (point >= column || offset >= end) break;
    const std::size_t length = sequence_length(static_cast<unsigned char>(text[offset]));
    position.character += length == 4 ? 2 : 1;
    offset += length;
    ++point;
  }
  return position;
}

LspPosition end_of_line(std::string_view text, std::uint32_t line) {
  const auto start = line_start(text, line);
  if (!start) return {line, 0};
  return position_of_code_point_column(text, line + 1, 0xFFFFFFFFu);
}

bool LspDocument::apply_change(const LspRange& range, std::string_view replacement) {
  const std::size_t begin = byte_offset(text_, range.start);
  const std::size_t end = byte_offset(text_, range.end);
  if (end < begin) return false;
  text_.replace(begin, end - begin, replacement);
  return true;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> uri_to_path(std::string_view uri) {
  constexpr std::string_view scheme = "file://";
  if (uri.size() < scheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(uri[i])) != scheme[i]) return std::nullopt;
  }
  std::string_view rest = uri.substr(scheme.size());
  if (rest.starts_with("localhost/")) rest.remove_prefix(std::string_view("localhost").size());
  if (!rest.starts_with('/')) return std::nullopt;  // file://host/path: not a local file
  std::string path;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '?' || rest[i] == '#') break;
    if (rest[i] != '%') {
      path += rest[i];
      continue;
    }
    if (i + 2 >= rest.size()) return std::nullopt;
    const int high = hex_value(rest[i + 1]);
    const int low = hex_value(rest[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    const char decoded = static_cast<char>(high * 16 + low);
    if (decoded == '\0') return std::nullopt;
    path += decoded;
    i += 2;
  }
  return path;
}

std::string path_to_uri(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string uri = "file://";
  for (const char c : path) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
      uri += c;
    } else {
      uri += '%';
      uri += kHex[byte >> 4];
      uri += kHex[byte & 15];
    }
  }
  return uri;
}

}  // namespace hotd::server
