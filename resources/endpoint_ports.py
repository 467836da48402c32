"""Addresses of local online endpoints: one stable port per endpoint, port and HTTP probes.

An endpoint keeps the port it was given (server.json) across stops, restarts and crashed
workers, so its scoring_uri never changes. New ports are picked below the kernel's
ephemeral range where possible: a port there is not handed to some outgoing connection
while the endpoint is stopped. `reserved_ports` lists what the other endpoints under one
root keep, so a new endpoint does not take a stopped one's address.

Each worker also listens on an admin port of its own: that is where it is probed
(`answering`, `is_healthy`) and reloaded, since the shared port answers from any worker.
httpx is imported where used (loading the code location must not import it).
"""

from __future__ import annotations

import json
import random
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# A saturated worker still answers /health within this (the model runs on threads).
PROBE_TIMEOUT_S = 3.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether a new listener could bind 127.0.0.1:`port` alone (no SO_REUSEPORT sharing)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    """The lowest port the kernel hands out to outgoing connections (Linux: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def allocate_port(avoid: set[int]) -> int:
    """A free port for an endpoint to keep: below the ephemeral range where possible (so no
    outgoing connection takes it while the endpoint is stopped), and none in `avoid`."""
    low, rng = _ephemeral_low(), random.SystemRandom()
    if low > 20000:
        for _ in range(64):
            port = rng.randrange(20000, low)
            if port not in avoid and port_is_free(port):
                return port
    while (port := free_port()) in avoid:
        pass
    return port


def reserved_ports(root: Path, but: str) -> set[int]:
    """The ports recorded by the endpoints under `root` other than `but`."""
    ports = set()
    for state_file in root.glob("*/server.json"):
        if state_file.parent.name == but:
            continue
        try:
            port = json.loads(state_file.read_text()).get("port")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(port, int):
            ports.add(port)
    return ports


def admin_port(state: dict[str, Any], worker: dict[str, Any]) -> int:
    return worker.get("admin_port") or state["port"]


def is_healthy(port: int, timeout: float = 5.0) -> bool:
    """GET /health; a saturated worker gets `timeout` before it counts as hung."""
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def answering(state: dict[str, Any], workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `workers` (running processes) that answer /health on their own port now."""
    if len(workers) < 2:
        return [w for w in workers if is_healthy(admin_port(state, w), PROBE_TIMEOUT_S)]
    with ThreadPoolExecutor(len(workers)) as pool:
        ok = list(pool.map(lambda w: is_healthy(admin_port(state, w), PROBE_TIMEOUT_S), workers))
    return [w for w, good in zip(workers, ok, strict=True) if good]


def reload_worker(state: dict[str, Any], worker: dict[str, Any], key: str) -> str | None:
    """Reload one worker; the refusal's text, or None once it serves the new config."""
    import httpx

    port = admin_port(state, worker)
    response = httpx.post(
        f"http://127.0.0.1:{port}/-/reload",
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )
    return None if response.status_code == 200 else f"worker {worker['pid']}: {response.text}"


def worker_texts(pids: list[int], urls: list[str], path: str) -> dict[str, str]:
    """GET `path` from each worker's own URL: its text by PID (a worker gone is left out)."""
    import httpx

    texts = {}
    for pid, url in zip(pids, urls, strict=True):
        try:
            response = httpx.get(f"{url}{path}", timeout=5)
        except httpx.HTTPError:
            continue
        if response.status_code == 200:
            texts[str(pid)] = response.text
    return texts
