// What the two frame fuzzers share: the stream they decode, and how it is split into reads.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace hotd::fuzz {

// With `well_framed`, the rest of the input as bodies framed as the daemon and agents frame them
// (each also appended to `sent`); otherwise the rest of the input as it is.
inline std::string frame_stream(FuzzedDataProvider& input, bool well_framed, std::vector<std::string>& sent) {
  if (!well_framed) return input.ConsumeRemainingBytesAsString();
  std::string stream;
  while (input.remaining_bytes() > 0) {
    sent.push_back(input.ConsumeRandomLengthString(8192));
    stream += "Content-Length: " + std::to_string(sent.back().size()) + "\r\n\r\n" + sent.back();
  }
  return stream;
}

// The sizes of successive reads: 1 to 64 bytes chosen by `split_seed`, or everything at once when it is 0.
class ReadSplitter {
 public:
  explicit ReadSplitter(std::uint32_t split_seed) : whole_(split_seed == 0), random_(split_seed) {}
  std::size_t next(std::size_t left) { return whole_ ? left : std::min<std::size_t>(1 + random_() % 64, left); }

 private:
  bool whole_;
  std::minstd_rand random_;
};

}  // namespace hotd::fuzz
