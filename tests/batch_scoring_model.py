"""A tiny scenario for batch-pool tests: synthetic days, a logistic regression, faults on demand.

Module-level functions only, so worker processes (forkserver or spawn) can
import them by reference. Faults are part of the model folder (`faults.json`),
not of the environment: forkserver workers do not see environment changes made
after the server started.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

FEATURES = ["x1", "x2", "x3"]


def input_path(day: str) -> str:
    return f"inputs/{day}.parquet"


def write_days(lake: Any, days: list[str], seed: int = 7) -> None:
    """One parquet file per day, of different sizes, with an id per row."""
    rng = np.random.default_rng(seed)
    for i, day in enumerate(days):
        n = 50 + 37 * i
        frame = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
        frame.insert(0, "id", np.arange(n, dtype="int64") + 1000 * i)
        frame.insert(1, "day", day)
        lake.write_parquet(input_path(day), frame)


def save_model(model_dir: Path, faults: dict[str, str] | None = None) -> str:
    """Fit and save the model; `faults` = {"day", "mode", "marker"} makes it misbehave."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(FEATURES)))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression().fit(x, y), model_dir / "model.joblib")
    if faults:
        (model_dir / "faults.json").write_text(json.dumps(faults))
    return str(model_dir)


@dataclass
class TinyModel:
    estimator: LogisticRegression
    faults: dict[str, str]


def load(model_dir: str) -> TinyModel:
    faults = Path(model_dir) / "faults.json"
    return TinyModel(
        joblib.load(Path(model_dir) / "model.joblib"),
        json.loads(faults.read_text()) if faults.exists() else {},
    )


def batch_items(lake: Any, day: str) -> pd.DataFrame:
    return lake.read_parquet(input_path(day))


def _misbehave(faults: dict[str, str]) -> None:
    """`exit_once`/`hang_once`: on the first attempt only (a marker file records it);
    `exit_always`: a worker that dies every time; `raise_always`: a Python error."""
    mode, marker = faults["mode"], Path(faults.get("marker", "/nonexistent"))
    if mode.endswith("_once"):
        if marker.exists():
            return
        marker.touch()
    if mode.startswith("exit"):
        os._exit(13)
    if mode.startswith("hang"):
        threading.Event().wait()  # until the pool's retry_timeout kills this worker
    raise ValueError(f"cannot score day {faults['day']}")


def batch_predict(model: TinyModel, frame: pd.DataFrame) -> pd.DataFrame:
    if model.faults and (frame["day"] == model.faults["day"]).any():
        _misbehave(model.faults)
    proba = model.estimator.predict_proba(frame[FEATURES].to_numpy())[:, 1]
    return pd.DataFrame({"id": frame["id"], "day": frame["day"], "score": proba})
