#!/usr/bin/env python3
"""The demo's image stage 1 re-implemented in PyTorch, to tell our implementation's learning from the network's (issue 7).

Reads a finished `greenrfm demo --output DIR` run's preprocessing cache (the same volumes the demo trained on), the
distilled training labels and the held-out true labels, and trains a torchvision-`r3d_18`-layout network with the
lite stem (1→64, kernel 4, stride 4; BasicBlocks 64/128/256/512; global average pooling) as the demo does: AdamW
5e-4, weight decay 1e-4, batch 8, 20×40×40 crops of the cached canvas (random within 24×48×48 in the demo before
30 November 2026; the demo now caches the 20×40×40 centre, so every crop is the centre), 20 warm-up steps then cosine
to 1e-5, BCE with −1 masked. Prints the held-out AUROC of five findings per epoch.

Usage (from the repository root, with the reference environment of scripts/golden):
  .venv-ref/bin/python bench/demo_pytorch_replica.py --demo runs/demo --epochs 7
  .venv-ref/bin/python bench/demo_pytorch_replica.py --demo runs/demo --epochs 6 --only "Medical material"
  .venv-ref/bin/python bench/demo_pytorch_replica.py --demo OLD_DEMO --epochs 7 --centre   # a 24×48×48 cache

Measured on 30 November 2026 (generator version 4 cohort, seed 0, one thread): after 3 of 9 epochs, medical
material 0.51, hiatal hernia 0.67, lung nodule 0.50, cardiomegaly 0.93 (`greenrfm demo`'s own image stage at the same
point: 0.50, 0.68, 0.51, 0.93); medical material alone (--only, 6 epochs) stays near chance: 0.55, 0.53, 0.45,
0.54, 0.54, 0.56. The same cohort trained on the 20×40×40 centre instead of random crops (7 epochs): after 3 epochs
0.44, 0.98, 0.57, 0.96; after 7 epochs 0.42, 0.99, 0.70, 0.97, and lymphadenopathy 0.94 (`greenrfm demo` with random
crops, at epoch 7 of 9: lymphadenopathy 0.81, lung nodule 0.58). Medical material needed generator version 5 as
well (docs/SYNTH.md).
"""
import argparse, csv, glob, math, time

import nibabel as nib
import numpy as np
import torch
import torch.nn as nn
from sklearn.metrics import roc_auc_score

SHOWN = ["Medical material", "Hiatal hernia", "Lung nodule", "Cardiomegaly", "Lymphadenopathy"]


def load(demo, labels_csv, centre):
    rows = list(csv.DictReader(open(labels_csv)))
    keys = list(rows[0].keys())[1:]
    xs, ys = [], []
    for r in rows:
        path = glob.glob(f"{demo}/cache/{r['VolumeName'][:-len('.nii.gz')]}-*.nii.gz")[0]
        v = np.asarray(nib.load(path).dataobj).astype(np.float32)  # RAS (i, j, k)
        if centre and v.shape[0] == 48:
            v = v[4:44, 4:44, 2:22]
        xs.append(v.transpose(2, 1, 0)[None])  # [1, D, H, W]
        ys.append([float(r[k]) for k in keys])
    return torch.tensor(np.array(xs)), torch.tensor(ys), keys


class Block(nn.Module):
    def __init__(self, i, o, stride):
        super().__init__()
        self.c1, self.b1 = nn.Conv3d(i, o, 3, stride, 1, bias=False), nn.BatchNorm3d(o)
        self.c2, self.b2 = nn.Conv3d(o, o, 3, 1, 1, bias=False), nn.BatchNorm3d(o)
        self.down = None if stride == 1 and i == o else nn.Sequential(nn.Conv3d(i, o, 1, stride, bias=False), nn.BatchNorm3d(o))

    def forward(self, x):
        y = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
        return torch.relu(y + (x if self.down is None else self.down(x)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demo", required=True)
    p.add_argument("--epochs", type=int, default=7)
    p.add_argument("--only", default="", help="train on these findings only (display names, comma-separated)")
    p.add_argument("--centre", action="store_true", help="train on the 20×40×40 centre even when the cache is larger")
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    xt, yt, keys = load(a.demo, f"{a.demo}/labels/train_labels_distilled.csv", centre=False)
    xv, yv, _ = load(a.demo, f"{a.demo}/cohort/valid_labels.csv", centre=True)
    if a.only:
        keep = [keys.index(k) for k in a.only.split(",")]
        for j in range(len(keys)):
            if j not in keep:
                yt[:, j] = -1
    net = nn.Sequential(nn.Conv3d(1, 64, 4, 4, bias=False), nn.BatchNorm3d(64), nn.ReLU(),
                        Block(64, 64, 1), Block(64, 64, 1), Block(64, 128, 2), Block(128, 128, 1),
                        Block(128, 256, 2), Block(256, 256, 1), Block(256, 512, 2), Block(512, 512, 1),
                        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(512, len(keys)))
    for m in net.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    nn.init.normal_(net[-1].weight, 0, 0.01)
    opt = torch.optim.AdamW(net.parameters(), 5e-4, weight_decay=1e-4)
    total, step, t0 = a.epochs * (len(xt) // 8), 0, time.time()
    for epoch in range(a.epochs):
        net.train()
        order = torch.randperm(len(xt))
        for start in range(0, len(xt) - 7, 8):
            lr = 5e-4 * (step + 1) / 20 if step < 20 else 1e-5 + (5e-4 - 1e-5) * 0.5 * (1 + math.cos(math.pi * (step - 20) / (total - 20)))
            for g in opt.param_groups:
                g["lr"] = lr
            idx = order[start:start + 8]
            crops = []
            for x in xt[idx]:
                # A random 20×40×40 crop of the cached canvas: 24×48×48 before 30 November 2026, 20×40×40 (the crop
                # itself, so always the centre) since.
                d, h, w = x.shape[1:]
                if a.centre:
                    ox, oy, oz = (w - 40) // 2, (h - 40) // 2, (d - 20) // 2
                else:
                    ox, oy, oz = np.random.randint(0, w - 39), np.random.randint(0, h - 39), np.random.randint(0, d - 19)
                crops.append(x[:, oz:oz + 20, oy:oy + 40, ox:ox + 40])
            y = yt[idx]
            mask = (y >= 0).float()
            bce = nn.functional.binary_cross_entropy_with_logits(net(torch.stack(crops)), y.clamp(min=0), reduction="none")
            loss = (bce * mask).sum() / mask.sum().clamp(min=1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        net.eval()
        with torch.no_grad():
            scores = torch.cat([net(xv[i:i + 50]) for i in range(0, len(xv), 50)]).numpy()
        shown = [k for k in keys if k in (a.only.split(",") if a.only else SHOWN)]
        print(f"epoch {epoch + 1} ({time.time() - t0:.0f} s): " + " ".join(
            f"{k}={roc_auc_score(yv[:, keys.index(k)].numpy(), scores[:, keys.index(k)]):.2f}" for k in shown), flush=True)


if __name__ == "__main__":
    main()
