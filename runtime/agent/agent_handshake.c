// SHA-256 (FIPS 180-4), HMAC (RFC 2104) and the handshake's proofs; see agent_handshake.h.
#include "agent_handshake.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SHA256_BLOCK_BYTES 64

struct sha256 {
  uint32_t state[8];
  uint64_t total_bytes;
  unsigned char block[SHA256_BLOCK_BYTES];
  size_t block_used;
};

// The first 32 bits of the fractional parts of the cube roots of the first 64 primes.
static const uint32_t round_constants[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

static uint32_t rotate_right(uint32_t value, unsigned bits) { return (value >> bits) | (value << (32 - bits)); }

static void sha256_compress(uint32_t state[8], const unsigned char block[SHA256_BLOCK_BYTES]) {
  uint32_t schedule[64];
  for (int i = 0; i < 16; ++i) {
    schedule[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 | (uint32_t)block[4 * i + 2] << 8 |
                  (uint32_t)block[4 * i + 3];
  }
  for (int i = 16; i < 64; ++i) {
    const uint32_t s0 = rotate_right(schedule[i - 15], 7) ^ rotate_right(schedule[i - 15], 18) ^ (schedule[i - 15] >> 3);
    const uint32_t s1 = rotate_right(schedule[i - 2], 17) ^ rotate_right(schedule[i - 2], 19) ^ (schedule[i - 2] >> 10);
    schedule[i] = schedule[i - 16] + s0 + schedule[i - 7] + s1;
  }
  uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6],
           h = state[7];
  for (int i = 0; i < 64; ++i) {
    const uint32_t sum1 = rotate_right(e, 6) ^ rotate_right(e, 11) ^ rotate_right(e, 25);
    const uint32_t choice = (e & f) ^ (~e & g);
    const uint32_t t1 = h + sum1 + choice + round_constants[i] + schedule[i];
    const uint32_t sum0 = rotate_right(a, 2) ^ rotate_right(a, 13) ^ rotate_right(a, 22);
    const uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
    const uint32_t t2 = sum0 + majority;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

static void sha256_start(struct sha256* hash) {
  // The first 32 bits of the fractional parts of the square roots of the first 8 primes.
  static const uint32_t initial[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                      0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
  memcpy(hash->state, initial, sizeof initial);
  hash->total_bytes = 0;
  hash->block_used = 0;
}

static void sha256_add(struct sha256* hash, const void* data, size_t size) {
  const unsigned char* bytes = data;
  hash->total_bytes += size;
  while (size > 0) {
    size_t taken = SHA256_BLOCK_BYTES - hash->block_used;
    if (taken > size) taken = size;
    memcpy(hash->block + hash->block_used, bytes, taken);
    hash->block_used += taken;
    bytes += taken;
    size -= taken;
    if (hash->block_used == SHA256_BLOCK_BYTES) {
      sha256_compress(hash->state, hash->block);
      hash->block_used = 0;
    }
  }
}

static void sha256_finish(struct sha256* hash, unsigned char digest[HOTD_SHA256_BYTES]) {
  const uint64_t total_bits = hash->total_bytes * 8;
  // A 1 bit, zeros up to 8 bytes short of a block end, then the message length in bits, big-endian.
  static const unsigned char padding[SHA256_BLOCK_BYTES] = {0x80};
  const size_t used = hash->block_used;
  sha256_add(hash, padding, used < 56 ? 56 - used : SHA256_BLOCK_BYTES + 56 - used);
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = (unsigned char)(total_bits >> (56 - 8 * i));
  sha256_add(hash, length, sizeof length);
  for (int i = 0; i < 8; ++i) {
    digest[4 * i] = (unsigned char)(hash->state[i] >> 24);
    digest[4 * i + 1] = (unsigned char)(hash->state[i] >> 16);
    digest[4 * i + 2] = (unsigned char)(hash->state[i] >> 8);
    digest[4 * i + 3] = (unsigned char)hash->state[i];
  }
}

void hotd_hmac_sha256(const void* key, size_t key_size, const void* message, size_t message_size,
                      unsigned char digest[HOTD_SHA256_BYTES]) {
  unsigned char block_key[SHA256_BLOCK_BYTES] = {0};
  struct sha256 hash;
  if (key_size > SHA256_BLOCK_BYTES) {  // a long key is hashed first
    sha256_start(&hash);
    sha256_add(&hash, key, key_size);
    sha256_finish(&hash, block_key);
  } else {
    memcpy(block_key, key, key_size);
  }
  unsigned char pad[SHA256_BLOCK_BYTES];
  for (int i = 0; i < SHA256_BLOCK_BYTES; ++i) pad[i] = block_key[i] ^ 0x36;
  unsigned char inner[HOTD_SHA256_BYTES];
  sha256_start(&hash);
  sha256_add(&hash, pad, sizeof pad);
  sha256_add(&hash, message, message_size);
  sha256_finish(&hash, inner);
  for (int i = 0; i < SHA256_BLOCK_BYTES; ++i) pad[i] = block_key[i] ^ 0x5c;
  sha256_start(&hash);
  sha256_add(&hash, pad, sizeof pad);
  sha256_add(&hash, inner, sizeof inner);
  sha256_finish(&hash, digest);
}

void hotd_handshake_proof(const char* token, enum hotd_proof_role role, const char* agent_nonce,
                          const char* daemon_nonce, char proof[HOTD_PROOF_HEX + 1]) {
  char message[64 + 2 * HOTD_NONCE_HEX];
  const int size = snprintf(message, sizeof message, "hotd %s proof %.*s %.*s",
                            role == HOTD_PROOF_BY_DAEMON ? "daemon" : "agent", HOTD_NONCE_HEX, agent_nonce,
                            HOTD_NONCE_HEX, daemon_nonce);
  unsigned char digest[HOTD_SHA256_BYTES];
  hotd_hmac_sha256(token, strlen(token), message, (size_t)size, digest);
  for (int i = 0; i < HOTD_SHA256_BYTES; ++i) snprintf(proof + 2 * i, 3, "%02x", digest[i]);
}

int hotd_handshake_is_hex(const char* text, size_t size) {
  if (size != HOTD_NONCE_HEX) return 0;
  for (size_t i = 0; i < size; ++i) {
    if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f'))) return 0;
  }
  return 1;
}

int hotd_handshake_equal(const char* a, const char* b, size_t size) {
  unsigned char difference = 0;
  for (size_t i = 0; i < size; ++i) difference |= (unsigned char)(a[i] ^ b[i]);
  return difference == 0;
}
