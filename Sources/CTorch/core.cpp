// Library state, creation, conversion, shape, element-wise and reduction functions of the shim.
#include "internal.hpp"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <sstream>

using ctorch::T;
using ctorch::ints;
using ctorch::opt;
using ctorch::wrap;

namespace ctorch {

static thread_local std::string last_error;

void set_error(const char *message) { last_error = message ? message : "(no message)"; }

at::ScalarType scalar_type(ct_dtype d) {
  switch (d) {
    case CT_F32: return at::kFloat;
    case CT_F16: return at::kHalf;
    case CT_BF16: return at::kBFloat16;
    case CT_F64: return at::kDouble;
    case CT_I64: return at::kLong;
    case CT_I32: return at::kInt;
    case CT_I16: return at::kShort;
    case CT_I8: return at::kChar;
    case CT_U8: return at::kByte;
    case CT_BOOL: return at::kBool;
  }
  throw std::invalid_argument("unknown ct_dtype code " + std::to_string(static_cast<int>(d)));
}

ct_dtype dtype_code(at::ScalarType s) {
  switch (s) {
    case at::kFloat: return CT_F32;
    case at::kHalf: return CT_F16;
    case at::kBFloat16: return CT_BF16;
    case at::kDouble: return CT_F64;
    case at::kLong: return CT_I64;
    case at::kInt: return CT_I32;
    case at::kShort: return CT_I16;
    case at::kChar: return CT_I8;
    case at::kByte: return CT_U8;
    case at::kBool: return CT_BOOL;
    default: break;
  }
  throw std::invalid_argument(std::string("tensor has a dtype the Swift layer does not support: ") +
                              c10::toString(s));
}

at::Device device(ct_device_kind kind, int32_t index) {
  switch (kind) {
    case CT_CPU: return at::Device(at::kCPU);
    case CT_CUDA:
      if (!at::hasCUDA())
        throw std::runtime_error(
            "CUDA was requested but this libtorch has no usable CUDA (build against a CUDA libtorch with "
            "LIBTORCH=/path/to/libtorch GREENRFM_CUDA=1, on a machine with an NVIDIA driver)");
      return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw std::invalid_argument("unknown device kind");
}

at::TensorOptions options(ct_dtype dtype, ct_device_kind kind, int32_t index) {
  return at::TensorOptions().dtype(scalar_type(dtype)).device(device(kind, index));
}

at::Generator *generator(ct_generator g) { return reinterpret_cast<at::Generator *>(g); }

static std::optional<at::Generator> opt_gen(ct_generator g) {
  if (g == nullptr) return std::nullopt;
  return *generator(g);
}

}  // namespace ctorch

using ctorch::opt_gen;

extern "C" {

const char *ct_last_error(void) { return ctorch::last_error.c_str(); }

const char *ct_version(void) { return TORCH_VERSION; }

ct_status ct_set_num_threads(int32_t n) { CT_GUARD(at::set_num_threads(n)) }
ct_status ct_get_num_threads(int32_t *out) { CT_GUARD(*out = at::get_num_threads()) }
ct_status ct_set_num_interop_threads(int32_t n) { CT_GUARD(at::set_num_interop_threads(n)) }
ct_status ct_cuda_device_count(int32_t *out) {
  CT_GUARD(*out = at::hasCUDA() ? static_cast<int32_t>(at::getNumGPUs()) : 0)
}
ct_status ct_manual_seed(uint64_t seed) { CT_GUARD(at::manual_seed(seed)) }
ct_status ct_is_grad_enabled(bool *out) { CT_GUARD(*out = c10::GradMode::is_enabled()) }
ct_status ct_set_grad_enabled(bool enabled) { CT_GUARD(c10::GradMode::set_enabled(enabled)) }

ct_status ct_set_autocast(ct_device_kind kind, bool enabled, ct_dtype dtype) {
  CT_GUARD({
    at::DeviceType type = kind == CT_CUDA ? at::kCUDA : at::kCPU;
    TORCH_CHECK(dtype == CT_BF16 || dtype == CT_F16, "autocast supports bfloat16 and float16 only");
    at::autocast::set_autocast_dtype(type, ctorch::scalar_type(dtype));
    at::autocast::set_autocast_enabled(type, enabled);
    if (!enabled) at::autocast::clear_cache();
  })
}
ct_status ct_is_autocast_enabled(ct_device_kind kind, bool *out) {
  CT_GUARD(*out = at::autocast::is_autocast_enabled(kind == CT_CUDA ? at::kCUDA : at::kCPU))
}
ct_status ct_get_autocast_dtype(ct_device_kind kind, ct_dtype *out) {
  CT_GUARD(*out = ctorch::dtype_code(at::autocast::get_autocast_dtype(kind == CT_CUDA ? at::kCUDA : at::kCPU)))
}
ct_status ct_autocast_clear_cache(void) { CT_GUARD(at::autocast::clear_cache()) }

ct_status ct_tensor_description(ct_tensor t, char **out) {
  CT_GUARD({
    std::ostringstream s;
    s << T(t);
    std::string str = s.str();
    char *buf = static_cast<char *>(std::malloc(str.size() + 1));
    if (!buf) throw std::bad_alloc();
    std::memcpy(buf, str.c_str(), str.size() + 1);
    *out = buf;
  })
}
void ct_string_free(char *s) { std::free(s); }

// ---- generators ----
ct_status ct_generator_new(uint64_t seed, ct_generator *out) {
  CT_GUARD({
    auto *g = new at::Generator(at::make_generator<at::CPUGeneratorImpl>(seed));
    *out = reinterpret_cast<ct_generator>(g);
  })
}
void ct_generator_free(ct_generator g) { delete ctorch::generator(g); }
ct_status ct_generator_get_state(ct_generator g, ct_tensor *out) {
  CT_GUARD({
    auto *gen = ctorch::generator(g);
    std::lock_guard<std::mutex> lock(gen->mutex());
    *out = wrap(gen->get_state());
  })
}
ct_status ct_generator_set_state(ct_generator g, ct_tensor state) {
  CT_GUARD({
    auto *gen = ctorch::generator(g);
    std::lock_guard<std::mutex> lock(gen->mutex());
    gen->set_state(T(state));
  })
}

// ---- handles and metadata ----
void ct_tensor_free(ct_tensor t) { delete reinterpret_cast<at::Tensor *>(t); }
ct_status ct_tensor_alias(ct_tensor t, ct_tensor *out) { CT_GUARD(*out = wrap(T(t))) }
ct_status ct_tensor_ndim(ct_tensor t, int64_t *out) { CT_GUARD(*out = T(t).dim()) }
ct_status ct_tensor_sizes(ct_tensor t, int64_t *out, int64_t capacity) {
  CT_GUARD({
    auto s = T(t).sizes();
    for (int64_t i = 0; i < std::min<int64_t>(capacity, s.size()); i++) out[i] = s[i];
  })
}
ct_status ct_tensor_strides(ct_tensor t, int64_t *out, int64_t capacity) {
  CT_GUARD({
    auto s = T(t).strides();
    for (int64_t i = 0; i < std::min<int64_t>(capacity, s.size()); i++) out[i] = s[i];
  })
}
ct_status ct_tensor_numel(ct_tensor t, int64_t *out) { CT_GUARD(*out = T(t).numel()) }
ct_status ct_tensor_dtype(ct_tensor t, ct_dtype *out) { CT_GUARD(*out = ctorch::dtype_code(T(t).scalar_type())) }
ct_status ct_tensor_device(ct_tensor t, ct_device_kind *kind, int32_t *index) {
  CT_GUARD({
    auto d = T(t).device();
    if (d.is_cpu()) {
      *kind = CT_CPU;
      *index = -1;
    } else if (d.is_cuda()) {
      *kind = CT_CUDA;
      *index = d.index();
    } else {
      throw std::runtime_error("tensor lives on a device the Swift layer does not support: " + d.str());
    }
  })
}
ct_status ct_tensor_is_contiguous(ct_tensor t, ct_memory_format format, bool *out) {
  CT_GUARD(*out = T(t).is_contiguous(format == CT_MEMORY_CHANNELS_LAST_3D ? at::MemoryFormat::ChannelsLast3d
                                                                            : at::MemoryFormat::Contiguous))
}
ct_status ct_tensor_data_ptr(ct_tensor t, void **out) {
  CT_GUARD({
    TORCH_CHECK(T(t).device().is_cpu(), "data_ptr: the tensor is not on the CPU");
    *out = T(t).data_ptr();
  })
}

// ---- creation ----
ct_status ct_empty(const int64_t *shape, int64_t ndim, ct_dtype dtype, ct_device_kind kind, int32_t index,
                   ct_tensor *out) {
  CT_GUARD(*out = wrap(at::empty(ints(shape, ndim), ctorch::options(dtype, kind, index))))
}
ct_status ct_zeros(const int64_t *shape, int64_t ndim, ct_dtype dtype, ct_device_kind kind, int32_t index,
                   ct_tensor *out) {
  CT_GUARD(*out = wrap(at::zeros(ints(shape, ndim), ctorch::options(dtype, kind, index))))
}
ct_status ct_ones(const int64_t *shape, int64_t ndim, ct_dtype dtype, ct_device_kind kind, int32_t index,
                  ct_tensor *out) {
  CT_GUARD(*out = wrap(at::ones(ints(shape, ndim), ctorch::options(dtype, kind, index))))
}
ct_status ct_full(const int64_t *shape, int64_t ndim, double value, ct_dtype dtype, ct_device_kind kind,
                  int32_t index, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::full(ints(shape, ndim), value, ctorch::options(dtype, kind, index))))
}
ct_status ct_arange(double start, double end, double step, ct_dtype dtype, ct_device_kind kind, int32_t index,
                    ct_tensor *out) {
  CT_GUARD(*out = wrap(at::arange(start, end, step, ctorch::options(dtype, kind, index))))
}
ct_status ct_linspace(double start, double end, int64_t steps, ct_dtype dtype, ct_device_kind kind, int32_t index,
                      ct_tensor *out) {
  CT_GUARD(*out = wrap(at::linspace(start, end, steps, ctorch::options(dtype, kind, index))))
}
ct_status ct_randn(const int64_t *shape, int64_t ndim, ct_dtype dtype, ct_generator g, ct_device_kind kind,
                   int32_t index, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::randn(ints(shape, ndim), opt_gen(g), ctorch::options(dtype, kind, index))))
}
ct_status ct_rand(const int64_t *shape, int64_t ndim, ct_dtype dtype, ct_generator g, ct_device_kind kind,
                  int32_t index, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::rand(ints(shape, ndim), opt_gen(g), ctorch::options(dtype, kind, index))))
}
ct_status ct_randint(int64_t low, int64_t high, const int64_t *shape, int64_t ndim, ct_dtype dtype,
                     ct_generator g, ct_device_kind kind, int32_t index, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::randint(low, high, ints(shape, ndim), opt_gen(g), ctorch::options(dtype, kind, index))))
}
ct_status ct_randperm(int64_t n, ct_generator g, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::randperm(n, opt_gen(g), at::TensorOptions().dtype(at::kLong))))
}
ct_status ct_from_data(const void *data, size_t nbytes, const int64_t *shape, int64_t ndim, ct_dtype dtype,
                       ct_tensor *out) {
  CT_GUARD({
    at::Tensor t = at::empty(ints(shape, ndim), at::TensorOptions().dtype(ctorch::scalar_type(dtype)));
    size_t expected = static_cast<size_t>(t.numel()) * t.element_size();
    TORCH_CHECK(expected == nbytes, "from_data: shape ", t.sizes(), " of ", c10::toString(t.scalar_type()),
                " needs ", expected, " bytes, got ", nbytes);
    if (nbytes) std::memcpy(t.data_ptr(), data, nbytes);
    *out = wrap(std::move(t));
  })
}
ct_status ct_copy_to_buffer(ct_tensor t, void *dst, size_t nbytes) {
  CT_GUARD({
    at::Tensor c = T(t).detach().to(at::kCPU).contiguous();
    size_t have = static_cast<size_t>(c.numel()) * c.element_size();
    TORCH_CHECK(have == nbytes, "copy_to_buffer: tensor holds ", have, " bytes, buffer has ", nbytes);
    if (nbytes) std::memcpy(dst, c.data_ptr(), nbytes);
  })
}
ct_status ct_item_double(ct_tensor t, double *out) { CT_GUARD(*out = T(t).item<double>()) }
ct_status ct_item_int64(ct_tensor t, int64_t *out) { CT_GUARD(*out = T(t).item<int64_t>()) }

