"""Raw flights validation as pure functions: every problem names its column.

Protects the messages people read when a partition is blocked, and that a
clean real day passes (so the checks are not vacuous in either direction).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_assets.scenarios.classical import schema
from mlops_assets.scenarios.classical.source import flights_for_day

DAY = "2013-05-17"


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    return flights_for_day(DAY)


def test_a_real_day_passes_every_check(good):
    report = schema.validate_flights(good, DAY)
    assert report.ok, report.all_problems()
    assert report.rows == len(good) > 500


@pytest.mark.parametrize(
    ("mutate", "check", "needle"),
    [
        (lambda f: f.drop(columns=["carrier"]), "schema", "missing column 'carrier'"),
        (lambda f: f.assign(month=f["month"].astype(str)), "schema", "column 'month' has type"),
        (lambda f: f.assign(extra=1), "schema", "unexpected columns ['extra']"),
        (lambda f: f.assign(origin=None), "nulls", "column 'origin' has"),
        (lambda f: f.assign(hour=f["hour"] + 30), "ranges", "column 'hour'"),
        (lambda f: f.assign(arr_delay=np.inf), "ranges", "column 'arr_delay' has infinite"),
        (lambda f: f.assign(origin="BOS"), "ranges", "unknown airports ['BOS']"),
        (lambda f: f.assign(day=18), "ranges", "not dated 2013-05-17"),
        (lambda f: f.head(10), "row_count", "10 rows"),
    ],
    ids=["missing", "type", "extra", "nulls", "range", "inf", "domain", "partition", "rows"],
)
def test_problems_name_the_column_and_the_check(good, mutate, check, needle):
    report = schema.validate_flights(mutate(good.copy()), DAY)
    assert not report.ok
    assert any(needle in p for p in report.problems[check]), report.problems


def test_nullable_columns_may_be_null(good):
    cancelled = good.assign(dep_time=np.nan, arr_delay=np.nan, tailnum=None)
    assert schema.validate_flights(cancelled, DAY).ok


def test_garbage_bytes_fail_every_check_with_the_reason():
    frame, error = schema.read_raw(b"\x89PNG not a parquet file")
    assert frame is None and "not readable parquet" in error
    report = schema.unreadable_report(error)
    assert all(report.problems[c] == [error] for c in schema.CHECKS)


def test_canonical_drops_exact_duplicates_and_fixes_types(good):
    doubled = pd.concat([good, good.head(3)], ignore_index=True)
    out = schema.canonical(doubled)
    assert len(out) == len(good)
    assert out["distance"].dtype == "int64" and out["arr_delay"].dtype == "float64"
