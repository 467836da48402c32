"""The NLP classifier's scoring functions for the generic stages, no Dagster or MLflow import.

Batches are DataFrames of review snippets (`text`) with ids (`text_id`) and, for
training sets, the sentiment (`label`: fresh or rotten). The model is the
unwrapped pyfunc (`mlops_core.text_models.TextClassifier`, either family), so
the gates, the staging smoke test and the batch endpoint score exactly what the
scoring server serves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from mlops_core.text_models import TextClassifier

# Numbers only (the training config carries floats); the family comes as params["family"].
# BERT from scratch: 5e-4 with warm-up; 2e-3 collapsed to the majority class, 1e-3 is near
# that edge for no better accuracy (5,000 snippets, 2 epochs, seeds 0 and 1).
BERT_PARAMS: dict[str, float] = {
    "epochs": 2, "batch_size": 32, "learning_rate": 0.0005, "max_length": 64, "vocab_size": 8000,
}  # fmt: skip
TFIDF_PARAMS: dict[str, float] = {"C": 4.0, "max_words": 256}
"""TF-IDF reads at most `max_words` words (its max_length); BERT `max_length` word pieces."""
COMMON_PARAMS: dict[str, float] = {"embedding_dims": 8, "seed": 0}
DEFAULT_PARAMS: dict[str, float] = {**COMMON_PARAMS, **BERT_PARAMS}
FAMILY_PARAMS = {"bert": BERT_PARAMS, "tfidf": TFIDF_PARAMS}
EXTRA_PARAMS = ("family", "pretrained")
"""Non-numeric params: the family, and for BERT a local checkpoint folder to fine-tune."""


def family_params(params: dict[str, Any]) -> dict[str, Any]:
    """The params a family trains with: its defaults, then the given values that apply to it.

    The shared defaults hold BERT's numbers, so a TF-IDF run drops those (they would be
    logged but mean nothing); a name no family knows is an error, not silently ignored.
    """
    family = str(params.get("family") or "bert")
    if family not in FAMILY_PARAMS:
        raise ValueError(f"unknown model family {family!r}; choose one of {list(FAMILY_PARAMS)}")
    known = {*COMMON_PARAMS, *BERT_PARAMS, *TFIDF_PARAMS, *EXTRA_PARAMS}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown hyperparameters {unknown}; known: {sorted(known)}")
    own = {*COMMON_PARAMS, *FAMILY_PARAMS[family], *EXTRA_PARAMS}
    if family != "bert" and params.get("pretrained"):
        raise ValueError("`pretrained` applies to the bert family only")
    merged = {**COMMON_PARAMS, **FAMILY_PARAMS[family]}
    merged.update({k: v for k, v in params.items() if k in own and v not in (None, "")})
    return {**merged, "family": family}


def texts(frame: pd.DataFrame) -> list[str]:
    return [str(t) for t in frame["text"]]


def load_model(path: str) -> TextClassifier:
    import mlflow.pyfunc

    # the requirements were checked against the allowlist at staging; MLflow's own check
    # scans every installed package (seconds per load, once per batch worker)
    return mlflow.pyfunc.load_model(path, suppress_warnings=True).unwrap_python_model()


def request_frame(holdout: pd.DataFrame) -> pd.DataFrame:
    """What a client sends: the `text` column only."""
    import pandas as pd

    return pd.DataFrame({"text": texts(holdout)})


def predict(model: TextClassifier, frame: pd.DataFrame) -> list:
    """Per text {label, probability}, as the scoring server answers a request."""
    return model.predict_texts(texts(frame))


def batch_predict(model: TextClassifier, frame: pd.DataFrame) -> pd.DataFrame:
    rows = model.predict_texts(texts(frame))
    out = frame[["text_id"]].copy()
    out["label"] = [r["label"] for r in rows]
    out["probability"] = [r["probability"] for r in rows]
    return out


def score(model: TextClassifier, frame: pd.DataFrame) -> dict[str, float]:
    """Holdout accuracy, macro F1 and log loss; accuracy is what the gates compare."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    proba = model.predict_proba_texts(texts(frame))
    index = {c: i for i, c in enumerate(model.classes)}
    y = np.array([index[c] for c in frame["label"]])
    pred = proba.argmax(axis=1)
    clipped = np.clip(proba, 1e-7, 1)
    clipped /= clipped.sum(axis=1, keepdims=True)  # rows still sum to one after the clip
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        "log_loss": float(log_loss(y, clipped, labels=range(len(model.classes)))),
    }


def performance(predictions: list, labels: list) -> dict[str, float]:
    """Accuracy and per-class recall on newly labeled production texts."""
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
