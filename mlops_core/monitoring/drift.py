"""Data and prediction drift with Evidently 0.7's default tests, from a stored reference profile.

Purpose: the verdicts of Evidently's `DataDriftPreset` (default methods, thresholds and
`drift_share`) without keeping the training frame around and without Evidently's per-report
overhead. `build_reference` (in `drift_profile`) summarises the training frame once;
`detect_drift` tests a current frame against that summary, vectorized with numpy (loops run
over columns, never rows). Prediction drift is the same call on the model-output column: a
probability or score declared numerical, a predicted label declared categorical.

Constraints: numpy, scipy and pandas only (no dagster, no evidently import), so the serving and
batch paths can use it. The rules copied from evidently 0.7.23 (test choice, thresholds,
cleaning) live in `drift_rules`; the reference representation and its sampling error in
`drift_profile`. This module is the public entry point: it re-exports the names of both, so
`from mlops_core.monitoring.drift import X` works for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlops_core.monitoring.drift_profile import (
    DEFAULT_SAMPLE_SIZE,
    MIN_SAMPLE_SIZE,
    PROFILE_FORMAT,
    ColumnProfile,
    ReferenceProfile,
    build_reference,
)
from mlops_core.monitoring.drift_rules import (
    BINARY,
    DRIFT_SHARE,
    LOW_CARDINALITY,
    MIN_WASSERSTEIN_NORM,
    SMALL_REFERENCE_ROWS,
    STATTESTS,
    StatTest,
    category_counts,
    default_stattest,
    finite_values,
    require_columns,
    wasserstein_w1,
)

if TYPE_CHECKING:  # pandas and scipy load when a test runs, not when definitions load
    import pandas as pd

__all__ = [
    "BINARY",
    "DEFAULT_SAMPLE_SIZE",
    "DRIFT_SHARE",
    "LOW_CARDINALITY",
    "MIN_SAMPLE_SIZE",
    "MIN_WASSERSTEIN_NORM",
    "PROFILE_FORMAT",
    "SMALL_REFERENCE_ROWS",
    "STATTESTS",
    "ColumnDrift",
    "ColumnProfile",
    "DriftReport",
    "ReferenceProfile",
    "StatTest",
    "build_reference",
    "category_counts",
    "default_stattest",
    "detect_drift",
    "finite_values",
    "require_columns",
    "wasserstein_w1",
]


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
        import pandas as pd

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


# -- the tests ----------------------------------------------------------------------------------


def _sample_test(col: ColumnProfile, current: np.ndarray, name: str) -> tuple[float, float]:
    from scipy import stats

    if name == "ks":
        result = stats.ks_2samp(np.repeat(col.values, col.counts), current)
        return float(result.pvalue), float(result.statistic)
    norm = max(col.std, MIN_WASSERSTEIN_NORM)
    current.sort()  # a private copy from finite_values
    value = wasserstein_w1(col.values, col.counts, current) / norm
    return value, value


def _counts_test(keys: list, ref: np.ndarray, cur: np.ndarray, name: str) -> tuple[float, float]:
    from scipy import stats
    from scipy.spatial import distance

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
    import pandas as pd

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
