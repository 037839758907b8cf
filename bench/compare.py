#!/usr/bin/env python3
"""Runs each GreenRFM benchmark case through our Swift layer (`greenrfm bench ...`) beside its Python
reference on the same machine, alternating processes round by round (the order rotates every round so
that no side always runs first), and prints medians, spread, the ratio of medians and peak memory.

References (issue 8):
  py215  PyTorch 2.15.0 in Python (.venv-ref, scripts/reference-env.sh): the same libtorch we link.
  py113  Debian's python3-torch 1.13 under /usr/bin/python3 (scripts/reference-env.sh --debian installs it
         with OpenBLAS; without OpenBLAS it falls back to the reference BLAS and is 7x slower).
  hf     Hugging Face transformers' BertModel (text case), in .venv-ref.
  numpy  NumPy (retrieval and matmul cases), in .venv-ref.

Usage (after scripts/setup.sh and scripts/reference-env.sh [--debian]):
  .venv-ref/bin/python bench/compare.py --cases train-lite-b1,embed-lite --rounds 3 --out bench/results/run.jsonl
  .venv-ref/bin/python bench/compare.py --list
Each case prints one JSON object (and appends it to --out): per side the median, minimum and maximum of all
timed steps pooled over rounds, the peak RSS (the largest VmHWM of its processes), and ratios to ours.
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
PY215 = os.path.join(ROOT, ".venv-ref", "bin", "python")
PY113 = "/usr/bin/python3"
GREENRFM = os.path.join(ROOT, ".build", "release", "greenrfm")
TEXT_MODEL = os.path.join(ROOT, ".models", "all-MiniLM-L6-v2")


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def stats(times, **extra):
    out = {"median_seconds": statistics.median(times), "min_seconds": min(times), "max_seconds": max(times),
           "seconds": times, "peak_rss_bytes": peak_rss()}
    out.update(extra)
    return out


def timed(fn, warmup, steps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


# ----------------------------------------------------------------------------------------------- workers
def worker_torch(a):
    """train / embed / matmul with PyTorch (2.15 or Debian's 1.13)."""
    import torch
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from reference_models import ResNet3D18
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    info = {"torch": torch.__version__}
    if a.kind == "matmul":
        dtype = torch.bfloat16 if a.precision == "bf16" else torch.float32
        x, y = torch.randn(a.n, a.n).to(dtype), torch.randn(a.n, a.n).to(dtype)
        t = timed(lambda: torch.mm(x, y), a.warmup, a.steps)
        return stats(t, gflops_best=2 * a.n ** 3 / min(t) / 1e9, **info)
    d, h, w = (int(v) for v in a.size.split(","))
    x = torch.randn(a.batch_size, 1, d, h, w)
    bf16 = a.precision == "bf16"
    if a.kind == "embed":
        model = ResNet3D18(a.preset, 1, None).eval()

        def fwd():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(x).float().sum().item()
        return stats(timed(fwd, a.warmup, a.steps), **info)
    model = ResNet3D18(a.preset, 1, 18).train()
    fused = {"fused": True} if hasattr(torch, "_fused_adamw_") else {}
    info["adamw"] = "fused" if fused else "default"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4, **fused)
    y = torch.randint(0, 2, (a.batch_size, 18)).float()

    def step():
        if bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        else:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
    return stats(timed(step, a.warmup, a.steps), **info)


