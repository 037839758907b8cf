/*
 * ctorch.h — a thin C interface over libtorch (ATen + autograd), for Swift.
 *
 * Conventions (every function):
 *   - the `ct_` prefix;
 *   - a ct_status return: CT_OK (0) or CT_ERROR (1); results go through out-parameters;
 *   - every C++ exception (c10::Error, std::exception, anything else) is caught inside the shim and stored
 *     as a per-thread message that ct_last_error() returns; no exception ever crosses this interface;
 *   - tensors are opaque owning handles (ct_tensor): each handle returned through an out-parameter must be
 *     released exactly once with ct_tensor_free; handles share storage the way at::Tensor copies do;
 *   - optional tensor arguments are _Nullable and mean "absent" when NULL.
 */
#ifndef CTORCH_H
#define CTORCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t ct_status;
#define CT_OK 0
#define CT_ERROR 1

typedef struct ct_tensor_s *ct_tensor;
typedef struct ct_generator_s *ct_generator;

/* Element types. */
typedef enum {
  CT_F32 = 0, CT_F16 = 1, CT_BF16 = 2, CT_F64 = 3,
  CT_I64 = 4, CT_I32 = 5, CT_I16 = 6, CT_I8 = 7, CT_U8 = 8, CT_BOOL = 9
} ct_dtype;

/* Device kinds; a device is a kind plus an index (-1 for the current/default one). */
typedef enum { CT_CPU = 0, CT_CUDA = 1 } ct_device_kind;

typedef enum { CT_MEMORY_CONTIGUOUS = 0, CT_MEMORY_CHANNELS_LAST_3D = 1 } ct_memory_format;

typedef enum {
  CT_ADD = 0, CT_SUB, CT_MUL, CT_DIV, CT_POW, CT_MAXIMUM, CT_MINIMUM, CT_REMAINDER,
  CT_EQ, CT_NE, CT_LT, CT_LE, CT_GT, CT_GE, CT_LOGICAL_AND, CT_LOGICAL_OR, CT_ATAN2, CT_FLOOR_DIVIDE
} ct_binary_op;

typedef enum {
  CT_NEG = 0, CT_ABS, CT_EXP, CT_LOG, CT_SQRT, CT_RSQRT, CT_SIN, CT_COS, CT_TANH, CT_SIGMOID, CT_RELU,
  CT_GELU, CT_GELU_TANH, CT_SIGN, CT_FLOOR, CT_CEIL, CT_ROUND, CT_LOG1P, CT_EXPM1, CT_LOGICAL_NOT, CT_SQUARE,
  CT_RECIPROCAL, CT_ERF, CT_ISNAN, CT_ISFINITE, CT_SILU, CT_LOGSIGMOID
} ct_unary_op;

typedef enum { CT_SUM = 0, CT_MEAN, CT_AMAX, CT_AMIN, CT_PROD, CT_ANY, CT_ALL } ct_reduce_op;

/* Loss reductions, as at::Reduction. */
typedef enum { CT_REDUCTION_NONE = 0, CT_REDUCTION_MEAN = 1, CT_REDUCTION_SUM = 2 } ct_reduction;

/* ---- errors, library, threads ---------------------------------------------------------------------- */
/* The message of the last failed call on this thread ("" if none). Valid until the next failing call. */
const char *_Nonnull ct_last_error(void);
/* The libtorch version string, e.g. "2.15.0". */
const char *_Nonnull ct_version(void);
ct_status ct_set_num_threads(int32_t n);
ct_status ct_get_num_threads(int32_t *_Nonnull out);
ct_status ct_set_num_interop_threads(int32_t n);
ct_status ct_cuda_device_count(int32_t *_Nonnull out);
ct_status ct_manual_seed(uint64_t seed);
/* Grad mode is per thread, as in PyTorch. */
ct_status ct_is_grad_enabled(bool *_Nonnull out);
ct_status ct_set_grad_enabled(bool enabled);
/* Autocast (mixed precision) for a device kind; dtype CT_BF16 or CT_F16. Per thread. */
ct_status ct_set_autocast(ct_device_kind kind, bool enabled, ct_dtype dtype);
ct_status ct_is_autocast_enabled(ct_device_kind kind, bool *_Nonnull out);
/* The dtype autocast uses for a device kind (so that a scope can restore it). Per thread. */
ct_status ct_get_autocast_dtype(ct_device_kind kind, ct_dtype *_Nonnull out);
ct_status ct_autocast_clear_cache(void);
/* A human-readable string; free with ct_string_free. */
ct_status ct_tensor_description(ct_tensor _Nonnull t, char *_Nullable *_Nonnull out);
void ct_string_free(char *_Nullable s);

