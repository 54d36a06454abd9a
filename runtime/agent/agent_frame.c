// The agent's framing decoder; see agent_frame.h.
#define _GNU_SOURCE
#include "agent_frame.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int buffer_append(struct buffer* buffer, const char* data, size_t size) {
  if (buffer->size + size > buffer->capacity) {
    size_t capacity = buffer->capacity ? buffer->capacity : 65536;
    while (capacity < buffer->size + size) capacity *= 2;
    char* grown = realloc(buffer->data, capacity);
    if (!grown) return -1;
    buffer->data = grown;
    buffer->capacity = capacity;
  }
  memcpy(buffer->data + buffer->size, data, size);
  buffer->size += size;
  return 0;
}

int next_frame(struct buffer* buffer, size_t* consumed, const char** body, size_t* size) {
  const char* start = buffer->data + *consumed;
  const size_t available = buffer->size - *consumed;
  const char* end = memmem(start, available, "\r\n\r\n", 4);
  // The header may hold 8 KiB up to its last byte, whether or not that byte has arrived yet: the
  // outcome must not depend on how the stream was split into reads.
  if ((end ? (size_t)(end - start) + 3 : available) > 8192) return -1;
  if (!end) return 0;
  size_t length = 0;
  int found = 0;
  for (const char* line = start; line < end;) {
    const char* line_end = memmem(line, (size_t)(end - line) + 2, "\r\n", 2);
    if (strncasecmp(line, "Content-Length:", 15) == 0) {
      // Digits of this line only (strtoull would skip the line end and read on into the body, or
      // past the bytes received).
      const char* digit = line + 15;
      while (digit < line_end && (*digit == ' ' || *digit == '\t')) ++digit;
      if (digit == line_end || *digit < '0' || *digit > '9') return -1;
      size_t value = 0;
      for (; digit < line_end && *digit >= '0' && *digit <= '9'; ++digit) {
        value = value * 10 + (size_t)(*digit - '0');
        if (value > MAX_MESSAGE_BYTES) return -1;
      }
      length = value;
      found = 1;
    }
    line = line_end + 2;
  }
  if (!found) return -1;
  const size_t header_size = (size_t)(end - start) + 4;
  if (available < header_size + length) return 0;
  *body = end + 4;
  *size = length;
  *consumed += header_size + length;
  return 1;
}
