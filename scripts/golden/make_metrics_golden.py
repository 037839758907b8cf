#!/usr/bin/env python3
"""Golden values for Sources/GreenRFM/Evaluation (Metrics, Retrieval, LinearProbe).

Run once with the reference environment:  .venv-ref/bin/python scripts/golden/make_metrics_golden.py
Writes Tests/GreenRFMTests/Golden/metrics_golden.json. AUROC, ROC curves and threshold metrics come from
scikit-learn; bootstrap draws repeat Swift's SplitMix64 exactly (see Metrics.swift); Recall@K, ranks and MAP@K
are NumPy references of the definitions documented in Retrieval.swift.
"""
import json
import math
import pathlib
import platform

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (accuracy_score, f1_score, precision_score, recall_score, roc_auc_score, roc_curve)

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def index(self, bound):
        return self.next() % bound


def nul(x):
    return None if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))) else float(x)


def auroc(s, y):
    s, y = np.asarray(s, float), np.asarray(y)
    keep = (y == 0) | (y == 1)
    s, y = s[keep], y[keep]
    if len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, s))


def choose(s, y, rule):
    s, y = np.asarray(s, float), np.asarray(y)
    keep = (y == 0) | (y == 1)
    s, y = s[keep], y[keep]
    p, n = int((y == 1).sum()), int((y == 0).sum())
    if p == 0 or n == 0:
        return None
    best, best_v = None, -math.inf
    for t in sorted(np.unique(s), reverse=True):
        pred = s >= t
        tp = int((pred & (y == 1)).sum()); fp = int((pred & (y == 0)).sum())
        v = (2 * tp) / (2 * tp + fp + (p - tp)) if rule == "max-f1" else tp / p - fp / n
        if v > best_v:
            best_v, best = v, float(t)
    if rule == "max-f1":  # cross-check against scikit-learn
        assert abs(f1_score(y, s >= best) - best_v) < 1e-15
    return best


def at_threshold(s, y, t):
    s, y = np.asarray(s, float), np.asarray(y)
    keep = (y == 0) | (y == 1)
    s, y = s[keep], y[keep].astype(int)
    pred = (s >= t).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum()); fp = int(((pred == 1) & (y == 0)).sum())
    tn = int(((pred == 0) & (y == 0)).sum()); fn = int(((pred == 0) & (y == 1)).sum())
    zd = np.nan
    return {
        "threshold": t, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "precision": nul(precision_score(y, pred, zero_division=zd)) if len(y) else None,
        "recall": nul(recall_score(y, pred, zero_division=zd)) if len(y) else None,
        "specificity": nul(recall_score(y, pred, pos_label=0, zero_division=zd)) if len(y) else None,
        "f1": nul(f1_score(y, pred, zero_division=zd)) if len(y) else None,
        "accuracy": nul(accuracy_score(y, pred)) if len(y) else None,
    }


def auroc_case(name, s, y):
    s = [float(v) for v in s]; y = [int(v) for v in y]
    a = auroc(s, y)
    case = {"name": name, "scores": s, "labels": y, "auroc": a}
    if a is not None:
        keep = [i for i in range(len(y)) if y[i] in (0, 1)]
        fpr, tpr, thr = roc_curve([y[i] for i in keep], [s[i] for i in keep], drop_intermediate=True)
        assert math.isinf(thr[0])
        case["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds_after_inf": thr[1:].tolist()}
    case["maxF1Threshold"] = choose(s, y, "max-f1")
    case["youdenThreshold"] = choose(s, y, "youden")
    case["at"] = [at_threshold(s, y, t) for t in [0.5, case["maxF1Threshold"], case["youdenThreshold"]] if t is not None]
    return case


