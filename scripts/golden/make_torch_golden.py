#!/usr/bin/env python3
"""Writes Tests/TorchTests/Golden/torch_core.safetensors: PyTorch's answers for the Swift `Torch` module.

Run from the repository root with the reference environment (scripts/reference-env.sh):

    .venv-ref/bin/python scripts/golden/make_torch_golden.py

Every case draws its inputs from its own `torch.Generator().manual_seed(<case seed>)`, so adding a case
never changes the values of another. Tensors are named `<case>.<item>`; a case's settings (strides,
reductions, learning rates, ...) are a JSON object in the file's metadata under `<case>.params`, so the
Swift tests read the settings from the same file as the values. Inputs and expected outputs are float32
unless the case is about another dtype (class indices are int64, learning rates float64, the interop
tensors have every safetensors dtype the Swift layer supports). The metadata also records the versions
of torch, numpy and safetensors that made the file.

Reference semantics:
  conv3d, batch_norm, layer_norm, interpolate, softmax, embedding: torch.nn.functional;
  losses: F.binary_cross_entropy_with_logits, F.cross_entropy;
  optimizers: torch.optim.AdamW / torch.optim.SGD with foreach=False, fused=False (the single-tensor
  implementation, PyTorch's CPU default); torch.nn.utils.clip_grad_norm_(foreach=False);
  schedule: SequentialLR([LinearLR, CosineAnnealingLR], milestones=[W]);
  generators: torch.Generator().manual_seed(seed).
"""

from __future__ import annotations

import json
import math
import platform
import sys
from pathlib import Path

import numpy as np
import safetensors
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "TorchTests" / "Golden" / "torch_core.safetensors"

tensors: dict[str, torch.Tensor] = {}
metadata: dict[str, str] = {}


def put(name: str, t: torch.Tensor) -> None:
    assert name not in tensors, name
    tensors[name] = t.detach().clone().contiguous()


def params(case: str, **kw) -> None:
    metadata[f"{case}.params"] = json.dumps(kw, sort_keys=True)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(g: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=g) * scale


# ---- conv3d: forward, and the gradients of sum(y * g) ------------------------------------------------
def conv3d_case(case: str, seed: int, x_shape, w_shape, stride, padding) -> None:
    g = gen(seed)
    x = randn(g, *x_shape).requires_grad_()
    w = randn(g, *w_shape, scale=0.2).requires_grad_()
    b = randn(g, w_shape[0], scale=0.1).requires_grad_()
    y = F.conv3d(x, w, b, stride=stride, padding=padding)
    grad_out = randn(g, *y.shape)
    (y * grad_out).sum().backward()
    params(case, stride=list(stride), padding=list(padding))
    for k, v in dict(x=x, weight=w, bias=b, y=y, grad_out=grad_out, grad_x=x.grad, grad_weight=w.grad,
                     grad_bias=b.grad).items():
        put(f"{case}.{k}", v)


conv3d_case("conv3d.a", 101, (2, 3, 6, 7, 8), (4, 3, 3, 3, 3), (1, 2, 2), (1, 1, 1))
conv3d_case("conv3d.patch4", 102, (2, 3, 8, 8, 8), (5, 3, 4, 4, 4), (4, 4, 4), (0, 0, 0))
# Batch 1 with N·C·D·H = 512 ≤ 20480 < N·C·H·W = 20736: the shape that the shim's ct_conv3d reroutes to oneDNN
# with the depth axis moved last (a non-cubic kernel and asymmetric padding check that the axes are permuted alike).
conv3d_case("conv3d.depthlast", 103, (1, 16, 2, 16, 81), (4, 16, 3, 2, 3), (1, 1, 1), (1, 0, 2))


