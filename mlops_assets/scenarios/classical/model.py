"""The classical model and its metrics, with no Dagster or MLflow import.

A scikit-learn pipeline: categorical columns ordinal-encoded (unknown carriers
or airports map to -1) into a HistGradientBoostingClassifier that treats them
as categories. Training, evaluation and serving all go through these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from mlops_assets.scenarios.classical.features import (
    CATEGORICAL,
    FEATURES,
    IDS,
    LABEL,
    NUMERIC,
)

if TYPE_CHECKING:  # scikit-learn and pandas load in the steps that train or score, not at import
    import pandas as pd
    from sklearn.pipeline import Pipeline

DEFAULT_PARAMS: dict[str, float] = {
    "learning_rate": 0.05,
    "max_iter": 100,
    "max_leaf_nodes": 31,
    "max_depth": 0,  # 0 means unlimited (None)
    "l2_regularization": 0.0,
}
# skops refuses to load types it cannot audit. These are reviewed: sklearn's own
# tree nodes, and the partial(check_array) that ColumnTransformer's passthrough holds.
SKOPS_TRUSTED_TYPES = [
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "functools.partial",
    "sklearn.utils.validation.check_array",
]


def pip_requirements() -> list[str]:
    """What the model needs at scoring time, pinned; MLflow's inference would add whatever
    the training process happened to import (pytest, rich...), which the allowlist refuses."""
    from importlib.metadata import version

    return [
        f"{pkg}=={version(pkg)}" for pkg in ("scikit-learn", "numpy", "pandas", "scipy", "skops")
    ]


def build_pipeline(params: Mapping[str, float]) -> Pipeline:
    unknown = set(params) - set(DEFAULT_PARAMS)
    if unknown:
        raise ValueError(
            f"unknown hyperparameters {sorted(unknown)}; known: {sorted(DEFAULT_PARAMS)}"
        )
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    p = {**DEFAULT_PARAMS, **params}
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
    )
    columns = ColumnTransformer(
        [("cat", encoder, CATEGORICAL), ("num", "passthrough", NUMERIC)],
        verbose_feature_names_out=False,
    )
    model = HistGradientBoostingClassifier(
        learning_rate=float(p["learning_rate"]),
        max_iter=int(p["max_iter"]),
        max_leaf_nodes=int(p["max_leaf_nodes"]),
        max_depth=int(p["max_depth"]) or None,
        l2_regularization=float(p["l2_regularization"]),
        categorical_features=list(range(len(CATEGORICAL))),
        early_stopping=False,
        random_state=42,
    )
    return Pipeline([("columns", columns), ("model", model)])


def late_probability(model, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(frame[FEATURES])[:, 1]


def predict(model, frame: pd.DataFrame) -> list:
    """Class labels, as the scoring server returns them for this model."""
    return model.predict(frame[FEATURES]).tolist()


def request_frame(holdout: pd.DataFrame) -> pd.DataFrame:
    """What a client sends: the feature columns only."""
    return holdout[FEATURES].reset_index(drop=True)


def batch_predict(model, frame: pd.DataFrame) -> pd.DataFrame:
    """Late probability and label for every scheduled flight, in one vectorized call."""
    proba = late_probability(model, frame)
    out = frame[[c for c in IDS if c in frame.columns]].copy()
    out["late_probability"] = proba
    out["late_predicted"] = (proba >= 0.5).astype("int8")
    return out


def score(model, frame: pd.DataFrame) -> dict[str, float]:
    """Holdout metrics as fractions; roc_auc is the one the gates compare."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    y = frame[LABEL].to_numpy()
    proba = late_probability(model, frame)
    pred = (proba >= 0.5).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, proba)),
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "log_loss": float(log_loss(y, np.clip(proba, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "late_rate": float(y.mean()),
    }


def performance(predictions: list, labels: list) -> dict[str, float]:
    """Production metrics from served labels (the server returns classes, not scores)."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    y, pred = np.asarray(labels, dtype=int), np.asarray(predictions, dtype=int)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "late_rate": float(y.mean()),
    }


def score_slices(model, frame: pd.DataFrame, column: str) -> dict[str, float]:
    """ROC AUC per value of `column`; segments with one class only are skipped."""
    from sklearn.metrics import roc_auc_score

    proba = late_probability(model, frame)
    out: dict[str, float] = {}
    for value, idx in frame.groupby(column).indices.items():
        y = frame[LABEL].to_numpy()[idx]
        if len(np.unique(y)) == 2:
            out[str(value)] = float(roc_auc_score(y, proba[idx]))
    return out


def load_model(path: str):
    """Load a model folder saved by MLflow's sklearn flavor."""
    import mlflow.sklearn

    return mlflow.sklearn.load_model(path)
