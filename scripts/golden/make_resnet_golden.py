#!/usr/bin/env python3
"""Golden values for GreenRFM's ResNet3D18: torchvision's r3d_18 with the GreenRFM stem and a 3-way head.

    .venv-ref/bin/python scripts/golden/make_resnet_golden.py

Reference: torchvision.models.video.r3d_18(weights=None) (torchvision 0.29.0, installed with --no-deps by
scripts/reference-env.sh), with stem[0] replaced by Conv3d(1, 64, kernel k, stride k, bias=False) for
k = 4 (lite) and k = 2 (standard), and fc by Linear(512, 3).

Weights. The full state dict (33 M parameters, 133 MB in float32) is too big to commit, so both this script
and Tests/GreenRFMTests/ResNetGoldenTests.swift make every tensor from the same formula. With the
state_dict keys sorted by code point and k the key's index in that order, n the element count and
v[i] = sin(0.61803398875 * i + k) for i = 0 ..< n (computed in float64 by libtorch: arange, mul, add, sin):

  5-D convolution weights        v * sqrt(4 / fan_in), fan_in = in_channels * kD * kH * kW
  fc.weight                      v * sqrt(2 / 512)
  BatchNorm weight (1-D *weight) 1 + 0.1 v
  biases (BatchNorm and fc)      0.1 v
  running_mean                   0.1 v
  running_var                    1 + 0.5 v
  num_batches_tracked            0

then cast to float32 and reshaped row-major to the tensor's shape.

Input: x ~ N(0, 1) (seed 7) of shape [2, 1, 32, 64, 64] for lite and [2, 1, 16, 32, 32] for standard, so that
layer4 sees 1x2x2 voxels either way (with one voxel, train-mode BatchNorm normalises 2 values per channel and
the gradients become too ill-conditioned to compare across thread counts); fixed head weights w [2, 3] ~ N(0, 1) (seed 8). Steps, in
this order: (1) eval mode, logits_eval = model(x); (2) train mode, logits_train = model(x) (updates the
running statistics), loss = sum(logits_train * w), backward. Stored per stem (prefix "lite." / "standard."):
x, w, logits_eval, logits_train, grad_x, grad.stem.0.weight, grad.fc.weight, grad.fc.bias,
grad.layer4.1.conv2.0.weight[:8, :8] (the full tensor is 7 M values) with the full tensor's sum of squares
in the metadata, the running_mean / running_var of stem.1 and layer4.1.conv2.1 after step 2, and the float64
sum of every generated tensor (metadata, keyed by name) so that a formula mismatch is found per key.
Writes Tests/GreenRFMTests/Golden/resnet3d18.safetensors.
"""
import json
import math
import os
import platform
import warnings

import numpy
import safetensors
import torch
from safetensors.torch import save_file

warnings.filterwarnings("ignore", message=".*torchvision.*")
import torchvision  # noqa: E402
from torchvision.models.video import r3d_18  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "GreenRFMTests", "Golden", "resnet3d18.safetensors")
PHI = 0.61803398875


def formula(key, index, shape):
    n = math.prod(shape)
    v = torch.sin(torch.arange(n, dtype=torch.float64) * PHI + float(index))
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if len(shape) == 5:
        v = v * math.sqrt(4.0 / math.prod(shape[1:]))
    elif key == "fc.weight":
        v = v * math.sqrt(2.0 / 512)
    elif key.endswith("running_var"):
        v = 1 + 0.5 * v
    elif key.endswith("weight"):
        v = 1 + 0.1 * v
    else:  # biases and running_mean
        v = 0.1 * v
    return v.to(torch.float32).reshape(shape)


def build(kernel):
    model = r3d_18(weights=None)
    model.stem[0] = torch.nn.Conv3d(1, 64, kernel_size=kernel, stride=kernel, bias=False)
    model.fc = torch.nn.Linear(512, 3)
    state = model.state_dict()
    generated = {k: formula(k, i, list(state[k].shape)) for i, k in enumerate(sorted(state))}
    model.load_state_dict(generated, strict=True)
    return model, generated


out, meta = {}, {}
for name, kernel, size in [("lite", 4, (32, 64, 64)), ("standard", 2, (16, 32, 32))]:
    model, generated = build(kernel)
    x = torch.randn(2, 1, *size, generator=torch.Generator().manual_seed(7))
    w = torch.randn(2, 3, generator=torch.Generator().manual_seed(8))
    model.eval()
    with torch.no_grad():
        logits_eval = model(x)
    model.train()
    model.zero_grad()
    xg = x.clone().requires_grad_()
    logits_train = model(xg)
    (logits_train * w).sum().backward()
    p = dict(model.named_parameters())
    b = dict(model.named_buffers())
    g4 = p["layer4.1.conv2.0.weight"].grad
    out.update({
        f"{name}.x": x, f"{name}.w": w, f"{name}.logits_eval": logits_eval, f"{name}.logits_train": logits_train.detach(),
        f"{name}.grad_x": xg.grad,
        f"{name}.grad.stem.0.weight": p["stem.0.weight"].grad,
        f"{name}.grad.fc.weight": p["fc.weight"].grad, f"{name}.grad.fc.bias": p["fc.bias"].grad,
        f"{name}.grad.layer4.1.conv2.0.weight[:8,:8]": g4[:8, :8].contiguous(),
        f"{name}.stem.1.running_mean": b["stem.1.running_mean"], f"{name}.stem.1.running_var": b["stem.1.running_var"],
        f"{name}.layer4.1.conv2.1.running_mean": b["layer4.1.conv2.1.running_mean"],
        f"{name}.layer4.1.conv2.1.running_var": b["layer4.1.conv2.1.running_var"],
    })
    meta[f"{name}.grad.layer4.1.conv2.0.weight.sum_of_squares"] = repr(float(g4.double().square().sum()))
    meta[f"{name}.weight_sums"] = json.dumps({k: float(v.double().sum()) for k, v in generated.items()}, sort_keys=True)
    meta[f"{name}.state_dict_keys"] = json.dumps({k: list(v.shape) for k, v in generated.items()}, sort_keys=True)
    print(name, "logits_eval", logits_eval.tolist(), "logits_train", logits_train.tolist())

meta.update({
    "generator": "scripts/golden/make_resnet_golden.py", "python": platform.python_version(),
    "torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": numpy.__version__,
    "safetensors": safetensors.__version__, "formula": "sin(0.61803398875 * i + k), see the script's docstring",
})
os.makedirs(os.path.dirname(OUT), exist_ok=True)
save_file({k: v.contiguous() for k, v in out.items()}, OUT, metadata=meta)
print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