def conv3d_error_bounds(case: str) -> None:
    """Adds to a case's params the largest absolute error of PyTorch's own float32 output and gradients against
    the same computation in float64 (`error_y`, `error_grad_x`, `error_grad_weight`). A kernel that sums in
    another order (oneDNN instead of PyTorch's im2col path) is as exact when it stays within a few times these."""
    p = json.loads(metadata[f"{case}.params"])
    x = tensors[f"{case}.x"].double().requires_grad_()
    w = tensors[f"{case}.weight"].double().requires_grad_()
    b = tensors[f"{case}.bias"].double().requires_grad_()
    y = F.conv3d(x, w, b, stride=p["stride"], padding=p["padding"])
    (y * tensors[f"{case}.grad_out"].double()).sum().backward()
    for name, truth in (("y", y), ("grad_x", x.grad), ("grad_weight", w.grad)):
        p[f"error_{name}"] = (tensors[f"{case}.{name}"].double() - truth).abs().max().item()
    metadata[f"{case}.params"] = json.dumps(p, sort_keys=True)


conv3d_error_bounds("conv3d.depthlast")
# Input depth 2 under a 3×3×3 kernel: oneDNN's bfloat16 weight gradient is wrong for this shape on AVX-512 BF16
# CPUs (bench/bf16_conv_check.py), so under bfloat16 autocast the shim runs it in float32. The values here are
# PyTorch's float32 answers; the Swift test runs the case under autocast.
conv3d_case("conv3d.bf16depth2", 104, (4, 16, 2, 5, 5), (16, 16, 3, 3, 3), (1, 1, 1), (1, 1, 1))
# The same bug at depth-stride 2: input depth 3 under a kernel depth of 4, two output slices.
conv3d_case("conv3d.bf16depth3s2", 105, (2, 16, 3, 5, 5), (16, 16, 4, 3, 3), (2, 1, 1), (2, 1, 1))

# ---- batch_norm: training (output, running statistics, gradients) and evaluation ----------------------
g = gen(201)
x = (randn(g, 4, 3, 2, 3, 3) * 1.5 + 0.7).requires_grad_()
weight = (1 + randn(g, 3, scale=0.1)).requires_grad_()
bias = randn(g, 3, scale=0.1).requires_grad_()
running_mean = randn(g, 3, scale=0.1)
running_var = 1 + torch.rand(3, generator=g)
put("batchnorm.x", x)
put("batchnorm.weight", weight)
put("batchnorm.bias", bias)
put("batchnorm.running_mean", running_mean)
put("batchnorm.running_var", running_var)
rm, rv = running_mean.clone(), running_var.clone()
y = F.batch_norm(x, rm, rv, weight, bias, training=True, momentum=0.1, eps=1e-5)
grad_out = randn(g, *y.shape)
(y * grad_out).sum().backward()
put("batchnorm.train.y", y)
put("batchnorm.train.running_mean", rm)
put("batchnorm.train.running_var", rv)
put("batchnorm.train.grad_out", grad_out)
put("batchnorm.train.grad_x", x.grad)
put("batchnorm.train.grad_weight", weight.grad)
put("batchnorm.train.grad_bias", bias.grad)
with torch.no_grad():
    put("batchnorm.eval.y", F.batch_norm(x, running_mean, running_var, weight, bias, training=False, eps=1e-5))
params("batchnorm", momentum=0.1, eps=1e-5)


# ---- optimizers on a linear least-squares loss: mse_loss(linear(X, W, b), Y) --------------------------
def least_squares(seed: int):
    g = gen(seed)
    X = randn(g, 8, 5)
    Y = randn(g, 8, 3)
    W = randn(g, 3, 5, scale=0.5)
    b = randn(g, 3, scale=0.5)
    return X, Y, W, b


def optimizer_case(case: str, seed: int, make, steps: int = 3) -> None:
    X, Y, W0, b0 = least_squares(seed)
    W = torch.nn.Parameter(W0.clone())
    b = torch.nn.Parameter(b0.clone())
    opt = make(W, b)
    for k, v in dict(X=X, Y=Y, weight=W0, bias=b0).items():
        put(f"{case}.{k}", v)
    for step in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(F.linear(X, W, b), Y)
        loss.backward()
        opt.step()
        put(f"{case}.step{step + 1}.loss", loss)
        put(f"{case}.step{step + 1}.weight", W)
        put(f"{case}.step{step + 1}.bias", b)