// ---- conversion ----
ct_status ct_to_dtype(ct_tensor t, ct_dtype dtype, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).to(ctorch::scalar_type(dtype))))
}
ct_status ct_to_device(ct_tensor t, ct_device_kind kind, int32_t index, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).to(ctorch::device(kind, index))))
}
ct_status ct_contiguous(ct_tensor t, ct_memory_format format, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).contiguous(format == CT_MEMORY_CHANNELS_LAST_3D ? at::MemoryFormat::ChannelsLast3d
                                                                             : at::MemoryFormat::Contiguous)))
}
ct_status ct_zeros_like(ct_tensor t, ct_tensor *out) { CT_GUARD(*out = wrap(at::zeros_like(T(t)))) }
ct_status ct_set_memory_format_(ct_tensor t, ct_memory_format format) {
  CT_GUARD({
    at::Tensor &x = T(t);
    const auto f = format == CT_MEMORY_CHANNELS_LAST_3D ? at::MemoryFormat::ChannelsLast3d : at::MemoryFormat::Contiguous;
    // As Tensor.to(memory_format=f), which PyTorch's Module.to uses: decided by suggest_memory_format(), so that a
    // tensor whose strides fit both layouts (a 1-channel convolution weight) gets f's strides too, and so makes
    // the convolution's output f (is_contiguous(f) alone would leave the stem contiguous).
    if (x.suggest_memory_format() != f) {
      c10::AutoGradMode no_grad(false);
      x.set_data(at::empty_like(x, f).copy_(x));
    }
  })
}
ct_status ct_clone(ct_tensor t, ct_tensor *out) { CT_GUARD(*out = wrap(T(t).clone())) }