/* ---- generators ------------------------------------------------------------------------------------ */
ct_status ct_generator_new(uint64_t seed, ct_generator _Nullable *_Nonnull out);
void ct_generator_free(ct_generator _Nullable g);
ct_status ct_generator_get_state(ct_generator _Nonnull g, ct_tensor _Nullable *_Nonnull out);
ct_status ct_generator_set_state(ct_generator _Nonnull g, ct_tensor _Nonnull state);

/* ---- handles and metadata -------------------------------------------------------------------------- */
void ct_tensor_free(ct_tensor _Nullable t);
/* A second handle to the same tensor (same storage, same autograd identity). */
ct_status ct_tensor_alias(ct_tensor _Nonnull t, ct_tensor _Nullable *_Nonnull out);
ct_status ct_tensor_ndim(ct_tensor _Nonnull t, int64_t *_Nonnull out);
/* Writes min(ndim, capacity) sizes. */
ct_status ct_tensor_sizes(ct_tensor _Nonnull t, int64_t *_Nonnull out, int64_t capacity);
ct_status ct_tensor_strides(ct_tensor _Nonnull t, int64_t *_Nonnull out, int64_t capacity);
ct_status ct_tensor_numel(ct_tensor _Nonnull t, int64_t *_Nonnull out);
ct_status ct_tensor_dtype(ct_tensor _Nonnull t, ct_dtype *_Nonnull out);
ct_status ct_tensor_device(ct_tensor _Nonnull t, ct_device_kind *_Nonnull kind, int32_t *_Nonnull index);
ct_status ct_tensor_is_contiguous(ct_tensor _Nonnull t, ct_memory_format format, bool *_Nonnull out);
/* For a CPU tensor: the address of its first element (valid while the tensor lives). */
ct_status ct_tensor_data_ptr(ct_tensor _Nonnull t, void *_Nullable *_Nonnull out);

/* ---- creation -------------------------------------------------------------------------------------- */
ct_status ct_empty(const int64_t *_Nullable shape, int64_t ndim, ct_dtype dtype, ct_device_kind kind,
                   int32_t index, ct_tensor _Nullable *_Nonnull out);
ct_status ct_zeros(const int64_t *_Nullable shape, int64_t ndim, ct_dtype dtype, ct_device_kind kind,
                   int32_t index, ct_tensor _Nullable *_Nonnull out);
ct_status ct_ones(const int64_t *_Nullable shape, int64_t ndim, ct_dtype dtype, ct_device_kind kind,
                  int32_t index, ct_tensor _Nullable *_Nonnull out);
ct_status ct_full(const int64_t *_Nullable shape, int64_t ndim, double value, ct_dtype dtype,
                  ct_device_kind kind, int32_t index, ct_tensor _Nullable *_Nonnull out);
ct_status ct_arange(double start, double end, double step, ct_dtype dtype, ct_device_kind kind,
                    int32_t index, ct_tensor _Nullable *_Nonnull out);
ct_status ct_linspace(double start, double end, int64_t steps, ct_dtype dtype, ct_device_kind kind,
                      int32_t index, ct_tensor _Nullable *_Nonnull out);
/* Random draws; g NULL means libtorch's default generator (ct_manual_seed). */
ct_status ct_randn(const int64_t *_Nullable shape, int64_t ndim, ct_dtype dtype, ct_generator _Nullable g,
                   ct_device_kind kind, int32_t index, ct_tensor _Nullable *_Nonnull out);
