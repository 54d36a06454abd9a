// LSP base framing: "Content-Length: N\r\n\r\n" followed by N bytes of JSON. Used on every hotd
// socket (editors, agents, the command line). Bytes only: no JSON parsing, no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace hotd::protocol {

inline constexpr std::size_t kDefaultMaxMessageBytes = 64 * 1024 * 1024;
inline constexpr std::size_t kMaxHeaderBytes = 8 * 1024;

std::string frame_message(std::string_view body);

// Incremental decoder: feed bytes as they arrive, take complete message bodies out. After an error
// the stream cannot be resynchronised and the connection should be closed.
class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_message_bytes = kDefaultMaxMessageBytes) : max_body_(max_message_bytes) {}

  // Bytes after an error are dropped: a peer that keeps sending cannot grow the buffer.
  void feed(std::string_view bytes) {
    if (!failed()) buffer_.append(bytes);
  }

  // The next complete body, or nullopt when more bytes are needed or after an error.
  std::optional<std::string> next();

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  std::size_t buffered() const { return buffer_.size(); }

 private:
  bool parse_header();

  std::string buffer_;
  std::size_t max_body_;
  std::optional<std::size_t> body_length_;  // known once the header was parsed
  std::string error_;
};

}  // namespace hotd::protocol