def bootstrap(scores, labels, B, seed):
    scores, labels = np.asarray(scores, float), np.asarray(labels)
    n, c = scores.shape
    full = [auroc(scores[:, j], labels[:, j]) for j in range(c)]
    defined = [j for j in range(c) if full[j] is not None]
    rng = SplitMix64(seed)
    vals = [[] for _ in range(c)]; skipped = [0] * c
    macro, micro = [], []; macro_skip = micro_skip = 0
    for _ in range(B):
        idx = np.array([rng.index(n) for _ in range(n)])
        s, y = scores[idx], labels[idx]
        per = [auroc(s[:, j], y[:, j]) for j in range(c)]
        for j in range(c):
            if per[j] is None: skipped[j] += 1
            else: vals[j].append(per[j])
        if defined and all(per[j] is not None for j in defined):
            macro.append(sum(per[j] for j in defined) / len(defined))
        else:
            macro_skip += 1
        m = auroc(s.reshape(-1), y.reshape(-1))
        if m is None: micro_skip += 1
        else: micro.append(m)

    def ci(v, skip):
        if not v: return None
        lo, hi = np.percentile(np.array(v), [2.5, 97.5])
        return {"low": float(lo), "high": float(hi), "resamples": len(v), "skipped": skip}
    return {
        "perFinding": [ci(vals[j], skipped[j]) if full[j] is not None else None for j in range(c)],
        "macro": ci(macro, macro_skip) if defined else None,
        "micro": ci(micro, micro_skip),
        "auroc": full,
        "macroAUROC": (sum(full[j] for j in defined) / len(defined)) if defined else None,
        "microAUROC": auroc(scores.reshape(-1), labels.reshape(-1)),
    }


def ranks(q, cand, similarity):
    q, cand = np.asarray(q, float), np.asarray(cand, float)
    if similarity == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        cand = cand / np.maximum(np.linalg.norm(cand, axis=1, keepdims=True), 1e-12)
    S = q @ cand.T
    d = (q * cand).sum(1)
    ge = S >= d[:, None]
    np.fill_diagonal(ge, False)
    return (1 + ge.sum(1)).tolist()


def retrieval_summary(r, ks):
    r = np.asarray(r)
    return {"ranks": r.tolist(), "recall": {str(k): float((r <= k).mean()) for k in ks},
            "meanRank": float(r.mean()), "medianRank": float(np.median(r))}


def map_at_k(x, labels, k):
    x, labels = np.asarray(x, float), np.asarray(labels)
    n = len(x)
    S = x @ x.T
    np.fill_diagonal(S, -np.inf)
    pos = labels == 1
    shared = (pos.astype(int) @ pos.T.astype(int)) > 0
    np.fill_diagonal(shared, False)
    take = min(k, n - 1)
    aps = []
    for i in range(n):
        R = int(shared[i].sum())
        if R == 0 or take == 0:
            aps.append(None); continue
        order = np.argsort(-S[i], kind="stable")[:take]
        rel = shared[i, order]
        hits = np.cumsum(rel)
        ap = float((rel * hits / np.arange(1, take + 1)).sum() / min(k, R))
        aps.append(ap)
    v = [a for a in aps if a is not None]
    return {"k": k, "value": (sum(v) / len(v)) if v else None, "queries": len(v), "perQuery": aps}