ct_status ct_rand(const int64_t *_Nullable shape, int64_t ndim, ct_dtype dtype, ct_generator _Nullable g,
                  ct_device_kind kind, int32_t index, ct_tensor _Nullable *_Nonnull out);
ct_status ct_randint(int64_t low, int64_t high, const int64_t *_Nullable shape, int64_t ndim, ct_dtype dtype,
                     ct_generator _Nullable g, ct_device_kind kind, int32_t index,
                     ct_tensor _Nullable *_Nonnull out);
ct_status ct_randperm(int64_t n, ct_generator _Nullable g, ct_tensor _Nullable *_Nonnull out);
/* Copies nbytes from data (element type dtype, C order) into a new CPU tensor of the given shape. */
ct_status ct_from_data(const void *_Nullable data, size_t nbytes, const int64_t *_Nullable shape,
                       int64_t ndim, ct_dtype dtype, ct_tensor _Nullable *_Nonnull out);
/* Copies the tensor's elements, in C order, to dst (moving to CPU if needed); nbytes must match. */
ct_status ct_copy_to_buffer(ct_tensor _Nonnull t, void *_Nonnull dst, size_t nbytes);
ct_status ct_item_double(ct_tensor _Nonnull t, double *_Nonnull out);
ct_status ct_item_int64(ct_tensor _Nonnull t, int64_t *_Nonnull out);

/* ---- conversion ------------------------------------------------------------------------------------ */
ct_status ct_to_dtype(ct_tensor _Nonnull t, ct_dtype dtype, ct_tensor _Nullable *_Nonnull out);
ct_status ct_to_device(ct_tensor _Nonnull t, ct_device_kind kind, int32_t index,
                       ct_tensor _Nullable *_Nonnull out);
ct_status ct_contiguous(ct_tensor _Nonnull t, ct_memory_format format, ct_tensor _Nullable *_Nonnull out);
/// A zero tensor with `t`'s shape, dtype, device and strides (`torch.zeros_like`, preserve_format).
ct_status ct_zeros_like(ct_tensor _Nonnull t, ct_tensor _Nullable *_Nonnull out);
/// Re-lays out `t`'s storage in `format` in place, keeping the tensor itself (its identity, autograd leaf status and
/// every handle to it): `p.data = p.contiguous(memory_format=format)` in PyTorch. Values are unchanged.
ct_status ct_set_memory_format_(ct_tensor _Nonnull t, ct_memory_format format);
ct_status ct_clone(ct_tensor _Nonnull t, ct_tensor _Nullable *_Nonnull out);

/* ---- views and shape ------------------------------------------------------------------------------- */
ct_status ct_reshape(ct_tensor _Nonnull t, const int64_t *_Nullable shape, int64_t ndim,
                     ct_tensor _Nullable *_Nonnull out);
ct_status ct_view(ct_tensor _Nonnull t, const int64_t *_Nullable shape, int64_t ndim,
                  ct_tensor _Nullable *_Nonnull out);
ct_status ct_permute(ct_tensor _Nonnull t, const int64_t *_Nullable dims, int64_t ndim,
                     ct_tensor _Nullable *_Nonnull out);
ct_status ct_transpose(ct_tensor _Nonnull t, int64_t dim0, int64_t dim1, ct_tensor _Nullable *_Nonnull out);
ct_status ct_expand(ct_tensor _Nonnull t, const int64_t *_Nullable shape, int64_t ndim,
                    ct_tensor _Nullable *_Nonnull out);
ct_status ct_narrow(ct_tensor _Nonnull t, int64_t dim, int64_t start, int64_t length,
                    ct_tensor _Nullable *_Nonnull out);
ct_status ct_slice(ct_tensor _Nonnull t, int64_t dim, int64_t start, int64_t end, int64_t step,
                   ct_tensor _Nullable *_Nonnull out);
ct_status ct_select(ct_tensor _Nonnull t, int64_t dim, int64_t index, ct_tensor _Nullable *_Nonnull out);
ct_status ct_index_select(ct_tensor _Nonnull t, int64_t dim, ct_tensor _Nonnull index,
                          ct_tensor _Nullable *_Nonnull out);