// ---- views and shape ----
ct_status ct_reshape(ct_tensor t, const int64_t *shape, int64_t ndim, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).reshape(ints(shape, ndim))))
}
ct_status ct_view(ct_tensor t, const int64_t *shape, int64_t ndim, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).view(ints(shape, ndim))))
}
ct_status ct_permute(ct_tensor t, const int64_t *dims, int64_t ndim, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).permute(ints(dims, ndim))))
}
ct_status ct_transpose(ct_tensor t, int64_t d0, int64_t d1, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).transpose(d0, d1)))
}
ct_status ct_expand(ct_tensor t, const int64_t *shape, int64_t ndim, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).expand(ints(shape, ndim))))
}
ct_status ct_narrow(ct_tensor t, int64_t dim, int64_t start, int64_t length, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).narrow(dim, start, length)))
}
ct_status ct_slice(ct_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).slice(dim, start, end, step)))
}
ct_status ct_select(ct_tensor t, int64_t dim, int64_t index, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).select(dim, index)))
}
ct_status ct_index_select(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).index_select(dim, T(index))))
}
ct_status ct_gather(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).gather(dim, T(index))))
}
ct_status ct_masked_fill(ct_tensor t, ct_tensor mask, double value, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).masked_fill(T(mask), value)))
}
ct_status ct_where(ct_tensor c, ct_tensor a, ct_tensor b, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::where(T(c), T(a), T(b))))
}
ct_status ct_cat(const ct_tensor *ts, int64_t count, int64_t dim, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::cat(ctorch::list(ts, count), dim)))
}
ct_status ct_stack(const ct_tensor *ts, int64_t count, int64_t dim, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::stack(ctorch::list(ts, count), dim)))
}
ct_status ct_squeeze(ct_tensor t, int64_t dim, ct_tensor *out) {
  CT_GUARD(*out = wrap(dim == INT64_MIN ? T(t).squeeze() : T(t).squeeze(dim)))
}
ct_status ct_unsqueeze(ct_tensor t, int64_t dim, ct_tensor *out) { CT_GUARD(*out = wrap(T(t).unsqueeze(dim))) }
ct_status ct_flatten(ct_tensor t, int64_t s, int64_t e, ct_tensor *out) { CT_GUARD(*out = wrap(T(t).flatten(s, e))) }
ct_status ct_flip(ct_tensor t, const int64_t *dims, int64_t ndim, ct_tensor *out) {
  CT_GUARD(*out = wrap(T(t).flip(ints(dims, ndim))))
}
ct_status ct_constant_pad(ct_tensor t, const int64_t *pad, int64_t count, double value, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::constant_pad_nd(T(t), ints(pad, count), value)))
}

