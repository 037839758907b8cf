#!/usr/bin/env python3
"""Golden values for the TorchNN tests (modules, state_dict keys, masked multi-label BCE).

Run once with the reference environment and commit the output:
    .venv-ref/bin/python scripts/golden/make_nn_golden.py
Writes Tests/TorchNNTests/Golden/nn.safetensors (tensors) with the library versions and the expected
state_dict keys/shapes in its metadata.
"""
import json
import os
import sys

import numpy
import safetensors
import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from reference_models import ResNet3D18  # noqa: E402

torch.manual_seed(1234)
g = torch.Generator().manual_seed(1234)
out = {}


def rnd(*shape):
    return torch.randn(*shape, generator=g)


# Linear: forward and gradients of sum(y * go).
lin = torch.nn.Linear(5, 3)
with torch.no_grad():
    lin.weight.copy_(rnd(3, 5))
    lin.bias.copy_(rnd(3))
x = rnd(4, 5).requires_grad_()
go = rnd(4, 3)
y = lin(x)
(y * go).sum().backward()
out.update({"linear.weight": lin.weight.detach(), "linear.bias": lin.bias.detach(), "linear.x": x.detach(),
            "linear.go": go, "linear.y": y.detach(), "linear.dx": x.grad, "linear.dweight": lin.weight.grad,
            "linear.dbias": lin.bias.grad})

# BatchNorm3d: two training passes, then evaluation.
bn = torch.nn.BatchNorm3d(3)
with torch.no_grad():
    bn.weight.copy_(rnd(3))
    bn.bias.copy_(rnd(3))
a, b, c = rnd(2, 3, 2, 3, 4), rnd(2, 3, 2, 3, 4) * 2 + 1, rnd(1, 3, 2, 3, 4)
bn.train()
ya = bn(a)
yb = bn(b)
bn.eval()
yc = bn(c)
out.update({"bn.weight": bn.weight.detach(), "bn.bias": bn.bias.detach(), "bn.a": a, "bn.b": b, "bn.c": c,
            "bn.ya": ya.detach(), "bn.yb": yb.detach(), "bn.yc": yc.detach(),
            "bn.running_mean": bn.running_mean, "bn.running_var": bn.running_var,
            "bn.num_batches_tracked": bn.num_batches_tracked})

# LayerNorm over the last dimension.
ln = torch.nn.LayerNorm(8)
with torch.no_grad():
    ln.weight.copy_(rnd(8))
    ln.bias.copy_(rnd(8))
x = rnd(2, 3, 8).requires_grad_()
go = rnd(2, 3, 8)
y = ln(x)
(y * go).sum().backward()
out.update({"ln.weight": ln.weight.detach(), "ln.bias": ln.bias.detach(), "ln.x": x.detach(), "ln.go": go,
            "ln.y": y.detach(), "ln.dx": x.grad, "ln.dweight": ln.weight.grad})

# Embedding with a padding row.
emb = torch.nn.Embedding(10, 4, padding_idx=0)
with torch.no_grad():
    emb.weight.copy_(rnd(10, 4))
idx = torch.tensor([[0, 3, 3], [9, 0, 1]])
go = rnd(2, 3, 4)
y = emb(idx)
(y * go).sum().backward()
out.update({"emb.weight": emb.weight.detach(), "emb.indices": idx, "emb.go": go, "emb.y": y.detach(),
            "emb.dweight": emb.weight.grad})

# Multi-label BCE over labels in {1, 0, -1} with each policy for -1.
logits = rnd(6, 5).requires_grad_()
labels = torch.randint(-1, 2, (6, 5), generator=g).float()
pos_weight = torch.rand(5, generator=g) + 0.5
mask = (labels >= 0).float()
F = torch.nn.functional
ignore = F.binary_cross_entropy_with_logits(logits, labels.clamp(min=0), weight=mask, pos_weight=pos_weight,
                                            reduction="sum") / mask.sum()
ignore.backward()
out.update({"mlbce.logits": logits.detach(), "mlbce.labels": labels, "mlbce.pos_weight": pos_weight,
            "mlbce.ignore": ignore.detach(), "mlbce.ignore.dlogits": logits.grad})
for name, value in [("negative", 0.0), ("positive", 1.0), ("soft", 0.5)]:
    t = torch.where(labels < 0, torch.full_like(labels, value), labels)
    out[f"mlbce.{name}"] = F.binary_cross_entropy_with_logits(logits.detach(), t, pos_weight=pos_weight)

# state_dict keys and shapes that our modules must reproduce.
seq = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
keys = {
    "sequential": {k: list(v.shape) for k, v in seq.state_dict().items()},
    "resnet3d18_lite_fc18": {k: list(v.shape) for k, v in ResNet3D18("lite", 1, 18).state_dict().items()},
    "resnet3d18_standard": {k: list(v.shape) for k, v in ResNet3D18("standard", 1, None).state_dict().items()},
}

meta = {"torch": torch.__version__, "numpy": numpy.__version__, "safetensors": safetensors.__version__,
        "script": "scripts/golden/make_nn_golden.py", "state_dict_keys": json.dumps(keys, sort_keys=True)}
dest = os.path.join(ROOT, "Tests", "TorchNNTests", "Golden", "nn.safetensors")
os.makedirs(os.path.dirname(dest), exist_ok=True)
save_file({k: v.contiguous() for k, v in out.items()}, dest, metadata=meta)
print(f"wrote {dest}: {len(out)} tensors")
