"""Drift verdicts vs Evidently 0.7.23's DataDriftPreset on real data: 2013 NYC flights.

January is the reference; a held-out January day, that day shifted on purpose, a July day and
July are the current frames (`flight_cases.py`). Also: prediction drift, error messages and
report outputs. Synthetic frames reaching every default-test branch, and the unit tests, are in
`test_drift_synthetic.py`; the Evidently side is in `evidently_compare.py`; Evidently's HTML
report of the verdict's own comparison is tested in `test_drift_report.py`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_core.monitoring.drift import ReferenceProfile, build_reference, detect_drift
from tests.monitoring.evidently_compare import assert_same_as_evidently, evidently_drift
from tests.monitoring.flight_cases import CATEGORICAL, NUMERICAL, SHIFTED


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