// ---- element-wise ----
static at::Tensor binary(ct_binary_op op, const at::Tensor &a, const at::Tensor &b) {
  switch (op) {
    case CT_ADD: return at::add(a, b);
    case CT_SUB: return at::sub(a, b);
    case CT_MUL: return at::mul(a, b);
    case CT_DIV: return at::div(a, b);
    case CT_POW: return at::pow(a, b);
    case CT_MAXIMUM: return at::maximum(a, b);
    case CT_MINIMUM: return at::minimum(a, b);
    case CT_REMAINDER: return at::remainder(a, b);
    case CT_EQ: return at::eq(a, b);
    case CT_NE: return at::ne(a, b);
    case CT_LT: return at::lt(a, b);
    case CT_LE: return at::le(a, b);
    case CT_GT: return at::gt(a, b);
    case CT_GE: return at::ge(a, b);
    case CT_LOGICAL_AND: return at::logical_and(a, b);
    case CT_LOGICAL_OR: return at::logical_or(a, b);
    case CT_ATAN2: return at::atan2(a, b);
    case CT_FLOOR_DIVIDE: return at::floor_divide(a, b);
  }
  throw std::invalid_argument("unknown binary op");
}

static at::Tensor binary_scalar(ct_binary_op op, const at::Tensor &a, const at::Scalar &b) {
  switch (op) {
    case CT_ADD: return at::add(a, b);
    case CT_SUB: return at::sub(a, b);
    case CT_MUL: return at::mul(a, b);
    case CT_DIV: return at::div(a, b);
    case CT_POW: return at::pow(a, b);
    case CT_MAXIMUM: return at::clamp_min(a, b);
    case CT_MINIMUM: return at::clamp_max(a, b);
    case CT_REMAINDER: return at::remainder(a, b);
    case CT_EQ: return at::eq(a, b);
    case CT_NE: return at::ne(a, b);
    case CT_LT: return at::lt(a, b);
    case CT_LE: return at::le(a, b);
    case CT_GT: return at::gt(a, b);
    case CT_GE: return at::ge(a, b);
    case CT_FLOOR_DIVIDE: return at::floor_divide(a, b);
    default: break;
  }
  // The rest have no scalar overload: use a 0-dim tensor of the input's type.
  return binary(op, a, at::scalar_tensor(b, a.options()));
}

