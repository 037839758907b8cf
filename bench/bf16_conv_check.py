#!/usr/bin/env python3
"""Checks libtorch's bfloat16 3x3x3 convolution weight gradients on this CPU against float32, for the activation
shapes of the lite ResNet3D-18 at the chest crop (1x96x192x192, batch 1) and at the demo's crop (20x40x40, batch 8).

Usage: .venv-ref/bin/python bench/bf16_conv_check.py      (PyTorch 2.15 in Python: the libtorch greenrfm links)

Prints, per shape, whether the bf16 weight gradient is finite and its largest error relative to the largest float32
gradient. bf16 carries 8 bits of mantissa, so a correct kernel stays around 1e-2 or below; on the 2-core AMD EPYC
(avx512_bf16) of docs/PERFORMANCE.md the shapes with a 2x3x3 volume come out wrong (errors above 1, sometimes NaN),
which is why `greenrfm demo --precision bf16` stops at its first step.
"""
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)
SHAPES = {
    "chest crop, layer1": (1, 64, 24, 48, 48), "chest crop, layer2": (1, 128, 12, 24, 24),
    "chest crop, layer3": (1, 256, 6, 12, 12), "chest crop, layer4": (1, 512, 3, 6, 6),
    "demo crop, layer2": (8, 128, 3, 5, 5), "demo crop, layer3": (8, 256, 2, 3, 3), "demo crop, layer4": (8, 512, 1, 2, 2),
}
for name, shape in SHAPES.items():
    c = shape[1]
    x = torch.randn(*shape)
    w = torch.randn(c, c, 3, 3, 3) * 0.02
    grads = []
    for dtype in (torch.bfloat16, torch.float32):
        wd = w.to(dtype).requires_grad_()
        F.conv3d(x.to(dtype), wd, padding=1).float().sum().backward()
        grads.append(wd.grad.float())
    rel = (grads[0] - grads[1]).abs().max().item() / grads[1].abs().max().item()
    print(f"{name:20s} {str(shape):22s} finite {bool(torch.isfinite(grads[0]).all())!s:5s} "
          f"max error / max |grad| {rel:.3g}")
