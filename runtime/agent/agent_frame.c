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
  if (!end) return available > 8192 ? -1 : 0;
  size_t length = 0;
  int found = 0;
  for (const char* line = start; line < end;) {
    const char* line_end = memmem(line, (size_t)(end - line) + 2, "\r\n", 2);
    if (strncasecmp(line, "Content-Length:", 15) == 0) {
      char* parsed_end = NULL;
      const unsigned long long value = strtoull(line + 15, &parsed_end, 10);
      if (parsed_end == line + 15 || value > MAX_MESSAGE_BYTES) return -1;
      length = (size_t)value;
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
