"""Append-only, hash-chained JSONL audit trail: who did what to which model, where, when, why.

Each line is one JSON record whose `hash` is the SHA-256 of the record
without `hash` (canonical JSON: sorted keys, no spaces), and whose
`prev_hash` is the previous record's `hash`, so an edited, inserted or
reordered line breaks the chain and `verify()` reports its line number.
Constraints:

- Append-only: the file is opened in append mode and never rewritten or
  truncated; a torn last line (crash mid-write) is left in place, reported
  by `verify()`, and the next record chains to the last intact one.
- Durable: each record is written as one full line, flushed and fsync'ed
  before `record()` returns.
- Safe across processes on one host: an exclusive `fcntl.flock` covers
  reading the chain head and appending (POSIX only; not for NFS/SMB shares).
- Anchored: a file that was cut, emptied, deleted or rewritten and re-chained
  looks intact on its own, so after each append (still under the lock, so
  anchors see heads in file order) the new (seq, hash) is published to every
  configured `AuditAnchor` (`anchors.py`), and `verify()` compares the file with
  each anchor's history. If an anchor refuses or fails, the record is already
  durable in the file: `record()` still raises `AnchorError` naming the anchor
  and seq (an audit write never silently skips anchoring) and `verify()` keeps
  reporting that seq as never anchored.
- Pure Python, no Dagster.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_core.governance.anchors import Anchor, AnchorError, AuditAnchor, anchor_problems

GENESIS_HASH = "0" * 64
OUTCOMES = frozenset({"allowed", "denied", "succeeded", "failed"})
# The actions the product records; other non-empty names are accepted too.
ACTIONS = frozenset(
    {"approve", "reject", "promote", "deploy", "rollback", "scale", "key_rotate", "policy_check"}
)
_TAIL_CHUNK = 64 * 1024


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the record without its `hash` field, over canonical JSON."""
    body = {k: v for k, v in record.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) and "hash" in record else None


