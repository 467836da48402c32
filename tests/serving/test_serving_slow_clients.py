"""Slow and oversized clients against the real server process (`python -m serving`).

Protects: a client that sends its headers or its body a byte at a time, or nothing at all,
is cut off within the configured deadlines (408 JSON where it sent part of a request) while
other clients are served; a client that writes a whole body over the limit and only then
reads gets the 413 JSON, not a broken pipe, even when it asked to close the connection.
Bounded: 50 slow sockets for at most ~15 s, one normal client thread; all closed at the end.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from serving.guard import BACKSTOP_S
from tests.serving.conftest import AUTH, COLUMNS, MLFLOW_PANDAS_WARNING, PRIMARY, Server, rows

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings(f"ignore:{MLFLOW_PANDAS_WARNING}"),
]
BODY = {"input_data": {"columns": COLUMNS, "data": rows(2)}}
TIMEOUT_S = 1.0  # header_timeout_s and body_timeout_s of the server under test
SLACK_S = 4.0  # a loaded 2-core CI box


def _head(length: int, close: bool = False) -> bytes:
    return (
        f"POST /score HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {PRIMARY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    ).encode()


def _open_slow_clients(port: int, n: int) -> dict[socket.socket, dict]:
    """n connections: silent ones, slow headers and slow bodies (a third each)."""
    clients = {}
    for i in range(n):
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        kind = ("silent", "headers", "body")[i % 3]
        if kind == "headers":
            conn.sendall(b"POST /score HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        elif kind == "body":
            conn.sendall(_head(100_000) + b'{"input_data": ')
        conn.setblocking(False)
        clients[conn] = {"kind": kind, "opened": time.monotonic(), "data": b""}
    return clients


def _trickle_until_cut(clients: dict[socket.socket, dict], deadline: float) -> None:
    """Send a byte per 0.2 s on every open slow connection until the server closes each."""
    live = dict(clients)
    while live and time.monotonic() < deadline:
        readable, _, _ = select.select(list(live), [], [], 0.2)
        for conn in readable:
            try:
                chunk = conn.recv(65536)
            except (ConnectionResetError, BlockingIOError):
                chunk = b""
            live[conn]["data"] += chunk
            if not chunk:
                live.pop(conn)["closed"] = time.monotonic()
        for conn, info in list(live.items()):
            if info["kind"] == "silent":
                continue
            # A refused send means the server closed it; the next select sees the end.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, BlockingIOError):
                conn.send(b"a" if info["kind"] == "headers" else b" ")


def _score_until(url: str, stop: threading.Event, out: Counter) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            try:
                out[client.post(f"{url}/score", json=BODY, headers=AUTH).status_code] += 1
            except httpx.HTTPError as exc:
                out[type(exc).__name__] += 1


def test_slow_clients_are_cut_off_while_others_are_served(
    serve: Callable[[Path], Server], write_config: Callable[..., Path]
) -> None:
    server = serve(write_config(header_timeout_s=TIMEOUT_S, body_timeout_s=TIMEOUT_S))
    port = int(server.url.rsplit(":", 1)[1])
    stop, served = threading.Event(), Counter()
    normal = threading.Thread(target=_score_until, args=(server.url, stop, served))
    clients = _open_slow_clients(port, 50)
    normal.start()
    try:
        _trickle_until_cut(clients, time.monotonic() + 3 * TIMEOUT_S + 2 * SLACK_S)
        during = served.total()
    finally:
        stop.set()
        normal.join(timeout=30)
        for conn in clients:
            conn.close()
    assert set(served) == {200} and during >= 3, served  # served all along
    bound = TIMEOUT_S + BACKSTOP_S + SLACK_S
    for info in clients.values():
        assert "closed" in info, f"a slow {info['kind']} client was never cut off"
        held = info["closed"] - info["opened"]
        assert 0.8 * TIMEOUT_S <= held <= bound, (info["kind"], held)
        if info["kind"] == "silent":
            assert info["data"] == b""  # nothing asked, nothing answered
        elif info["data"]:  # what arrived before the close is the 408
            head, _, body = info["data"].partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408"), info["data"][:200]
            assert json.loads(body)["error"]["code"] == "request_timeout"
    answered = [i for i in clients.values() if i["data"]]
    assert answered, "no slow client got the 408 answer"
    assert httpx.post(f"{server.url}/score", json=BODY, headers=AUTH).status_code == 200


def _send_all_then_read(port: int, body: bytes, close: bool) -> bytes:
    """Write headers and the whole body (small send buffer: the server must read along)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        conn.sendall(_head(len(body), close) + body)  # BrokenPipeError if answered early
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_a_client_that_sends_its_whole_body_reads_the_413(
    serve: Callable[[Path], Server], write_config: Callable[..., Path]
) -> None:
    server = serve(write_config())  # 64 KiB body limit, bodies drained up to 4 MiB
    port = int(server.url.rsplit(":", 1)[1])
    big = b'{"input_data": ' + b" " * 2_000_000 + b"}"
    for close in (True, False):
        answer = _send_all_then_read(port, big, close)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), answer[:200]
        error = json.loads(body)["error"]
        assert error["code"] == "payload_too_large" and "65536" in error["message"]
    with httpx.Client(timeout=20) as client:
        for content in (big, iter([big[:1_000_000], big[1_000_000:]])):  # sized and chunked
            response = client.post(
                f"{server.url}/score",
                content=content,
                headers={**AUTH, "content-type": "application/json"},
            )
            assert response.status_code == 413, response.text
            assert response.json()["error"]["code"] == "payload_too_large"
        after = client.post(f"{server.url}/score", json=BODY, headers=AUTH)  # same connection
        assert after.status_code == 200, after.text
