"""The training reference as a compact, JSON-serializable profile for `drift.detect_drift`.

Purpose: `build_reference` summarises the training frame once (per column: what Evidently's
default tests need), so drift checks never keep the training frame around; `ReferenceProfile`
round-trips through JSON (`to_json` / `from_json`, arrays zlib-compressed and base64-encoded).

Constraints: numpy and pandas only (no dagster, no evidently import). Category counts are always
exact. A numerical column is stored as its distinct values with counts (exact: scores equal
Evidently's to rounding) unless it has more than `sample_size` distinct values and > 1000 rows;
then it is stored as `sample_size` evenly spaced order statistics (a deterministic sample), with
the exact W1 distance from the full reference to that sample in `sample_error`. Only the
Wasserstein test can meet such a column, and by the triangle inequality its score moves by at
most `sample_error / std` (`ColumnDrift.max_score_error`, typically ~1e-3 at the default 10,000
values); `DriftReport.uncertain_columns` lists verdicts within that margin of the threshold.
Changing the JSON layout means bumping `PROFILE_FORMAT`: stored profiles of another format are
refused rather than misread.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlops_core.monitoring.drift_rules import (
    SMALL_REFERENCE_ROWS,
    category_counts,
    default_stattest,
    finite_values,
    require_columns,
    wasserstein_w1,
)

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

DEFAULT_SAMPLE_SIZE = 10_000
MIN_SAMPLE_SIZE = 100
PROFILE_FORMAT = 1


@dataclass
class ColumnProfile:
    """What the tests need from one reference column (NaN and +-inf rows dropped)."""

    name: str
    kind: str  # "numerical" or "categorical"
    n_reference: int
    values: np.ndarray  # numerical: sorted distinct floats (or sample); categorical: categories
    counts: np.ndarray  # int64 weight of each value
    n_distinct: int = 0  # distinct reference values (full reference, not the sample)
    std: float | None = None  # np.std of the full reference (numerical only)
    exact: bool = True  # values/counts are the whole reference distribution
    sample_error: float = 0.0  # W1(full reference, stored sample), column units
    stattest: str = ""  # the default test implied by the reference alone

    def to_json_dict(self) -> dict:
        keys = ("name", "kind", "n_reference", "n_distinct", "std", "exact", "sample_error")
        out = {k: getattr(self, k) for k in (*keys, "stattest")}
        out["counts"] = _pack(self.counts)
        out["values"] = _pack(self.values) if self.kind == "numerical" else _plain(self.values)
        return out

    @classmethod
    def from_json_dict(cls, raw: dict) -> ColumnProfile:
        values = raw["values"]
        values = _unpack(values) if raw["kind"] == "numerical" else np.asarray(values, dtype=object)
        return cls(**{**raw, "values": values, "counts": _unpack(raw["counts"])})


@dataclass
class ReferenceProfile:
    columns: dict[str, ColumnProfile]
    n_rows: int
    sample_size: int

    def to_json(self) -> str:
        cols = [c.to_json_dict() for c in self.columns.values()]
        meta = {"format": PROFILE_FORMAT, "n_rows": self.n_rows, "sample_size": self.sample_size}
        return json.dumps({**meta, "columns": cols}, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        raw = json.loads(text)
        if raw.get("format") != PROFILE_FORMAT:
            raise ValueError(f"unsupported reference profile format: {raw.get('format')!r}")
        columns = [ColumnProfile.from_json_dict(c) for c in raw["columns"]]
        return cls({c.name: c for c in columns}, raw["n_rows"], raw["sample_size"])


def _pack(array: np.ndarray) -> dict:
    data = base64.b64encode(zlib.compress(np.ascontiguousarray(array).tobytes(), 6))
    return {"dtype": array.dtype.str, "data": data.decode("ascii")}


def _plain(values: np.ndarray) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _unpack(packed: dict) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(packed["data"]))
    return np.frombuffer(raw, dtype=np.dtype(packed["dtype"])).copy()


def build_reference(
    frame: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> ReferenceProfile:
    """Summarise the training reference once; `detect_drift` then needs only this profile."""
    if sample_size < MIN_SAMPLE_SIZE:
        raise ValueError(f"sample_size must be >= {MIN_SAMPLE_SIZE}, got {sample_size}")
    if set(numerical) & set(categorical):
        raise ValueError(f"columns declared twice: {sorted(set(numerical) & set(categorical))}")
    require_columns(frame, [*numerical, *categorical], "reference")
    cols = [_numerical_profile(frame[c], sample_size) for c in numerical]
    cols += [_categorical_profile(frame[c]) for c in categorical]
    return ReferenceProfile({c.name: c for c in cols}, len(frame), sample_size)


def _numerical_profile(series: pd.Series, sample_size: int) -> ColumnProfile:
    ordered = np.sort(finite_values(series, "reference"))
    values, counts = _distinct(ordered)
    col = ColumnProfile(str(series.name), "numerical", ordered.size, values, counts, values.size)
    col.std = float(np.std(ordered))
    col.stattest = default_stattest("numerical", ordered.size, values.size)
    if values.size > sample_size and ordered.size > SMALL_REFERENCE_ROWS:  # K-S stays exact
        ranks = ((np.arange(sample_size) + 0.5) * (ordered.size / sample_size)).astype(np.int64)
        col.values, col.counts = _distinct(ordered[ranks])
        col.exact = False
        col.sample_error = wasserstein_w1(col.values, col.counts, ordered)
    return col


def _categorical_profile(series: pd.Series) -> ColumnProfile:
    counts = category_counts(series, "reference")
    n = int(counts.sum())
    values = np.asarray(counts.index, dtype=object)
    col = ColumnProfile(str(series.name), "categorical", n, values, counts.to_numpy(), values.size)
    col.stattest = default_stattest("categorical", n, values.size)
    return col


def _distinct(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    return ordered[starts], np.diff(np.append(starts, ordered.size)).astype(np.int64)
