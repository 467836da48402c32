"""Evidently's report of a drift verdict's own comparison: same reference, rows and tests.

Protects issue #9's "the report contradicts the verdict": the reference rebuilt from the stored
profile is, for Evidently, the training frame itself (same scores as on the original rows); the
report's dataset verdict and drifted columns equal the verdict's on a clean, a shifted and a
July day, on small synthetic references (K-S, chi-square, z) and on edge cases; a sampled
profile is named in the basis; a verdict the report does not reproduce is listed as a
difference, never silently shown. The asset that logs the report is tested in
`test_data_drift_asset.py`.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from mlops_core.monitoring.drift import STATTESTS, DriftReport, build_reference, detect_drift
from mlops_core.monitoring.drift_report import build_evidently_report, reference_frame
from tests.monitoring.evidently_compare import evidently_drift, parse_snapshot
from tests.monitoring.flight_cases import CATEGORICAL, NUMERICAL, SHIFTED
from tests.monitoring.test_drift_synthetic import (
    EXPECTED_TESTS,
    SMALL,
    SYN_CATEGORICAL,
    SYN_NUMERICAL,
    edge_frames,
    synthetic,
)

SOURCES = {"reference_source": "January's profile", "current_source": "one day"}


@pytest.fixture(scope="module")
def profile(flights):
    return build_reference(flights["reference"], NUMERICAL, CATEGORICAL)


def report_for(profile, current, verdict: DriftReport | None = None):
    verdict = verdict or detect_drift(profile, current)
    return verdict, build_evidently_report(profile, current, verdict, None, **SOURCES)


def test_rebuilt_reference_has_the_profiles_distribution(flights, profile):
    frame = reference_frame(profile, [*NUMERICAL, *CATEGORICAL])
    assert len(frame) == max(c.n_reference for c in profile.columns.values())
    for name, col in profile.columns.items():
        kept = frame[name].dropna()
        assert len(kept) == col.n_reference == flights["reference"][name].notna().sum()
        counts = kept.value_counts()
        assert [counts[v] for v in col.values] == col.counts.tolist(), name
    assert frame["distance"].dtype == np.float64 and frame["carrier"].dtype == object


def test_rebuilt_reference_scores_like_the_training_rows(flights, profile):
    """The report's reference is, for Evidently, the training frame: the same scores."""
    _, report = report_for(profile, flights["shifted_day"])
    ours, _ = parse_snapshot(json.loads(report.snapshot_json))
    original, _ = evidently_drift(
        flights["reference"], flights["shifted_day"], NUMERICAL, CATEGORICAL
    )
    for name, expected in original.items():
        assert STATTESTS[ours[name]["method"]].display_name == expected["method"], name
        assert ours[name]["score"] == pytest.approx(expected["score"], rel=1e-9, abs=1e-12), name
        assert ours[name]["drifted"] == expected["drifted"], name


@pytest.mark.parametrize("case", ["held_out_day", "shifted_day", "july_4"])
def test_report_verdict_equals_the_verdict(flights, profile, case):
    verdict, report = report_for(profile, flights[case])
    assert report.differences == () and report.agrees
    assert list(report.drifted_columns) == verdict.drifted_columns
    assert report.dataset_drift == verdict.dataset_drift
    columns, share = parse_snapshot(json.loads(report.snapshot_json))
    assert share == pytest.approx(verdict.share_of_drifted_columns)
    assert {c for c, v in columns.items() if v["drifted"]} == set(verdict.drifted_columns)
    detected = "detected" if verdict.dataset_drift else "NOT detected"
    assert f"Dataset Drift is {detected}." in report.html
    if case == "shifted_day":
        assert sorted(report.drifted_columns) == sorted(SHIFTED)


@pytest.mark.parametrize("drifted", [False, True], ids=["same", "drifted"])
def test_small_reference_tests_agree_too(drifted):
    """K-S, chi-square and z, including chi-square and z on numbers (left to Evidently's
    default, which Evidently refuses by name for a numerical column)."""
    profile = build_reference(synthetic(SMALL, False, 1), SYN_NUMERICAL, SYN_CATEGORICAL)
    verdict, report = report_for(profile, synthetic(600, drifted, 2))
    assert [c.stattest for c in verdict.columns] == EXPECTED_TESTS[SMALL]
    assert verdict.drifted_columns == (SYN_NUMERICAL + SYN_CATEGORICAL if drifted else [])
    assert report.agrees and list(report.drifted_columns) == verdict.drifted_columns


@pytest.mark.parametrize("n_ref", [500, 5000])
def test_edge_cases_agree(n_ref):
    """New categories, a numeric union crossing 5 values, constants, NaN and +-inf."""
    reference, current = edge_frames(n_ref)
    categorical = ["new_cat", "same", "binary_new", "codes"]
    profile = build_reference(reference, ["grow", "holes"], categorical)
    verdict, report = report_for(profile, current)
    assert report.differences == ()
    assert list(report.drifted_columns) == verdict.drifted_columns


def test_basis_states_reference_rows_tests_and_agreement(flights, profile):
    _, report = report_for(profile, flights["held_out_day"])
    rows = max(c.n_reference for c in profile.columns.values())
    assert (
        f"January's profile, rebuilt from its stored value counts ({rows:,} rows)" in report.basis
    )
    assert f"all {len(flights['held_out_day']):,} rows the verdict tested" in report.basis
    assert "`dep_delay` Wasserstein distance (normed) (0.1)" in report.basis
    assert "equal the asset's" in report.basis and "sample" not in report.basis
    assert "Report basis" in report.html and "rebuilt from its stored value counts" in report.html


def test_sampled_profile_is_stated_and_still_agrees(flights):
    sampled = build_reference(flights["reference"], NUMERICAL, CATEGORICAL, sample_size=150)
    named = {c.name for c in sampled.columns.values() if not c.exact}
    assert named == set(NUMERICAL)
    _, report = report_for(sampled, flights["shifted_day"])
    stated = {n for n in NUMERICAL if f"`{n}` is rebuilt from the profile's " in report.basis}
    assert stated == named
    assert "150-value sample" in report.basis
    assert report.agrees and sorted(report.drifted_columns) == sorted(SHIFTED)


def test_a_verdict_the_report_does_not_reproduce_is_stated(flights, profile):
    honest = detect_drift(profile, flights["held_out_day"])
    flipped = tuple(
        dataclasses.replace(c, drifted=True) if c.column in ("carrier", "origin", "dest") else c
        for c in honest.columns
    )
    shares = DriftReport(columns=flipped, drift_share=0.3)
    _, report = report_for(profile, flights["held_out_day"], shares)
    assert not report.agrees
    assert report.differences == (
        "`carrier`: asset drifted, report not drifted",
        "`origin`: asset drifted, report not drifted",
        "`dest`: asset drifted, report not drifted",
        "dataset drift: asset share 0.375, report share 0",
    )
    assert "The report's verdict differs from the asset's: `carrier`" in report.basis
    assert "equal the asset's" not in report.basis
