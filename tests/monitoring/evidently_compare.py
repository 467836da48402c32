"""Evidently 0.7.23's own DataDriftPreset verdicts, and the check that ours equal them.

Evidently runs through its new API (`Report`, `Dataset`, `DataDefinition`,
`presets.DataDriftPreset`, `include_tests=True`): each `ValueDrift` metric gives the method
(display name), threshold and score of a column, its test status gives the verdict, and
`DriftedColumnsCount` gives the dataset share (`parse_snapshot`, also applied to the snapshots
the data_drift asset stores with its report). Shared by the drift test modules; Evidently is
imported inside the function, so importing this module stays cheap.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest


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
    return parse_snapshot(snapshot)


def parse_snapshot(snapshot: dict) -> tuple[dict[str, dict], float]:
    """Per-column {method, threshold, score, drifted} and the drifted share of a snapshot dict."""
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
