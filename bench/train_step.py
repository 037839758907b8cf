#!/usr/bin/env python3
"""One GreenRFM image-encoder training step (forward, BCE over 18 findings, backward, AdamW) through our
Swift layer (`greenrfm bench train-step`) and through PyTorch in Python, on the same machine, alternating
processes so that both see the same machine state. Prints medians, spread and the ratio.

Usage (after scripts/setup.sh and scripts/reference-env.sh):
  .venv-ref/bin/python bench/train_step.py --preset lite --batch-size 1 --rounds 5 --steps 5
The Python side is the same model (bench/reference_models.py), the same input size, AdamW(lr 1e-4,
weight_decay 1e-4) with the same fused kernel as ours (or PyTorch's stock CPU AdamW with
--python-adamw default), and the same thread count.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_worker(args):
    import torch
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from reference_models import ResNet3D18

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d, h, w = (int(v) for v in args.size.split(","))
    model = ResNet3D18(args.preset, 1, 18).train()
    # fused=True runs the same libtorch kernel as our AdamW (torch._fused_adamw_); --python-adamw default
    # measures PyTorch's stock CPU AdamW (a per-parameter loop of tensor ops), as the authors' code runs it.
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4, fused=args.python_adamw == "fused")
    x = torch.randn(args.batch_size, 1, d, h, w)
    y = torch.randint(0, 2, (args.batch_size, 18)).float()

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"median_seconds": statistics.median(times), "min_seconds": min(times),
                      "max_seconds": max(times), "seconds": times, "torch": torch.__version__,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="lite", choices=["lite", "standard"])
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--size", default="96,192,192")
    p.add_argument("--steps", type=int, default=5, help="timed steps per process")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3, help="processes per side, alternating")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--python-adamw", default="fused", choices=["fused", "default"],
                   help="PyTorch's AdamW: fused (the kernel our AdamW uses) or default (its stock CPU loop)")
    p.add_argument("--greenrfm", default=os.path.join(ROOT, ".build", "release", "greenrfm"))
    p.add_argument("--python-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.python_worker:
        return python_worker(args)

    common = ["--preset", args.preset, "--batch-size", str(args.batch_size), "--precision", args.precision,
              "--size", args.size, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    ours_cmd = [args.greenrfm, "bench", "train-step", "--json", "--threads", str(args.threads)] + common
    py_cmd = [sys.executable, os.path.abspath(__file__), "--python-worker", "--threads", str(args.threads),
              "--python-adamw", args.python_adamw] + common
    ours, theirs = [], []
    for r in range(args.rounds):
        ours.append(run_json(ours_cmd))
        theirs.append(run_json(py_cmd))
        print(f"round {r + 1}: swift {ours[-1]['median_seconds']:.3f} s, "
              f"python {theirs[-1]['median_seconds']:.3f} s", file=sys.stderr)
    o = [s for run in ours for s in run["seconds"]]
    t = [s for run in theirs for s in run["seconds"]]
    mo, mt = statistics.median(o), statistics.median(t)
    result = {
        "case": f"train-step {args.preset} batch {args.batch_size} {args.precision} {args.size}",
        "python_adamw": args.python_adamw,
        "threads": args.threads,
        "swift": {"median_seconds": mo, "min_seconds": min(o), "max_seconds": max(o),
                  "peak_rss_bytes": max(r["peak_rss_bytes"] for r in ours), "libtorch": ours[0]["libtorch"]},
        "python": {"median_seconds": mt, "min_seconds": min(t), "max_seconds": max(t),
                   "peak_rss_bytes": max(r["peak_rss_bytes"] for r in theirs), "torch": theirs[0]["torch"]},
        "ratio_swift_over_python": mo / mt,
        "ratio_of_minimums": min(o) / min(t),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