ct_status ct_gather(ct_tensor _Nonnull t, int64_t dim, ct_tensor _Nonnull index,
                    ct_tensor _Nullable *_Nonnull out);
ct_status ct_masked_fill(ct_tensor _Nonnull t, ct_tensor _Nonnull mask, double value,
                         ct_tensor _Nullable *_Nonnull out);
ct_status ct_where(ct_tensor _Nonnull condition, ct_tensor _Nonnull a, ct_tensor _Nonnull b,
                   ct_tensor _Nullable *_Nonnull out);
ct_status ct_cat(const ct_tensor _Nonnull *_Nonnull tensors, int64_t count, int64_t dim,
                 ct_tensor _Nullable *_Nonnull out);
ct_status ct_stack(const ct_tensor _Nonnull *_Nonnull tensors, int64_t count, int64_t dim,
                   ct_tensor _Nullable *_Nonnull out);
/* dim == INT64_MIN squeezes every size-1 dimension. */
ct_status ct_squeeze(ct_tensor _Nonnull t, int64_t dim, ct_tensor _Nullable *_Nonnull out);
ct_status ct_unsqueeze(ct_tensor _Nonnull t, int64_t dim, ct_tensor _Nullable *_Nonnull out);
ct_status ct_flatten(ct_tensor _Nonnull t, int64_t start_dim, int64_t end_dim, ct_tensor _Nullable *_Nonnull out);
ct_status ct_flip(ct_tensor _Nonnull t, const int64_t *_Nullable dims, int64_t ndim,
                  ct_tensor _Nullable *_Nonnull out);
/* pad: pairs (before, after) from the last dimension backwards, as torch.nn.functional.pad. */
ct_status ct_constant_pad(ct_tensor _Nonnull t, const int64_t *_Nullable pad, int64_t count, double value,
                          ct_tensor _Nullable *_Nonnull out);

/* ---- element-wise ---------------------------------------------------------------------------------- */
ct_status ct_binary(ct_binary_op op, ct_tensor _Nonnull a, ct_tensor _Nonnull b, ct_tensor _Nullable *_Nonnull out);
ct_status ct_binary_scalar(ct_binary_op op, ct_tensor _Nonnull a, double b, ct_tensor _Nullable *_Nonnull out);
/* b - a for a scalar b (reverse subtraction), b / a likewise. */
ct_status ct_scalar_sub(double b, ct_tensor _Nonnull a, ct_tensor _Nullable *_Nonnull out);
ct_status ct_scalar_div(double b, ct_tensor _Nonnull a, ct_tensor _Nullable *_Nonnull out);
ct_status ct_unary(ct_unary_op op, ct_tensor _Nonnull a, ct_tensor _Nullable *_Nonnull out);
ct_status ct_clamp(ct_tensor _Nonnull t, bool has_min, double min, bool has_max, double max,
                   ct_tensor _Nullable *_Nonnull out);
/* In place (no autograd history for leaves that require grad unless grad mode is off). */
ct_status ct_add_(ct_tensor _Nonnull t, ct_tensor _Nonnull other, double alpha);
ct_status ct_mul_scalar_(ct_tensor _Nonnull t, double value);
ct_status ct_copy_(ct_tensor _Nonnull dst, ct_tensor _Nonnull src);
ct_status ct_fill_(ct_tensor _Nonnull t, double value);
ct_status ct_uniform_(ct_tensor _Nonnull t, double low, double high, ct_generator _Nullable g);
ct_status ct_normal_(ct_tensor _Nonnull t, double mean, double std, ct_generator _Nullable g);
/* max(t, 0) in place (autograd-aware, as torch.relu_ / nn.ReLU(inplace=True)). */
ct_status ct_relu_(ct_tensor _Nonnull t);

/* ---- reductions ------------------------------------------------------------------------------------ */
/* ndims == 0 reduces over every dimension. CT_ANY/CT_ALL take exactly one dimension or none. */
ct_status ct_reduce(ct_reduce_op op, ct_tensor _Nonnull t, const int64_t *_Nullable dims, int64_t ndims,
                    bool keepdim, ct_tensor _Nullable *_Nonnull out);