// An integral scalar stays integral so that integer tensors keep their dtype (as Python's int would).
static at::Scalar scalar(double v, const at::Tensor &like) {
  if (!at::isFloatingType(like.scalar_type()) && std::nearbyint(v) == v && std::abs(v) < 9.0e15)
    return at::Scalar(static_cast<int64_t>(v));
  return at::Scalar(v);
}

ct_status ct_binary(ct_binary_op op, ct_tensor a, ct_tensor b, ct_tensor *out) {
  CT_GUARD(*out = wrap(binary(op, T(a), T(b))))
}
ct_status ct_binary_scalar(ct_binary_op op, ct_tensor a, double b, ct_tensor *out) {
  CT_GUARD(*out = wrap(binary_scalar(op, T(a), scalar(b, T(a)))))
}
ct_status ct_scalar_sub(double b, ct_tensor a, ct_tensor *out) { CT_GUARD(*out = wrap(at::rsub(T(a), scalar(b, T(a))))) }
ct_status ct_scalar_div(double b, ct_tensor a, ct_tensor *out) { CT_GUARD(*out = wrap(at::reciprocal(T(a)).mul(b))) }

static at::Tensor unary(ct_unary_op op, const at::Tensor &a) {
  switch (op) {
    case CT_NEG: return at::neg(a);
    case CT_ABS: return at::abs(a);
    case CT_EXP: return at::exp(a);
    case CT_LOG: return at::log(a);
    case CT_SQRT: return at::sqrt(a);
    case CT_RSQRT: return at::rsqrt(a);
    case CT_SIN: return at::sin(a);
    case CT_COS: return at::cos(a);
    case CT_TANH: return at::tanh(a);
    case CT_SIGMOID: return at::sigmoid(a);
    case CT_RELU: return at::relu(a);
    case CT_GELU: return at::gelu(a);
    case CT_GELU_TANH: return at::gelu(a, "tanh");
    case CT_SIGN: return at::sign(a);
    case CT_FLOOR: return at::floor(a);
    case CT_CEIL: return at::ceil(a);
    case CT_ROUND: return at::round(a);
    case CT_LOG1P: return at::log1p(a);
    case CT_EXPM1: return at::expm1(a);
    case CT_LOGICAL_NOT: return at::logical_not(a);
    case CT_SQUARE: return at::square(a);
    case CT_RECIPROCAL: return at::reciprocal(a);
    case CT_ERF: return at::erf(a);
    case CT_ISNAN: return at::isnan(a);
    case CT_ISFINITE: return at::isfinite(a);
    case CT_SILU: return at::silu(a);
    case CT_LOGSIGMOID: return at::log_sigmoid(a);
  }
  throw std::invalid_argument("unknown unary op");
}

