"""Content hashes recorded when a stage accepts a file, verified by every reader before use.

A validated partition is trusted because validation read it. An edit made to
the stored file afterwards (by hand, by a buggy job, by restoring an old copy)
would feed training and scoring with rows no check has seen. So the stage that
accepts a file writes exactly the bytes it checked and then a small JSON
record of their sha256 (both writes atomic per object), and readers go
through `read_verified`, which hashes the bytes it actually read and refuses
them when the record is missing or differs, naming the item and the remedy.
A crash between the two writes leaves a record that does not match: readers
refuse the file until the stage runs again (it fails closed).

The record may carry small statistics of the accepted content (`stats`), so
later checks can compare against history without re-reading every file.
The lake is duck-typed (`write_bytes`, `read_bytes`, `exists`); pure Python.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol


class Lake(Protocol):
    def write_bytes(self, path: str, data: bytes) -> None: ...
    def read_bytes(self, path: str) -> bytes: ...
    def exists(self, path: str) -> bool: ...


class IntegrityError(RuntimeError):
    """A file that is not the one its stage accepted (changed, or never recorded)."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class IntegrityRecord:
    path: str
    sha256: str
    size: int
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        body = {"path": self.path, "sha256": self.sha256, "size": self.size, "stats": self.stats}
        return json.dumps(body, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> IntegrityRecord:
        body = json.loads(data)
        return cls(
            path=str(body["path"]),
            sha256=str(body["sha256"]),
            size=int(body["size"]),
            stats=dict(body.get("stats") or {}),
        )


def write_recorded(
    lake: Lake, path: str, data: bytes, record_path: str, stats: dict[str, Any] | None = None
) -> IntegrityRecord:
    """Write `data` to `path`, then the record of its hash to `record_path`."""
    record = IntegrityRecord(path=path, sha256=sha256_hex(data), size=len(data), stats=stats or {})
    lake.write_bytes(path, data)
    lake.write_bytes(record_path, record.to_json())
    return record


def read_record(lake: Lake, record_path: str) -> IntegrityRecord | None:
    """The stored record, or None when there is none."""
    if not lake.exists(record_path):
        return None
    return IntegrityRecord.from_json(lake.read_bytes(record_path))


def verify(
    data: bytes,
    record: IntegrityRecord | None,
    path: str,
    what: str,
    remedy: str,
    since: str = "it was accepted",
) -> str:
    """The sha256 of `data` when it is what `record` accepted for `path`; IntegrityError if not."""
    actual = sha256_hex(data)
    if record is None:
        raise IntegrityError(f"{what} ({path}) has no integrity record: {remedy}")
    if record.path != path:
        raise IntegrityError(f"{what}: the integrity record is for {record.path}, not {path}")
    if actual != record.sha256:
        raise IntegrityError(
            f"{what} changed since {since}: {path} has sha256 {actual[:16]}..., "
            f"{record.sha256[:16]}... was recorded ({record.size} bytes, now {len(data)}); "
            f"{remedy}"
        )
    return actual


def read_verified(
    lake: Lake,
    path: str,
    record_path: str,
    what: str,
    remedy: str,
    since: str = "it was accepted",
) -> tuple[bytes, str]:
    """The bytes at `path` and their sha256, verified against the record at `record_path`."""
    record = read_record(lake, record_path)
    data = lake.read_bytes(path)
    return data, verify(data, record, path, what, remedy, since)
