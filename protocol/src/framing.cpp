#include "hotd/protocol/framing.hpp"

#include <charconv>

namespace hotd::protocol {

std::string frame_message(std::string_view body) {
  std::string out = "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out.append(body);
  return out;
}

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

bool FrameDecoder::parse_header() {
  // The limit counts the header up to its last byte, whether or not that byte has arrived, so that
  // the outcome does not depend on how the stream was split into reads.
  const std::size_t end = buffer_.find("\r\n\r\n");
  if ((end == std::string::npos ? buffer_.size() : end + 3) > kMaxHeaderBytes) {
    error_ = "message header longer than 8 KiB";
    return false;
  }
  if (end == std::string::npos) return false;
  std::optional<std::size_t> length;
  std::string_view headers(buffer_.data(), end);
  while (!headers.empty()) {
    const std::size_t line_end = headers.find("\r\n");
    const std::string_view line = headers.substr(0, line_end);
    headers = line_end == std::string_view::npos ? std::string_view() : headers.substr(line_end + 2);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      error_ = "malformed header line (no ':')";
      return false;
    }
    const std::string_view name = trim(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (!iequals(name, "Content-Length")) continue;  // Content-Type and unknown headers are ignored
    std::size_t parsed = 0;
    const auto [rest, status] = std::from_chars(value.data(), value.data() + value.size(), parsed);
    if (status != std::errc() || rest != value.data() + value.size() || value.empty()) {
      error_ = "Content-Length is not a non-negative integer: '" + std::string(value.substr(0, 32)) + "'";
      return false;
    }
    if (length && *length != parsed) {
      error_ = "conflicting Content-Length headers";
      return false;
    }
    length = parsed;
  }
  if (!length) {
    error_ = "message header without Content-Length";
    return false;
  }
  if (*length > max_body_) {
    error_ = "message of " + std::to_string(*length) + " bytes exceeds the limit of " + std::to_string(max_body_);
    return false;
  }
  buffer_.erase(0, end + 4);
  body_length_ = length;
  return true;
}

std::optional<std::string> FrameDecoder::next() {
  if (failed()) return std::nullopt;
  if (!body_length_ && !parse_header()) return std::nullopt;
  if (buffer_.size() < *body_length_) return std::nullopt;
  std::string body = buffer_.substr(0, *body_length_);
  buffer_.erase(0, *body_length_);
  body_length_.reset();
  return body;
}

}  // namespace hotd::protocol
