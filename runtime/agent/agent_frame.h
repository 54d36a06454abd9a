// The agent's side of the LSP base framing ("Content-Length: N\r\n\r\n" + N bytes): a growable
// input buffer and a decoder that takes complete message bodies out of it. Separate from
// hotd_agent.c so that the fuzzer (tests/fuzz) compiles exactly the code the agent runs.
#pragma once

#include <stddef.h>

#define MAX_MESSAGE_BYTES (64u * 1024u * 1024u)

struct buffer {
  char* data;
  size_t size;
  size_t capacity;
};

// Appends `size` bytes, growing the buffer. Returns 0, or -1 when out of memory.
int buffer_append(struct buffer* buffer, const char* data, size_t size);

// Takes one complete message body out of `buffer`, starting at *consumed. Returns 1 with *body/*size
// set (body points into the buffer until the next call) and *consumed moved past the message, 0 when
// more bytes are needed, -1 on a malformed stream.
int next_frame(struct buffer* buffer, size_t* consumed, const char** body, size_t* size);