optimizer_case(
    "adamw", 301,
    lambda W, b: torch.optim.AdamW([{"params": [W], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}],
                                   lr=1e-2, betas=(0.9, 0.999), eps=1e-8, foreach=False, fused=False))
params("adamw", lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay_weight=0.1, weight_decay_bias=0.0, steps=3)

optimizer_case(
    "sgd.momentum", 302,
    lambda W, b: torch.optim.SGD([{"params": [W], "weight_decay": 1e-2}, {"params": [b], "weight_decay": 0.0}],
                                 lr=0.1, momentum=0.9, foreach=False))
params("sgd.momentum", lr=0.1, momentum=0.9, dampening=0.0, nesterov=False, weight_decay_weight=1e-2,
       weight_decay_bias=0.0, steps=3)

optimizer_case(
    "sgd.nesterov", 303,
    lambda W, b: torch.optim.SGD([{"params": [W], "weight_decay": 1e-2}, {"params": [b], "weight_decay": 1e-2}],
                                 lr=0.05, momentum=0.9, nesterov=True, foreach=False))
params("sgd.nesterov", lr=0.05, momentum=0.9, dampening=0.0, nesterov=True, weight_decay_weight=1e-2,
       weight_decay_bias=1e-2, steps=3)

# ---- BCE with logits: 0/1 mask as `weight`, pos_weight, every reduction, and the logits gradient -------
g = gen(401)
logits = randn(g, 6, 5, scale=2.0)
targets = torch.bernoulli(torch.full((6, 5), 0.4), generator=g)
mask = torch.bernoulli(torch.full((6, 5), 0.8), generator=g)
pos_weight = 0.5 + 2.5 * torch.rand(5, generator=g)
grad_none = randn(g, 6, 5)
put("bce.logits", logits)
put("bce.targets", targets)
put("bce.mask", mask)
put("bce.pos_weight", pos_weight)
put("bce.grad_out_none", grad_none)
for reduction in ("none", "mean", "sum"):
    z = logits.clone().requires_grad_()
    loss = F.binary_cross_entropy_with_logits(z, targets, weight=mask, pos_weight=pos_weight, reduction=reduction)
    (loss * grad_none).sum().backward() if reduction == "none" else loss.backward()
    put(f"bce.{reduction}.loss", loss)
    put(f"bce.{reduction}.grad_logits", z.grad)

# ---- cross-entropy with class indices, with label smoothing and ignore_index ----------------------------
g = gen(501)
logits = randn(g, 7, 4, scale=2.0)
classes = torch.randint(0, 4, (7,), generator=g)
classes_ignore = classes.clone()
classes_ignore[2] = -100
put("ce.logits", logits)
put("ce.targets", classes)
put("ce.targets_ignore", classes_ignore)
ce_cases = {
    "none": dict(reduction="none", label_smoothing=0.0, targets=classes),
    "mean": dict(reduction="mean", label_smoothing=0.0, targets=classes),
    "sum": dict(reduction="sum", label_smoothing=0.0, targets=classes),
    "smooth_mean": dict(reduction="mean", label_smoothing=0.1, targets=classes),
    "smooth_none": dict(reduction="none", label_smoothing=0.1, targets=classes),
    "ignore_mean": dict(reduction="mean", label_smoothing=0.0, targets=classes_ignore),
}
for name, c in ce_cases.items():
    z = logits.clone().requires_grad_()
    loss = F.cross_entropy(z, c["targets"], reduction=c["reduction"], label_smoothing=c["label_smoothing"])
    loss.sum().backward()
    put(f"ce.{name}.loss", loss)
    put(f"ce.{name}.grad_logits", z.grad)
metadata["ce.cases"] = json.dumps(
    {k: dict(reduction=v["reduction"], label_smoothing=v["label_smoothing"],
             targets="ce.targets_ignore" if v["targets"] is classes_ignore else "ce.targets")
     for k, v in ce_cases.items()}, sort_keys=True)


