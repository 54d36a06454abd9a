// A fast 64-bit streaming hash for token streams. Not cryptographic: it only has to make accidental
// collisions between two versions of one definition vanishingly unlikely.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace hotd::parser {

class ContentHasher {
 public:
  void add(std::uint64_t value) { state_ = mix(state_ ^ value, kMultiplier); }

  void add_bytes(std::string_view bytes) {
    const char* p = bytes.data();
    std::size_t n = bytes.size();
    while (n >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, 8);
      add(word);
      p += 8;
      n -= 8;
    }
    std::uint64_t tail = 0;
    std::memcpy(&tail, p, n);
    add(tail ^ (std::uint64_t{bytes.size()} << 56));
  }

  std::uint64_t value() const { return mix(state_, kFinalizer); }

 private:
  static constexpr std::uint64_t kMultiplier = 0x9E3779B97F4A7C15ull;
  static constexpr std::uint64_t kFinalizer = 0xD6E8FEB86659FD93ull;

  static std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
    __extension__ using u128 = unsigned __int128;
    const u128 product = static_cast<u128>(a) * b;
    return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
  }

  std::uint64_t state_ = 0x243F6A8885A308D3ull;
};

}  // namespace hotd::parser
