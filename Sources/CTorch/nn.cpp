// Neural-network functions, losses, autograd and optimizer kernels of the shim.
#include "internal.hpp"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

using ctorch::T;
using ctorch::ints;
using ctorch::opt;
using ctorch::wrap;

extern "C" {

ct_status ct_matmul(ct_tensor a, ct_tensor b, ct_tensor *out) { CT_GUARD(*out = wrap(at::matmul(T(a), T(b)))) }
ct_status ct_linear(ct_tensor x, ct_tensor w, ct_tensor b, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::linear(T(x), T(w), opt(b))))
}
namespace {
// libtorch 2.x (ConvParams::use_mkldnn, aten/src/ATen/native/Convolution.cpp) sends a CPU float32 convolution to
// its unoptimised im2col path (slow_conv3d) when batch, groups and kernel are small and N·C·D·H ≤ 20480, although
// oneDNN would run it 2× faster for the stride-1 3×3×3 convolutions of a lite ResNet's layer3 at batch 1
// ([1, 256, 6, 12, 12]; docs/PERFORMANCE.md). The heuristic reads dims 0–3 only, so the same convolution with the
// depth axis moved last (input and kernel permuted alike: the same sums, in another order) goes to oneDNN, forward
// and backward. Only that case is rerouted: stride 1, one group, CPU float32 outside autocast, batch 1, and the
// permuted shape crossing the threshold.
constexpr int64_t kSlowConvThreshold = 20480;

bool reroutes_depth_last(const at::Tensor &x, const at::Tensor &w, const int64_t *stride, int64_t groups) {
  if (!x.device().is_cpu() || x.scalar_type() != at::kFloat || w.scalar_type() != at::kFloat || x.dim() != 5 ||
      x.is_mkldnn() || groups != 1 || at::autocast::is_autocast_enabled(at::kCPU))
    return false;
  if (stride[0] != 1 || stride[1] != 1 || stride[2] != 1) return false;
  if (w.dim() != 5 || w.size(1) != x.size(1)) return false;  // let libtorch report a malformed call as it is
  // libtorch keeps single-threaded 1×1×1 convolutions on its own path whatever the shape.
  if (w.size(-1) == 1 && w.size(-2) == 1 && at::get_num_threads() == 1) return false;
  const auto s = x.sizes();
  if (s[0] != 1 || w.size(-1) > 3 || w.size(-2) > 3) return false;
  return s[0] * s[1] * s[2] * s[3] <= kSlowConvThreshold && s[0] * s[1] * s[3] * s[4] > kSlowConvThreshold;
}

// oneDNN's bfloat16 weight gradient (libtorch 2.15, oneDNN 3.13, AVX-512 BF16 CPUs) is wrong when a convolution's
// input depth is above 1 and below the kernel's depth and its output has more than one slice: a 3×3×3 convolution
// over a depth of 2 gives weight gradients off by up to 10³⁶ (NaN at times), and some strided shapes (depth 5,
// kernel 7, stride 2) even corrupt the heap. The output and the input gradient stay right; depth 1, depths at or
// above the kernel's, outputs of one slice, and the other two axes are fine (bench/bf16_conv_check.py maps it; the
// same in PyTorch 2.15 in Python). Such convolutions only occur on tiny volumes (the demo's layer3 at 40×40×20
// voxels), so they run in float32 and the output is cast back to the dtype the bfloat16 path would have given.
// Taken only where libtorch itself would compute in bfloat16: under CPU bf16 autocast for float32/bfloat16/float16
// operands (autocast leaves float64 alone), or outside autocast when input, weight and bias are all bfloat16 (a
// dtype mix stays libtorch's to report).
bool bf16_weight_grad_broken(const at::Tensor &x, const at::Tensor &w, const std::optional<at::Tensor> &b,
                             const int64_t *stride, const int64_t *padding, const int64_t *dilation,
                             at::ScalarType *out) {
  if (!x.device().is_cpu() || x.dim() != 5 || w.dim() != 5 || x.is_mkldnn()) return false;
  const bool autocast = at::autocast::is_autocast_enabled(at::kCPU) &&
                        at::autocast::get_autocast_dtype(at::kCPU) == at::kBFloat16 &&
                        at::isFloatingType(x.scalar_type()) && x.scalar_type() != at::kDouble;
  const bool allBF16 = x.scalar_type() == at::kBFloat16 && w.scalar_type() == at::kBFloat16 &&
                       (!b || b->scalar_type() == at::kBFloat16);
  if (!autocast && !allBF16) return false;
  const int64_t depth = x.size(2), kernelDepth = w.size(2);
  if (depth <= 1 || depth >= kernelDepth || stride[0] < 1) return false;
  const int64_t outDepth = (depth + 2 * padding[0] - dilation[0] * (kernelDepth - 1) - 1) / stride[0] + 1;
  if (outDepth <= 1) return false;
  *out = autocast ? at::kBFloat16 : x.scalar_type();
  return true;
}
}  // namespace