# ---- learning-rate schedule: linear warm-up then cosine to a floor -----------------------------------
def schedule_case(case: str, base: float, warmup: int, total: int, floor: float, start_factor: float) -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    sched = SequentialLR(opt, [LinearLR(opt, start_factor=start_factor, total_iters=warmup),
                               CosineAnnealingLR(opt, T_max=total - warmup, eta_min=floor)], milestones=[warmup])
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    put(f"{case}.lr", torch.tensor(lrs, dtype=torch.float64))
    params(case, base_lr=base, warmup_steps=warmup, total_steps=total, floor_lr=floor, warmup_start_factor=start_factor)


schedule_case("schedule.a", 1e-4, 5, 50, 1e-6, 0.1)
schedule_case("schedule.b", 3e-4, 10, 100, 0.0, 0.01)

# ---- clip_grad_norm_ -----------------------------------------------------------------------------------
g = gen(601)
grads = [randn(g, 3, 4), randn(g, 5, scale=2.0), randn(g, 2, 2, 2, scale=0.5)]
ps = [torch.nn.Parameter(torch.zeros_like(t)) for t in grads]
for p, t in zip(ps, grads):
    p.grad = t.clone()
total = torch.nn.utils.clip_grad_norm_(ps, max_norm=0.5, norm_type=2.0, foreach=False)
for i, (t, p) in enumerate(zip(grads, ps)):
    put(f"clip.grad{i}", t)
    put(f"clip.clipped{i}", p.grad)
put("clip.total_norm", total)
params("clip", max_norm=0.5, norm_type=2.0, count=len(grads))

# ---- trilinear / nearest interpolation -----------------------------------------------------------------
g = gen(701)
x = randn(g, 1, 2, 3, 4, 5)
put("interp.x", x)
interp_cases = {
    "up_trilinear": dict(size=[5, 3, 7], mode="trilinear", align_corners=False),
    "up_trilinear_align": dict(size=[5, 3, 7], mode="trilinear", align_corners=True),
    "down_trilinear": dict(size=[2, 2, 3], mode="trilinear", align_corners=False),
    "nearest": dict(size=[6, 8, 10], mode="nearest", align_corners=False),
}
for name, c in interp_cases.items():
    kw = dict(align_corners=c["align_corners"]) if c["mode"] == "trilinear" else {}
    put(f"interp.{name}.y", F.interpolate(x, size=c["size"], mode=c["mode"], **kw))
metadata["interp.cases"] = json.dumps(interp_cases, sort_keys=True)

# ---- layer norm, softmax, embedding, matmul ----------------------------------------------------------
g = gen(801)
x = randn(g, 2, 3, 8, scale=2.0) + 0.5
w = 1 + randn(g, 8, scale=0.1)
b = randn(g, 8, scale=0.1)
put("layernorm.x", x)
put("layernorm.weight", w)
put("layernorm.bias", b)
put("layernorm.y", F.layer_norm(x, (8,), w, b, eps=1e-5))
params("layernorm", normalized_shape=[8], eps=1e-5)

x = randn(g, 3, 5, scale=3.0)
put("softmax.x", x)
put("softmax.dim1", F.softmax(x, dim=1))
put("softmax.dim0", F.softmax(x, dim=0))
put("log_softmax.dim1", F.log_softmax(x, dim=1))

weight = randn(g, 10, 4)
indices = torch.tensor([[1, 3, 9], [0, 3, 3]], dtype=torch.int64)
put("embedding.weight", weight)
put("embedding.indices", indices)
put("embedding.y", F.embedding(indices, weight))

a = randn(g, 2, 3, 4)
bm = randn(g, 4, 5)
put("matmul.a", a)
put("matmul.b", bm)
put("matmul.y", a @ bm)

# ---- seeded generators: torch.Generator().manual_seed(seed), draws in this order -----------------------
seeds = [0, 42, 2**40 + 7]
for seed in seeds:
    g = gen(seed)
    put(f"generator.{seed}.randn3", torch.randn(3, generator=g))
    put(f"generator.{seed}.randn4x5", torch.randn(4, 5, generator=g))
    put(f"generator.{seed}.rand10", torch.rand(10, generator=g))
    put(f"generator.{seed}.randint12", torch.randint(0, 100, (12,), generator=g))
    put(f"generator.{seed}.randperm10", torch.randperm(10, generator=g))
    put(f"generator.{seed}.normal17", torch.empty(17).normal_(2.0, 3.0, generator=g))
