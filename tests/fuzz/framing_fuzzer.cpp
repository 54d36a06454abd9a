// Fuzzes the daemon's LSP base framing decoder (protocol::FrameDecoder) with arbitrary byte streams,
// or with well-framed bodies, delivered in arbitrary reads.
//
// Checked: no crash (ASan, UBSan); the bodies and the error do not depend on how the stream is split
// into reads; well-framed bodies come back exactly, up to the first one over the limit, which fails the
// stream; buffered bytes stay under the header limit or the body limit (plus one read), including
// after an error.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "frame_streams.hpp"
#include "hotd/protocol/framing.hpp"

namespace {

using hotd::protocol::FrameDecoder;

struct Decoded {
  std::vector<std::string> bodies;
  std::string error;
  friend bool operator==(const Decoded&, const Decoded&) = default;
};

[[noreturn]] void fail(const std::string& what) {
  std::cerr << "framing_fuzzer: " << what << "\n";
  std::abort();
}

// Feeds `stream` in reads of 1 to 64 bytes chosen by `split_seed`, or in one read when it is 0.
Decoded decode(const std::string& stream, std::size_t limit, std::uint32_t split_seed) {
  FrameDecoder decoder(limit);
  Decoded decoded;
  hotd::fuzz::ReadSplitter reads(split_seed);
  std::size_t largest_read = 0;
  for (std::size_t at = 0; at < stream.size();) {
    const std::size_t read = reads.next(stream.size() - at);
    largest_read = std::max(largest_read, read);
    decoder.feed(std::string_view(stream).substr(at, read));
    at += read;
    while (auto body = decoder.next()) decoded.bodies.push_back(std::move(*body));
    if (decoder.buffered() > std::max(hotd::protocol::kMaxHeaderBytes, limit) + largest_read) {
      fail("buffered " + std::to_string(decoder.buffered()) + " bytes with a limit of " + std::to_string(limit));
    }
  }
  decoded.error = decoder.error();
  return decoded;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  const std::size_t limit = input.ConsumeIntegralInRange<std::size_t>(0, 4096);
  const std::uint32_t split_seed = input.ConsumeIntegral<std::uint32_t>() | 1;
  const bool well_framed = input.ConsumeBool();

  std::vector<std::string> sent;
  const std::string stream = hotd::fuzz::frame_stream(input, well_framed, sent);

  const Decoded whole = decode(stream, limit, 0);
  if (decode(stream, limit, split_seed) != whole) fail("the result depends on how the stream is split");

  if (well_framed) {
    const auto too_long = std::find_if(sent.begin(), sent.end(), [&](const std::string& body) { return body.size() > limit; });
    const std::vector<std::string> expected(sent.begin(), too_long);
    if (whole.bodies != expected) fail("well-framed bodies did not come back exactly");
    if (whole.error.empty() != (too_long == sent.end())) fail("a body over the limit must fail the stream, and only then");
  }
  return 0;
}
