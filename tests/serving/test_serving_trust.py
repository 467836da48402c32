"""What a client may make the scoring server do, in process: replays, health details, body reads.

Protects: `x-mlops-event-date` (files traffic under another business day) needs the endpoint's
replay key (403 without it) and a day inside the configured window (422 outside); the replay
key alone scores nothing; a body is read under a deadline (408) and a body over the limit is
read to its end, up to a cap, before the 413 (so a client that sends it all can read the
answer). /health details (`test_serving_contract.py`) and slow clients against a real
process (`test_serving_slow_clients.py`) are elsewhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from serving.body import read_body
from serving.errors import ApiError
from serving.replay import event_date
from serving.scoring.inference_log import iter_records
from serving.settings import ConfigError, ServingSettings
from tests.serving.conftest import (
    AUTH,
    COLUMNS,
    MLFLOW_PANDAS_WARNING,
    PRIMARY,
    REPLAY,
    TestClient,
    app_client,
    make_config,
    rows,
)

pytestmark = pytest.mark.filterwarnings(f"ignore:{MLFLOW_PANDAS_WARNING}")
BODY = {"input_data": {"columns": COLUMNS, "data": rows(1, seed=9)}}


def _replay(day: str, key: str | None = REPLAY, rid: str = "r") -> dict[str, str]:
    headers = {**AUTH, "x-request-id": rid, "x-mlops-event-date": day}
    return headers if key is None else {**headers, "x-mlops-replay-key": key}


def test_event_date_needs_the_replay_key(client: TestClient, tmp_path: Path) -> None:
    for key, status in [(None, 403), ("wrong-replay-key", 403), (PRIMARY, 403), (REPLAY, 200)]:
        response = client.post("/score", json=BODY, headers=_replay("2013-07-15", key, str(key)))
        assert response.status_code == status, (key, response.text)
        if status == 403:
            error = response.json()["error"]
            assert error["code"] == "replay_forbidden" and "x-mlops-replay-key" in error["message"]
    # The replay key is no scoring key, not even together with the event date.
    alone = {"Authorization": f"Bearer {REPLAY}", "x-mlops-replay-key": REPLAY}
    assert client.post("/score", json=BODY, headers=alone).status_code == 401
    logged = [(r["request_id"], r["event_date"]) for r in iter_records(tmp_path / "inference_log")]
    assert logged == [(REPLAY, "2013-07-15")]  # refused requests are filed nowhere


def test_event_date_window_comes_from_the_config(write_config: Callable[..., Path]) -> None:
    today = datetime.now(UTC).date()
    with app_client(write_config(event_date_earliest="2013-07-01")) as c:
        for day, status in [
            ("2013-06-30", 422),
            ("2013-07-01", 200),
            (today.isoformat(), 200),
            ((today + timedelta(days=1)).isoformat(), 200),
            ((today + timedelta(days=2)).isoformat(), 422),
            ("2013-02-30", 400),
            ("15.07.2013", 400),
        ]:
            response = c.post("/score", json=BODY, headers=_replay(day))
            assert response.status_code == status, (day, response.text)
            if status == 422:
                error = response.json()["error"]
                assert error["code"] == "event_date_out_of_range"
                assert day in error["message"] and "2013-07-01.." in error["message"]
    # An endpoint without a replay key takes no event dates at all.
    with app_client(write_config(keys={"primary": PRIMARY})) as c:
        refused = c.post("/score", json=BODY, headers=_replay("2013-07-15"))
        assert refused.status_code == 403
        assert c.post("/score", json=BODY, headers=AUTH).status_code == 200


def test_event_date_rules(tmp_path: Path, models: dict[str, Path]) -> None:
    settings = ServingSettings.from_dict(
        make_config(tmp_path, models, event_date_earliest="2010-01-01", event_date_max_days_ahead=0)
    )
    today = date(2013, 7, 15)
    headers = {"x-mlops-replay-key": REPLAY}
    assert event_date(settings, headers, today) is None  # no date: today's traffic
    ok = {**headers, "x-mlops-event-date": "2013-07-15"}
    assert event_date(settings, ok, today) == "2013-07-15"
    with pytest.raises(ApiError, match=r"2010-01-01\.\.2013-07-15"):
        event_date(settings, {**ok, "x-mlops-event-date": "2013-07-16"}, today)
    for bad in ("2013-7-15", "2013-07-15\n", "\uff12\uff10\uff11\uff13-07-15"):
        with pytest.raises(ApiError) as refused:
            event_date(settings, {**ok, "x-mlops-event-date": bad}, today)
        assert refused.value.status == 400
    with pytest.raises(ConfigError, match="event_date_earliest: must be a date"):
        ServingSettings.from_dict(make_config(tmp_path, models, event_date_earliest="2013"))


def _request(
    chunks: list[bytes], length: int | None = None, stall: bool = False
) -> tuple[Request, list[int]]:
    """A request whose body arrives as `chunks` (then never, if `stall`); counts reads."""
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    reads = [0]

    async def receive() -> dict[str, Any]:
        i = reads[0]
        reads[0] += 1
        if i < len(chunks):
            last = i == len(chunks) - 1 and not stall
            return {"type": "http.request", "body": chunks[i], "more_body": not last}
        await asyncio.Event().wait()  # a client that never sends the rest
        raise AssertionError("unreachable")

    return Request(scope, receive), reads


def _read(request: Request, limit: int, drain: int, timeout_s: float = 5.0) -> bytes:
    return asyncio.run(read_body(request, limit, drain, timeout_s))


def test_a_stalled_body_is_a_408_that_closes_the_connection() -> None:
    request, _ = _request([b'{"input_data": '], length=100, stall=True)
    started = time.monotonic()
    with pytest.raises(ApiError) as timed_out:
        _read(request, limit=65536, drain=1 << 20, timeout_s=0.3)
    assert time.monotonic() - started < 3
    error = timed_out.value
    assert (error.status, error.code, error.headers) == (
        408,
        "request_timeout",
        {"connection": "close"},
    )
    assert "0.3 s" in error.message and "15 bytes of 100" in error.message


def test_a_body_over_the_limit_is_read_to_its_end_before_the_413() -> None:
    chunk = b"x" * 10_000
    request, reads = _request([chunk] * 10)  # chunked: no content-length
    with pytest.raises(ApiError) as too_large:
        _read(request, limit=16_384, drain=1 << 20)
    assert reads[0] == 10  # all of it read: the client can finish sending, then read the 413
    error = too_large.value
    assert (error.status, error.code, error.headers) == (413, "payload_too_large", {})
    assert "100000 bytes" in error.message and "16384" in error.message
    # Past the drain cap it stops reading and closes the connection after the answer.
    request, reads = _request([chunk] * 10)
    with pytest.raises(ApiError) as capped:
        _read(request, limit=16_384, drain=30_000)
    assert reads[0] == 4 and capped.value.headers == {"connection": "close"}
    # A declared length beyond the cap is answered before reading anything.
    request, reads = _request([chunk] * 10, length=50_000_000)
    with pytest.raises(ApiError, match="50000000 bytes"):
        _read(request, limit=16_384, drain=1 << 20)
    assert reads[0] == 0
    request, _ = _request([b"[1, ", b"2]"], length=6)
    assert _read(request, limit=16_384, drain=0) == b"[1, 2]"
