"""Load a local MLflow model directory and predict on validated columns.

Framework-free: training and batch-scoring code can use `ServedModel` to score
exactly the way the online endpoint does.

Design constraints:
- The MLmodel YAML is read directly for the signature and flavor settings, so a
  request is checked by `InputSchema` (cheap) instead of pyfunc's schema
  enforcement (milliseconds per call).
- sklearn-flavor models are loaded with `mlflow.sklearn.load_model` (skops trusted
  types come from the MLmodel file) and called through the flavor's `predict_fn`
  directly; other flavors fall back to `mlflow.pyfunc` and its own checks.
- mlflow is imported lazily, so importing this module stays cheap.
- `predict_arrays` scores several requests in one model call (one DataFrame for
  the batch) and splits the predictions back per request.
- Outputs: `predictions` (the flavor's predict function) or, for classifiers whose
  model has `predict_proba`, `probabilities`: each row as (label, {class: probability}),
  the label from the same predict function so the inference log keeps what `predict`
  says; classes are the model's `classes_` as strings (JSON object keys).
- Image models (MLmodel metadata `mlops_input: image`, `serving.scoring.image_model`)
  are pyfuncs called through `predict_pixels`: `decode_images` turns a request's
  table into pixels (off the event loop), and those arrays are batched like columns.
- Text models (`mlops_input: text`, `serving.scoring.text_model`) are pyfuncs called
  through `score_texts`: `decode_texts` checks and truncates a request's texts; `predict`
  answers one (answer, monitoring values) pair per text, so batched requests are merged
  and split back like any rows, and the handler keeps the monitoring values for the log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from serving.scoring.image_model import ImageBatch, ImageSpec, decode_images, load_pixel_predictor
from serving.scoring.parsing import Table
from serving.scoring.schema import InputSchema
from serving.scoring.text_model import (
    TextBatch,
    TextSpec,
    decode_texts,
    load_text_predictor,
    score_rows,
)

Arrays = dict[str, np.ndarray]
Frame = Callable[[pd.DataFrame], Any]
PREDICTIONS, PROBABILITIES = "predictions", "probabilities"
OUTPUTS = (PREDICTIONS, PROBABILITIES)


class ModelLoadError(RuntimeError):
    """The model directory is missing, unreadable or not servable."""


def read_mlmodel(path: str | Path) -> dict[str, Any]:
    """The parsed MLmodel file of a local model directory."""
    mlmodel = Path(path) / "MLmodel"
    try:
        meta = yaml.safe_load(mlmodel.read_text())
    except OSError as exc:
        raise ModelLoadError(f"cannot read {mlmodel}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ModelLoadError(f"{mlmodel} is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("flavors"), dict):
        raise ModelLoadError(f"{mlmodel} has no 'flavors' section")
    return meta


def to_rows(raw: Any, nrows: int) -> list[Any]:
    """A model's output as one JSON-able entry per input row (MLflow's 'records' rules)."""
    if isinstance(raw, np.ndarray):
        out = raw.tolist()
    elif isinstance(raw, pd.DataFrame):
        out = raw.to_dict(orient="records")
    elif isinstance(raw, pd.Series):
        out = raw.tolist()
    elif isinstance(raw, list):
        out = raw
    else:
        raise TypeError(
            f"the model returned {type(raw).__name__}; the scoring server needs "
            "one prediction per row (array, list, Series or DataFrame)"
        )
    if len(out) != nrows:
        raise ValueError(f"the model returned {len(out)} predictions for {nrows} rows")
    return out


class ServedModel:
    """One loaded MLflow model, its input schema and its predict function."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        meta = read_mlmodel(self.path)
        signature = (meta.get("signature") or {}).get("inputs")
        if not signature:
            raise ModelLoadError(
                f"{self.path} has no input signature; the scoring server "
                "validates every request against one"
            )
        try:
            self.schema = InputSchema.from_signature_json(signature)
            self.image = ImageSpec.from_mlmodel(meta, self.schema)  # None: not an image model
            self.text = TextSpec.from_mlmodel(meta, self.schema)  # None: not a text model
        except ValueError as exc:
            raise ModelLoadError(f"{self.path}: {exc}") from exc
        flavors = meta["flavors"]
        pyfunc_conf = flavors.get("python_function") or {}
        tabular_sklearn = "sklearn" in flavors and self.image is None and self.text is None
        self.flavor = "sklearn" if tabular_sklearn else "python_function"
        self.predict_fn = str(pyfunc_conf.get("predict_fn") or "predict")
        self.run_id: str | None = meta.get("run_id")
        self.model_uuid: str | None = meta.get("model_uuid")
        self._proba: Frame | None = None
        self.classes: list[str] = []
        self._predict = self._load()

    @property
    def probabilities(self) -> bool:
        """Whether the model can answer class probabilities."""
        return self._proba is not None

    def _load(self) -> Frame:
        try:
            if self.flavor == "sklearn":
                import mlflow.sklearn

                model = mlflow.sklearn.load_model(str(self.path))
                self._proba = getattr(model, "predict_proba", None)  # None: not a classifier
                self.classes = [str(c) for c in getattr(model, "classes_", [])]
                return getattr(model, self.predict_fn)
            if self.image is not None:
                self.predict_fn = "predict_pixels"
                return load_pixel_predictor(self.path)
            if self.text is not None:
                self.predict_fn = "score_texts"
                score = load_text_predictor(self.path)
                owner = getattr(score, "__self__", None)  # the unwrapped model: its `classes`
                self.classes = [str(c) for c in getattr(owner, "classes", [])]
                return score
            import mlflow.pyfunc

            return mlflow.pyfunc.load_model(str(self.path)).predict
        except Exception as exc:  # any loader failure means "not servable"
            raise ModelLoadError(f"cannot load {self.path}: {exc}") from exc

    def frame(self, arrays: Arrays) -> pd.DataFrame:
        """A DataFrame in signature order; columns are already typed numpy arrays."""
        return pd.DataFrame(arrays, columns=self.schema.names, copy=False)

    def _score(self, frame: pd.DataFrame, nrows: int, output: str) -> list[Any]:
        labels = to_rows(self._predict(frame), nrows)
        if output == PREDICTIONS:
            return labels
        if self._proba is None:
            raise ValueError("the model has no predict_proba")
        proba = np.asarray(self._proba(frame))
        if proba.ndim != 2 or len(proba) != nrows:
            raise ValueError(f"predict_proba returned shape {proba.shape} for {nrows} rows")
        keys = self.classes if len(self.classes) == proba.shape[1] else None
        keys = keys or [str(i) for i in range(proba.shape[1])]
        return [
            (label, dict(zip(keys, row, strict=True)))
            for label, row in zip(labels, proba.tolist(), strict=True)
        ]

    def decode_images(self, table: Table) -> ImageBatch:
        """An image model's request as pixels (CPU work: call it off the event loop)."""
        if self.image is None:
            raise TypeError(f"{self.path} is a tabular model; it takes columns, not images")
        self.image.check_count(table.nrows)  # before any base64 or image decoding
        cells = self.schema.to_arrays(table)[self.image.column]
        return decode_images(self.image, cells)

    def decode_texts(self, table: Table) -> TextBatch:
        """A text model's request as checked, truncated texts (cheap: runs inline)."""
        if self.text is None:
            raise TypeError(f"{self.path} is not a text model; it takes columns, not texts")
        return decode_texts(self.text, self.text.cells(table))

    def predict(self, arrays: Arrays, nrows: int, output: str = PREDICTIONS) -> list[Any]:
        """Predictions (or (label, probabilities) pairs) for one request's validated columns;
        for a text model, (answer, monitoring values) pairs (`text_model.split_scores`)."""
        if self.image is not None:  # arrays hold pixels: {column: [N, H, W(, 3)]}
            return to_rows(self._predict(arrays[self.image.column]), nrows)
        if self.text is not None:  # arrays hold the truncated texts: {column: object [N]}
            texts = list(arrays[self.text.column])
            return to_rows(score_rows(self.text, self._predict, texts), nrows)
        return self._score(self.frame(arrays), nrows, output)

    def predict_arrays(
        self, batch: Sequence[tuple[Arrays, int]], output: str = PREDICTIONS
    ) -> list[list[Any]]:
        """One model call for several requests; returns each request's predictions."""
        if len(batch) == 1:
            arrays, nrows = batch[0]
            return [self.predict(arrays, nrows, output)]
        merged = {
            name: np.concatenate([arrays[name] for arrays, _ in batch])
            for name in self.schema.names
        }
        total = sum(nrows for _, nrows in batch)
        rows = self.predict(merged, total, output)
        out, start = [], 0
        for _, nrows in batch:
            out.append(rows[start : start + nrows])
            start += nrows
        return out

    def describe(self) -> dict[str, Any]:
        described = {
            "path": str(self.path),
            "flavor": self.flavor,
            "predict_fn": self.predict_fn,
            "run_id": self.run_id,
            "model_uuid": self.model_uuid,
            "outputs": [PREDICTIONS, PROBABILITIES] if self.probabilities else [PREDICTIONS],
            "classes": self.classes,
            "inputs": self.schema.to_dict(),
        }
        if self.image is not None:  # what clients send: PNG/JPEG, converted to this
            described["input_kind"] = "image"
            described["image"] = self.image.describe()
        if self.text is not None:  # what clients send: strings, truncated to max_chars
            described["input_kind"] = "text"
            described["text"] = self.text.describe()
        return described
