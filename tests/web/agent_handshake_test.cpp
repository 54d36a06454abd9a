// The TCP agents' handshake (runtime/agent/agent_handshake.c): HMAC-SHA256 against Python's hmac
// module, whose results these are, and the proofs both ends compute.
#include <doctest/doctest.h>

#include <string>

#include "agent_handshake.h"

namespace {

std::string hmac_hex(const std::string& key, const std::string& message) {
  unsigned char digest[HOTD_SHA256_BYTES];
  hotd_hmac_sha256(key.data(), key.size(), message.data(), message.size(), digest);
  std::string hex;
  for (const unsigned char byte : digest) {
    static const char digits[] = "0123456789abcdef";
    hex += digits[byte >> 4];
    hex += digits[byte & 15];
  }
  return hex;
}

}  // namespace

TEST_CASE("handshake: HMAC-SHA256 of short, empty, block-sized and long keys and messages") {
  CHECK(hmac_hex(std::string(20, '\x0b'), "Hi There") == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  CHECK(hmac_hex("Jefe", "what do ya want for nothing?") == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(hmac_hex(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First") ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  CHECK(hmac_hex("k", "") == "8bb990c40a7d61cb97597a942125025be50ac8beb74436e3735b98893a7f6620");
  CHECK(hmac_hex(std::string(64, '\x01'), std::string(1000, 'x')) ==
        "93ddd4117971f12b35c6781aa212b6c4ee69ae753d8759f12125fc266383c28f");
}

TEST_CASE("handshake: the daemon's and the agent's proofs differ for the same nonces") {
  std::string token, agent_nonce, daemon_nonce;
  for (int i = 0; i < 32; ++i) {
    token += "ab";
    agent_nonce += "01";
    daemon_nonce += "fe";
  }
  char by_daemon[HOTD_PROOF_HEX + 1], by_agent[HOTD_PROOF_HEX + 1];
  hotd_handshake_proof(token.c_str(), HOTD_PROOF_BY_DAEMON, agent_nonce.c_str(), daemon_nonce.c_str(), by_daemon);
  hotd_handshake_proof(token.c_str(), HOTD_PROOF_BY_AGENT, agent_nonce.c_str(), daemon_nonce.c_str(), by_agent);
  CHECK(std::string(by_daemon) == "45475d350d362789c98f7ff18564557fac1e45795c5b1018043ace7a66f52c6b");
  CHECK(std::string(by_agent) == "b5c34f185c21f2638ca6ea0263b97da55b1de2db8bd6f654d9a1d4fd0fc6759c");
  CHECK_FALSE(hotd_handshake_equal(by_daemon, by_agent, HOTD_PROOF_HEX));
}

TEST_CASE("handshake: nonces and proofs are 64 lowercase hex digits, nothing else") {
  const std::string good(64, 'a');
  CHECK(hotd_handshake_is_hex(good.data(), good.size()));
  CHECK_FALSE(hotd_handshake_is_hex(good.data(), 63));
  CHECK_FALSE(hotd_handshake_is_hex((good + "0").data(), 65));
  CHECK_FALSE(hotd_handshake_is_hex(std::string(64, 'A').data(), 64));
  CHECK_FALSE(hotd_handshake_is_hex((std::string(63, 'a') + "\n").data(), 64));
  CHECK_FALSE(hotd_handshake_is_hex("", 0));
}
