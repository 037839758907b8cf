#include "CGDCM.h"

#include <gdcmImage.h>
#include <gdcmImageReader.h>
#include <gdcmReader.h>
#include <gdcmSequenceOfItems.h>
#include <gdcmStringFilter.h>
#include <gdcmTrace.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>

struct mi_dicom_file {
  std::unique_ptr<gdcm::ImageReader> imageReader;  // set when the object holds an image
  std::unique_ptr<gdcm::Reader> reader;            // set when it does not
  const gdcm::File &file() const { return imageReader ? imageReader->GetFile() : reader->GetFile(); }
};

static thread_local std::string lastError;

static int fail(int status, const std::string &message) {
  lastError = message;
  return status;
}

template <typename F> static int guarded(F &&body) {
  try {
    lastError.clear();
    return body();
  } catch (const std::exception &e) {
    return fail(MI_DICOM_EXCEPTION, std::string("GDCM exception: ") + e.what());
  } catch (...) {
    return fail(MI_DICOM_EXCEPTION, "GDCM threw an unknown exception");
  }
}

static bool hasPixelData(const gdcm::DataSet &ds) {
  return ds.FindDataElement(gdcm::Tag(0x7fe0, 0x0010)) || ds.FindDataElement(gdcm::Tag(0x7fe0, 0x0008)) ||
         ds.FindDataElement(gdcm::Tag(0x7fe0, 0x0009));
}

extern "C" int mi_dicom_open(const char *path, mi_dicom_file **file) {
  *file = nullptr;
  return guarded([&]() -> int {
    static std::once_flag quiet;
    std::call_once(quiet, [] {
      gdcm::Trace::SetWarning(false);
      gdcm::Trace::SetError(false);
      gdcm::Trace::SetDebug(false);
    });
    auto handle = std::make_unique<mi_dicom_file>();
    auto plain = std::make_unique<gdcm::Reader>();
    plain->SetFileName(path);
    if (!plain->Read()) return fail(MI_DICOM_NOT_DICOM, "not a DICOM file (GDCM could not parse it)");
    if (!hasPixelData(plain->GetFile().GetDataSet())) {
      handle->reader = std::move(plain);
      *file = handle.release();
      return fail(MI_DICOM_NO_IMAGE, "DICOM object without pixel data");
    }
    auto imageReader = std::make_unique<gdcm::ImageReader>();
    imageReader->SetFileName(path);
    if (!imageReader->Read()) {
      handle->reader = std::move(plain);
      *file = handle.release();
      return fail(MI_DICOM_DECODE_FAILED, "GDCM could not read the image module");
    }
    handle->imageReader = std::move(imageReader);
    *file = handle.release();
    return MI_DICOM_OK;
  });
}

extern "C" void mi_dicom_close(mi_dicom_file *file) { delete file; }

extern "C" int mi_dicom_tag_string(const mi_dicom_file *file, uint16_t group, uint16_t element, char *buffer,
                                   size_t capacity, int *present) {
  *present = 0;
  if (capacity == 0) return fail(MI_DICOM_BAD_ARGUMENT, "zero-capacity buffer");
  buffer[0] = 0;
  return guarded([&]() -> int {
    const gdcm::Tag tag(group, element);
    const gdcm::DataSet &ds = file->file().GetDataSet();
    if (!ds.FindDataElement(tag)) return MI_DICOM_OK;
    const gdcm::DataElement &de = ds.GetDataElement(tag);
    if (de.IsEmpty()) { *present = 1; return MI_DICOM_OK; }
    gdcm::StringFilter filter;
    filter.SetFile(file->file());
    std::string value = filter.ToString(tag);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\0')) value.pop_back();
    std::snprintf(buffer, capacity, "%s", value.c_str());
    *present = 1;
    return MI_DICOM_OK;
  });
}

static int32_t scalarType(const gdcm::PixelFormat &pf) {
  switch (pf.GetScalarType()) {
  case gdcm::PixelFormat::UINT8: return MI_DICOM_UINT8;
  case gdcm::PixelFormat::INT8: return MI_DICOM_INT8;
  case gdcm::PixelFormat::UINT12:
  case gdcm::PixelFormat::UINT16: return MI_DICOM_UINT16;
  case gdcm::PixelFormat::INT12:
  case gdcm::PixelFormat::INT16: return MI_DICOM_INT16;
  case gdcm::PixelFormat::UINT32: return MI_DICOM_UINT32;
  case gdcm::PixelFormat::INT32: return MI_DICOM_INT32;
  case gdcm::PixelFormat::FLOAT32: return MI_DICOM_FLOAT32;
  case gdcm::PixelFormat::FLOAT64: return MI_DICOM_FLOAT64;
  default: return MI_DICOM_OTHER;
  }
}

