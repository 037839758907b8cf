#!/usr/bin/env python3
"""Prints the cases of bench/compare.py's JSON-lines output as the Markdown table of docs/PERFORMANCE.md.

Usage: python3 bench/table.py bench/results/2026-11-30.jsonl [more.jsonl ...]
A case that appears more than once keeps its last run.
"""
import json
import sys

NAMES = {"swift": "ours (Swift)", "py215": "PyTorch 2.15", "py113": "Debian PyTorch 1.13", "hf": "HF transformers",
         "numpy": "NumPy"}


def fmt(side):
    return (f"{side['median_seconds']:.3f} s ({side['min_seconds']:.3f}–{side['max_seconds']:.3f}), "
            f"{side['peak_rss_bytes'] / 1e9:.2f} GB")


def main():
    cases = {}
    for path in sys.argv[1:]:
        for line in open(path):
            if line.strip():
                r = json.loads(line)
                cases[r["case"]] = r
    print("| case | ours: median (min–max), peak RSS | reference: median (min–max), peak RSS | ours / reference (medians) |")
    print("|---|---|---|---|")
    for name, r in cases.items():
        refs = [k for k in r if isinstance(r[k], dict) and k != "swift"]
        for i, ref in enumerate(refs):
            ours = fmt(r["swift"]) if i == 0 else "″"
            print(f"| {name if i == 0 else ''} | {ours} | {NAMES.get(ref, ref)}: {fmt(r[ref])} | "
                  f"{r['ratio_swift_over_' + ref]:.3f} |")


if __name__ == "__main__":
    main()
