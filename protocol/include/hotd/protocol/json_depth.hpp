// A guard run before parsing any JSON a peer sent: nlohmann::json builds, copies and destroys values
// recursively, so a message nested a million levels deep (2 MB of brackets) would overflow the
// daemon's stack. No message of hotd's protocols comes close to the limit.
#pragma once

#include <cstddef>
#include <string_view>

namespace hotd::protocol {

inline constexpr int kMaxJsonDepth = 256;

// Whether the arrays and objects in `text` nest at most `limit` deep. Linear, no allocation; brackets
// inside strings do not count. Malformed text is left for the parser to reject.
inline bool json_depth_within(std::string_view text, int limit = kMaxJsonDepth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

}  // namespace hotd::protocol
