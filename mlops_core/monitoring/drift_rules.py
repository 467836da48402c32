"""Evidently 0.7's drift rules: test choice, thresholds, column cleaning and the W1 kernel.

Purpose: the pieces shared by `drift_profile` (summarising the reference) and `drift` (testing a
current frame against it), so neither imports the other's internals.

Constraints: numpy and pandas only (no dagster, no evidently import), so the serving and batch
paths can use it. Every rule below is copied from evidently 0.7.23 (paths relative to
`evidently/legacy/calculations/`):
- test choice, `stattests/registry.py::_get_default_stattest`: reference rows <= 1000 ->
  numerical with > 5 distinct values: K-S; otherwise chi-square, or the proportion z-test when
  there are <= 2 distinct values. Reference rows > 1000 -> numerical with > 5 distinct values:
  normed Wasserstein; otherwise Jensen-Shannon. "Distinct values" counts reference and current
  together, so the final choice is made in `drift.detect_drift`; the profile records the choice
  implied by the reference alone.
- thresholds and directions (`stattests/*.py`): K-S drifts when p <= 0.05; chi-square and z when
  p < 0.05; Jensen-Shannon (`jensenshannon.py`: value counts over the union of keys, no zero
  filling, natural log) and Wasserstein (`wasserstein_distance_norm.py`: divided by
  max(std of reference, 0.001)) when distance >= 0.1.
- cleaning, `data_drift.py::get_one_column_drift`: +-inf become NaN, NaN rows are dropped per
  column, an empty column raises, a numerical column must have a numeric dtype;
  `get_dataset_drift`: dataset drift when share of drifted columns >= drift_share (0.5).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

SMALL_REFERENCE_ROWS = 1000  # registry.py: `reference_data.shape[0] <= 1000`
LOW_CARDINALITY = 5  # registry.py: a numerical column with n_values <= 5 is tested by counts
BINARY = 2  # registry.py: chi-square needs n_values > 2, else the z-test
DRIFT_SHARE = 0.5  # evidently/presets/drift.py: DataDriftPreset.drift_share
MIN_WASSERSTEIN_NORM = 0.001  # wasserstein_distance_norm.py: max(np.std(reference), 0.001)


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


# -- cleaning, as get_one_column_drift does it ----------------------------------------------------


def require_columns(frame: pd.DataFrame, columns: Iterable[str], side: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"columns missing from the {side} frame: {missing}")


def finite_values(series: pd.Series, side: str) -> np.ndarray:
    """A numerical column as float64 without NaN and +-inf."""
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(series):
        raise ValueError(f"column '{series.name}' in the {side} frame must be numeric")
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError(f"column '{series.name}' is empty in the {side} frame (after NaN drop)")
    return values


def category_counts(series: pd.Series, side: str) -> pd.Series:
    """Non-null value counts of a categorical column, keys as Python objects."""
    import pandas as pd

    counts = series.value_counts(dropna=True, sort=False)
    index = pd.Index(np.asarray(counts.index, dtype=object))
    counts = pd.Series(counts.to_numpy(dtype=np.int64), index=index)
    counts = counts[(counts.to_numpy() > 0) & ~index.isin([np.inf, -np.inf])]
    if counts.empty:
        raise ValueError(f"column '{series.name}' is empty in the {side} frame (after NaN drop)")
    return counts


# -- the Wasserstein kernel ---------------------------------------------------------------------


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