ct_status ct_unary(ct_unary_op op, ct_tensor a, ct_tensor *out) { CT_GUARD(*out = wrap(unary(op, T(a)))) }
ct_status ct_clamp(ct_tensor t, bool has_min, double mn, bool has_max, double mx, ct_tensor *out) {
  CT_GUARD({
    std::optional<at::Scalar> lo, hi;
    if (has_min) lo = scalar(mn, T(t));
    if (has_max) hi = scalar(mx, T(t));
    *out = wrap(at::clamp(T(t), lo, hi));
  })
}
ct_status ct_add_(ct_tensor t, ct_tensor other, double alpha) { CT_GUARD(T(t).add_(T(other), scalar(alpha, T(t)))) }
ct_status ct_mul_scalar_(ct_tensor t, double v) { CT_GUARD(T(t).mul_(v)) }
ct_status ct_copy_(ct_tensor dst, ct_tensor src) { CT_GUARD(T(dst).copy_(T(src))) }
ct_status ct_fill_(ct_tensor t, double v) { CT_GUARD(T(t).fill_(v)) }
ct_status ct_uniform_(ct_tensor t, double lo, double hi, ct_generator g) { CT_GUARD(T(t).uniform_(lo, hi, opt_gen(g))) }
ct_status ct_normal_(ct_tensor t, double mean, double std, ct_generator g) {
  CT_GUARD(T(t).normal_(mean, std, opt_gen(g)))
}