ct_status ct_conv3d(ct_tensor x, ct_tensor w, ct_tensor b, const int64_t *stride, const int64_t *padding,
                    const int64_t *dilation, int64_t groups, ct_tensor *out) {
  CT_GUARD({
    const at::Tensor &input = T(x), &weight = T(w);
    at::ScalarType bf16OutputType;
    const auto bias = opt(b);
    if (bf16_weight_grad_broken(input, weight, bias, stride, padding, dilation, &bf16OutputType)) {
      // Outside autocast, so that the float32 operands stay float32.
      c10::impl::ExcludeDispatchKeyGuard noAutocast(c10::DispatchKey::AutocastCPU);
      *out = wrap(at::conv3d(input.to(at::kFloat), weight.to(at::kFloat),
                             bias ? std::optional<at::Tensor>(bias->to(at::kFloat)) : std::nullopt, ints(stride, 3),
                             ints(padding, 3), ints(dilation, 3), groups)
                      .to(bf16OutputType));
    } else if (reroutes_depth_last(input, weight, stride, groups)) {
      const std::vector<int64_t> s{stride[1], stride[2], stride[0]}, p{padding[1], padding[2], padding[0]},
          d{dilation[1], dilation[2], dilation[0]};
      *out = wrap(at::conv3d(input.permute({0, 1, 3, 4, 2}), weight.permute({0, 1, 3, 4, 2}), opt(b), s, p, d, groups)
                      .permute({0, 1, 4, 2, 3})
                      .contiguous());
    } else {
      *out = wrap(at::conv3d(input, weight, opt(b), ints(stride, 3), ints(padding, 3), ints(dilation, 3), groups));
    }
  })
}
ct_status ct_batch_norm(ct_tensor x, ct_tensor w, ct_tensor b, ct_tensor rm, ct_tensor rv, bool training,
                        double momentum, double eps, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::batch_norm(T(x), opt(w), opt(b), opt(rm), opt(rv), training, momentum, eps,
                                      /*cudnn_enabled=*/true)))
}
ct_status ct_layer_norm(ct_tensor x, const int64_t *shape, int64_t ndim, ct_tensor w, ct_tensor b, double eps,
                        ct_tensor *out) {
  CT_GUARD(*out = wrap(at::layer_norm(T(x), ints(shape, ndim), opt(w), opt(b), eps)))
}
ct_status ct_max_pool3d(ct_tensor x, const int64_t *k, const int64_t *s, const int64_t *p, const int64_t *d,
                        bool ceil_mode, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::max_pool3d(T(x), ints(k, 3), ints(s, 3), ints(p, 3), ints(d, 3), ceil_mode)))
}
ct_status ct_avg_pool3d(ct_tensor x, const int64_t *k, const int64_t *s, const int64_t *p, bool ceil_mode,
                        bool count_include_pad, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::avg_pool3d(T(x), ints(k, 3), ints(s, 3), ints(p, 3), ceil_mode, count_include_pad)))
}
ct_status ct_adaptive_avg_pool3d(ct_tensor x, const int64_t *size, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::adaptive_avg_pool3d(T(x), ints(size, 3))))
}
ct_status ct_interpolate3d(ct_tensor x, const int64_t *size, bool nearest, bool align_corners, ct_tensor *out) {
  CT_GUARD({
    TORCH_CHECK(T(x).dim() == 5, "interpolate3d expects a 5-D [N, C, D, H, W] input, got ", T(x).sizes());
    *out = wrap(nearest ? at::upsample_nearest3d(T(x), ints(size, 3))
                        : at::upsample_trilinear3d(T(x), ints(size, 3), align_corners));
  })
}
ct_status ct_relu_(ct_tensor x) { CT_GUARD(at::relu_(T(x))) }
ct_status ct_softmax(ct_tensor x, int64_t dim, ct_tensor *out) { CT_GUARD(*out = wrap(at::softmax(T(x), dim))) }
ct_status ct_log_softmax(ct_tensor x, int64_t dim, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::log_softmax(T(x), dim)))
}
ct_status ct_dropout(ct_tensor x, double p, bool training, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::dropout(T(x), p, training)))
}
ct_status ct_embedding(ct_tensor w, ct_tensor idx, int64_t padding_idx, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::embedding(T(w), T(idx), padding_idx)))
}
ct_status ct_scaled_dot_product_attention(ct_tensor q, ct_tensor k, ct_tensor v, ct_tensor mask, double dropout_p,
                                          bool is_causal, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::scaled_dot_product_attention(T(q), T(k), T(v), opt(mask), dropout_p, is_causal)))
}
ct_status ct_bce_with_logits(ct_tensor logits, ct_tensor target, ct_tensor weight, ct_tensor pos_weight,
                             ct_reduction reduction, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::binary_cross_entropy_with_logits(T(logits), T(target), opt(weight), opt(pos_weight),
                                                            static_cast<int64_t>(reduction))))
}
ct_status ct_cross_entropy(ct_tensor logits, ct_tensor target, ct_tensor weight, ct_reduction reduction,
                           int64_t ignore_index, double label_smoothing, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::cross_entropy_loss(T(logits), T(target), opt(weight), static_cast<int64_t>(reduction),
                                              ignore_index, label_smoothing)))
}
ct_status ct_mse_loss(ct_tensor a, ct_tensor b, ct_reduction reduction, ct_tensor *out) {
  CT_GUARD(*out = wrap(at::mse_loss(T(a), T(b), static_cast<int64_t>(reduction))))
}

