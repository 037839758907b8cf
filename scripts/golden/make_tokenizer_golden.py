#!/usr/bin/env python3
"""Golden values for the WordPiece tokenizer tests: Hugging Face's BertTokenizer (slow, transformers) and
BertTokenizerFast (tokenizers) on the all-MiniLM-L6-v2 vocabulary.

    .venv-ref/bin/python scripts/golden/make_tokenizer_golden.py

For the 800 real reports in ../shared/data/reports/ctrate_manual_train.csv (licence: testing only, nothing
derived ships) it stores no text and no token ids, only per report: the untruncated token count and an
FNV-1a 64-bit hash of the encoding `[CLS] … [SEP]` truncated to 128 tokens (as the text encoder sees it),
and of the untruncated ids. For a few synthetic edge cases it stores the full ids.
Writes Tests/ReportsTests/TokenizerGolden/wordpiece_golden.json.
"""
import csv
import json
import os

import tokenizers
import transformers
from tokenizers import Tokenizer
from transformers import BertTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
MODEL = os.path.join(SHARED, "models", "all-MiniLM-L6-v2")


def fnv1a64(ids):
    h = 0xCBF29CE484222325
    for v in ids:
        for byte in int(v).to_bytes(4, "little", signed=True):
            h ^= byte
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


slow = BertTokenizer(os.path.join(MODEL, "vocab.txt"), do_lower_case=True)
fast = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
fast.no_truncation()
fast.no_padding()

EDGE_CASES = [
    "There is no pleural effusion.",
    "Café résumé naïve — “quotes” 5×3 mm, 10–12 cm; HU: -1000…200",
    "中文字符 test\u200bzero\u00a0nbsp\ttab\r\nnew line",
    "a" * 120,
    "unbelievablyunbelievable",
    "Ångström µm ﬁ ligature ÀÉÎÕÜ",
    "",
    "   \u0000\ufffd  ",
]

reports = []
with open(os.path.join(SHARED, "reports", "ctrate_manual_train.csv"), newline="", encoding="utf-8") as f:
    for row in csv.DictReader(f):
        text = row["report_text"]
        full = slow.encode(text, add_special_tokens=False)
        assert full == fast.encode(text, add_special_tokens=False).ids, "slow and fast tokenizers disagree"
        truncated = slow(text, truncation=True, max_length=128)["input_ids"]
        reports.append({"id": row["AccessionNo"], "tokens": len(full), "hash_full": fnv1a64(full),
                        "hash_128": fnv1a64(truncated)})

edge = []
for text in EDGE_CASES:
    ids = slow.encode(text, add_special_tokens=False)
    assert ids == fast.encode(text, add_special_tokens=False).ids, f"disagreement on {text!r}"
    edge.append({"text": text, "ids": ids, "ids_128": slow(text, truncation=True, max_length=128)["input_ids"]})

out = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
       "script": "scripts/golden/make_tokenizer_golden.py", "hash": "fnv1a64 over int32 little-endian ids",
       "reports": reports, "edge_cases": edge}
dest = os.path.join(ROOT, "Tests", "ReportsTests", "TokenizerGolden", "wordpiece_golden.json")
os.makedirs(os.path.dirname(dest), exist_ok=True)
with open(dest, "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
print(f"wrote {dest}: {len(reports)} reports, {len(edge)} edge cases")