// ---- reductions ----
extern "C++" {
namespace {
template <typename F>
void count_ge(const at::Tensor &s, const at::Tensor &rt, const at::Tensor &ct, int64_t diagonal, bool exclude,
              at::Tensor &rows, at::Tensor &cols) {
  const int64_t R = s.size(0), C = s.size(1);
  const F *S = s.const_data_ptr<F>(), *RT = rt.const_data_ptr<F>(), *CT = ct.const_data_ptr<F>();
  int64_t *RC = rows.data_ptr<int64_t>(), *CC = cols.data_ptr<int64_t>();
  const int threads = std::max<int>(1, std::min<int64_t>(at::get_num_threads(), R));
  // One column accumulator per block of rows (int32: a block has fewer than 2^31 rows), summed at the end.
  std::vector<std::vector<int32_t>> partial(threads, std::vector<int32_t>(C, 0));
  at::parallel_for(0, threads, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      int32_t *acc = partial[b].data();
      for (int64_t i = R * b / threads; i < R * (b + 1) / threads; ++i) {
        const F *row = S + i * C;
        const F t = RT[i];
        int64_t n = 0;
        for (int64_t j = 0; j < C; ++j) {
          const F v = row[j];
          n += v >= t;
          acc[j] += v >= CT[j];
        }
        const int64_t d = i + diagonal;
        if (exclude && d >= 0 && d < C) {
          n -= row[d] >= t;
          acc[d] -= row[d] >= CT[d];
        }
        RC[i] = n;
      }
    }
  });
  for (int64_t j = 0; j < C; ++j) {
    int64_t n = 0;
    for (int b = 0; b < threads; ++b) n += partial[b][j];
    CC[j] = n;
  }
}
}  // namespace
}  // extern "C++"

ct_status ct_count_ge(ct_tensor s, ct_tensor row_threshold, ct_tensor col_threshold, int64_t diagonal,
                      bool exclude_diagonal, ct_tensor *row_counts, ct_tensor *col_counts) {
  CT_GUARD({
    const at::Tensor x = T(s).contiguous(), rt = T(row_threshold).contiguous(), ct = T(col_threshold).contiguous();
    TORCH_CHECK(x.dim() == 2 && x.device().is_cpu(), "count_ge needs a 2-D CPU tensor, got ", x.sizes(), " on ",
                x.device());
    TORCH_CHECK(rt.dim() == 1 && rt.size(0) == x.size(0) && ct.dim() == 1 && ct.size(0) == x.size(1),
                "count_ge thresholds ", rt.sizes(), " and ", ct.sizes(), " do not fit ", x.sizes());
    TORCH_CHECK(rt.scalar_type() == x.scalar_type() && ct.scalar_type() == x.scalar_type() && rt.device().is_cpu() &&
                    ct.device().is_cpu(),
                "count_ge thresholds must be CPU tensors of the similarity's dtype");
    at::Tensor rows = at::empty({x.size(0)}, at::kLong), cols = at::empty({x.size(1)}, at::kLong);
    if (x.scalar_type() == at::kFloat) count_ge<float>(x, rt, ct, diagonal, exclude_diagonal, rows, cols);
    else if (x.scalar_type() == at::kDouble) count_ge<double>(x, rt, ct, diagonal, exclude_diagonal, rows, cols);
    else TORCH_CHECK(false, "count_ge supports float32 and float64, got ", x.scalar_type());
    *row_counts = wrap(std::move(rows));
    *col_counts = wrap(std::move(cols));
  })
}

