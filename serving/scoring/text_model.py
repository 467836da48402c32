"""Text models behind the scoring server: the MLmodel contract, request checks and the log.

The contract a model author writes to (docs/serving-clients.md, "Texts"):
- an MLflow pyfunc (`python_function` flavor, a `PythonModel`) whose signature inputs
  are one column `text` of MLflow type `string`;
- MLmodel `metadata` (`mlflow.pyfunc.log_model(..., metadata=...)`): `mlops_input: text`,
  `task: classification`, `max_length` (tokens; the model truncates), and optionally
  `max_chars` (default 2000), `max_texts` (default 256) and `embedding_dims` (default 8);
- the unwrapped python model has `score_texts(texts)` -> (one `{"label", "probability"}`
  per text, `{"tokens": [...], "oov_rate": [...], "emb_0": [...], ...}` one value per text).

Design constraints:
- The server truncates each text to `max_chars` characters (Unicode code points) before
  the model sees it, so one request's model work is bounded by `max_texts * max_chars`
  whatever the body holds; the inference log keeps the truncated text and the length
  as sent (`chars`), so monitoring sees how long texts really were.
- Per-text Python work is fine here (a type check, a length and a slice per text):
  it is bounded by `max_texts` and the body cap, and the count is checked first.
- A client gets only the answers; the monitoring columns come from the same model call
  and go to the inference log only. `ServedModel.predict` returns one (answer, monitoring
  values) pair per text, so cross-request batching merges and splits them like any row,
  and `split_scores` separates them again per request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.scoring.errors import InputError
from serving.scoring.parsing import Table, json_type
from serving.scoring.schema import InputSchema

TEXT_INPUT = "text"
TASKS = ("classification",)
DEFAULTS = {"max_chars": 2000, "max_texts": 256, "embedding_dims": 8}
STAT_COLUMNS = ("tokens", "oov_rate")  # then emb_0 .. emb_{k-1}
ScoreTexts = Callable[[list[str]], tuple[Sequence[Any], Mapping[str, Sequence[Any]]]]
Scored = tuple[Any, tuple[Any, ...]]  # (answer, monitoring values) for one text
_SCALARS = frozenset({str, int, float, bool})


def _positive_int(metadata: Mapping[str, Any], key: str) -> int:
    value = metadata.get(key, DEFAULTS.get(key))
    if type(value) is not int or value <= 0:  # bool is an int subclass: refused too
        raise ValueError(f"MLmodel metadata '{key}' must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class TextSpec:
    """What a text model takes: one string column, truncated and counted by these limits."""

    column: str
    max_chars: int
    max_length: int
    max_texts: int
    embedding_dims: int
    task: str

    @property
    def monitor_columns(self) -> tuple[str, ...]:
        """The columns `score_texts` returns for the inference log, in log order."""
        return (*STAT_COLUMNS, *(f"emb_{i}" for i in range(self.embedding_dims)))

    @classmethod
    def from_mlmodel(cls, meta: Mapping[str, Any], schema: InputSchema) -> TextSpec | None:
        """The text input an MLmodel declares: None if not a text model, ValueError if malformed."""
        metadata = meta.get("metadata")
        if not isinstance(metadata, dict) or metadata.get("mlops_input") != TEXT_INPUT:
            return None
        columns = schema.columns
        if len(columns) != 1 or columns[0].type != "string":
            raise ValueError(
                f"a text model's signature takes one string column '{TEXT_INPUT}', "
                f"not {schema.to_dict()}"
            )
        if metadata.get("task") not in TASKS:
            raise ValueError(f"MLmodel metadata 'task' must be one of {list(TASKS)}")
        return cls(
            columns[0].name,
            _positive_int(metadata, "max_chars"),
            _positive_int(metadata, "max_length"),
            _positive_int(metadata, "max_texts"),
            _positive_int(metadata, "embedding_dims"),
            metadata["task"],
        )

    def describe(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "max_chars": self.max_chars,
            "max_length": self.max_length,
            "max_texts": self.max_texts,
            "embedding_dims": self.embedding_dims,
            "task": self.task,
        }

    def check_count(self, nrows: int) -> None:
        if nrows > self.max_texts:
            raise InputError(
                "too_many_texts",
                f"{nrows} texts in one request; this model takes at most {self.max_texts} "
                "per request",
            )

    def cells(self, table: Table) -> Sequence[Any]:
        """The request's text cells, after the count and column checks (InputError)."""
        self.check_count(table.nrows)  # before any per-text work
        if table.columns == [self.column]:
            return table.values[0]
        takes = f"the model takes ['{self.column}']"
        extra = [c for c in table.columns if c != self.column]
        if extra:
            raise InputError("unexpected_column", f"unexpected column(s) {extra}; {takes}")
        raise InputError("missing_column", f"missing required column(s) ['{self.column}']; {takes}")


