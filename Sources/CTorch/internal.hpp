// Internal helpers shared by the shim's translation units. Not part of the C interface.
#pragma once
#include "ctorch.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/headeronly/version.h>

#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace ctorch {

void set_error(const char *message);

inline at::Tensor &T(ct_tensor t) { return *reinterpret_cast<at::Tensor *>(t); }
inline ct_tensor wrap(at::Tensor t) { return reinterpret_cast<ct_tensor>(new at::Tensor(std::move(t))); }
inline std::optional<at::Tensor> opt(ct_tensor t) {
  if (t == nullptr) return std::nullopt;
  return T(t);
}
inline at::IntArrayRef ints(const int64_t *p, int64_t n) { return at::IntArrayRef(p, static_cast<size_t>(n)); }
inline std::vector<at::Tensor> list(const ct_tensor *ts, int64_t n) {
  std::vector<at::Tensor> v;
  v.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}

at::ScalarType scalar_type(ct_dtype d);
ct_dtype dtype_code(at::ScalarType s);
at::Device device(ct_device_kind kind, int32_t index);
at::TensorOptions options(ct_dtype dtype, ct_device_kind kind, int32_t index);
at::Generator *generator(ct_generator g);

}  // namespace ctorch

// Runs `body`; any exception becomes the thread's last error and CT_ERROR. Nothing escapes.
#define CT_GUARD(...)                                                         \
  try {                                                                        \
    __VA_ARGS__;                                                               \
    return CT_OK;                                                              \
  } catch (const c10::Error &e) {                                              \
    ::ctorch::set_error(e.what_without_backtrace());                           \
  } catch (const std::exception &e) {                                          \
    ::ctorch::set_error(e.what());                                             \
  } catch (...) {                                                              \
    ::ctorch::set_error("unknown C++ exception in libtorch");                  \
  }                                                                            \
  return CT_ERROR;
