// C shim over zlib for MedicalImaging: gzip inflate/deflate and CRC-32. Prefix `mi_`.
// Every function returns a status (MI_Z_OK on success) and writes results through out-parameters.
#ifndef CIMAGINGZLIB_H
#define CIMAGINGZLIB_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  MI_Z_OK = 0,
  MI_Z_TRUNCATED = 1,   // the compressed stream ended before its end marker
  MI_Z_CORRUPT = 2,     // zlib reported a data error (bad header, bad checksum, bad deflate block)
  MI_Z_NO_MEMORY = 3,   // allocation failed or the output would exceed max_output_bytes
  MI_Z_TOO_LARGE = 4,   // the output would exceed max_output_bytes
};

/// Inflates a gzip (one or more members) or zlib stream. On MI_Z_OK `*output` is a malloc'd buffer of
/// `*output_bytes` bytes that the caller frees with mi_free. On failure `*output` is NULL and
/// `*output_bytes` holds how many bytes were produced before the failure.
int mi_inflate(const uint8_t *_Nonnull input, size_t input_bytes, size_t size_hint, size_t max_output_bytes,
               uint8_t *_Nullable *_Nonnull output, size_t *_Nonnull output_bytes);

/// Inflates at most `capacity` bytes of the start of a gzip/zlib stream into `output` (for reading a header
/// without inflating a whole file). `*output_bytes` is how many bytes were produced; a stream that ends early is
/// not an error here (MI_Z_OK with fewer bytes), a data error is MI_Z_CORRUPT.
int mi_inflate_prefix(const uint8_t *_Nonnull input, size_t input_bytes, uint8_t *_Nonnull output, size_t capacity,
                      size_t *_Nonnull output_bytes);

/// Deflates into a gzip member at `level` (0-9). `*output` is malloc'd; free it with mi_free.
int mi_gzip(const uint8_t *_Nonnull input, size_t input_bytes, int level,
            uint8_t *_Nullable *_Nonnull output, size_t *_Nonnull output_bytes);

/// Frees a buffer returned by this shim.
void mi_free(void *_Nullable pointer);

/// CRC-32 (zlib polynomial) of `bytes`, continuing from `crc` (0 to start).
uint32_t mi_crc32(uint32_t crc, const uint8_t *_Nullable bytes, size_t count);

#ifdef __cplusplus
}
#endif
#endif
