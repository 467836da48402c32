"""The vision classifier's scoring functions for the generic stages, no Dagster or MLflow import.

Batches are DataFrames of images as PNG bytes (`png`) with ids and, for
training sets, the class name (`label`). The model is the unwrapped pyfunc
(`mlops_core.image_models.ImageClassifier`), so the gates, the staging smoke
test and the batch endpoint score exactly what the scoring server serves.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from mlops_core.image_models import ImageClassifier

DEFAULT_PARAMS: dict[str, float] = {"epochs": 3, "batch_size": 64, "learning_rate": 0.001}


def pixels(frame: pd.DataFrame, model: ImageClassifier | None = None) -> np.ndarray:
    """The model input of a frame's PNG bytes (28x28 grey unless the model says otherwise)."""
    from serving.scoring.images import load_pixels

    size, mode = (model.size, model.mode) if model is not None else ((28, 28), "L")
    if frame.empty:
        return np.zeros((0, *size), dtype=np.float32)
    return np.stack([load_pixels(p, size, mode) for p in frame["png"]])


def load_model(path: str) -> ImageClassifier:
    import mlflow.pyfunc

    # the requirements were checked against the allowlist at staging; MLflow's own check
    # scans every installed package (seconds per load, once per batch worker)
    return mlflow.pyfunc.load_model(path, suppress_warnings=True).unwrap_python_model()


def request_frame(holdout: pd.DataFrame) -> pd.DataFrame:
    """What a client sends: the `image` column, base64 PNG (JSON carries bytes as text)."""
    import pandas as pd

    return pd.DataFrame({"image": [base64.b64encode(p).decode() for p in holdout["png"]]})


def predict(model: ImageClassifier, frame: pd.DataFrame) -> list:
    """Per image {label, probability}, as the scoring server answers a request."""
    if "png" not in frame.columns:  # a request frame (base64) as the codec built it
        return model.predict_pixels(model.decode(list(frame["image"])))
    return model.predict_pixels(pixels(frame, model))


def batch_predict(model: ImageClassifier, frame: pd.DataFrame) -> pd.DataFrame:
    rows = model.predict_pixels(pixels(frame, model))
    out = frame[["image_id", "digest"]].copy()
    out["label"] = [r["label"] for r in rows]
    out["probability"] = [r["probability"] for r in rows]
    return out


def score(model: ImageClassifier, frame: pd.DataFrame) -> dict[str, float]:
    """Holdout accuracy, macro F1 and log loss; accuracy is what the gates compare."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    proba = model.predict_proba_pixels(pixels(frame, model))
    index = {c: i for i, c in enumerate(model.classes)}
    y = np.array([index[c] for c in frame["label"]])
    pred = proba.argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        "log_loss": float(log_loss(y, np.clip(proba, 1e-7, 1), labels=range(len(model.classes)))),
    }


def performance(predictions: list, labels: list) -> dict[str, float]:
    """Accuracy and per-class recall on newly labeled production images."""
    predicted = [p["label"] if isinstance(p, dict) else p for p in predictions]
    y, pred = np.asarray(labels, dtype=object), np.asarray(predicted, dtype=object)
    out = {"accuracy": float((y == pred).mean()) if len(y) else float("nan")}
    for cls in sorted(set(y.tolist())):
        mask = y == cls
        out[f"recall_{cls}"] = float((pred[mask] == cls).mean())
    return out


def uncertainty(logged: pd.DataFrame) -> Any:
    """Least confidence: 1 - the served label's probability (higher: more worth labeling)."""
    return 1.0 - logged["confidence"].astype(float).to_numpy()