// ---- autograd ----
ct_status ct_set_requires_grad(ct_tensor t, bool r) { CT_GUARD(T(t).requires_grad_(r)) }
ct_status ct_requires_grad(ct_tensor t, bool *out) { CT_GUARD(*out = T(t).requires_grad()) }
ct_status ct_is_leaf(ct_tensor t, bool *out) { CT_GUARD(*out = T(t).is_leaf()) }
ct_status ct_backward(ct_tensor t, ct_tensor grad, bool retain_graph) {
  CT_GUARD({
    at::Tensor g = grad ? T(grad) : at::Tensor();
    T(t).backward(g, retain_graph, /*create_graph=*/false);
  })
}
ct_status ct_grad(ct_tensor t, ct_tensor *out) {
  CT_GUARD({
    const at::Tensor &g = T(t).grad();
    *out = g.defined() ? wrap(g) : nullptr;
  })
}
ct_status ct_set_grad(ct_tensor t, ct_tensor grad) {
  CT_GUARD({
    if (grad) {
      // As PyTorch's .grad setter: the gradient must match the tensor's sizes, dtype and device.
      const at::Tensor &x = T(t), &g = T(grad);
      TORCH_CHECK(g.sizes() == x.sizes(), "assigned grad has sizes ", g.sizes(), ", the tensor has ", x.sizes());
      TORCH_CHECK(g.scalar_type() == x.scalar_type(), "assigned grad has dtype ", g.scalar_type(),
                  ", the tensor has ", x.scalar_type());
      TORCH_CHECK(g.device() == x.device(), "assigned grad is on ", g.device(), ", the tensor on ", x.device());
    }
    T(t).mutable_grad() = grad ? T(grad) : at::Tensor();
  })
}
ct_status ct_detach(ct_tensor t, ct_tensor *out) { CT_GUARD(*out = wrap(T(t).detach())) }

