// Framing decoders on both ends of a connection: the daemon's (protocol::FrameDecoder) and the agent's
// (runtime/agent/agent_frame.c). Regression cases from tests/fuzz.
#include <cstdlib>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "hotd/protocol/framing.hpp"

extern "C" {
#include "agent_frame.h"
}

using hotd::protocol::FrameDecoder;

TEST_CASE("framed bodies come back whole, also from reads of one byte") {
  const std::string stream = hotd::protocol::frame_message("{\"a\":1}") + hotd::protocol::frame_message("");
  FrameDecoder decoder;
  std::vector<std::string> bodies;
  for (const char byte : stream) {
    decoder.feed(std::string_view(&byte, 1));
    while (auto body = decoder.next()) bodies.push_back(*body);
  }
  CHECK(bodies == std::vector<std::string>{"{\"a\":1}", ""});
  CHECK_FALSE(decoder.failed());
}

TEST_CASE("after a framing error, further bytes are dropped instead of buffered") {
  FrameDecoder decoder;
  decoder.feed("Content-Length: x\r\n\r\n");
  CHECK_FALSE(decoder.next());
  REQUIRE(decoder.failed());
  const std::size_t buffered = decoder.buffered();
  decoder.feed(std::string(1 << 20, 'a'));
  CHECK(decoder.buffered() == buffered);
}

TEST_CASE("a header over 8 KiB fails whether its end arrives in the same read or a later one") {
  const std::string header = "X-Pad: " + std::string(hotd::protocol::kMaxHeaderBytes, 'a') + "\r\nContent-Length: 2\r\n\r\n{}";
  FrameDecoder whole;
  whole.feed(header);
  CHECK_FALSE(whole.next());
  CHECK(whole.failed());

  FrameDecoder split;
  split.feed(header.substr(0, hotd::protocol::kMaxHeaderBytes + 1));
  CHECK_FALSE(split.next());
  CHECK(split.failed());
}

namespace {

// Runs the agent's decoder over `stream` received in one read: the bodies, or "error".
std::vector<std::string> agent_frames(const std::string& stream) {
  struct buffer input = {};
  REQUIRE(buffer_append(&input, stream.data(), stream.size()) == 0);
  std::vector<std::string> bodies;
  std::size_t consumed = 0;
  const char* body = nullptr;
  std::size_t size = 0;
  int framed;
  while ((framed = next_frame(&input, &consumed, &body, &size)) == 1) bodies.emplace_back(body, size);
  if (framed < 0) bodies.emplace_back("error");
  std::free(input.data);
  return bodies;
}

}  // namespace

TEST_CASE("the agent reads Content-Length from its own line, never from the body") {
  CHECK(agent_frames("Content-Length: 2\r\n\r\n{}") == std::vector<std::string>{"{}"});
  CHECK(agent_frames("content-length:3\r\nX: y\r\n\r\n[1]") == std::vector<std::string>{"[1]"});
  CHECK(agent_frames("Content-Length:\r\n\r\n12") == std::vector<std::string>{"error"});
  CHECK(agent_frames("Content-Length: 67108865\r\n\r\n") == std::vector<std::string>{"error"});
}

TEST_CASE("the agent refuses a header over 8 KiB even when it arrives whole") {
  CHECK(agent_frames("X-Pad: " + std::string(9000, 'a') + "\r\nContent-Length: 2\r\n\r\n{}") ==
        std::vector<std::string>{"error"});
}
