"""Edits of a real day of flights that keep it internally consistent, for the check tests."""

from __future__ import annotations

import pandas as pd


def late_by(frame: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """Every arrived flight `minutes` late, with arrival times that agree with the delay."""
    out = frame.copy()
    arrived = out["arr_delay"].notna()
    sched = (out["sched_arr_time"] // 100) * 60 + out["sched_arr_time"] % 100
    actual = (sched + minutes) % 1440
    out.loc[arrived, "arr_time"] = ((actual // 60) * 100 + actual % 60)[arrived].astype(float)
    out.loc[arrived, "arr_delay"] = float(minutes)
    return out