// ---- optimizers ----
ct_status ct_adamw_step(const ct_tensor *params, const ct_tensor *exp_avgs, const ct_tensor *exp_avg_sqs,
                        const ct_tensor *steps, int64_t count, double lr, double beta1, double beta2,
                        double weight_decay, double eps) {
  CT_GUARD({
    c10::AutoGradMode no_grad(false);
    std::vector<at::Tensor> p, g, m, v, s;
    for (int64_t i = 0; i < count; i++) {
      const at::Tensor &grad = T(params[i]).grad();
      if (!grad.defined()) continue;
      TORCH_CHECK(!grad.is_sparse(), "AdamW does not support sparse gradients");
      const at::Tensor &param = T(params[i]);
      TORCH_CHECK(grad.sizes() == param.sizes() && T(exp_avgs[i]).sizes() == param.sizes() &&
                      T(exp_avg_sqs[i]).sizes() == param.sizes(),
                  "AdamW: parameter ", i, " has sizes ", param.sizes(), " but its gradient or state has ",
                  grad.sizes(), " / ", T(exp_avgs[i]).sizes(), " / ", T(exp_avg_sqs[i]).sizes());
      // The fused kernel walks the four tensors' storage in one flat order, so they must share strides (a
      // channels-last parameter has channels-last state; see Module.convertParameters). A gradient laid out
      // otherwise (set by hand, or zeros from the data-parallel helpers) is copied into the parameter's layout.
      TORCH_CHECK(T(exp_avgs[i]).strides() == param.strides() && T(exp_avg_sqs[i]).strides() == param.strides(),
                  "AdamW: parameter ", i, " and its optimizer state have different memory layouts (strides ",
                  param.strides(), " against ", T(exp_avgs[i]).strides(), ")");
      if (grad.strides() == param.strides()) {
        g.push_back(grad);
      } else {
        g.push_back(at::empty_like(param).copy_(grad));
      }
      p.push_back(T(params[i]));
      m.push_back(T(exp_avgs[i]));
      v.push_back(T(exp_avg_sqs[i]));
      s.push_back(T(steps[i]));
    }
    if (p.empty()) return CT_OK;
    at::_foreach_add_(s, 1);
    at::_fused_adamw_(p, g, m, v, /*max_exp_avg_sqs=*/{}, s, lr, beta1, beta2, weight_decay, eps,
                      /*amsgrad=*/false, /*maximize=*/false);
  })
}

ct_status ct_clip_grad_norm(const ct_tensor *params, int64_t count, double max_norm, double norm_type,
                            double *total_norm) {
  CT_GUARD({
    c10::AutoGradMode no_grad(false);
    std::vector<at::Tensor> grads;
    for (int64_t i = 0; i < count; i++) {
      const at::Tensor &g = T(params[i]).grad();
      if (g.defined()) grads.push_back(g);
    }
    if (grads.empty()) {
      *total_norm = 0;
      return CT_OK;
    }
    // As torch.nn.utils.clip_grad_norm_ (foreach=False): per-tensor norms, the norm of the norms, then a
    // clamped coefficient max_norm / (total + 1e-6) applied in place.
    std::vector<at::Tensor> norms;
    norms.reserve(grads.size());
    for (const auto &g : grads) norms.push_back(at::linalg_vector_norm(g, norm_type));
    at::Tensor total = at::linalg_vector_norm(at::stack(norms), norm_type);
    at::Tensor coef = at::clamp(max_norm / (total + 1e-6), std::nullopt, 1.0);
    for (auto &g : grads) g.mul_(coef.to(g.device()));
    *total_norm = total.item<double>();
  })
}

}  // extern "C"
