// An editor's buffer as LSP describes it: text in UTF-8, positions as (line, UTF-16 code unit), and
// `file://` URIs. No JSON, no I/O: the conversions editors and hotd disagree on, kept in one place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hotd::server {

struct LspPosition {
  std::uint32_t line = 0;
  std::uint32_t character = 0;  // UTF-16 code units, as LSP counts by default
};

struct LspRange {
  LspPosition start;
  LspPosition end;
};

// Byte offset in `text` of an LSP position. As the specification asks, a character past the end of
// its line means the end of the line and a line past the end means the end of the text; a position
// inside a surrogate pair rounds down to the code point.
std::size_t byte_offset(std::string_view text, LspPosition position);

// The LSP position of a 1-based (line, column) where the column counts code points, as Python's
// SyntaxError and hotd's plan errors do.
LspPosition position_of_code_point_column(std::string_view text, std::uint32_t line, std::uint32_t column);

// The end of 0-based `line` (before its line break), for diagnostics that cover a whole line.
LspPosition end_of_line(std::string_view text, std::uint32_t line);

class LspDocument {
 public:
  LspDocument(std::string text, std::int64_t version) : text_(std::move(text)), version_(version) {}

  // Replaces `range` with `replacement`. Returns false (and changes nothing) when end precedes start.
  bool apply_change(const LspRange& range, std::string_view replacement);
  void replace_all(std::string text) { text_ = std::move(text); }
  void set_version(std::int64_t version) { version_ = version; }

  const std::string& text() const { return text_; }
  std::int64_t version() const { return version_; }

 private:
  std::string text_;
  std::int64_t version_;
};

// `file:///a/b%20c.py` -> `/a/b c.py`; nullopt for other schemes, remote hosts or bad escapes.
std::optional<std::string> uri_to_path(std::string_view uri);
// The inverse, percent-encoding everything but unreserved characters and '/'.
std::string path_to_uri(std::string_view path);

}  // namespace hotd::server
