"""Data and prediction drift with Evidently 0.7's default tests, from a stored reference profile.

Purpose: the verdicts of Evidently's `DataDriftPreset` (default methods, thresholds and
`drift_share`) without keeping the training frame around and without Evidently's per-report
overhead. `build_reference` summarises the training frame once; `detect_drift` tests a current
frame against that summary, vectorized with numpy (loops run over columns, never rows).
Prediction drift is the same call on the model-output column: a probability or score declared
numerical, a predicted label declared categorical.

Constraints: numpy, scipy and pandas only (no dagster, no evidently import), so the serving and
batch paths can use it. Every rule below is copied from evidently 0.7.23 (paths relative to
`evidently/legacy/calculations/`):
- test choice, `stattests/registry.py::_get_default_stattest`: reference rows <= 1000 ->
  numerical with > 5 distinct values: K-S; otherwise chi-square, or the proportion z-test when
  there are <= 2 distinct values. Reference rows > 1000 -> numerical with > 5 distinct values:
  normed Wasserstein; otherwise Jensen-Shannon. "Distinct values" counts reference and current
  together, so the final choice is made in `detect_drift`; the profile records the choice
  implied by the reference alone.
- thresholds and directions (`stattests/*.py`): K-S drifts when p <= 0.05; chi-square and z when
  p < 0.05; Jensen-Shannon (`jensenshannon.py`: value counts over the union of keys, no zero
  filling, natural log) and Wasserstein (`wasserstein_distance_norm.py`: divided by
  max(std of reference, 0.001)) when distance >= 0.1.
- cleaning, `data_drift.py::get_one_column_drift`: +-inf become NaN, NaN rows are dropped per
  column, an empty column raises, a numerical column must have a numeric dtype;
  `get_dataset_drift`: dataset drift when share of drifted columns >= drift_share (0.5).

Reference representation: category counts are always exact. A numerical column is stored as
its distinct values with counts (exact: scores equal Evidently's to rounding) unless it has more
than `sample_size` distinct values and > 1000 rows; then it is stored as `sample_size` evenly
spaced order statistics (a deterministic sample), with the exact W1 distance from the full
reference to that sample in `sample_error`. Only the Wasserstein test can meet such a column,
and by the triangle inequality its score moves by at most `sample_error / std`
(`ColumnDrift.max_score_error`, typically ~1e-3 at the default 10,000 values);
`DriftReport.uncertain_columns` lists verdicts within that margin of the threshold.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

SMALL_REFERENCE_ROWS = 1000  # registry.py: `reference_data.shape[0] <= 1000`
LOW_CARDINALITY = 5  # registry.py: a numerical column with n_values <= 5 is tested by counts
BINARY = 2  # registry.py: chi-square needs n_values > 2, else the z-test
DRIFT_SHARE = 0.5  # evidently/presets/drift.py: DataDriftPreset.drift_share
MIN_WASSERSTEIN_NORM = 0.001  # wasserstein_distance_norm.py: max(np.std(reference), 0.001)
DEFAULT_SAMPLE_SIZE = 10_000
MIN_SAMPLE_SIZE = 100
PROFILE_FORMAT = 1


@dataclass(frozen=True)
class StatTest:
    name: str
    display_name: str  # Evidently's StatTest.display_name, as its reports show it
    threshold: float
    score_kind: str  # "p_value" or "distance"

    def drifted(self, score: float) -> bool:
        if self.name == "ks":  # ks_stattest.py: `p_value <= threshold`
            return score <= self.threshold
        if self.score_kind == "p_value":
            return score < self.threshold
        return score >= self.threshold


STATTESTS: dict[str, StatTest] = {
    t.name: t
    for t in (
        StatTest("ks", "K-S p_value", 0.05, "p_value"),
        StatTest("chisquare", "chi-square p_value", 0.05, "p_value"),
        StatTest("z", "Z-test p_value", 0.05, "p_value"),
        StatTest("jensenshannon", "Jensen-Shannon distance", 0.1, "distance"),
        StatTest("wasserstein", "Wasserstein distance (normed)", 0.1, "distance"),
    )
}


def default_stattest(kind: str, n_reference: int, n_values: int) -> str:
    """Evidently's `_get_default_stattest` for a declared numerical or categorical column."""
    continuous = kind == "numerical" and n_values > LOW_CARDINALITY
    if n_reference <= SMALL_REFERENCE_ROWS:
        if continuous:
            return "ks"
        return "chisquare" if n_values > BINARY else "z"
    return "wasserstein" if continuous else "jensenshannon"