/// Retrieval rank counts in one pass over a similarity block, without temporaries: for s `[R, C]` (CPU, float32
/// or float64), row_threshold `[R]` and col_threshold `[C]` of the same dtype, returns row_counts `[R]` int64 with
/// row_counts[i] = #{j : s[i, j] >= row_threshold[i]} and col_counts `[C]` int64 with
/// col_counts[j] = #{i : s[i, j] >= col_threshold[j]}; with exclude_diagonal, the entries (i, i + diagonal) are
/// left out of both. Rows are split over libtorch's intra-op threads.
ct_status ct_count_ge(ct_tensor _Nonnull s, ct_tensor _Nonnull row_threshold, ct_tensor _Nonnull col_threshold,
                      int64_t diagonal, bool exclude_diagonal, ct_tensor _Nullable *_Nonnull row_counts,
                      ct_tensor _Nullable *_Nonnull col_counts);
ct_status ct_max_dim(ct_tensor _Nonnull t, int64_t dim, bool keepdim, ct_tensor _Nullable *_Nonnull values,
                     ct_tensor _Nullable *_Nonnull indices);
ct_status ct_min_dim(ct_tensor _Nonnull t, int64_t dim, bool keepdim, ct_tensor _Nullable *_Nonnull values,
                     ct_tensor _Nullable *_Nonnull indices);
/* has_dim false: the flat index over all elements. */
ct_status ct_argmax(ct_tensor _Nonnull t, bool has_dim, int64_t dim, bool keepdim, ct_tensor _Nullable *_Nonnull out);
ct_status ct_topk(ct_tensor _Nonnull t, int64_t k, int64_t dim, bool largest, bool sorted,
                  ct_tensor _Nullable *_Nonnull values, ct_tensor _Nullable *_Nonnull indices);
ct_status ct_sort(ct_tensor _Nonnull t, int64_t dim, bool descending, bool stable,
                  ct_tensor _Nullable *_Nonnull values, ct_tensor _Nullable *_Nonnull indices);
/* Vector p-norm over dims (all when ndims == 0), as torch.linalg.vector_norm. */
ct_status ct_norm(ct_tensor _Nonnull t, double p, const int64_t *_Nullable dims, int64_t ndims, bool keepdim,
                  ct_tensor _Nullable *_Nonnull out);
/* Variance / standard deviation with the given correction (1 = unbiased). */
ct_status ct_var(ct_tensor _Nonnull t, const int64_t *_Nullable dims, int64_t ndims, int64_t correction,
                 bool keepdim, bool take_sqrt, ct_tensor _Nullable *_Nonnull out);
ct_status ct_cumsum(ct_tensor _Nonnull t, int64_t dim, ct_tensor _Nullable *_Nonnull out);
ct_status ct_allclose(ct_tensor _Nonnull a, ct_tensor _Nonnull b, double rtol, double atol, bool *_Nonnull out);
ct_status ct_equal(ct_tensor _Nonnull a, ct_tensor _Nonnull b, bool *_Nonnull out);

/* ---- linear algebra and neural-network functions ----------------------------------------------------- */
ct_status ct_matmul(ct_tensor _Nonnull a, ct_tensor _Nonnull b, ct_tensor _Nullable *_Nonnull out);
/* y = x W^T + b, as torch.nn.functional.linear. */
ct_status ct_linear(ct_tensor _Nonnull x, ct_tensor _Nonnull weight, ct_tensor _Nullable bias,
                    ct_tensor _Nullable *_Nonnull out);
/* x [N, C, D, H, W]; weight [O, C/groups, kD, kH, kW]; stride, padding, dilation: 3 values (D, H, W). */
ct_status ct_conv3d(ct_tensor _Nonnull x, ct_tensor _Nonnull weight, ct_tensor _Nullable bias,
                    const int64_t *_Nonnull stride, const int64_t *_Nonnull padding,
                    const int64_t *_Nonnull dilation, int64_t groups, ct_tensor _Nullable *_Nonnull out);
