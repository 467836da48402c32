"""Drift verdicts vs Evidently 0.7.23 on synthetic frames, plus the statistics' unit tests.

Synthetic frames reach every default-test branch (small reference -> K-S / chi-square / z;
large -> normed Wasserstein / Jensen-Shannon) with and without drift, plus the edge cases (new
categories, a numeric union crossing 5 values, constants, NaN and +-inf). Units: the W1 kernel
against scipy, the test choice against Evidently's registry, the profile's size and round trip.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlops_core.monitoring.drift import (
    ReferenceProfile,
    build_reference,
    default_stattest,
    detect_drift,
    wasserstein_w1,
)
from tests.monitoring.evidently_compare import assert_same_as_evidently, evidently_drift

SYN_NUMERICAL = ["amount", "level", "flag"]
SYN_CATEGORICAL = ["segment", "churned"]
SMALL, LARGE = 800, 20_000
EXPECTED_TESTS = {
    SMALL: ["ks", "chisquare", "z", "chisquare", "z"],
    LARGE: ["wasserstein", "jensenshannon", "jensenshannon", "jensenshannon", "jensenshannon"],
}


def synthetic(n: int, drifted: bool, seed: int) -> pd.DataFrame:
    """A bimodal amount, a 3-level and a binary number, a 4-level and a binary category."""
    rng = np.random.default_rng(seed)
    d = 1.0 if drifted else 0.0
    mode = rng.random(n) < 0.7
    amount = np.where(mode, rng.lognormal(3, 0.5, n), rng.normal(60 + 30 * d, 10, n))
    amount[rng.random(n) < 0.02] = np.nan

    def pick(values: list, p: list[float], q: list[float]) -> np.ndarray:
        return rng.choice(values, n, p=q if drifted else p)

    return pd.DataFrame(
        {
            "amount": amount,
            "level": pick([1.0, 2.0, 3.0], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]),
            "flag": pick([0, 1], [0.7, 0.3], [0.4, 0.6]),
            "segment": pick(list("abcd"), [0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]),
            "churned": pick(["no", "yes"], [0.8, 0.2], [0.5, 0.5]),
        }
    )


@pytest.mark.parametrize("n_ref", [SMALL, LARGE])
@pytest.mark.parametrize("drifted", [False, True])
def test_synthetic_branches_equal_evidentlys(n_ref: int, drifted: bool):
    reference = synthetic(n_ref, drifted=False, seed=1)
    current = synthetic(600 if n_ref == SMALL else 3000, drifted=drifted, seed=2)
    profile = build_reference(reference, SYN_NUMERICAL, SYN_CATEGORICAL, sample_size=n_ref)
    assert all(c.exact for c in profile.columns.values())  # the full reference: exact scores
    report = detect_drift(ReferenceProfile.from_json(profile.to_json()), current)
    assert [c.stattest for c in report.columns] == EXPECTED_TESTS[n_ref]
    assert report.drifted_columns == (SYN_NUMERICAL + SYN_CATEGORICAL if drifted else [])
    assert report.dataset_drift == drifted
    expected = evidently_drift(reference, current, SYN_NUMERICAL, SYN_CATEGORICAL)
    assert_same_as_evidently(report, expected)


def edge_frames(n_ref: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """New categories, a numeric union that crosses 5 values, constants, NaN and +-inf."""
    rng = np.random.default_rng(7)
    n_cur = 400

    def holes(n: int, shift: float) -> np.ndarray:
        x = rng.normal(shift, 1, n)
        x[:: max(n // 20, 1)], x[1::50], x[2::70] = np.nan, np.inf, -np.inf
        return x

    reference = pd.DataFrame(
        {
            "grow": rng.integers(1, 4, n_ref).astype(float),
            "holes": holes(n_ref, 0.0),
            "new_cat": rng.choice(list("abc"), n_ref),
            "same": ["x"] * n_ref,
            "binary_new": ["x"] * n_ref,
            "codes": rng.integers(0, 4, n_ref),
        }
    )
    current = pd.DataFrame(
        {
            "grow": rng.integers(1, 9, n_cur).astype(float),
            "holes": holes(n_cur, 0.05),
            "new_cat": rng.choice(list("abcd"), n_cur, p=[0.32, 0.32, 0.31, 0.05]),
            "same": ["x"] * n_cur,
            "binary_new": rng.choice(["x", "y"], n_cur, p=[0.9, 0.1]),
            "codes": rng.integers(0, 4, n_cur),
        }
    )
    return reference, current


@pytest.mark.parametrize("n_ref", [500, 5000])
def test_edge_cases_equal_evidentlys(n_ref: int):
    numerical, categorical = ["grow", "holes"], ["new_cat", "same", "binary_new", "codes"]
    reference, current = edge_frames(n_ref)
    profile = build_reference(reference, numerical, categorical)
    assert profile.columns["grow"].stattest == ("chisquare" if n_ref == 500 else "jensenshannon")
    report = detect_drift(ReferenceProfile.from_json(profile.to_json()), current)
    small = n_ref <= 1000
    assert report.column("grow").stattest == ("ks" if small else "wasserstein")  # union of 8
    assert report.column("same").score == (1.0 if small else 0.0)
    assert report.column("new_cat").drifted == small  # chi-square: a new key gives p = 0
    assert report.column("holes").n_current == np.isfinite(current.holes).sum()
    assert_same_as_evidently(report, evidently_drift(reference, current, numerical, categorical))


def test_default_stattest_is_evidentlys():
    from evidently.legacy.calculations.stattests.registry import _get_default_stattest
    from evidently.legacy.core import ColumnType

    kinds = {"numerical": ColumnType.Numerical, "categorical": ColumnType.Categorical}
    for kind, column_type in kinds.items():
        for n_ref in (10, 1000, 1001, 5000):
            for n_values in (1, 2, 3, 5, 6, 40):
                ref = pd.Series(np.arange(n_ref) % min(n_values, n_ref), dtype=float)
                cur = pd.Series(np.arange(n_values), dtype=float)
                expected = _get_default_stattest(ref, cur, column_type).name
                assert default_stattest(kind, n_ref, n_values) == expected


# -- units --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_wasserstein_w1_equals_scipys(seed: int):
    rng = np.random.default_rng(seed)
    values = np.unique(rng.integers(-50, 50, 300).astype(float) * rng.random())
    weights = rng.integers(1, 20, values.size)
    current = np.sort(rng.normal(3, 20, int(rng.integers(1, 5000))))
    expected = stats.wasserstein_distance(values, current, u_weights=weights)
    assert wasserstein_w1(values, weights, current) == pytest.approx(expected, rel=1e-10)


def test_profile_is_compact_and_round_trips():
    rng = np.random.default_rng(3)
    n = 200_000
    frame = pd.DataFrame({f"x{i}": rng.standard_t(3 + i, n) * (i + 1) for i in range(20)})
    for i in range(5):
        frame[f"c{i}"] = rng.choice([f"v{j}" for j in range(10 * (i + 1))], n)
    numerical, categorical = [f"x{i}" for i in range(20)], [f"c{i}" for i in range(5)]
    profile = build_reference(frame, numerical, categorical)
    text = profile.to_json()
    assert len(text) < 3_000_000
    restored = ReferenceProfile.from_json(text)
    current = frame.sample(20_000, random_state=0)
    assert detect_drift(restored, current) == detect_drift(profile, current)
    assert max(c.max_score_error for c in detect_drift(profile, current).columns) < 0.002
