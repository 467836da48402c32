"""Slow-client limits at the connection: header deadline, body backstop, leftover bodies.

uvicorn times out only idle keep-alive connections; a client that opens a connection
and sends its headers (or its body) a byte at a time holds a connection, a task and
memory for as long as it likes. `guarded_protocol(base, limits)` subclasses uvicorn's
HTTP protocol (httptools or h11) with one timer per connection, armed per phase:

- headers: from the connection's start, or the first byte of a later request, until the
  request's headers are complete; past `header_timeout_s` it answers 408 (JSON) when the
  client sent part of a request, and closes the connection;
- body: the app reads the body under its own deadline and answers 408 itself
  (`serving.body`); past `body_timeout_s` + `BACKSTOP_S` with the body still incomplete
  (an app that never read it) the connection is closed;
- leftover: a response sent before the body was read in full (401, 415, ...); the rest
  of the body must arrive within `header_timeout_s` or the connection is closed.

Design constraints: per request at most two timer operations on the event loop and a
few attribute reads per `data_received`; both uvicorn protocols keep `cycle` (the
latest request) with `more_body` and `response_complete`, which is all it reads.
Limits are read from `limits()` when a timer is armed, so a config reload applies to
the next phase.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

Limits = Callable[[], tuple[float, float]]  # (header_timeout_s, body_timeout_s)
BACKSTOP_S = 1.0


def _timeout_answer(seconds: float) -> bytes:
    body = orjson.dumps(
        {
            "error": {
                "code": "request_timeout",
                "message": f"the request headers did not arrive within {seconds:g} s",
            }
        }
    )
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def guarded_protocol(base: type[Any], limits: Limits) -> type[asyncio.Protocol]:
    """`base` (a uvicorn HTTP protocol class) with header, body and leftover deadlines."""

    class GuardedProtocol(base):  # type: ignore[misc, valid-type]
        _timer: asyncio.TimerHandle | None = None
        _phase: str | None = None
        _watched: Any = None  # the request (cycle) the armed phase is about
        _partial = False  # bytes of a request whose headers are incomplete arrived

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._arm("headers", limits()[0])

        def data_received(self, data: bytes) -> None:
            before = self.cycle
            super().data_received(data)
            after = self.cycle
            if after is not before and after is not None:  # headers complete
                if after.more_body and not after.response_complete:
                    self._arm("body", limits()[1] + BACKSTOP_S)
                else:
                    self._disarm()
            elif after is None or (after.response_complete and not after.more_body):
                # Between requests: these bytes begin the next one.
                if self._phase != "headers":
                    self._arm("headers", limits()[0])
                self._partial = True

        def on_response_complete(self) -> None:
            super().on_response_complete()
            cycle = self.cycle
            if cycle is not None and cycle.more_body:  # answered before the body was read
                self._arm("leftover", limits()[0])
            elif self._phase != "headers":
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self, phase: str, seconds: float) -> None:
            if self._timer is not None:
                self._timer.cancel()
            self._phase, self._watched, self._partial = phase, self.cycle, False
            self._timer = self.loop.call_later(seconds, self._expire, seconds)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._phase, self._watched = None, None, None

        def _expire(self, seconds: float) -> None:
            phase, watched, cycle = self._phase, self._watched, self.cycle
            self._timer, self._phase, self._watched = None, None, None
            transport = self.transport
            if transport is None or transport.is_closing() or cycle is not watched:
                return  # closed already, or a new request began (it re-armed the timer)
            if phase == "headers":
                idle = cycle is None or cycle.response_complete
                if idle and self._partial:
                    transport.write(_timeout_answer(seconds))
                transport.close()
            elif cycle is not None and cycle.more_body:  # body or leftover still incomplete
                transport.close()

    GuardedProtocol.__name__ = GuardedProtocol.__qualname__ = f"Guarded{base.__name__}"
    return GuardedProtocol