/* As torch.nn.functional.batch_norm; in training mode running statistics are updated in place. */
ct_status ct_batch_norm(ct_tensor _Nonnull x, ct_tensor _Nullable weight, ct_tensor _Nullable bias,
                        ct_tensor _Nullable running_mean, ct_tensor _Nullable running_var, bool training,
                        double momentum, double eps, ct_tensor _Nullable *_Nonnull out);
ct_status ct_layer_norm(ct_tensor _Nonnull x, const int64_t *_Nonnull normalized_shape, int64_t ndim,
                        ct_tensor _Nullable weight, ct_tensor _Nullable bias, double eps,
                        ct_tensor _Nullable *_Nonnull out);
ct_status ct_max_pool3d(ct_tensor _Nonnull x, const int64_t *_Nonnull kernel, const int64_t *_Nonnull stride,
                        const int64_t *_Nonnull padding, const int64_t *_Nonnull dilation, bool ceil_mode,
                        ct_tensor _Nullable *_Nonnull out);
ct_status ct_avg_pool3d(ct_tensor _Nonnull x, const int64_t *_Nonnull kernel, const int64_t *_Nonnull stride,
                        const int64_t *_Nonnull padding, bool ceil_mode, bool count_include_pad,
                        ct_tensor _Nullable *_Nonnull out);
ct_status ct_adaptive_avg_pool3d(ct_tensor _Nonnull x, const int64_t *_Nonnull output_size,
                                 ct_tensor _Nullable *_Nonnull out);
/* x [N, C, D, H, W] resized to size (3 values): trilinear, or nearest when nearest is true. */
ct_status ct_interpolate3d(ct_tensor _Nonnull x, const int64_t *_Nonnull size, bool nearest, bool align_corners,
                           ct_tensor _Nullable *_Nonnull out);
ct_status ct_softmax(ct_tensor _Nonnull x, int64_t dim, ct_tensor _Nullable *_Nonnull out);
ct_status ct_log_softmax(ct_tensor _Nonnull x, int64_t dim, ct_tensor _Nullable *_Nonnull out);
/* Uses the default generator, as torch.nn.functional.dropout does. */
ct_status ct_dropout(ct_tensor _Nonnull x, double p, bool training, ct_tensor _Nullable *_Nonnull out);
ct_status ct_embedding(ct_tensor _Nonnull weight, ct_tensor _Nonnull indices, int64_t padding_idx,
                       ct_tensor _Nullable *_Nonnull out);
/* q, k, v [..., L, E]; mask boolean (true = attend) or additive float, broadcastable; may be NULL. */
ct_status ct_scaled_dot_product_attention(ct_tensor _Nonnull q, ct_tensor _Nonnull k, ct_tensor _Nonnull v,
                                          ct_tensor _Nullable mask, double dropout_p, bool is_causal,
                                          ct_tensor _Nullable *_Nonnull out);
ct_status ct_bce_with_logits(ct_tensor _Nonnull logits, ct_tensor _Nonnull target, ct_tensor _Nullable weight,
                             ct_tensor _Nullable pos_weight, ct_reduction reduction,
                             ct_tensor _Nullable *_Nonnull out);
/* logits [N, C] (or [N, C, ...]); target class indices (i64) or class probabilities (float). */
ct_status ct_cross_entropy(ct_tensor _Nonnull logits, ct_tensor _Nonnull target, ct_tensor _Nullable weight,
                           ct_reduction reduction, int64_t ignore_index, double label_smoothing,
                           ct_tensor _Nullable *_Nonnull out);
ct_status ct_mse_loss(ct_tensor _Nonnull a, ct_tensor _Nonnull b, ct_reduction reduction,
                      ct_tensor _Nullable *_Nonnull out);

/* ---- autograd -------------------------------------------------------------------------------------- */
ct_status ct_set_requires_grad(ct_tensor _Nonnull t, bool requires_grad);
ct_status ct_requires_grad(ct_tensor _Nonnull t, bool *_Nonnull out);
ct_status ct_is_leaf(ct_tensor _Nonnull t, bool *_Nonnull out);
/* grad NULL: implicit gradient of a scalar. */
ct_status ct_backward(ct_tensor _Nonnull t, ct_tensor _Nullable grad, bool retain_graph);
/* *out is NULL when the tensor has no gradient. */
ct_status ct_grad(ct_tensor _Nonnull t, ct_tensor _Nullable *_Nonnull out);
/* Sets (or, with NULL, removes) the .grad of a leaf. */
ct_status ct_set_grad(ct_tensor _Nonnull t, ct_tensor _Nullable grad);
ct_status ct_detach(ct_tensor _Nonnull t, ct_tensor _Nullable *_Nonnull out);

