"""Shared helpers of the local online endpoint tests: a tiny model, a request body, PID/port probes.

No fixtures here (the `endpoints` fixture is in this folder's conftest.py) and no assertions:
tests import these plain functions.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

X = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7})


def saved_model(path: Path, flip: bool = False) -> str:
    """Save a LogisticRegression on X (predicts a > 19; the opposite when `flip`) to `path`."""
    y = (X["a"] > 19).astype(int)
    model = LogisticRegression().fit(X, 1 - y if flip else y)
    mlflow.sklearn.save_model(model, path, signature=infer_signature(X, model.predict(X)))
    return str(path)


def payload(rows: list[list[float]]) -> dict:
    return {"input_data": {"columns": ["a", "b"], "index": list(range(len(rows))), "data": rows}}


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
