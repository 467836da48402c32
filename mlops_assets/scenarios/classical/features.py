"""Features and label of the classical model: will a flight arrive more than 15 minutes late?

Only what is known before departure is a feature (no dep_delay, air_time or
arr_time: they leak the answer); the origin's weather in the departure hour
is. Pure pandas, shared by training, evaluation and later the scoring path.
"""

from __future__ import annotations

import pandas as pd

CATEGORICAL = ["carrier", "origin", "dest"]
WEATHER = ["temp", "humid", "wind_speed", "precip", "pressure", "visib"]
NUMERIC = ["month", "day_of_week", "dep_hour", "sched_arr_hour", "distance", *WEATHER]
FEATURES = CATEGORICAL + NUMERIC
LABEL = "late"
DATE = "flight_date"
LATE_MINUTES = 15


def build_features(flights: pd.DataFrame) -> pd.DataFrame:
    """Feature frame with label and date; cancelled flights (no arrival) are dropped."""
    arrived = flights[flights["arr_delay"].notna()]
    dates = pd.to_datetime(arrived[["year", "month", "day"]])
    out = pd.DataFrame(
        {
            "carrier": arrived["carrier"].astype(str),
            "origin": arrived["origin"].astype(str),
            "dest": arrived["dest"].astype(str),
            "month": arrived["month"].astype("int64"),
            "day_of_week": dates.dt.day_of_week.astype("int64"),
            "dep_hour": (arrived["sched_dep_time"] // 100).astype("int64"),
            "sched_arr_hour": (arrived["sched_arr_time"] // 100).astype("int64"),
            "distance": arrived["distance"].astype("float64"),
            # weather at the origin in the departure hour; NaN where unobserved
            **{w: arrived[w].astype("float64") for w in WEATHER},
            LABEL: (arrived["arr_delay"] > LATE_MINUTES).astype("int64"),
            DATE: dates.dt.strftime("%Y-%m-%d"),
        }
    )
    return out.reset_index(drop=True)


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