@dataclass(slots=True)
class TextBatch:
    """One request's texts: truncated for the model, with their lengths as sent."""

    spec: TextSpec  # what they were checked and truncated for
    texts: list[str]  # each at most spec.max_chars characters
    chars: list[int]  # each text's length as sent, before truncation

    @property
    def array(self) -> np.ndarray:
        """The texts as the batcher's column (an object array, concatenated across requests)."""
        array = np.empty(len(self.texts), dtype=object)
        array[:] = self.texts
        return array

    def log(self, monitor: Sequence[Sequence[Any]] | None) -> dict[str, Any]:
        """The inference log's `inputs`; monitoring values are null when the model failed."""
        spec = self.spec
        if monitor is None:
            monitor = [(None,) * len(spec.monitor_columns)] * len(self.texts)
        data = [
            [text, chars, *values]
            for text, chars, values in zip(self.texts, self.chars, monitor, strict=True)
        ]
        return {"columns": [spec.column, "chars", *spec.monitor_columns], "data": data}


def _bad_cell(spec: TextSpec, row: int, value: Any) -> InputError:
    if value is None:
        return InputError(
            "null_value", f"column '{spec.column}' row {row} is null; send a string (may be empty)"
        )
    # Only scalars are quoted (an array may be nested deep); ASCII-escaped, cut short.
    shown = json.dumps(value)[:40] if type(value) in _SCALARS else f"of length {len(value)}"
    return InputError(
        "invalid_text",
        f"column '{spec.column}' expects a string; row {row} has {json_type(value)} {shown}",
    )


def decode_texts(spec: TextSpec, cells: Sequence[Any]) -> TextBatch:
    """Check that every cell is a string and truncate each to `max_chars` (InputError per row)."""
    spec.check_count(len(cells))
    if not set(map(type, cells)) <= {str}:
        row = next(i for i, cell in enumerate(cells) if type(cell) is not str)
        raise _bad_cell(spec, row, cells[row])
    limit = spec.max_chars
    chars = list(map(len, cells))
    texts = [text if n <= limit else text[:limit] for text, n in zip(cells, chars, strict=True)]
    return TextBatch(spec, texts, chars)


def score_rows(spec: TextSpec, score_texts: ScoreTexts, texts: list[str]) -> list[Scored]:
    """One model call: (answer, monitoring values in `spec.monitor_columns` order) per text.

    Raises ValueError when the model breaks the contract (a 500: the input was valid)."""
    answers, monitor = score_texts(texts)
    answers = list(answers)
    if len(answers) != len(texts):
        raise ValueError(f"score_texts returned {len(answers)} answers for {len(texts)} texts")
    if not isinstance(monitor, Mapping):
        raise ValueError(f"score_texts returned {type(monitor).__name__}, not a dict of columns")
    missing = [name for name in spec.monitor_columns if name not in monitor]
    if missing:
        raise ValueError(f"score_texts returned no monitoring column(s) {missing}")
    columns = []
    for name in spec.monitor_columns:
        values = np.asarray(monitor[name]).tolist()  # plain Python numbers for the log
        if not isinstance(values, list) or len(values) != len(texts):
            raise ValueError(f"score_texts column '{name}' does not hold one value per text")
        columns.append(values)
    return list(zip(answers, zip(*columns, strict=True), strict=True))


def split_scores(rows: Sequence[Scored]) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """One request's scored rows as (the client's answers, the log's monitoring values)."""
    return [answer for answer, _ in rows], [values for _, values in rows]


def load_text_predictor(path: Path) -> ScoreTexts:
    """The `score_texts` of the pyfunc at `path` (its module imports torch, if it uses it)."""
    import mlflow.pyfunc

    # suppress_warnings skips MLflow's scan of every installed package against the model's
    # requirements (seconds per start); staging checked them against the allowlist
    model = mlflow.pyfunc.load_model(str(path), suppress_warnings=True).unwrap_python_model()
    score = getattr(model, "score_texts", None)
    if not callable(score):
        raise TypeError(
            f"{type(model).__name__} has no score_texts(texts); "
            "a text model must provide it (docs/serving-clients.md, Texts)"
        )
    return score
