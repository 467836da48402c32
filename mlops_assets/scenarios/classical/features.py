"""Features and label of the classical model: will a flight arrive more than 15 minutes late?

Only what is known before departure is a feature (no dep_delay, air_time or
arr_time: they leak the answer); the origin's weather in the departure hour
is. Pure pandas, shared by training, evaluation and later the scoring path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd


CATEGORICAL = ["carrier", "origin", "dest"]
WEATHER = ["temp", "humid", "wind_speed", "precip", "pressure", "visib"]
NUMERIC = ["month", "day_of_week", "dep_hour", "sched_arr_hour", "distance", *WEATHER]
FEATURES = CATEGORICAL + NUMERIC
# Drift is tested on the traffic mix. The calendar (month, day of week) and the day's
# weather are left out: one day is a single point of the calendar and one weather
# regime, so against a season they "drift" every day and would drown the signal.
DRIFT_CATEGORICAL = ["carrier", "origin", "dest"]
DRIFT_NUMERICAL = ["dep_hour", "sched_arr_hour", "distance"]
LABEL = "late"
DATE = "flight_date"
LATE_MINUTES = 15


IDS = ["carrier", "flight", "origin", "time_hour"]


def build_inference_features(flights: pd.DataFrame) -> pd.DataFrame:
    """Features of scheduled flights (known before departure), with the date; no label."""
    import pandas as pd

    dates = pd.to_datetime(flights[["year", "month", "day"]])
    return pd.DataFrame(
        {
            "flight": flights["flight"].astype("int64"),
            "time_hour": flights["time_hour"].astype(str),
            "carrier": flights["carrier"].astype(str),
            "origin": flights["origin"].astype(str),
            "dest": flights["dest"].astype(str),
            "month": flights["month"].astype("int64"),
            "day_of_week": dates.dt.day_of_week.astype("int64"),
            "dep_hour": (flights["sched_dep_time"] // 100).astype("int64"),
            "sched_arr_hour": (flights["sched_arr_time"] // 100).astype("int64"),
            "distance": flights["distance"].astype("float64"),
            # weather at the origin in the departure hour; NaN where unobserved
            **{w: flights[w].astype("float64") for w in WEATHER},
            DATE: dates.dt.strftime("%Y-%m-%d"),
        }
    ).reset_index(drop=True)


def build_features(flights: pd.DataFrame) -> pd.DataFrame:
    """Feature frame with label and date; cancelled flights (no arrival) are dropped."""
    arrived = flights[flights["arr_delay"].notna()]
    out = build_inference_features(arrived)
    out.insert(
        len(out.columns) - 1,
        LABEL,
        (arrived["arr_delay"].to_numpy() > LATE_MINUTES).astype("int64"),
    )
    return out


def label_rate(flights: pd.DataFrame) -> float | None:
    """Share of arrived flights that were late (the label's mean); None when none arrived."""
    arrived = flights["arr_delay"].dropna()
    return float((arrived > LATE_MINUTES).mean()) if len(arrived) else None


def split_by_time(features: pd.DataFrame, holdout_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on the earlier days, hold out the last `holdout_days` (no look-ahead)."""
    days = sorted(features[DATE].unique())
    if len(days) <= holdout_days:
        raise ValueError(
            f"need more than holdout_days={holdout_days} days of data to split, got {len(days)}"
        )
    cutoff = days[-holdout_days]
    return (
        features[features[DATE] < cutoff].reset_index(drop=True),
        features[features[DATE] >= cutoff].reset_index(drop=True),
    )