/* ---- optimizers ------------------------------------------------------------------------------------ */
/* One AdamW step over `count` parameters with libtorch's fused CPU/CUDA kernel (torch._fused_adamw_, the
 * kernel behind torch.optim.AdamW(fused=True)): decoupled weight decay, bias correction. `steps` are f32
 * scalar tensors holding the step count, incremented here before the update. Parameters without a
 * gradient are skipped. */
ct_status ct_adamw_step(const ct_tensor _Nonnull *_Nonnull params, const ct_tensor _Nonnull *_Nonnull exp_avgs,
                        const ct_tensor _Nonnull *_Nonnull exp_avg_sqs, const ct_tensor _Nonnull *_Nonnull steps,
                        int64_t count, double lr, double beta1, double beta2, double weight_decay, double eps);
/* Scales the gradients so that their global p-norm is at most max_norm, as
 * torch.nn.utils.clip_grad_norm_; writes the norm before clipping. */
ct_status ct_clip_grad_norm(const ct_tensor _Nonnull *_Nonnull params, int64_t count, double max_norm,
                            double norm_type, double *_Nonnull total_norm);

/* ---- distributed (c10d) ---------------------------------------------------------------------------- */
/* A joined c10d process group (a TCP store plus a backend); free with ct_dist_free. Collectives must be called in
 * the same order on every rank; each call blocks until its collective is done and fails (CT_ERROR, with c10d's
 * message) when a peer dies or the group's time-out passes. */
typedef struct ct_process_group_s *ct_process_group;
typedef enum { CT_DIST_SUM = 0, CT_DIST_MAX = 1, CT_DIST_MIN = 2 } ct_dist_reduce_op;
/* Joins the group of `world_size` ranks whose rank 0 hosts a TCP store at master_addr:master_port (the contract
 * of torch.distributed's env:// rendezvous). backend: "gloo" (CPU tensors) or "nccl" (CUDA builds only).
 * timeout_ms bounds the rendezvous (a rank that cannot reach the master fails after it) and every collective.
 * Gloo binds to GLOO_SOCKET_IFNAME when set, to 127.0.0.1 for a loopback master, else to the host's address. */
ct_status ct_dist_init(const char *_Nonnull master_addr, int32_t master_port, int32_t rank, int32_t world_size,
                       const char *_Nonnull backend, int64_t timeout_ms, ct_process_group _Nullable *_Nonnull out);
void ct_dist_free(ct_process_group _Nullable g);
ct_status ct_dist_rank(ct_process_group _Nonnull g, int32_t *_Nonnull rank, int32_t *_Nonnull world_size);
/* In place over a contiguous tensor. */
ct_status ct_dist_all_reduce(ct_process_group _Nonnull g, ct_tensor _Nonnull t, ct_dist_reduce_op op);
/* A new tensor: the sum over ranks, differentiable (its backward all-reduces the gradient), for SyncBatchNorm. */
ct_status ct_dist_all_reduce_sum_autograd(ct_process_group _Nonnull g, ct_tensor _Nonnull t,
                                          ct_tensor _Nullable *_Nonnull out);
/* In place over a contiguous tensor: every rank receives root's values. */
ct_status ct_dist_broadcast(ct_process_group _Nonnull g, ct_tensor _Nonnull t, int32_t root);
/* The ranks' tensors (same shape on every rank) concatenated along dim 0 in rank order; no gradient. */
ct_status ct_dist_all_gather(ct_process_group _Nonnull g, ct_tensor _Nonnull t, ct_tensor _Nullable *_Nonnull out);
ct_status ct_dist_barrier(ct_process_group _Nonnull g);

#ifdef __cplusplus
}
#endif
#endif
