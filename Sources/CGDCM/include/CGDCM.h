// C shim over GDCM (Grassroots DICOM) for MedicalImaging. Prefix `mi_dicom_`.
// Knows nothing of Swift. Every function returns a status (MI_DICOM_OK on success), writes results through
// out-parameters, and catches every C++ exception; the message of the last failure on this thread is
// available from mi_dicom_last_error.
#ifndef CGDCM_H
#define CGDCM_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  MI_DICOM_OK = 0,
  MI_DICOM_NOT_DICOM = 1,      // GDCM could not parse the file as DICOM
  MI_DICOM_NO_IMAGE = 2,       // a DICOM object without pixel data (structured report, RT plan, ...)
  MI_DICOM_DECODE_FAILED = 3,  // pixel data present but it could not be decoded
  MI_DICOM_BAD_ARGUMENT = 4,   // a null handle, a too-small buffer, an unknown tag
  MI_DICOM_EXCEPTION = 5,      // a C++ exception was caught; see mi_dicom_last_error
};

/// Scalar types of decoded pixels (values of mi_dicom_image_info.scalar_type).
enum {
  MI_DICOM_UINT8 = 1, MI_DICOM_INT8 = 2, MI_DICOM_UINT16 = 3, MI_DICOM_INT16 = 4,
  MI_DICOM_UINT32 = 5, MI_DICOM_INT32 = 6, MI_DICOM_FLOAT32 = 7, MI_DICOM_FLOAT64 = 8, MI_DICOM_OTHER = 0,
};

typedef struct mi_dicom_file mi_dicom_file;

/// What GDCM's image reader made of the pixel module (geometry from GDCM's ImageHelper).
typedef struct mi_dicom_image_info {
  uint32_t columns, rows, frames;  // dimensions 0, 1, 2 (frames = 1 for a single-frame object)
  uint32_t samples_per_pixel;
  int32_t scalar_type;             // MI_DICOM_* scalar type of the decoded buffer
  uint32_t bits_allocated, bits_stored;
  int32_t pixel_representation;    // 0 unsigned, 1 signed
  double origin[3];                // mm, DICOM LPS patient coordinates of the first voxel
  double direction_cosines[6];     // row direction (along a row, increasing column), then column direction
  double spacing[3];               // mm: between columns, between rows, between frames
  double slope, intercept;         // GDCM's modality rescale for this object (1, 0 when none applies)
  uint64_t buffer_bytes;           // size of the decoded pixel buffer
} mi_dicom_image_info;

/// Opens and parses `path`. On MI_DICOM_OK `*file` is a handle to close with mi_dicom_close.
/// MI_DICOM_NO_IMAGE also returns a handle (tags readable, no pixels).
int mi_dicom_open(const char *_Nonnull path, mi_dicom_file *_Nullable *_Nonnull file);

/// Frees a handle (null is ignored).
void mi_dicom_close(mi_dicom_file *_Nullable file);

/// Writes the value of tag (group, element) as text (backslash-separated for several values, trailing padding
/// removed) into `buffer` of `capacity` bytes, NUL-terminated; `*present` is 0 when the tag is absent.
int mi_dicom_tag_string(const mi_dicom_file *_Nonnull file, uint16_t group, uint16_t element,
                        char *_Nonnull buffer, size_t capacity, int *_Nonnull present);

/// Fills `*info` from the image module (fails with MI_DICOM_NO_IMAGE on an object without pixels).
int mi_dicom_image_info_get(const mi_dicom_file *_Nonnull file, mi_dicom_image_info *_Nonnull info);

/// Decodes the pixel data (uncompressed, JPEG, JPEG lossless, JPEG-LS, JPEG 2000, RLE) into `buffer` of
/// `capacity` bytes, as stored values (no rescale), frames one after another, columns fastest.
int mi_dicom_decode(mi_dicom_file *_Nonnull file, void *_Nonnull buffer, size_t capacity);

/// Reads the per-frame ImagePositionPatient of a multi-frame object (Enhanced CT/MR: PerFrameFunctionalGroups
/// → PlanePositionSequence) into `positions` (3 doubles per frame, up to `max_frames`); `*count` frames found.
int mi_dicom_frame_positions(const mi_dicom_file *_Nonnull file, double *_Nonnull positions, uint32_t max_frames,
                             uint32_t *_Nonnull count);

/// The message of the last failure on this thread ("" when none).
const char *_Nonnull mi_dicom_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