ct_status ct_reduce(ct_reduce_op op, ct_tensor t, const int64_t *dims, int64_t ndims, bool keepdim,
                    ct_tensor *out) {
  CT_GUARD({
    const at::Tensor &x = T(t);
    at::OptionalIntArrayRef d;
    if (ndims > 0) d = ints(dims, ndims);
    at::IntArrayRef all = ndims > 0 ? ints(dims, ndims) : at::IntArrayRef();
    switch (op) {
      case CT_SUM: *out = wrap(at::sum(x, d, keepdim)); break;
      case CT_MEAN: *out = wrap(at::mean(x, d, keepdim)); break;
      case CT_AMAX: *out = wrap(at::amax(x, all, keepdim)); break;
      case CT_AMIN: *out = wrap(at::amin(x, all, keepdim)); break;
      case CT_PROD:
        TORCH_CHECK(ndims <= 1, "prod reduces over one dimension or all of them");
        *out = wrap(ndims == 0 ? at::prod(x) : at::prod(x, dims[0], keepdim));
        break;
      case CT_ANY:
        TORCH_CHECK(ndims <= 1, "any reduces over one dimension or all of them");
        *out = wrap(ndims == 0 ? at::any(x) : at::any(x, dims[0], keepdim));
        break;
      case CT_ALL:
        TORCH_CHECK(ndims <= 1, "all reduces over one dimension or all of them");
        *out = wrap(ndims == 0 ? at::all(x) : at::all(x, dims[0], keepdim));
        break;
      default: throw std::invalid_argument("unknown reduction");
    }
  })
}
ct_status ct_max_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values, ct_tensor *indices) {
  CT_GUARD({
    auto r = at::max(T(t), dim, keepdim);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
  })
}
ct_status ct_min_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values, ct_tensor *indices) {
  CT_GUARD({
    auto r = at::min(T(t), dim, keepdim);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
  })
}
ct_status ct_argmax(ct_tensor t, bool has_dim, int64_t dim, bool keepdim, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::argmax(T(t), has_dim ? std::optional<int64_t>(dim) : std::nullopt, keepdim)))
}
ct_status ct_topk(ct_tensor t, int64_t k, int64_t dim, bool largest, bool sorted, ct_tensor *values,
                  ct_tensor *indices) {
  CT_GUARD({
    auto r = at::topk(T(t), k, dim, largest, sorted);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
  })
}
ct_status ct_sort(ct_tensor t, int64_t dim, bool descending, bool stable, ct_tensor *values, ct_tensor *indices) {
  CT_GUARD({
    auto r = at::sort(T(t), stable, dim, descending);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
  })
}
ct_status ct_norm(ct_tensor t, double p, const int64_t *dims, int64_t ndims, bool keepdim, ct_tensor *out) {
  CT_GUARD({
    at::OptionalIntArrayRef d;
    if (ndims > 0) d = ints(dims, ndims);
    *out = wrap(at::linalg_vector_norm(T(t), p, d, keepdim));
  })
}
ct_status ct_var(ct_tensor t, const int64_t *dims, int64_t ndims, int64_t correction, bool keepdim,
                 bool take_sqrt, ct_tensor *out) {
  CT_GUARD({
    at::OptionalIntArrayRef d;
    if (ndims > 0) d = ints(dims, ndims);
    c10::Scalar corr(correction);
    *out = wrap(take_sqrt ? at::std(T(t), d, corr, keepdim) : at::var(T(t), d, corr, keepdim));
  })
}
ct_status ct_cumsum(ct_tensor t, int64_t dim, ct_tensor *out) { CT_GUARD(*out = wrap(at::cumsum(T(t), dim))) }
ct_status ct_allclose(ct_tensor a, ct_tensor b, double rtol, double atol, bool *out) {
  CT_GUARD(*out = at::allclose(T(a), T(b), rtol, atol))
}
ct_status ct_equal(ct_tensor a, ct_tensor b, bool *out) { CT_GUARD(*out = at::equal(T(a), T(b))) }

}  // extern "C"
