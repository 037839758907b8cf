#!/usr/bin/env python3
"""Image stage 1 alone on a demo's cohort, to see which findings the image encoder can learn (issue 7).

Builds a manifest from a finished `greenrfm demo --output DIR` run (training volumes with the labels the rule
distiller gave them, `DIR/labels/train_labels_distilled.csv`; held-out volumes with their true labels), takes the
demo's own image-stage settings from `DIR/image-s1/config.json`, and runs `greenrfm train stage1 --modality image`
with the overrides given, reusing the demo's preprocessing cache. Prints the held-out AUROC of the stage's classifier
per epoch: the macro over the 11 findings the demo calls visible (`Demo.visibleFindings`) and each of those.

Usage (from the repository root, after a demo run):
  python3 bench/demo_learnability.py --demo runs/demo --output runs/learn-18ep -- --epochs 18 --threads 1
  python3 bench/demo_learnability.py --demo runs/demo --output runs/learn-focal --focal -- --threads 1
  python3 bench/demo_learnability.py --demo runs/demo --output runs/learn-mm --only "Medical material" -- --threads 1
Arguments after `--` go to `greenrfm train stage1` unchanged (--epochs, --lr, --precision, --uncertain-policy, ...).
--focal masks every finding except the five focal ones (−1 in training), to see whether they are learnable alone;
--only keeps just the findings named.

Measured on 30 November 2026 (seed-0 demo cohort, 4×4×8 mm): the demo's 9 epochs give 0.748 over the visible 11;
18 epochs 0.808; medical material, lung nodule and hiatal hernia stay near 0.5 throughout, also with --focal.
Generator version 4 cohort (same day): lr 1e-3 with 100 warm-up steps, or batch 4 at lr 3e-4, learn no faster than
the demo's settings; medical material alone (--only) reaches 0.61 after 4 epochs. bench/demo_pytorch_replica.py
shows PyTorch learning the same way.
"""
import argparse
import csv
import json
import os
import subprocess
import sys

VISIBLE = ["medical_material", "cardiomegaly", "pericardial_effusion", "hiatal_hernia", "lymphadenopathy",
           "emphysema", "atelectasis", "lung_nodule", "lung_opacity", "pleural_effusion", "consolidation"]
FOCAL = {"Medical material", "Hiatal hernia", "Lymphadenopathy", "Lung nodule", "Lung opacity"}


def volume_path(cohort, split, name):
    """CT-RATE layout: train_1_a_1.nii.gz lies in train/train_1/train_1_a/."""
    parts = name[: -len(".nii.gz")].split("_")
    return os.path.join(cohort, split, f"{parts[0]}_{parts[1]}", f"{parts[0]}_{parts[1]}_{parts[2]}", name)


def main():
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demo", required=True, help="a finished greenrfm demo output folder")
    p.add_argument("--output", required=True, help="the new run folder")
    p.add_argument("--focal", action="store_true", help="supervise only the five focal findings")
    p.add_argument("--only", default="", help="supervise only these findings (display names, comma-separated)")
    p.add_argument("--greenrfm", default=".build/release/greenrfm")
    a = p.parse_args(argv)

    cohort = os.path.join(a.demo, "cohort")
    distilled = list(csv.reader(open(os.path.join(a.demo, "labels", "train_labels_distilled.csv"))))
    truth = list(csv.reader(open(os.path.join(cohort, "valid_labels.csv"))))
    header = distilled[0]
    rows = []
    for r in distilled[1:]:
        keep = set(a.only.split(",")) if a.only else (FOCAL if a.focal else None)
        labels = [v if keep is None or header[j + 1] in keep else "-1" for j, v in enumerate(r[1:])]
        rows.append([r[0][: -len(".nii.gz")], os.path.abspath(volume_path(cohort, "train", r[0]))] + labels)
    for r in truth[1:]:
        rows.append([r[0][: -len(".nii.gz")], os.path.abspath(volume_path(cohort, "valid", r[0]))] + r[1:])
    os.makedirs(a.output, exist_ok=True)
    manifest = os.path.join(a.output, "manifest.csv")
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([["id", "volume"] + header[1:]] + rows)
    preset = json.load(open(os.path.join(a.demo, "image-s1", "config.json")))["preset"]
    preset["data"].pop("cacheFolder", None)
    preset_path = os.path.join(a.output, "preset.json")
    json.dump(preset, open(preset_path, "w"), indent=1)

    cmd = [a.greenrfm, "train", "stage1", "--modality", "image", "--manifest", manifest,
           "--validation-last", str(len(truth) - 1), "--preset", preset_path,
           "--cache", os.path.join(a.demo, "cache"), "--output", os.path.join(a.output, "run")] + extra
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)

    for line in open(os.path.join(a.output, "run", "metrics.jsonl")):
        d = json.loads(line)
        if "val/auroc/macro" not in d:
            continue
        visible = sum(d[f"val/auroc/{k}"] for k in VISIBLE) / len(VISIBLE)
        print(f"epoch {d['epoch']}: visible-11 {visible:.3f}  "
              + " ".join(f"{k}={d[f'val/auroc/{k}']:.2f}" for k in VISIBLE))


if __name__ == "__main__":
    main()
