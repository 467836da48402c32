"""Where the classical flights live in the lake, and the integrity of validated days.

- `landing/classical/flights/<day>.parquet`: a day delivered by an external system;
- `raw/classical/flights/<day>.parquet`: the day as landed;
- `validated/classical/flights/<day>.parquet`: the day as validation wrote it;
- `validated/classical/integrity/<day>.json`: the sha256 of exactly those bytes,
  with the day's row count and label rate (`mlops_core.integrity`).

The records sit in their own folder so a listing of validated days holds only
days. Every reader of a validated day goes through `read_validated`, which
refuses a file that changed since validation, or that validation never wrote;
`read_verified_days` reads a range that way and names every day it refuses.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.scenarios.classical.features import label_rate
from mlops_assets.scenarios.classical.label_rate import LabelRateRule, history_days
from mlops_core.integrity import (
    IntegrityError,
    IntegrityRecord,
    read_verified,
    sha256_hex,
    write_recorded,
)
from resources.lake import DataLake

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

VALIDATED_DIR = "validated/classical/flights"
INTEGRITY_DIR = "validated/classical/integrity"


def landing_path(day: str) -> str:
    return f"landing/classical/flights/{day}.parquet"


def raw_path(day: str) -> str:
    return f"raw/classical/flights/{day}.parquet"


def validated_path(day: str) -> str:
    return f"{VALIDATED_DIR}/{day}.parquet"


def integrity_path(day: str) -> str:
    return f"{INTEGRITY_DIR}/{day}.json"


def write_validated(lake: DataLake, day: str, frame: pd.DataFrame) -> IntegrityRecord:
    """Write a validated day and then the record of its bytes, rows and label rate."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    stats = {"rows": len(frame), "late_rate": label_rate(frame)}
    return write_recorded(lake, validated_path(day), buf.getvalue(), integrity_path(day), stats)


def read_validated(lake: DataLake, day: str) -> tuple[pd.DataFrame, str]:
    """A validated day and its sha256; `IntegrityError` naming the day if it changed."""
    import pandas as pd

    data, sha = read_verified(
        lake,
        validated_path(day),
        integrity_path(day),
        what=f"validated partition {day}",
        remedy=f"re-validate it (materialize classical/validated_flights for {day})",
        since="validation",
    )
    return pd.read_parquet(io.BytesIO(data)), sha


def read_verified_days(lake: DataLake, days: list[str]) -> tuple[pd.DataFrame, str]:
    """The validated days concatenated, and one sha256 over their recorded hashes."""
    import pandas as pd

    frames, hashes, refused = [], [], {}
    for day in days:
        try:
            frame, sha = read_validated(lake, day)
        except IntegrityError as err:
            refused[day] = str(err)
            continue
        frames.append(frame)
        hashes.append(f"{day} {sha}\n")
    if refused:
        named = ", ".join(list(refused)[:10]) + (" ..." if len(refused) > 10 else "")
        listing = "\n".join(f"- {problem}" for problem in refused.values())
        raise dg.Failure(
            description=f"{len(refused)} validated partition(s) refused ({named}): "
            + next(iter(refused.values())),
            metadata={"problems": dg.MetadataValue.md(listing)},
        )
    return pd.concat(frames, ignore_index=True), sha256_hex("".join(hashes).encode())


class RateHistory:
    """Label rates of validated days, read from their integrity records, listed once."""

    def __init__(self, lake: DataLake, rule: LabelRateRule) -> None:
        self.lake, self.rule = lake, rule
        self.recorded = set(lake.list(INTEGRITY_DIR))
        self.cache: dict[str, float | None] = {}

    def _rate(self, day: str) -> float | None:
        if day not in self.cache:
            path = integrity_path(day)
            rate = None
            if path in self.recorded:
                rate = IntegrityRecord.from_json(self.lake.read_bytes(path)).stats.get("late_rate")
            self.cache[day] = None if rate is None else float(rate)
        return self.cache[day]

    def before(self, day: str) -> dict[str, float]:
        """Validated days in the rule's window before `day` -> their label rate."""
        rates = {d: self._rate(d) for d in history_days(day, self.rule)}
        return {d: r for d, r in rates.items() if r is not None}
