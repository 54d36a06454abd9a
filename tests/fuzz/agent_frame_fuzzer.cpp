// Fuzzes the native agent's frame decoder (runtime/agent/agent_frame.c) as the agent drives it:
// reads appended to a growing buffer, complete messages taken out, the rest moved to the front.
//
// Checked: no crash and no read outside the bytes received (the unused capacity of the buffer is
// poisoned for ASan while the decoder runs, and filled differently in the two decodings compared, for
// reads by libc functions ASan does not see); bodies and the error do not depend on how the stream is
// split into reads; well-framed bodies (as the daemon sends them) come back exactly.
#include <fuzzer/FuzzedDataProvider.h>
#include <sanitizer/asan_interface.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "frame_streams.hpp"

extern "C" {
#include "agent_frame.h"
}

namespace {

struct Decoded {
  std::vector<std::string> bodies;
  bool failed = false;
  friend bool operator==(const Decoded&, const Decoded&) = default;
};

[[noreturn]] void fail(const std::string& what) {
  std::cerr << "agent_frame_fuzzer: " << what << "\n";
  std::abort();
}

// The loop of serve_connection() in hotd_agent.c, with reads of 1 to 64 bytes chosen by `split_seed`,
// or one read when it is 0. The buffer's unused capacity is filled with `slack`.
Decoded decode(const std::string& stream, std::uint32_t split_seed, char slack) {
  struct buffer input = {};
  Decoded decoded;
  hotd::fuzz::ReadSplitter reads(split_seed);
  for (std::size_t at = 0; at < stream.size() && !decoded.failed;) {
    const std::size_t read = reads.next(stream.size() - at);
    if (buffer_append(&input, stream.data() + at, read) != 0) fail("out of memory");
    at += read;
    std::memset(input.data + input.size, slack, input.capacity - input.size);
    ASAN_POISON_MEMORY_REGION(input.data + input.size, input.capacity - input.size);
    std::size_t consumed = 0;
    const char* body = nullptr;
    std::size_t size = 0;
    int framed;
    while ((framed = next_frame(&input, &consumed, &body, &size)) == 1) decoded.bodies.emplace_back(body, size);
    ASAN_UNPOISON_MEMORY_REGION(input.data + input.size, input.capacity - input.size);
    decoded.failed = framed < 0;
    std::memmove(input.data, input.data + consumed, input.size - consumed);
    input.size -= consumed;
  }
  std::free(input.data);
  return decoded;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  const std::uint32_t split_seed = input.ConsumeIntegral<std::uint32_t>() | 1;
  const bool well_framed = input.ConsumeBool();

  std::vector<std::string> sent;
  const std::string stream = hotd::fuzz::frame_stream(input, well_framed, sent);

  const Decoded whole = decode(stream, 0, ' ');
  if (decode(stream, split_seed, '9') != whole) {
    fail("the result depends on how the stream is split, or on bytes past those received");
  }
  if (well_framed && (whole.failed || whole.bodies != sent)) fail("well-framed bodies did not come back exactly");
  return 0;
}
