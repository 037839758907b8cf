#include "CImagingZlib.h"
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int mi_inflate(const uint8_t *input, size_t input_bytes, size_t size_hint, size_t max_output_bytes,
               uint8_t **output, size_t *output_bytes) {
  *output = NULL;
  *output_bytes = 0;
  size_t capacity = size_hint > 0 ? size_hint : (input_bytes * 4 + 1024);
  if (capacity > max_output_bytes) capacity = max_output_bytes;
  if (capacity == 0) capacity = 1;
  uint8_t *buffer = (uint8_t *)malloc(capacity);
  if (!buffer) return MI_Z_NO_MEMORY;
  z_stream s;
  memset(&s, 0, sizeof s);
  if (inflateInit2(&s, 15 + 32) != Z_OK) { free(buffer); return MI_Z_NO_MEMORY; }
  size_t produced = 0, consumed = 0;
  int status = MI_Z_OK;
  for (;;) {
    if (produced == capacity) {
      if (capacity >= max_output_bytes) { status = MI_Z_TOO_LARGE; break; }
      size_t grown = capacity * 2 > max_output_bytes ? max_output_bytes : capacity * 2;
      uint8_t *bigger = (uint8_t *)realloc(buffer, grown);
      if (!bigger) { status = MI_Z_NO_MEMORY; break; }
      buffer = bigger;
      capacity = grown;
    }
    size_t in_chunk = input_bytes - consumed;
    if (in_chunk > 0x40000000u) in_chunk = 0x40000000u;
    size_t out_chunk = capacity - produced;
    if (out_chunk > 0x40000000u) out_chunk = 0x40000000u;
    s.next_in = (Bytef *)(input + consumed);
    s.avail_in = (uInt)in_chunk;
    s.next_out = buffer + produced;
    s.avail_out = (uInt)out_chunk;
    int rc = inflate(&s, Z_NO_FLUSH);
    consumed += in_chunk - s.avail_in;
    produced += out_chunk - s.avail_out;
    if (rc == Z_STREAM_END) {
      // Another gzip member may follow (concatenated gzip); skip trailing zero padding.
      size_t rest = consumed;
      while (rest < input_bytes && input[rest] == 0) rest++;
      if (rest >= input_bytes) break;
      consumed = rest;
      if (inflateReset(&s) != Z_OK) { status = MI_Z_CORRUPT; break; }
      continue;
    }
    if (rc == Z_NEED_DICT || rc == Z_DATA_ERROR) { status = MI_Z_CORRUPT; break; }
    if (rc == Z_MEM_ERROR) { status = MI_Z_NO_MEMORY; break; }
    if (rc == Z_BUF_ERROR || rc == Z_OK) {
      if (consumed >= input_bytes && s.avail_out > 0) { status = MI_Z_TRUNCATED; break; }
      continue;
    }
    status = MI_Z_CORRUPT;
    break;
  }
  inflateEnd(&s);
  *output_bytes = produced;
  if (status != MI_Z_OK) { free(buffer); return status; }
  *output = buffer;
  return MI_Z_OK;
}

int mi_inflate_prefix(const uint8_t *input, size_t input_bytes, uint8_t *output, size_t capacity,
                      size_t *output_bytes) {
  *output_bytes = 0;
  z_stream s;
  memset(&s, 0, sizeof s);
  if (inflateInit2(&s, 15 + 32) != Z_OK) return MI_Z_NO_MEMORY;
  s.next_in = (Bytef *)input;
  s.avail_in = input_bytes > 0x40000000u ? 0x40000000u : (uInt)input_bytes;
  s.next_out = output;
  s.avail_out = capacity > 0x40000000u ? 0x40000000u : (uInt)capacity;
  int rc = Z_OK;
  while (s.avail_out > 0 && s.avail_in > 0) {
    rc = inflate(&s, Z_NO_FLUSH);
    if (rc != Z_OK) break;
  }
  *output_bytes = capacity - s.avail_out;
  inflateEnd(&s);
  if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) return MI_Z_CORRUPT;
  if (rc == Z_MEM_ERROR) return MI_Z_NO_MEMORY;
  return MI_Z_OK;
}

int mi_gzip(const uint8_t *input, size_t input_bytes, int level, uint8_t **output, size_t *output_bytes) {
  *output = NULL;
  *output_bytes = 0;
  z_stream s;
  memset(&s, 0, sizeof s);
  if (deflateInit2(&s, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return MI_Z_NO_MEMORY;
  size_t capacity = deflateBound(&s, (uLong)input_bytes) + 64;
  uint8_t *buffer = (uint8_t *)malloc(capacity);
  if (!buffer) { deflateEnd(&s); return MI_Z_NO_MEMORY; }
  size_t consumed = 0, produced = 0;
  int rc;
  do {
    size_t in_chunk = input_bytes - consumed;
    if (in_chunk > 0x40000000u) in_chunk = 0x40000000u;
    size_t out_chunk = capacity - produced;
    if (out_chunk > 0x40000000u) out_chunk = 0x40000000u;
    s.next_in = (Bytef *)(input + consumed);
    s.avail_in = (uInt)in_chunk;
    s.next_out = buffer + produced;
    s.avail_out = (uInt)out_chunk;
    int flush = (consumed + in_chunk == input_bytes) ? Z_FINISH : Z_NO_FLUSH;
    rc = deflate(&s, flush);
    consumed += in_chunk - s.avail_in;
    produced += out_chunk - s.avail_out;
    if (rc == Z_STREAM_ERROR) { free(buffer); deflateEnd(&s); return MI_Z_CORRUPT; }
  } while (rc != Z_STREAM_END);
  deflateEnd(&s);
  *output = buffer;
  *output_bytes = produced;
  return MI_Z_OK;
}

void mi_free(void *pointer) { free(pointer); }

uint32_t mi_crc32(uint32_t crc, const uint8_t *bytes, size_t count) {
  uLong c = crc;
  while (count > 0) {
    uInt chunk = count > 0x40000000u ? 0x40000000u : (uInt)count;
    c = crc32(c, bytes, chunk);
    bytes += chunk;
    count -= chunk;
  }
  return (uint32_t)c;
}
