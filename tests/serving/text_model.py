"""A real MLflow pyfunc text model for the scoring server tests, written to the text contract.

`KeywordModel` labels a text "fresh" or "rotten" from counts of a few keywords among its
first `max_length` words (the model's own truncation, as a tokenizer's would be), with
probability (1 + hits of the label) / (2 + all hits). Its monitoring columns follow the
contract: `tokens` (words before truncation), `oov_rate` (share of words outside a small
vocabulary), `emb_0..emb_{k-1}` (share of words hashed to each of k buckets: crc32, so
every process agrees). `delay_s` makes each model call slow, so concurrent requests queue
and get batched.

Its `predict` answers a DataFrame[label, probability], so `mlflow models serve` answers what
the scoring server does. No torch: these tests stay light. The metadata is written inline
(not through `mlops_core`): the scoring server reads the MLmodel file, nothing else.

The class is pickled by reference (`tests.serving.text_model.KeywordModel`), so a process
that loads the model needs the repository root on `sys.path`: `python -m serving` run
from the root has it, `mlflow models serve` gets it through `PYTHONPATH`.
"""

from __future__ import annotations

import re
import time
import unicodedata
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

POSITIVE = frozenset({"good", "great", "brilliant", "moving", "fun", "charming"})
NEGATIVE = frozenset({"bad", "dull", "boring", "terrible", "mess", "tedious"})
VOCABULARY = POSITIVE | NEGATIVE | {"the", "a", "movie", "film", "is", "and", "but", "it", "plot"}
_WORD = re.compile(r"\w+")
NO_EXAMPLE = ".*An input example was not provided"  # after an ANSI colour code


def words(text: str) -> list[str]:
    """NFKC, lowercase, whitespace collapsed (the contract's normalisation), then \\w+ words."""
    return _WORD.findall(" ".join(unicodedata.normalize("NFKC", text).lower().split()))


class KeywordModel(PythonModel):
    """Labels texts fresh or rotten by keyword counts; reports the contract's monitoring columns."""

    classes = ["fresh", "rotten"]

    def __init__(self, max_length: int, embedding_dims: int, delay_s: float = 0.0) -> None:
        self.max_length = max_length
        self.embedding_dims = embedding_dims
        self.delay_s = delay_s

    def predict_proba_texts(self, texts: list[str]) -> np.ndarray:
        proba = np.empty((len(texts), 2))
        for i, text in enumerate(texts):
            kept = words(text)[: self.max_length]
            good = sum(w in POSITIVE for w in kept)
            bad = sum(w in NEGATIVE for w in kept)
            proba[i, 0] = (1 + good) / (2 + good + bad)
            proba[i, 1] = 1 - proba[i, 0]
        return proba

    def predict_texts(self, texts: list[str]) -> list[dict[str, Any]]:
        return [
            {"label": self.classes[int(row.argmax())], "probability": round(float(row.max()), 6)}
            for row in self.predict_proba_texts(texts)
        ]

    def score_texts(self, texts: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        if self.delay_s:
            time.sleep(self.delay_s)
        k = self.embedding_dims
        monitor: dict[str, Any] = {"tokens": [], "oov_rate": []}
        buckets = np.zeros((len(texts), k))
        for i, text in enumerate(texts):
            found = words(text)
            monitor["tokens"].append(len(found))
            unknown = sum(w not in VOCABULARY for w in found)
            monitor["oov_rate"].append(unknown / len(found) if found else 0.0)
            for word in found:
                buckets[i, zlib.crc32(word.encode()) % k] += 1 / len(found)
        for j in range(k):
            monitor[f"emb_{j}"] = buckets[:, j]  # numpy, as a real model's projection is
        return self.predict_texts(texts), monitor

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        answers = self.predict_texts([str(t) for t in model_input["text"]])
        return pd.DataFrame(answers, columns=["label", "probability"])


def log_text_models(directory: Path, models: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """Log each model (name -> `KeywordModel` settings and limits) with `mlflow.pyfunc.log_model`
    to a throwaway tracking store under `directory`, as training logs text models; returns
    the local model directories the server loads (downloaded to `directory/<name>`)."""
    import mlflow

    uri = f"sqlite:///{directory}/mlflow.db"
    experiment = mlflow.MlflowClient(uri).create_experiment("texts", str(directory / "art"))
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with warnings.catch_warnings(), mlflow.start_run(experiment_id=experiment):
            warnings.filterwarnings("ignore", NO_EXAMPLE)  # the signature is written explicitly
            warnings.filterwarnings("ignore", "The ``noload`` loader")  # mlflow's sqlalchemy use
            return {
                name: _log(name, directory / name, **settings) for name, settings in models.items()
            }
    finally:
        mlflow.set_tracking_uri(previous)


def _log(
    name: str,
    destination: Path,
    max_chars: int = 64,
    max_length: int = 16,
    max_texts: int = 8,
    embedding_dims: int = 4,
    delay_s: float = 0.0,
) -> Path:
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    info = mlflow.pyfunc.log_model(
        name=name,
        python_model=KeywordModel(max_length, embedding_dims, delay_s),
        signature=ModelSignature(
            inputs=Schema([ColSpec("string", "text")]),
            outputs=Schema([ColSpec("string", "label"), ColSpec("double", "probability")]),
        ),
        metadata={
            "mlops_input": "text",
            "task": "classification",
            "max_chars": max_chars,
            "max_length": max_length,
            "max_texts": max_texts,
            "embedding_dims": embedding_dims,
        },
        pip_requirements=["mlflow", "numpy", "pandas"],  # no inference subprocess
    )
    destination.mkdir(parents=True)
    return Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(destination)))
