"""The floor `bench/nlp_bench.py` compares the NLP batch endpoint with: read a day's parquet,
tokenize, one batched forward, write the same output, with nothing of the platform.

Its own module importing only pandas, numpy, tokenizers and torch/transformers (inside the
functions), so the per-core floor's spawned processes load no more than that. The model is
the logged pyfunc's BERT checkpoint read directly (artifacts/bert), not through MLflow.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"
_MODEL: tuple = ()
BATCH = 64  # texts per forward, sorted by length (what a hand-written loop would do)


def load(model: str) -> tuple:
    """(tokenizer truncating to the model's max_length, network, classes); cached."""
    global _MODEL
    if not _MODEL:
        import torch
        import yaml
        from tokenizers import Tokenizer
        from transformers import BertForSequenceClassification

        torch.set_num_threads(1)
        meta = yaml.safe_load(Path(model, "MLmodel").read_text())["metadata"]
        tokenizer = Tokenizer.from_file(f"{model}/artifacts/bert/tokenizer.json")
        tokenizer.enable_truncation(int(meta["max_length"]))  # keeps [CLS] .. [SEP]
        net = BertForSequenceClassification.from_pretrained(f"{model}/artifacts/bert").eval()
        classes = [net.config.id2label[i] for i in range(net.config.num_labels)]
        _MODEL = (tokenizer, net, classes)
    return _MODEL


def score(model: str, jobs: list[tuple[str, str, int, int]]) -> int:
    """Score rows lo:hi of each source parquet into its target; rows written."""
    import numpy as np
    import pandas as pd
    import torch

    tokenizer, net, classes = load(model)
    pad, rows = net.config.pad_token_id or 0, 0
    for src, dst, lo, hi in jobs:
        frame = pd.read_parquet(src).iloc[lo:hi]
        ids = [e.ids for e in tokenizer.encode_batch(frame["text"].tolist())]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        proba = np.zeros((len(ids), len(classes)), np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), BATCH):
                idx = order[start : start + BATCH]
                x = np.full((len(idx), max(len(ids[i]) for i in idx)), pad, np.int64)
                for row, i in enumerate(idx):
                    x[row, : len(ids[i])] = ids[i]
                x = torch.from_numpy(x)
                proba[idx] = torch.softmax(
                    net(input_ids=x, attention_mask=(x != pad).long()).logits, 1
                )
        best = proba.argmax(1)
        frame[["text_id"]].assign(label=np.asarray(classes, dtype=object)[best],
            probability=proba[np.arange(len(best)), best].astype(np.float64), model_version="1",
        ).to_parquet(dst, index=False)  # fmt: skip
        rows += len(frame)
    return rows
