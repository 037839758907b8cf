#!/usr/bin/env python3
"""The lite training step in PyTorch 2.15 with PyTorch's own convolution choice (`default`) or with the batch-1
reroute that greenrfm's shim applies (`reroute`: stride-1 convolutions whose N·C·D·H is at most 20480 but whose
N·C·H·W is above it run with the depth axis last, so that libtorch picks oneDNN), and optionally the per-shape
profile of the convolutions (which path each takes and its time).

Usage: .venv-ref/bin/python bench/profile_step.py default|reroute [--profile]
Run the modes alternately several times; the machine's spread is several per cent (docs/PERFORMANCE.md).
"""
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from reference_models import ResNet3D18  # noqa: E402

torch.set_num_threads(2)
mode = sys.argv[1]
original = torch.nn.Conv3d.forward


def forward(self, x):
    n, c, d, h, w = x.shape
    if mode == "reroute" and n == 1 and self.stride == (1, 1, 1) and n * c * d * h <= 20480 and n * c * h * w > 20480:
        p = self.padding
        return F.conv3d(x.permute(0, 1, 3, 4, 2), self.weight.permute(0, 1, 3, 4, 2), self.bias, 1,
                        (p[1], p[2], p[0])).permute(0, 1, 4, 2, 3).contiguous()
    return original(self, x)


torch.nn.Conv3d.forward = forward
torch.manual_seed(0)
model = ResNet3D18("lite", 1, 18).train()
x = torch.randn(1, 1, 96, 192, 192)
y = torch.randint(0, 2, (1, 18)).float()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4, fused=True)


def step():
    F.binary_cross_entropy_with_logits(model(x), y).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


step()
times = []
for _ in range(5):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
times.sort()
print(f"{mode}: median {times[2]:.3f} s, min {times[0]:.3f} s", flush=True)
if "--profile" in sys.argv:
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        step()
    rows = [k for k in prof.key_averages(group_by_input_shape=True)
            if k.key in ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::slow_conv3d_forward")]
    for k in sorted(rows, key=lambda k: -k.self_cpu_time_total):
        print(f"{k.key:28s} {k.self_cpu_time_total / k.count / 1000:7.1f} ms/call x{k.count}  {k.input_shapes[:2]}")