metadata["generator.seeds"] = json.dumps(seeds)

# ---- interop: every dtype, written by Python's safetensors -------------------------------------------
nan, inf = float("nan"), float("inf")
put("interop.f32", torch.tensor([[inf, -inf, nan, -0.0], [1e-45, 3.4e38, 1.0, -2.5]], dtype=torch.float32))
put("interop.f64", torch.tensor([math.pi, -1e-310, 1e300, -0.0, nan], dtype=torch.float64))
put("interop.f16", torch.tensor([65504.0, 6e-8, -0.0, inf, nan, 1 / 3, -2.0, 1e-4], dtype=torch.float16))
put("interop.bf16", torch.tensor([1 / 3, 3e38, 1e-40, -inf, nan, -0.0, 256.5, 7.0], dtype=torch.bfloat16))
put("interop.i64", torch.tensor([0, -1, 2**62 + 1, -(2**63), 2**63 - 1, 42], dtype=torch.int64))
put("interop.i32", torch.tensor([0, -1, 2**31 - 1, -(2**31)], dtype=torch.int32))
put("interop.i16", torch.tensor([[0, -1], [32767, -32768]], dtype=torch.int16))
put("interop.i8", torch.tensor([0, -1, 127, -128], dtype=torch.int8))
put("interop.u8", torch.tensor([0, 1, 128, 255, 7], dtype=torch.uint8))
put("interop.bool", torch.tensor([[True, False, True], [True, True, False]], dtype=torch.bool))
put("interop.scalar_f32", torch.tensor(1.5, dtype=torch.float32))
put("interop.empty_f32", torch.zeros(0, 3, dtype=torch.float32))
for name in ("f16", "bf16"):
    put(f"interop.{name}.as_f32", tensors[f"interop.{name}"].float())
metadata["interop.int_values"] = json.dumps(
    {f"interop.{n}": tensors[f"interop.{n}"].flatten().tolist() for n in ("i64", "i32", "i16", "i8", "u8")},
    sort_keys=True)
metadata["interop.bool_values"] = json.dumps(tensors["interop.bool"].flatten().tolist())

# ---- write ---------------------------------------------------------------------------------------------
metadata.update({
    "generator": "scripts/golden/make_torch_golden.py",
    "torch_version": torch.__version__,
    "numpy_version": np.__version__,
    "safetensors_version": safetensors.__version__,
    "python_version": platform.python_version(),
})
def same_as_existing(path: Path) -> bool:
    """True when `path` already holds exactly these tensors and this metadata. safetensors writes the
    metadata keys in a random order (a Rust HashMap), so an unchanged file is left alone to keep
    regeneration free of spurious diffs."""
    if not path.exists():
        return False
    try:
        with safe_open(str(path), framework="pt") as f:
            if dict(f.metadata() or {}) != metadata or set(f.keys()) != set(tensors):
                return False
            for name, t in tensors.items():
                old = f.get_tensor(name)
                if old.dtype != t.dtype or old.shape != t.shape or not torch.equal(
                        old.reshape(-1).view(torch.uint8), t.reshape(-1).view(torch.uint8)):
                    return False
    except Exception:
        return False
    return True


OUT.parent.mkdir(parents=True, exist_ok=True)
verb = "unchanged"
if not same_as_existing(OUT):
    save_file(tensors, str(OUT), metadata=metadata)
    OUT.chmod(0o644)
    verb = "wrote"
size = OUT.stat().st_size
assert size < 1_000_000, f"golden file too large: {size} bytes"
print(f"{verb} {OUT.relative_to(ROOT)}: {len(tensors)} tensors, {size} bytes "
      f"(torch {torch.__version__}, numpy {np.__version__}, safetensors {safetensors.__version__})", file=sys.stderr)