def main():
    rng = np.random.default_rng(20260501)
    out = {"versions": {"python": platform.python_version(), "numpy": np.__version__, "sklearn": sklearn.__version__},
           "tolerance_note": "integer-derived values (AUROC via counts, ranks, recall, counts) compare within 1e-12"}
    cases = []
    n = 200
    y = rng.choice([0, 1, -1], size=n, p=[0.55, 0.3, 0.15])
    cases.append(auroc_case("random", rng.random(n), y))
    y = rng.choice([0, 1, -1], size=300, p=[0.5, 0.35, 0.15])
    s = np.round(rng.random(300) * (0.4 + 0.4 * (y == 1)), 1)  # heavy ties, 0.0 … 0.8
    cases.append(auroc_case("tied", s, y))
    cases.append(auroc_case("integerTies", rng.integers(0, 4, 120), rng.choice([0, 1], size=120)))
    cases.append(auroc_case("allTied", np.full(30, 0.3), rng.choice([0, 1], size=30)))
    cases.append(auroc_case("singleClass", rng.random(25), rng.choice([1, -1], size=25)))
    cases.append(auroc_case("noLabels", rng.random(10), np.full(10, -1)))
    cases.append(auroc_case("small", [0.1, 0.4, 0.35, 0.8, 0.4, 0.7], [0, 0, 1, 1, 1, -1]))
    cases.append(auroc_case("perfect", [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]))
    cases.append(auroc_case("inverted", [0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]))
    out["auroc"] = cases

    # Bootstrap: 60 studies × 4 findings: ordinary, rare (2 positives), single-class, tied with −1 cells.
    N = 60
    L = np.zeros((N, 4), dtype=int)
    L[:, 0] = rng.choice([0, 1], size=N, p=[0.6, 0.4])
    L[:, 1] = 0; L[rng.choice(N, 2, replace=False), 1] = 1
    L[:, 2] = rng.choice([0, -1], size=N)
    L[:, 3] = rng.choice([0, 1, -1], size=N, p=[0.4, 0.4, 0.2])
    S = rng.random((N, 4)) * 0.7 + 0.3 * L.clip(0, 1)
    S[:, 3] = np.round(S[:, 3], 1)
    out["bootstrap"] = {"scores": S.tolist(), "labels": L.tolist(), "resamples": 1000, "seed": 7,
                        "expected": bootstrap(S, L, 1000, 7)}

    # Validation split reproduction (Fisher–Yates with SplitMix64).
    r = SplitMix64(11); idx = list(range(25))
    for i in range(24, 0, -1):
        j = r.index(i + 1); idx[i], idx[j] = idx[j], idx[i]
    v = int(round(0.3 * 25))
    out["split"] = {"count": 25, "fraction": 0.3, "seed": 11, "validation": sorted(idx[:v]), "test": sorted(idx[v:])}
    r = SplitMix64(0)
    out["splitmix64"] = {"seed": 0, "first": [str(r.next()) for _ in range(3)]}

    # Retrieval: random float64 pairs, and small-integer latents with exact ties.
    ks = [1, 5, 10, 50, 100]
    img = rng.standard_normal((300, 16)); txt = img + 1.5 * rng.standard_normal((300, 16))
    ti = rng.integers(-1, 2, (40, 4)).astype(float); tt = ti.copy(); tt[::3] = rng.integers(-1, 2, (14, 4))
    ret = []
    for name, I, T, sims in [("random", img, txt, ["dot", "cosine"]), ("integerTies", ti, tt, ["dot"])]:
        ret.append({"name": name, "images": I.tolist(), "texts": T.tolist(), "ks": ks, "results": [
            {"similarity": sim, "reportToVolume": retrieval_summary(ranks(T, I, sim), ks),
             "volumeToReport": retrieval_summary(ranks(I, T, sim), ks)} for sim in sims]})
    out["retrieval"] = ret

    # MAP@K: random latents; integer latents with ties (stable order by index).
    maps = []
    x = rng.standard_normal((120, 8)); lab = rng.choice([0, 1, -1], size=(120, 5), p=[0.7, 0.2, 0.1])
    maps.append({"name": "random", "latents": x.tolist(), "labels": lab.tolist(),
                 "results": [map_at_k(x, lab, k) for k in [1, 10, 50, 500]]})
    xi = rng.integers(-1, 2, (30, 3)).astype(float); li = rng.choice([0, 1], size=(30, 3), p=[0.6, 0.4])
    maps.append({"name": "integerTies", "latents": xi.tolist(), "labels": li.tolist(), "results": [map_at_k(xi, li, 5)]})
    out["map"] = maps

    # Linear probe at one λ against scikit-learn's LogisticRegression on standardised features.
    d, lam = 6, 0.1
    w_true = rng.standard_normal((d, 2))
    def make(m):
        X = rng.standard_normal((m, d)) * np.array([1, 2, 0.5, 1, 3, 1]) + 0.5
        P = 1 / (1 + np.exp(-(X @ w_true)))
        Y = (rng.random((m, 2)) < P).astype(int)
        Y[rng.random((m, 2)) < 0.1] = -1
        return X, Y
    Xtr, Ytr = make(150); Xva, Yva = make(50); Xte, Yte = make(40)
    mu, sd = Xtr.mean(0), Xtr.std(0)
    probs = np.zeros((40, 2))
    for j in range(2):
        keep = (Ytr[:, j] == 0) | (Ytr[:, j] == 1)
        clf = LogisticRegression(C=1 / (lam * keep.sum()), tol=1e-12, max_iter=10000)
        clf.fit((Xtr[keep] - mu) / sd, Ytr[keep, j])
        probs[:, j] = clf.predict_proba((Xte - mu) / sd)[:, 1]
    out["probe"] = {"lambda": lam, "train": Xtr.tolist(), "trainLabels": Ytr.tolist(), "validation": Xva.tolist(),
                    "validationLabels": Yva.tolist(), "test": Xte.tolist(), "testProbabilities": probs.tolist()}

    path = pathlib.Path(__file__).resolve().parents[2] / "Tests/GreenRFMTests/Golden/metrics_golden.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
