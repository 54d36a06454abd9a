// The mutual challenge-response of an agent connecting over TCP (docs/SECURITY.md, "Agents over
// TCP"): each side proves it holds the token of web.json without sending it, and the agent checks
// the daemon's proof before it sends anything derived from the token or handles any message.
//
//   agent  -> daemon   GET /agent, Upgrade: hotd-agent, Hotd-Agent-Nonce: <agent nonce>
//   daemon -> agent    101, Hotd-Daemon-Nonce: <daemon nonce>, Hotd-Daemon-Proof: <daemon proof>
//   agent  -> daemon   "Hotd-Agent-Proof: <agent proof>\r\n" as the first bytes of the upgraded stream
//
// A proof is HMAC-SHA256 keyed by the token (its hex text, lowercase) over the role and both nonces;
// the roles differ, so neither side's proof can be reflected as the other's. Nonces are 32 random
// bytes. Plain C with its own SHA-256, compiled into the agent (which links no crypto library) and
// into the daemon, so both ends compute the same function.
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HOTD_SHA256_BYTES 32
#define HOTD_NONCE_HEX 64  // a nonce: 32 bytes as lowercase hex
#define HOTD_PROOF_HEX 64  // a proof: an HMAC-SHA256 as lowercase hex

#define HOTD_AGENT_NONCE_HEADER "Hotd-Agent-Nonce"
#define HOTD_DAEMON_NONCE_HEADER "Hotd-Daemon-Nonce"
#define HOTD_DAEMON_PROOF_HEADER "Hotd-Daemon-Proof"
#define HOTD_AGENT_PROOF_HEADER "Hotd-Agent-Proof"

enum hotd_proof_role { HOTD_PROOF_BY_DAEMON, HOTD_PROOF_BY_AGENT };

// HMAC-SHA256 (RFC 2104) of `message` under `key`.
void hotd_hmac_sha256(const void* key, size_t key_size, const void* message, size_t message_size,
                      unsigned char digest[HOTD_SHA256_BYTES]);

// Writes `role`'s proof for the two nonces (HOTD_NONCE_HEX characters each) under `token` into
// `proof`, NUL-terminated.
void hotd_handshake_proof(const char* token, enum hotd_proof_role role, const char* agent_nonce,
                          const char* daemon_nonce, char proof[HOTD_PROOF_HEX + 1]);

// 1 when the `size` bytes of `text` are a nonce or a proof: HOTD_NONCE_HEX lowercase hex digits.
int hotd_handshake_is_hex(const char* text, size_t size);

// 1 when the `size` bytes of `a` and `b` are equal, in time independent of where they differ.
int hotd_handshake_equal(const char* a, const char* b, size_t size);

#ifdef __cplusplus
}
#endif