extern "C" int mi_dicom_image_info_get(const mi_dicom_file *file, mi_dicom_image_info *info) {
  std::memset(info, 0, sizeof *info);
  if (!file->imageReader) return fail(MI_DICOM_NO_IMAGE, "DICOM object without an image");
  return guarded([&]() -> int {
    const gdcm::Image &image = file->imageReader->GetImage();
    const unsigned int *dims = image.GetDimensions();
    info->columns = dims[0];
    info->rows = dims[1];
    info->frames = image.GetNumberOfDimensions() > 2 ? dims[2] : 1;
    const gdcm::PixelFormat &pf = image.GetPixelFormat();
    info->samples_per_pixel = pf.GetSamplesPerPixel();
    info->scalar_type = scalarType(pf);
    info->bits_allocated = pf.GetBitsAllocated();
    info->bits_stored = pf.GetBitsStored();
    info->pixel_representation = pf.GetPixelRepresentation();
    const double *origin = image.GetOrigin();
    const double *cosines = image.GetDirectionCosines();
    const double *spacing = image.GetSpacing();
    for (int a = 0; a < 3; a++) info->origin[a] = origin ? origin[a] : 0;
    for (int a = 0; a < 6; a++) info->direction_cosines[a] = cosines ? cosines[a] : (a == 0 || a == 4 ? 1 : 0);
    for (int a = 0; a < 3; a++) info->spacing[a] = spacing ? spacing[a] : 1;
    info->slope = image.GetSlope();
    info->intercept = image.GetIntercept();
    info->buffer_bytes = image.GetBufferLength();
    return MI_DICOM_OK;
  });
}

extern "C" int mi_dicom_decode(mi_dicom_file *file, void *buffer, size_t capacity) {
  if (!file->imageReader) return fail(MI_DICOM_NO_IMAGE, "DICOM object without an image");
  return guarded([&]() -> int {
    const gdcm::Image &image = file->imageReader->GetImage();
    unsigned long length = image.GetBufferLength();
    if (capacity < length) {
      std::ostringstream m;
      m << "pixel buffer of " << capacity << " bytes is smaller than the image's " << length << " bytes";
      return fail(MI_DICOM_BAD_ARGUMENT, m.str());
    }
    if (!image.GetBuffer(static_cast<char *>(buffer)))
      return fail(MI_DICOM_DECODE_FAILED, "GDCM could not decode the pixel data (transfer syntax " +
                                               std::string(image.GetTransferSyntax().GetString() ? image.GetTransferSyntax().GetString() : "?") + ")");
    return MI_DICOM_OK;
  });
}

extern "C" int mi_dicom_frame_positions(const mi_dicom_file *file, double *positions, uint32_t max_frames,
                                        uint32_t *count) {
  *count = 0;
  return guarded([&]() -> int {
    const gdcm::DataSet &ds = file->file().GetDataSet();
    const gdcm::Tag perFrame(0x5200, 0x9230), planePosition(0x0020, 0x9113), ipp(0x0020, 0x0032);
    if (!ds.FindDataElement(perFrame)) return MI_DICOM_OK;
    gdcm::SmartPointer<gdcm::SequenceOfItems> frames = ds.GetDataElement(perFrame).GetValueAsSQ();
    if (!frames) return MI_DICOM_OK;
    gdcm::StringFilter filter;
    filter.SetFile(file->file());
    uint32_t n = 0;
    for (gdcm::SequenceOfItems::SizeType i = 1; i <= frames->GetNumberOfItems() && n < max_frames; i++) {
      const gdcm::DataSet &frame = frames->GetItem(i).GetNestedDataSet();
      if (!frame.FindDataElement(planePosition)) break;
      gdcm::SmartPointer<gdcm::SequenceOfItems> pp = frame.GetDataElement(planePosition).GetValueAsSQ();
      if (!pp || pp->GetNumberOfItems() < 1) break;
      const gdcm::DataSet &item = pp->GetItem(1).GetNestedDataSet();
      if (!item.FindDataElement(ipp)) break;
      std::string text = filter.ToString(item.GetDataElement(ipp));
      double x = 0, y = 0, z = 0;
      if (std::sscanf(text.c_str(), "%lf\\%lf\\%lf", &x, &y, &z) != 3) break;
      positions[3 * n] = x;
      positions[3 * n + 1] = y;
      positions[3 * n + 2] = z;
      n++;
    }
    *count = n;
    return MI_DICOM_OK;
  });
}

extern "C" const char *mi_dicom_last_error(void) { return lastError.c_str(); }
