"""The clock that time-dependent decisions read: budget pauses, cooldowns, ledgers, idleness.

Decisions take `now` from this resource instead of reading the wall clock
themselves, so a test (or a replay of simulated days) pins time with
`Clock(frozen_at=...)` and no behaviour depends on the day the code runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
from pydantic import Field, field_validator


class Clock(dg.ConfigurableResource):
    frozen_at: str | None = Field(
        default=None,
        description="ISO-8601 instant to pin time at (tests, replays); empty: UTC now.",
    )

    @field_validator("frozen_at")
    @classmethod
    def _parse(cls, value: str | None) -> str | None:
        if value:
            stamp = datetime.fromisoformat(value)
            if stamp.tzinfo is None:
                raise ValueError(f"frozen_at {value!r} needs a timezone offset, e.g. +00:00")
        return value or None

    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC unless frozen with another offset)."""
        if self.frozen_at:
            return datetime.fromisoformat(self.frozen_at)
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return self.now().timestamp()
