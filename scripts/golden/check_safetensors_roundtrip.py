#!/usr/bin/env python3
"""Checks that a safetensors file written by the Swift `Torch` module loads in Python's `safetensors`.

    .venv-ref/bin/python scripts/golden/check_safetensors_roundtrip.py SWIFT_FILE EXPECTED_JSON [--golden FILE]

SWIFT_FILE is the file that `SafeTensors.save` wrote. EXPECTED_JSON, written by the same Swift test, says
what the file should hold, as the Swift side sees it:

    {"tensors": {"<name>": {"dtype": "F32", "shape": [2, 3], "hex": "<the tensor's bytes, C order>"}},
     "metadata": {"<key>": "<value>"}}

The file is opened with `safetensors.safe_open` (which also checks that the header is well formed and the
data offsets tile the data section exactly). Every tensor must have the expected dtype, shape and bytes,
the metadata must be equal, and no tensor may be missing or extra. With --golden, each tensor whose name
also appears in that file (written by Python, e.g. Tests/TorchTests/Golden/torch_core.safetensors) must
have the same dtype, shape and bytes there: Python -> Swift -> Python loses nothing.

Exit status 0 when everything matches; 1 with one line per mismatch on stderr otherwise; 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys

import safetensors
import torch
from safetensors import safe_open

DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def tensor_bytes(t: torch.Tensor) -> bytes:
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def load(path: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(path, framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("swift_file")
    ap.add_argument("expected_json")
    ap.add_argument("--golden", help="a Python-written safetensors file to compare same-named tensors with")
    args = ap.parse_args()

    errors: list[str] = []
    with open(args.expected_json, encoding="utf-8") as f:
        expected = json.load(f)
    tensors, metadata = load(args.swift_file)

    # The header as the format defines it: u64 little-endian length, JSON, padding to 8 bytes.
    with open(args.swift_file, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = f.read(n)
    if n % 8 != 0:
        errors.append(f"header length {n} is not a multiple of 8")
    json.loads(header.decode("utf-8"))

    want = expected["tensors"]
    for name in sorted(set(want) - set(tensors)):
        errors.append(f"{name}: missing from the Swift file")
    for name in sorted(set(tensors) - set(want)):
        errors.append(f"{name}: in the Swift file but not expected")
    for name in sorted(set(want) & set(tensors)):
        t, w = tensors[name], want[name]
        if DTYPES.get(t.dtype) != w["dtype"]:
            errors.append(f"{name}: dtype {DTYPES.get(t.dtype, t.dtype)}, expected {w['dtype']}")
        if list(t.shape) != list(w["shape"]):
            errors.append(f"{name}: shape {list(t.shape)}, expected {w['shape']}")
        if tensor_bytes(t).hex() != w["hex"]:
            errors.append(f"{name}: bytes differ from what Swift wrote")
    if metadata != expected["metadata"]:
        errors.append(f"metadata {metadata!r}, expected {expected['metadata']!r}")

    compared = 0
    if args.golden:
        golden, _ = load(args.golden)
        for name in sorted(set(golden) & set(tensors)):
            g, t = golden[name], tensors[name]
            compared += 1
            if g.dtype != t.dtype or list(g.shape) != list(t.shape) or tensor_bytes(g) != tensor_bytes(t):
                errors.append(f"{name}: differs from the golden file ({g.dtype} {list(g.shape)} there, "
                              f"{t.dtype} {list(t.shape)} here)")
        if compared == 0:
            errors.append("no tensor name is shared with the golden file")

    for e in errors:
        print(f"check_safetensors_roundtrip: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"ok: {len(tensors)} tensors, {len(metadata)} metadata entries, {compared} compared with the golden "
          f"file (safetensors {safetensors.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
