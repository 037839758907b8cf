#!/usr/bin/env python3
"""Imaging pipeline benchmark: GreenRFM MedicalImaging (Swift) against nibabel + scipy, same work, same input.

Work: decode a 512×512×300 int16 CT (.nii.gz) + reorient to RAS + resample to 1.5×1.5×3 mm (trilinear) +
chest HU window [−1000, 200] → [−1, 1] + centre crop/pad to 192×192×96.
The input is made by upsampling a real scan (../shared/data/ct/ts_chest_cta_crop_1p5mm.nii.gz, LPS, 1.5 mm)
with scipy.ndimage.zoom (order 1) to 512×512×300, keeping its physical extent.

Usage (repository root):
  bench/build_imaging_bench.sh
  .venv-ref/bin/python bench/imaging_pipeline.py [--repeats 3] [--workdir /tmp/greenrfm-bench]
Prints one JSON object: per-stage best-of-N seconds for both, the ratio, and the checksums of the outputs.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import scipy
import scipy.ndimage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "ct", "ts_chest_cta_crop_1p5mm.nii.gz"))
SHAPE = (512, 512, 300)


def make_input(path):
    if os.path.exists(path):
        return
    img = nib.load(SOURCE)
    data = np.asarray(img.dataobj).astype(np.float32)
    factors = [t / s for t, s in zip(SHAPE, data.shape)]
    big = scipy.ndimage.zoom(data, factors, order=1)
    assert big.shape == SHAPE, big.shape
    affine = img.affine.copy()
    affine[:3, :3] = affine[:3, :3] / np.array(factors)[None, :]
    out = nib.Nifti1Image(np.round(big).astype(np.int16), affine)
    out.set_qform(affine, code=1)
    out.set_sform(affine, code=1)
    nib.save(out, path)


def python_pipeline(path):
    t = {}
    start = time.perf_counter()
    img = nib.load(path)
    data = img.get_fdata(dtype=np.float32)
    t["decode"] = time.perf_counter() - start

    start = time.perf_counter()
    ornt = nib.orientations.io_orientation(img.affine)
    data = np.ascontiguousarray(nib.orientations.apply_orientation(data, ornt))
    affine = img.affine @ nib.orientations.inv_ornt_aff(ornt, img.shape)
    t["reorient"] = time.perf_counter() - start

    start = time.perf_counter()
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    target = np.array([1.5, 1.5, 3.0])
    shape = [max(1, int(np.floor(n * s / g + 0.5))) for n, s, g in zip(data.shape, spacing, target)]
    data = scipy.ndimage.affine_transform(data, np.diag(target / spacing), output_shape=shape, order=1,
                                          mode="nearest", prefilter=False)
    t["resample"] = time.perf_counter() - start

    start = time.perf_counter()
    data = (np.clip(data, -1000, 200) + 400) / 600
    t["window"] = time.perf_counter() - start

    start = time.perf_counter()
    size = (192, 192, 96)
    out = np.full(size, -1.0, dtype=np.float32)
    src, dst = [], []
    for n, s in zip(data.shape, size):
        if n >= s:
            a = (n - s) // 2
            src.append(slice(a, a + s)); dst.append(slice(0, s))
        else:
            b = (s - n) // 2
            src.append(slice(0, n)); dst.append(slice(b, b + n))
    out[tuple(dst)] = data[tuple(src)]
    t["crop"] = time.perf_counter() - start
    t["total"] = sum(t.values())
    return t, float(out.astype(np.float64).sum())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/greenrfm-imaging-bench")
    parser.add_argument("--swift", default=os.path.join(ROOT, ".build-imaging", "imaging-bench"))
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    path = os.path.join(args.workdir, "ct_512x512x300_int16.nii.gz")
    make_input(path)

    plain = path[:-3]  # the same volume uncompressed (.nii): isolates the gzip cost
    if not os.path.exists(plain):
        nib.save(nib.load(path), plain)
    result = {"input": {"shape": list(SHAPE), "dtype": "int16", "bytes_on_disk": os.path.getsize(path)}}
    for label, file in (("nii_gz", path), ("nii", plain)):
        best, checksum = None, None
        for _ in range(args.repeats):
            t, checksum = python_pipeline(file)
            if best is None or t["total"] < best["total"]:
                best = t
        swift = json.loads(subprocess.run([args.swift, file, str(args.repeats)], check=True, capture_output=True,
                                          text=True).stdout)
        result[label] = {
            "python_nibabel_scipy_seconds": {k: round(v, 4) for k, v in best.items()},
            "swift_medicalimaging_seconds": {k: round(v, 4) for k, v in swift.items() if k != "checksum"},
            "speedup_total": round(best["total"] / swift["total"], 2),
            "checksum_relative_difference": abs(checksum - swift["checksum"]) / max(1.0, abs(checksum)),
        }
    result.update({
        "cores": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "versions": {"nibabel": nib.__version__, "scipy": scipy.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0]},
        "repeats": args.repeats,
    })
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