# -- report -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str
    stattest: str
    stattest_display_name: str
    score: float  # Evidently's drift_score: the p-value or the distance
    statistic: float  # K-S D, chi-square or z statistic; the distance itself for distances
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    max_score_error: float  # 0 with an exact reference; else the sample's worst-case effect


@dataclass(frozen=True)
class DriftReport:
    columns: tuple[ColumnDrift, ...]
    drift_share: float = DRIFT_SHARE

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def share_of_drifted_columns(self) -> float:
        return len(self.drifted_columns) / len(self.columns)

    @property
    def dataset_drift(self) -> bool:
        return self.share_of_drifted_columns >= self.drift_share

    @property
    def uncertain_columns(self) -> list[str]:
        """Columns whose verdict could flip if the full reference were used."""
        return [c.column for c in self.columns if abs(c.score - c.threshold) <= c.max_score_error]

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(f"no drift result for column '{name}'")

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([vars(c) for c in self.columns]).set_index("column")

    def to_dict(self) -> dict:
        return {
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "number_of_columns": len(self.columns),
            "number_of_drifted_columns": len(self.drifted_columns),
            "share_of_drifted_columns": self.share_of_drifted_columns,
            "columns": {c.column: dict(vars(c)) for c in self.columns},
        }


# -- reference profile --------------------------------------------------------------------------


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


# -- cleaning, as get_one_column_drift does it ----------------------------------------------------


def require_columns(frame: pd.DataFrame, columns: Iterable[str], side: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"columns missing from the {side} frame: {missing}")


def finite_values(series: pd.Series, side: str) -> np.ndarray:
    """A numerical column as float64 without NaN and +-inf."""
    if not pd.api.types.is_numeric_dtype(series):
        raise ValueError(f"column '{series.name}' in the {side} frame must be numeric")
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError(f"column '{series.name}' is empty in the {side} frame (after NaN drop)")
    return values


def category_counts(series: pd.Series, side: str) -> pd.Series:
    """Non-null value counts of a categorical column, keys as Python objects."""
    counts = series.value_counts(dropna=True, sort=False)
    index = pd.Index(np.asarray(counts.index, dtype=object))
    counts = pd.Series(counts.to_numpy(dtype=np.int64), index=index)
    counts = counts[(counts.to_numpy() > 0) & ~index.isin([np.inf, -np.inf])]
    if counts.empty:
        raise ValueError(f"column '{series.name}' is empty in the {side} frame (after NaN drop)")
    return counts


# -- the tests ----------------------------------------------------------------------------------


def wasserstein_w1(values: np.ndarray, counts: np.ndarray, current_sorted: np.ndarray) -> float:
    """W1 between a sorted reference (distinct values with integer counts) and a sorted sample.

    Equals scipy.stats.wasserstein_distance up to rounding, in O(m) after the sort. Quantile
    form: W1 = integral over t in (0, 1] of |Q_ref(t) - Q_cur(t)|. Current step j covers
    (j/m, (j+1)/m]; integer arithmetic gives the reference value over each whole step, and the
    few steps that a reference step end cuts in two get an exact correction.
    """
    m, total = current_sorted.size, int(counts.sum())
    cum = np.cumsum(counts, dtype=np.int64)
    steps, cut = np.divmod(cum * m, total)  # current steps ending at or before each ref end
    deviation = np.repeat(values, np.diff(steps, prepend=0))
    deviation -= current_sorted
    np.abs(deviation, out=deviation)
    whole_steps = deviation.sum() / m
    inside = np.flatnonzero(cut)  # reference ends strictly inside a current step
    j = steps[inside]
    covering = np.searchsorted(steps, j, side="right")  # the reference value used for step j
    ends = cum / total
    start = np.maximum(np.concatenate([[0.0], ends])[inside], j / m)
    c = current_sorted[j]
    pieces = (ends[inside] - start) * (np.abs(values[inside] - c) - np.abs(values[covering] - c))
    return float(whole_steps + pieces.sum())


