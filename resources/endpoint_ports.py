"""Ports of local online endpoints: one stable address per endpoint, free-port probes.

An endpoint keeps the port it was given (server.json) across stops, restarts and crashed
workers, so its scoring_uri never changes. New ports are picked below the kernel's
ephemeral range where possible: a port there is not handed to some outgoing connection
while the endpoint is stopped. `reserved_ports` lists what the other endpoints under one
root keep, so a new endpoint does not take a stopped one's address.
"""

from __future__ import annotations

import json
import random
import socket
from pathlib import Path


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