def worker_hf(a):
    """BERT (MiniLM config) forward ([CLS]) + BCE + backward + AdamW with Hugging Face transformers."""
    import torch
    import transformers
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    config = transformers.BertConfig.from_json_file(os.path.join(TEXT_MODEL, "config.json"))
    encoder = transformers.BertModel(config, add_pooling_layer=False).train()
    head = torch.nn.Linear(config.hidden_size, 18)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=1e-4, fused=True)
    ids = torch.randint(1000, config.vocab_size, (a.batch_size, a.tokens))
    mask = torch.ones(a.batch_size, a.tokens, dtype=torch.long)
    y = torch.randint(0, 2, (a.batch_size, 18)).float()
    bf16 = a.precision == "bf16"

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            cls = encoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(head(cls).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
    return stats(timed(step, a.warmup, a.steps), torch=torch.__version__, transformers=transformers.__version__,
                 attn_implementation=str(getattr(encoder.config, "_attn_implementation", "?")))


def worker_numpy(a):
    """Retrieval ranks (the algorithm of Retrieval.crossModal) or a matmul, with NumPy."""
    import numpy as np
    rng = np.random.default_rng(0)
    if a.kind == "matmul":
        x = rng.standard_normal((a.n, a.n), dtype=np.float32)
        y = rng.standard_normal((a.n, a.n), dtype=np.float32)
        t = timed(lambda: x @ y, a.warmup, a.steps)
        return stats(t, gflops_best=2 * a.n ** 3 / min(t) / 1e9, numpy=np.__version__)
    n, d, chunk = a.count, a.dim, a.chunk
    images = rng.standard_normal((n, d), dtype=np.float32)
    texts = images + 10 * rng.standard_normal((n, d), dtype=np.float32)
    result = {}

    def rank():
        paired = np.einsum("ij,ij->i", texts, images)
        text_ranks = np.empty(n, dtype=np.int64)
        image_counts = np.zeros(n, dtype=np.int64)
        for s0 in range(0, n, chunk):
            s = texts[s0:s0 + chunk] @ images.T  # [len, N]
            text_ranks[s0:s0 + chunk] = (s >= paired[s0:s0 + chunk, None]).sum(1)  # includes self: the rank
            image_counts += (s >= paired[None, :]).sum(0)
        result["recall@1"] = float((text_ranks <= 1).mean())
        result["recall@5"] = float((text_ranks <= 5).mean())
        result["volumeToReport/recall@1"] = float((image_counts <= 1).mean())
    t = timed(rank, 0, a.steps)
    return stats(t, numpy=np.__version__, **result)


def worker_main(a):
    fn = {"torch": worker_torch, "hf": worker_hf, "numpy": worker_numpy}[a.worker]
    print(json.dumps(fn(a)))


# ----------------------------------------------------------------------------------------------- cases
def case_table():
    """name → (our command, {side: worker args}, notes)."""
    cases = {}

    def image(name, kind, preset, batch, precision, steps, warmup, sides):
        ours = [GREENRFM, "bench", "train-step" if kind == "train" else "embed", "--json", "--preset", preset,
                "--batch-size", str(batch), "--precision", precision, "--steps", str(steps), "--warmup", str(warmup)]
        common = ["--worker", "torch", "--kind", kind, "--preset", preset, "--batch-size", str(batch),
                  "--precision", precision, "--steps", str(steps), "--warmup", str(warmup)]
        cases[name] = (ours, {s: ([PY215] if s == "py215" else [PY113]) + common for s in sides})

    for preset in ("lite", "standard"):
        heavy = preset == "standard"
        for batch in (1, 2):
            image(f"train-{preset}-b{batch}", "train", preset, batch, "fp32", 2 if heavy else 4, 1, ("py215", "py113"))
        image(f"embed-{preset}", "embed", preset, 1, "fp32", 3 if heavy else 8, 1, ("py215", "py113"))
        image(f"train-{preset}-b1-bf16", "train", preset, 1, "bf16", 2 if heavy else 4, 1, ("py215",))
        image(f"embed-{preset}-bf16", "embed", preset, 1, "bf16", 3 if heavy else 8, 1, ("py215",))
    cases["text-step"] = (
        [GREENRFM, "bench", "text-step", "--json", "--batch-size", "32", "--tokens", "128", "--steps", "5"],
        {"hf": [PY215, "--worker", "hf", "--batch-size", "32", "--tokens", "128", "--steps", "5", "--warmup", "1"]})
    cases["text-step-bf16"] = (
        [GREENRFM, "bench", "text-step", "--json", "--batch-size", "32", "--tokens", "128", "--steps", "5",
         "--precision", "bf16"],
        {"hf": [PY215, "--worker", "hf", "--batch-size", "32", "--tokens", "128", "--steps", "5", "--warmup", "1",
                "--precision", "bf16"]})
    cases["retrieval-50k"] = (
        [GREENRFM, "bench", "retrieval", "--json", "--count", "50000", "--dim", "768", "--steps", "1"],
        {"numpy": [PY215, "--worker", "numpy", "--kind", "retrieval", "--count", "50000", "--dim", "768",
                   "--chunk", "512", "--steps", "1"]})
    cases["matmul-4096"] = (
        [GREENRFM, "bench", "matmul", "--json", "--size", "4096", "--steps", "5"],
        {"py215": [PY215, "--worker", "torch", "--kind", "matmul", "--n", "4096", "--steps", "5", "--warmup", "1"],
         "numpy": [PY215, "--worker", "numpy", "--kind", "matmul", "--n", "4096", "--steps", "5", "--warmup", "1"]})
    cases["matmul-4096-bf16"] = (
        [GREENRFM, "bench", "matmul", "--json", "--size", "4096", "--steps", "5", "--precision", "bf16"],
        {"py215": [PY215, "--worker", "torch", "--kind", "matmul", "--n", "4096", "--steps", "5", "--warmup", "1",
                   "--precision", "bf16"]})
    return cases


def run_json(cmd, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if cmd[0] != GREENRFM:
        cmd = [cmd[0], os.path.abspath(__file__), "--threads", str(threads)] + cmd[1:]
    else:
        cmd = cmd + ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def summarise(runs):
    t = [s for r in runs for s in r["seconds"]]
    return {"median_seconds": statistics.median(t), "min_seconds": min(t), "max_seconds": max(t),
            "steps": len(t), "peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs),
            "info": {k: v for k, v in runs[0].items() if k not in ("seconds", "median_seconds", "min_seconds",
                                                                      "max_seconds", "peak_rss_bytes", "losses")}}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="train-lite-b1", help="comma-separated case names (see --list), or 'all'")
    p.add_argument("--sides", default=None, help="comma-separated reference sides to run (default: all of a case's)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", default=None, help="append each case's JSON object to this file")
    p.add_argument("--list", action="store_true")
    # worker arguments
    p.add_argument("--worker", choices=["torch", "hf", "numpy"])
    p.add_argument("--kind", default="train")
    p.add_argument("--preset", default="lite")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--size", default="96,192,192")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--count", type=int, default=50000)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--chunk", type=int, default=512)
    p.add_argument("--n", type=int, default=4096)
    a = p.parse_args()
    if a.worker:
        return worker_main(a)
    table = case_table()
    if a.list:
        for name, (ours, refs) in table.items():
            print(f"{name:24s} references: {', '.join(refs)}")
        return
    names = list(table) if a.cases == "all" else a.cases.split(",")
    wanted = set(a.sides.split(",")) if a.sides else None
    for name in names:
        ours_cmd, refs = table[name]
        refs = {k: v for k, v in refs.items() if wanted is None or k in wanted}
        sides = ["swift"] + list(refs)
        runs = {s: [] for s in sides}
        for r in range(a.rounds):
            order = sides[r % len(sides):] + sides[:r % len(sides)]
            for s in order:
                runs[s].append(run_json(ours_cmd if s == "swift" else refs[s], a.threads))
            print(f"{name} round {r + 1}: " + ", ".join(
                f"{s} {runs[s][-1]['median_seconds']:.4f} s" for s in sides), file=sys.stderr, flush=True)
        result = {"case": name, "threads": a.threads, "rounds": a.rounds,
                  "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
        for s in sides:
            result[s] = summarise(runs[s])
        for s in refs:
            result[f"ratio_swift_over_{s}"] = result["swift"]["median_seconds"] / result[s]["median_seconds"]
            result[f"ratio_of_minimums_swift_over_{s}"] = result["swift"]["min_seconds"] / result[s]["min_seconds"]
        line = json.dumps(result, sort_keys=True)
        print(line, flush=True)
        if a.out:
            with open(a.out, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
