"""`x-mlops-event-date`: who may file a request under another business day, and which days.

Replayed or backfilled traffic carries the business day it belongs to, and the
inference log files it by that day (monitoring reads the log by day). That moves data
between days, so it takes a credential of its own: the endpoint's replay key in
`x-mlops-replay-key` (compared in constant time), besides the scoring key. The day must
lie in the configured window: not before `event_date_earliest`, not after today (UTC)
plus `event_date_max_days_ahead`.

Errors: no or wrong replay key 403, not a date 400, outside the window 422.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from serving.errors import ApiError
from serving.settings import ServingSettings, parse_date

EVENT_DATE_HEADER = "x-mlops-event-date"
REPLAY_KEY_HEADER = "x-mlops-replay-key"


def replay_authorized(settings: ServingSettings, header: str | None) -> bool:
    """Whether `header` is the endpoint's replay key (an endpoint without one has no replays)."""
    key = settings.keys.get("replay")
    if not key or header is None:
        return False
    return hmac.compare_digest(header.encode("latin-1"), key.encode())


def event_date(
    settings: ServingSettings, headers: Mapping[str, str], today: date | None = None
) -> str | None:
    """The request's event date (YYYY-MM-DD) when it may set one, None when it sets none."""
    text = headers.get(EVENT_DATE_HEADER)
    if text is None:
        return None
    if not replay_authorized(settings, headers.get(REPLAY_KEY_HEADER)):
        raise ApiError(
            403,
            "replay_forbidden",
            f"{EVENT_DATE_HEADER} files traffic under another day; send the endpoint's "
            f"replay key in {REPLAY_KEY_HEADER}",
        )
    day = parse_date(text)
    if day is None:
        raise ApiError(400, "invalid_event_date", f"{EVENT_DATE_HEADER} must be a date YYYY-MM-DD")
    today = today or datetime.now(UTC).date()
    earliest = date.fromisoformat(settings.event_date_earliest)
    latest = today + timedelta(days=settings.event_date_max_days_ahead)
    if not earliest <= day <= latest:
        raise ApiError(
            422,
            "event_date_out_of_range",
            f"{EVENT_DATE_HEADER} {text} is outside this endpoint's window "
            f"{earliest.isoformat()}..{latest.isoformat()}",
        )
    return text