def _sample_test(col: ColumnProfile, current: np.ndarray, name: str) -> tuple[float, float]:
    if name == "ks":
        result = stats.ks_2samp(np.repeat(col.values, col.counts), current)
        return float(result.pvalue), float(result.statistic)
    norm = max(col.std, MIN_WASSERSTEIN_NORM)
    current.sort()  # a private copy from finite_values
    value = wasserstein_w1(col.values, col.counts, current) / norm
    return value, value


def _counts_test(keys: list, ref: np.ndarray, cur: np.ndarray, name: str) -> tuple[float, float]:
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    if name == "jensenshannon":
        value = float(distance.jensenshannon(ref / n_ref, cur / n_cur))
        return value, value
    if name == "chisquare":
        with np.errstate(divide="ignore"):  # a key new in current: inf statistic, p = 0
            result = stats.chisquare(cur, ref * (n_cur / n_ref))
        return float(result.pvalue), float(result.statistic)
    if np.count_nonzero(ref) == 1 and np.count_nonzero(cur) == 1 and ref.argmax() == cur.argmax():
        return 1.0, 0.0  # z_stattest.py: the same single value on both sides
    first = keys.index(sorted(keys)[0])  # z_stattest.py codes the smallest key 0, others 1
    p1, p2 = (n_ref - ref[first]) / n_ref, (n_cur - cur[first]) / n_cur
    pooled = float(p1 * n_ref + p2 * n_cur) / (n_ref + n_cur)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    return float(2 * (1 - stats.norm.cdf(np.abs(z)))), float(z)


Aligned = tuple[list, np.ndarray, np.ndarray]


def _aligned_categories(col: ColumnProfile, current: pd.Series) -> Aligned:
    cur = category_counts(current, "current")
    ref_index = pd.Index(col.values, dtype=object)
    keys = ref_index.append(cur.index[~cur.index.isin(ref_index)])
    ref = np.concatenate([col.counts, np.zeros(len(keys) - len(ref_index), dtype=np.int64)])
    return keys.tolist(), ref, cur.reindex(keys, fill_value=0).to_numpy(dtype=np.int64)


def _aligned_numbers(col: ColumnProfile, current: np.ndarray) -> Aligned:
    matched = np.zeros(current.size, dtype=bool)
    cur = np.empty(col.values.size, dtype=np.int64)
    for i, value in enumerate(col.values):  # at most LOW_CARDINALITY reference values
        hits = current == value
        cur[i] = np.count_nonzero(hits)
        matched |= hits
    new_values, new_counts = np.unique(current[~matched], return_counts=True)
    keys = [*col.values.tolist(), *new_values.tolist()]
    ref = np.concatenate([col.counts, np.zeros(new_values.size, dtype=np.int64)])
    return keys, ref, np.concatenate([cur, new_counts])


def _column_drift(col: ColumnProfile, series: pd.Series) -> ColumnDrift:
    aligned, current = None, None
    if col.kind == "categorical":
        aligned = _aligned_categories(col, series)
    else:
        current = finite_values(series, "current")
        if col.n_distinct <= LOW_CARDINALITY:  # the union decides: counts or samples
            aligned = _aligned_numbers(col, current)
    n_values = len(aligned[0]) if aligned is not None else col.n_distinct
    test = STATTESTS[default_stattest(col.kind, col.n_reference, n_values)]
    error = 0.0
    if test.name in ("ks", "wasserstein"):
        score, statistic = _sample_test(col, current, test.name)
        error = col.sample_error / max(col.std, MIN_WASSERSTEIN_NORM)
    else:
        score, statistic = _counts_test(*aligned, test.name)
    return ColumnDrift(
        column=col.name,
        kind=col.kind,
        stattest=test.name,
        stattest_display_name=test.display_name,
        score=score,
        statistic=statistic,
        threshold=test.threshold,
        drifted=bool(test.drifted(score)),
        n_reference=col.n_reference,
        n_current=current.size if current is not None else int(aligned[2].sum()),
        max_score_error=error,
    )


def detect_drift(
    profile: ReferenceProfile, current: pd.DataFrame, drift_share: float = DRIFT_SHARE
) -> DriftReport:
    """Test each profiled column of `current` with Evidently's default method for it."""
    require_columns(current, profile.columns, "current")
    results = tuple(_column_drift(col, current[name]) for name, col in profile.columns.items())
    return DriftReport(columns=results, drift_share=drift_share)
