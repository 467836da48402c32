"""Endpoint workers: scale out/in on one shared port while requests flow, and a draining stop.

Protects: scaling out and in on one shared port while requests flow (keep-alive and
one-connection-per-request clients) fails no request; a key rotation reaches every
worker; a stopping worker answers the connections the kernel had already queued on its
listeners (plain uvicorn resets them). Load is 4 client threads for a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from mlops_core.monitoring.health import parse_prometheus
from resources.endpoint_local import LocalOnlineEndpoints
from resources.endpoint_processes import free_port
from tests.resources.endpoint_helpers import gone, payload, ready, saved_model


def _hammer(url: str, key: str, keep_alive: bool, stop: threading.Event, out: Counter) -> None:
    """Score until `stop`; count statuses, and transport errors under their class name."""
    headers = {"Authorization": f"Bearer {key}"}
    body = payload([[30.0, 1.0]])
    with httpx.Client(timeout=20) as client:
        while not stop.is_set():
            try:
                if keep_alive:
                    response = client.post(url, json=body, headers=headers)
                else:  # a new connection per request: exercises the listeners' accept queues
                    response = httpx.post(url, json=body, headers=headers, timeout=20)
            except httpx.TransportError as exc:
                out[type(exc).__name__] += 1
                continue
            out[response.status_code] += 1


def _wait_for_more(out: Counter, n: int, timeout: float = 30.0) -> None:
    """Block until `n` more requests were answered (load keeps flowing)."""
    goal, deadline = out.total() + n, time.monotonic() + timeout
    while out.total() < goal:
        assert time.monotonic() < deadline, f"load stalled: {out}"
        time.sleep(0.05)


def _served(endpoints: LocalOnlineEndpoints, name: str) -> dict[str, float]:
    """Scoring requests each worker answered, from its own /metrics."""
    return {
        pid: sum(s.value for s in parse_prometheus(text) if s.name == "requests_total")
        for pid, text in endpoints.worker_metrics(name).items()
    }


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_scale_out_rotate_keys_and_scale_in_under_load(endpoints, tmp_path):
    info = endpoints.create_or_update_deployment(
        "t-ws", "blue", saved_model(tmp_path / "m"), "m", "1"
    )
    assert info.workers == 1 and len(info.extra["pids"]) == 1
    secondary = endpoints.get_keys("t-ws")["secondary"]  # clients use it while primary rotates
    stop, out = threading.Event(), Counter()
    load = [
        threading.Thread(target=_hammer, args=(info.scoring_uri, secondary, k < 2, stop, out))
        for k in range(4)
    ]
    for thread in load:
        thread.start()
    try:
        _wait_for_more(out, 20)
        out_info = endpoints.scale("t-ws", 3)
        assert out_info.workers == 3 and out_info.scoring_uri == info.scoring_uri
        assert out_info.extra["pids"][0] == info.extra["pid"]  # the first worker kept serving
        deadline = time.monotonic() + 30
        while min(_served(endpoints, "t-ws").values(), default=0) == 0:  # kernel spreads load
            assert time.monotonic() < deadline, _served(endpoints, "t-ws")
            time.sleep(0.2)

        old_primary = endpoints.get_keys("t-ws")["primary"]
        new_primary = endpoints.regenerate_key("t-ws", "primary")["primary"]
        for url in out_info.extra["admin_urls"]:  # every worker reloaded, not just one
            details = {"Authorization": f"Bearer {new_primary}"}  # /health details need a key
            health = httpx.get(f"{url}/health", headers=details).json()
            assert health["reloads"] == 1, (url, health)
            for key, status in [(new_primary, 200), (old_primary, 401)]:
                response = httpx.post(
                    f"{url}/score",
                    json=payload([[1.0, 1.0]]),
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert response.status_code == status, (url, response.text)
        _wait_for_more(out, 20)

        in_info = endpoints.scale("t-ws", 1)  # SIGTERM two workers while requests flow
        assert in_info.workers == 1 and in_info.extra["pids"] == [info.extra["pid"]]
        assert all(gone(pid) for pid in out_info.extra["pids"][1:])
        _wait_for_more(out, 20)
    finally:
        stop.set()
        for thread in load:
            thread.join(timeout=30)
    assert set(out) == {200} and out[200] >= 60, out  # no failed or refused request

    stats = endpoints.process_stats("t-ws", interval_s=0.2)
    assert [w["pid"] for w in stats["workers"]] == [info.extra["pid"]]
    assert stats["total"]["rss_bytes"] == stats["workers"][0]["rss_bytes"] > 20 * 2**20
    assert stats["total"]["cpu_percent"] >= 0 and stats["total"]["workers"] == 1

    endpoints.stop("t-ws")
    stopped = endpoints.get("t-ws")
    assert not stopped.running and stopped.workers == 0 and stopped.extra["pids"] == []
    assert gone(info.extra["pid"])


# Runs the real server, whose SIGTERM shutdown first blocks its event loop for a while
# (as a busy loop would), so connections made meanwhile wait in the kernel's queue.
_LATE_SHUTDOWN = """
import os, sys, time
import serving.__main__ as main
drain = main.DrainingServer.shutdown
async def late(self, sockets=None):
    open(os.environ["BLOCKED_MARK"], "w").close()
    time.sleep(1.5)
    await drain(self, sockets)
main.DrainingServer.shutdown = late
sys.exit(main.main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_stopping_worker_answers_connections_the_kernel_queued(tmp_path):
    folder = tmp_path / "ep"
    folder.mkdir()
    config = {
        "endpoint": "t-queued",
        "deployments": {
            "blue": {
                "model_path": saved_model(tmp_path / "m"),
                "model_name": "m",
                "model_version": "1",
            }
        },
        "traffic": {"blue": 100},
        "keys": {"primary": "queued-primary-key"},
        "inference_log_dir": str(folder / "log"),
    }
    (folder / "config.json").write_text(json.dumps(config))
    port, admin, mark = free_port(), free_port(), tmp_path / "blocked"
    with open(folder / "server.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LATE_SHUTDOWN, "--config", str(folder / "config.json"),
             "--port", str(port), "--reuse-port", "--admin-port", str(admin),
             "--log-level", "warning"],
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "BLOCKED_MARK": str(mark)},
            stdout=log,
            stderr=log,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not ready(admin):
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        while not mark.exists():
            assert time.monotonic() < deadline, "shutdown did not begin"
            time.sleep(0.02)
        clients = []
        for target in (port, admin):  # queued on both listeners, never accepted by the loop
            conn = socket.create_connection(("127.0.0.1", target), timeout=20)
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            clients.append(conn)
        for conn in clients:
            with conn:
                answer = b""
                while chunk := conn.recv(65536):  # the server closes after its answer
                    answer += chunk
            head = answer.split(b"\r\n\r\n")[0].decode().lower()
            assert head.startswith("http/1.1 200") and "connection: close" in head, answer
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