def _last_intact(fd: int) -> dict[str, Any] | None:
    """The last parseable record, reading backwards from the end in chunks."""
    end = os.lseek(fd, 0, os.SEEK_END)
    buf = b""
    pos = end
    while pos > 0:
        step = min(_TAIL_CHUNK, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        lines = buf.split(b"\n")
        # lines[0] may be cut by the chunk boundary unless we reached the start.
        complete = lines if pos == 0 else lines[1:]
        for line in reversed(complete):
            if line.strip() and (record := _parse(line)) is not None:
                return record
        buf = lines[0] if pos else b""
    return None


def _fsync_dir(folder: Path) -> None:
    """Make a new file's directory entry durable too."""
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class AuditTrail:
    """An append-only audit file at `path` (created with its folder on first write).

    `anchors` receive each new head; keep them somewhere the file's writers cannot
    rewrite (another store, an immutable blob container).
    """

    def __init__(self, path: str | Path, anchors: Sequence[AuditAnchor] = ()) -> None:
        self.path = Path(path)
        self.anchors: tuple[AuditAnchor, ...] = tuple(anchors)

    def record(
        self,
        action: str,
        actor: str,
        target: str,
        environment: str,
        outcome: str,
        reason: str = "",
        details: dict[str, Any] | None = None,
        persona: str = "",
        *,
        caller: str = "",
        policy_hash: str = "",
    ) -> dict[str, Any]:
        """Append one record and return it (with `seq`, `ts`, `prev_hash` and `hash`).

        `actor` is the policy user the action is attributed to; `caller` is the
        authenticated identity that made the call (OS user, Entra ID object id, or the
        automation's identity) and `policy_hash` the content hash of the policy in force.
        """
        if not action or not actor:
            raise ValueError("an audit record needs an action and an actor")
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; use one of {sorted(OUTCOMES)}")
        # Round-trip details through JSON now so the hash covers exactly what is stored.
        clean = json.loads(json.dumps(details or {}, default=str))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _last_intact(fd)
            size = os.lseek(fd, 0, os.SEEK_END)
            torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
            record: dict[str, Any] = {
                "seq": (int(last["seq"]) + 1) if last else 1,
                "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
                "action": action,
                "actor": actor,
                "persona": persona,
                "target": target,
                "environment": environment,
                "outcome": outcome,
                "reason": reason,
                "details": clean,
                "caller": caller,
                "policy_hash": policy_hash,
                "prev_hash": last["hash"] if last else GENESIS_HASH,
            }
            record["hash"] = record_hash(record)
            line = json.dumps(record, ensure_ascii=False) + "\n"
            data = (b"\n" if torn else b"") + line.encode("utf-8")
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
            if created:
                _fsync_dir(self.path.parent)
            failures = self._publish(record["seq"], record["hash"])
        finally:
            os.close(fd)  # closing releases the flock
        if failures:
            raise AnchorError(
                f"audit record seq {record['seq']} is written to {self.path} but could not be "
                f"anchored: {'; '.join(failures)}. `verify()` reports it until this is resolved"
            )
        return record

    def _publish(self, seq: int, head_hash: str) -> list[str]:
        """Publish the head to every anchor; the failures, each naming its anchor."""
        failures = []
        for anchor in self.anchors:
            try:
                anchor.publish(seq, head_hash)
            except Exception as err:  # every anchor is tried, all failures raised
                failures.append(f"{anchor.name}: {err}")
        return failures

    def _lines(self, anchors: dict[str, list[Anchor] | str] | None = None) -> list[bytes]:
        """The file's lines; with `anchors`, fill it with each anchor's history (or why it could
        not be read) under the same shared lock, so a concurrent append cannot leave an anchor
        ahead of the lines read."""
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            f = None
        try:
            if f is not None:
                fcntl.flock(f, fcntl.LOCK_SH)
            lines = f.read().split(b"\n") if f is not None else []
            for anchor in self.anchors if anchors is not None else ():
                try:
                    anchors[anchor.name] = anchor.history()
                except Exception as err:  # reported by verify()
                    anchors[anchor.name] = str(err) or type(err).__name__
            return lines
        finally:
            if f is not None:
                f.close()

    def read(
        self,
        newest_first: bool = True,
        limit: int | None = None,
        action: str | None = None,
        target: str | None = None,
    ) -> list[dict[str, Any]]:
        """Intact records, filtered by action and/or target; bad lines are left to `verify()`."""
        records = [r for line in self._lines() if line.strip() and (r := _parse(line))]
        records = [
            r
            for r in records
            if (action is None or r.get("action") == action)
            and (target is None or r.get("target") == target)
        ]
        if newest_first:
            records.reverse()
        return records if limit is None else records[:limit]

    def head(self) -> str:
        """The hash of the last intact record (the genesis hash when empty)."""
        records = self.read(newest_first=True, limit=1)
        return records[0]["hash"] if records else GENESIS_HASH

    def verify(self) -> list[str]:
        """Problems found, each naming its line number or anchor; an empty list means intact.

        The chain is checked line by line; then each anchor's history is compared with the
        intact records (`anchor_problems`): the last one must be the newest anchor, and every
        anchored (seq, hash) must still be there.
        """
        problems: list[str] = []
        histories: dict[str, list[Anchor] | str] = {}
        intact: list[Anchor] = []
        prev_hash, prev_seq, prev_line = GENESIS_HASH, 0, 0
        for number, line in enumerate(self._lines(histories), start=1):
            if not line.strip():
                continue
            record = _parse(line)
            if record is None:
                problems.append(f"line {number}: not a valid JSON audit record")
                continue
            if record_hash(record) != record["hash"]:
                problems.append(f"line {number}: hash mismatch: the record was edited")
            if record.get("prev_hash") != prev_hash:
                after = f"line {prev_line}" if prev_line else "the start of the file"
                problems.append(f"line {number}: chain broken: prev_hash does not match {after}")
            seq = record.get("seq")
            if not isinstance(seq, int) or seq != prev_seq + 1:
                problems.append(f"line {number}: seq {seq!r} does not follow {prev_seq}")
            prev_hash = record["hash"]
            prev_seq = seq if isinstance(seq, int) else prev_seq
            prev_line = number
            if isinstance(seq, int):
                intact.append((seq, str(record["hash"])))
        for name, history in histories.items():
            if isinstance(history, str):
                problems.append(f"anchor {name}: cannot be read: {history}")
            else:
                problems += anchor_problems(name, history, intact)
        return problems
