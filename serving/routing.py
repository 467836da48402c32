"""Traffic split and mirroring across the deployments behind one endpoint.

Design constraints: a deployment is chosen from the request id (CRC32 into 100
slots laid out by the traffic percentages), so the choice costs one hash, follows
the configured weights over many requests, and a retried request with the same
`x-request-id` lands on the same deployment. Mirroring hashes the id again, salted
with the mirror deployment's name, so mirror selection is independent of the live
choice. Like Azure ML, a request never mirrors to the deployment that answered it.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping


class Router:
    """Maps request ids to a live deployment and to the deployments that get a copy."""

    def __init__(self, traffic: Mapping[str, int], mirror_traffic: Mapping[str, int]) -> None:
        self._slots = tuple(name for name, pct in traffic.items() for _ in range(pct))
        if len(self._slots) != 100:
            raise ValueError(f"traffic must sum to 100, got {len(self._slots)}")
        self._mirrors = tuple(
            (name, name.encode() + b"/", pct) for name, pct in mirror_traffic.items() if pct > 0
        )

    def pick(self, request_id: str) -> str:
        return self._slots[zlib.crc32(request_id.encode()) % 100]

    def mirrors(self, request_id: str, live: str) -> list[str]:
        if not self._mirrors:
            return []
        rid = request_id.encode()
        return [
            name
            for name, salt, pct in self._mirrors
            if name != live and zlib.crc32(salt + rid) % 100 < pct
        ]
