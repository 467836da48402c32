"""Reading a scoring request's body: content type, size, deadline, JSON.

Design constraints:
- Nothing a client sends may raise past these functions: every problem is an
  `ApiError` (HTTP status) or an `InputError` (400) whose message names it.
- One parser decides what JSON is: orjson. Python's own `json` reads only what orjson
  refuses for NaN/Infinity (MLflow's client writes them), and its result must then be
  something orjson could have produced (integers in 64 bits, valid Unicode, bounded
  nesting); otherwise later steps (the inference log, error bodies) would fail on it.
- A body over the limit is read and discarded (up to `drain_bytes`) before the 413, so a
  client that writes its whole body before reading sees the answer, not a reset.
- The whole body must arrive within `timeout_s` (408 and the connection closed).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from starlette.requests import Request

from serving.errors import ApiError
from serving.scoring.errors import InputError

_CLOSE = {"connection": "close"}


def _nonfinite(name: str) -> float:
    return float(name)  # NaN, Infinity, -Infinity: the schema judges them per column


def _fallback(body: bytes, first: orjson.JSONDecodeError) -> Any:
    """Python's parser for NaN/Infinity, held to what orjson accepts."""
    try:
        payload = json.loads(body, parse_constant=_nonfinite)
    except RecursionError:
        problem = "the body is not valid JSON: nested too deeply"
        raise InputError("malformed_json", problem) from None
    except ValueError:  # not JSON either way (also: an integer of over 4300 digits)
        raise InputError("malformed_json", f"the body is not valid JSON: {first}") from None
    try:
        orjson.dumps(payload)  # C speed; refuses exactly what the log and answers cannot hold
    except orjson.JSONEncodeError as exc:
        problem = {
            "Integer exceeds 64-bit range": "an integer beyond the 64-bit range",
            "str is not valid UTF-8: surrogates not allowed": "a lone UTF-16 surrogate "
            "(\\ud800-\\udfff) in a string",
            "Recursion limit reached": "arrays or objects nested too deeply",
        }.get(str(exc), str(exc))
        raise InputError("malformed_json", f"the body is not valid JSON: {problem}") from None
    return payload


def decode_json(body: bytes) -> Any:
    if not body:
        raise InputError("malformed_json", "the request body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # Python's json (so MLflow's own client) writes NaN and Infinity for odd floats;
        # parse those like `mlflow models serve` does and let the schema judge the values.
        if b"NaN" in body or b"Infinity" in body:
            return _fallback(body, exc)
        raise InputError("malformed_json", f"the body is not valid JSON: {exc}") from None


def check_content_type(header: str | None, csv: bool = False) -> str:
    """ "json" or (where `csv` is allowed, as MLflow's /invocations does) "csv"; else a 415."""
    mime, _, params = (header or "").partition(";")
    kind = {"application/json": "json", "text/csv": "csv"}.get(mime.strip().lower())
    charset = params.strip().lower().replace('"', "")
    if kind is None or (kind == "csv" and not csv) or charset not in ("", "charset=utf-8"):
        wanted = "'application/json' or 'text/csv'" if csv else "'application/json'"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the body as {wanted} (UTF-8); got {header!r}",
        )
    return kind


def _too_large(limit: int, size: int | None, close: bool) -> ApiError:
    what = f"the body is {size} bytes" if size is not None else f"the body exceeds {limit} bytes"
    return ApiError(
        413,
        "payload_too_large",
        f"{what}; this endpoint accepts at most {limit}",
        _CLOSE if close else None,  # a body left unread: the connection cannot go on
    )


async def read_body(request: Request, limit: int, drain_bytes: int, timeout_s: float) -> bytes:
    """The body, at most `limit` bytes, complete within `timeout_s` (ApiError otherwise)."""
    length = request.headers.get("content-length") or ""
    declared = None  # ASCII digits only ("²".isdigit()); 19 or more is beyond any limit
    if length.isascii() and length.isdigit():
        declared = int(length) if len(length) < 19 else 10**18
    if declared is not None and declared > max(limit, drain_bytes):
        raise _too_large(limit, declared, close=True)
    chunks: list[bytes] = []
    size, more = 0, True
    try:
        async with asyncio.timeout(timeout_s):
            while more:
                message = await request.receive()
                if message["type"] != "http.request":  # http.disconnect
                    raise ApiError(400, "client_disconnected", "the client went away mid-body")
                chunk, more = message.get("body", b""), message.get("more_body", False)
                size += len(chunk)
                if size <= limit:
                    chunks.append(chunk)
                elif more and size > drain_bytes:  # stop discarding: answer and close
                    raise _too_large(limit, declared, close=True)
    except TimeoutError:
        if size > limit:
            raise _too_large(limit, declared, close=True) from None
        raise ApiError(
            408,
            "request_timeout",
            f"the request body did not arrive within {timeout_s:g} s "
            f"({size} bytes of {declared if declared is not None else 'a chunked body'})",
            _CLOSE,
        ) from None
    if size > limit:
        raise _too_large(limit, size, close=False)
    return b"".join(chunks)
