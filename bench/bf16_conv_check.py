#!/usr/bin/env python3
"""Checks libtorch's bfloat16 convolution gradients on this CPU against float32: the activation shapes of the lite
ResNet3D-18 at the chest crop (1x96x192x192, batch 1) and at the demo's crop (20x40x40, batch 8), then a sweep of
input depths against kernel depths that maps which shapes are wrong.

Usage: .venv-ref/bin/python bench/bf16_conv_check.py      (PyTorch 2.15 in Python: the libtorch greenrfm links)

Prints, per shape, the largest error of the bf16 output, input gradient and weight gradient relative to the largest
float32 value. bf16 carries 8 bits of mantissa, so a correct kernel stays around 1e-2 or below. On the 2-core AMD
EPYC (avx512_bf16) of docs/PERFORMANCE.md the weight gradient is wrong (errors above 1, up to 1e36, sometimes NaN)
exactly when the input depth is above 1 and below the kernel's depth and the output has more than one slice, at any
depth stride (a 3x3x3 convolution over a depth of 2: the demo's layer3); the output and the input gradient stay
right, and the other two axes are not affected. One such strided shape (depth 5, kernel 7, stride 2, padding 3)
even aborts PyTorch with "double free or corruption", so it is left out here. greenrfm's shim
(Sources/CTorch/nn.cpp, `bf16_weight_grad_broken`) runs those convolutions in float32.
"""
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)


def check(name, shape, kernel=(3, 3, 3), stride=1, padding=None):
    c = shape[1]
    x = torch.randn(*shape)
    w = torch.randn(c, c, *kernel) * 0.02
    padding = padding or tuple(k // 2 for k in kernel)
    results = []
    for dtype in (torch.bfloat16, torch.float32):
        xd = x.to(dtype).requires_grad_()
        wd = w.to(dtype).requires_grad_()
        y = F.conv3d(xd, wd, stride=stride, padding=padding)
        y.float().sum().backward()
        results.append((y.float(), xd.grad.float(), wd.grad.float()))
    errors = [((a - b).abs().max() / b.abs().max()).item() for a, b in zip(*results)]
    verdict = "WRONG" if not all(e < 0.05 for e in errors) else "ok"
    print(f"{name:24s} {str(shape):20s} kernel {str(kernel):10s} stride {str(stride):9s} pad {str(padding):9s} output {errors[0]:.3g}  "
          f"input grad {errors[1]:.3g}  weight grad {errors[2]:.3g}  {verdict}")


SHAPES = {
    "chest crop, layer1": (1, 64, 24, 48, 48), "chest crop, layer2": (1, 128, 12, 24, 24),
    "chest crop, layer3": (1, 256, 6, 12, 12), "chest crop, layer4": (1, 512, 3, 6, 6),
    "demo crop, layer2": (8, 128, 3, 5, 5), "demo crop, layer3": (8, 256, 2, 3, 3), "demo crop, layer4": (8, 512, 1, 2, 2),
}
for name, shape in SHAPES.items():
    check(name, shape)
print("sweep: input depth against kernel depth (4 x 64 x D x 6 x 6), and depth 2 with strides and other axes")
for depth in range(1, 7):
    for kd in (3, 5):
        check(f"depth {depth}", (4, 64, depth, 6, 6), (kd, 3, 3))
check("depth 2, stride 2", (4, 64, 2, 6, 6), stride=2)
check("height 2, width 2", (4, 64, 6, 2, 2))
check("depth 2, 1x1x1", (4, 64, 2, 6, 6), (1, 1, 1))
print("depth stride 2: wrong as long as the output has more than one slice")
check("depth 2, s2, pad 1", (4, 64, 2, 6, 6), (3, 3, 3), stride=(2, 1, 1), padding=(1, 1, 1))  # one output slice
check("depth 2, s2, pad 2", (4, 64, 2, 6, 6), (3, 3, 3), stride=(2, 1, 1), padding=(2, 1, 1))  # two slices
check("depth 3, kernel 4, s2", (4, 64, 3, 6, 6), (4, 3, 3), stride=(2, 1, 1), padding=(2, 1, 1))  # two slices
