"""Anchors for the audit trail's head: (seq, hash) pairs kept outside the audit file.

The hash chain alone shows an edited or dropped line, but not a file that was
cut, emptied, deleted, or rewritten and re-chained from the start: whoever can
write the file can recompute every hash. `AuditTrail` therefore publishes each
new head to one or more `AuditAnchor`s, and `verify()` compares the file with
them (`anchor_problems`).

- `AuditAnchor`: the protocol (`name`, `publish`, `latest`, `history`).
- `SqliteAnchor`: a local SQLite table whose triggers refuse UPDATE, DELETE and
  any insert that does not extend the newest anchor, so rewriting it takes
  deliberate schema tampering (dropping the triggers); keep it away from the
  audit file (the local environment puts it next to the prod MLflow store).
- The Azure blob (WORM container) and Dagster event-log anchors live in
  `resources/audit_anchors.py`.

Pure Python (stdlib `sqlite3`), no Dagster.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

Anchor = tuple[int, str]
TABLE = "audit_anchor"
_TRIGGERS = {
    f"{TABLE}_no_update": "UPDATE",
    f"{TABLE}_no_delete": "DELETE",
    f"{TABLE}_append_only": "INSERT",
}
_SCHEMA = f"""
CREATE TABLE {TABLE} (
    seq INTEGER PRIMARY KEY CHECK (seq >= 1),
    hash TEXT NOT NULL CHECK (length(hash) = 64),
    anchored_at TEXT NOT NULL
);
CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'audit anchors are append-only: UPDATE refused'); END;
CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'audit anchors are append-only: DELETE refused'); END;
-- Fires before conflict resolution, so INSERT OR REPLACE cannot overwrite an anchor either.
CREATE TRIGGER {TABLE}_append_only BEFORE INSERT ON {TABLE}
WHEN NEW.seq <= (SELECT COALESCE(MAX(seq), 0) FROM {TABLE})
BEGIN SELECT RAISE(ABORT, 'audit anchors are append-only: seq must exceed the newest'); END;
"""


class AnchorError(RuntimeError):
    """An anchor could not be written or read, or refuses what it was given."""


@runtime_checkable
class AuditAnchor(Protocol):
    """Somewhere outside the audit file that keeps every head the trail had."""

    @property
    def name(self) -> str:
        """Where the anchor lives, for messages (e.g. `sqlite:/path/anchors.db`)."""
        ...

    def publish(self, seq: int, head_hash: str) -> None:
        """Record that the trail's head is now record `seq` with hash `head_hash`."""
        ...

    def latest(self) -> Anchor | None:
        """The newest (seq, hash), or None when nothing was ever anchored."""
        ...

    def history(self) -> list[Anchor]:
        """Every anchored (seq, hash), oldest first."""
        ...


class SqliteAnchor:
    """An append-only `audit_anchor` table in a SQLite database at `path`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def name(self) -> str:
        return f"sqlite:{self.path}"

    def _check_schema(self, conn: sqlite3.Connection) -> bool:
        """False when the table does not exist yet; AnchorError if its triggers are gone."""
        rows = conn.execute(
            "SELECT type, name FROM sqlite_master WHERE tbl_name = ?", (TABLE,)
        ).fetchall()
        if not rows:
            return False
        missing = sorted(set(_TRIGGERS) - {name for kind, name in rows if kind == "trigger"})
        if missing:
            raise AnchorError(
                f"the append-only trigger(s) {', '.join(missing)} are missing: "
                "the anchor table's schema was tampered with"
            )
        return True

    def publish(self, seq: int, head_hash: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if not self._check_schema(conn):
                    for statement in _SCHEMA.split(";\n"):
                        if statement.strip():
                            conn.execute(statement)
                conn.execute(
                    f"INSERT INTO {TABLE} (seq, hash, anchored_at) VALUES (?, ?, ?)",
                    (seq, head_hash, now),
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as err:
            raise AnchorError(f"cannot anchor seq {seq}: {err}") from err
        finally:
            conn.close()

    def _read(self, query: str) -> list[Anchor]:
        if not self.path.exists():
            return []
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        except sqlite3.DatabaseError as err:
            raise AnchorError(f"cannot open: {err}") from err
        try:
            if not self._check_schema(conn):
                return []
            return [(int(seq), str(h)) for seq, h in conn.execute(query)]
        except sqlite3.DatabaseError as err:
            raise AnchorError(f"cannot read: {err}") from err
        finally:
            conn.close()

    def latest(self) -> Anchor | None:
        rows = self._read(f"SELECT seq, hash FROM {TABLE} ORDER BY seq DESC LIMIT 1")
        return rows[0] if rows else None

    def history(self) -> list[Anchor]:
        return self._read(f"SELECT seq, hash FROM {TABLE} ORDER BY seq")


def _ranges(seqs: Iterable[int], most: int = 8) -> str:
    """`1-3, 7, 9-12` (at most `most` ranges, then `and N more`)."""
    runs: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if runs and seq == runs[-1][1] + 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:most])
    return text + (f" and {len(runs) - most} more" if len(runs) > most else "")


def anchor_problems(name: str, history: list[Anchor], records: list[Anchor]) -> list[str]:
    """What disagrees between one anchor's history and the file's intact (seq, hash) records.

    The file's last record must be the newest anchor; every anchored (seq, hash) must
    still be in the file; every record from the first anchored one on must be anchored.
    """
    problems: list[str] = []
    where = f"anchor {name}"
    in_file: dict[int, set[str]] = {}
    for seq, h in records:
        in_file.setdefault(seq, set()).add(h)
    if not history:
        if records:
            problems.append(
                f"{where} holds no head, but the file has {len(records)} record(s): the trail "
                "was never anchored, or the anchor was deleted or reset"
            )
        return problems
    anchored: dict[int, set[str]] = {}
    for seq, h in history:
        anchored.setdefault(seq, set()).add(h)
    twice = [seq for seq, hashes in anchored.items() if len(hashes) > 1]
    if twice:
        problems.append(f"{where}: seq {_ranges(twice)} anchored with more than one hash")
    last_anchor = history[-1][0]
    last_file = records[-1][0] if records else 0
    if not records:
        problems.append(
            f"{where}: the anchored head is seq {last_anchor}, but the file has no records: "
            "the trail was deleted or emptied"
        )
        return problems
    if last_anchor > last_file:
        problems.append(
            f"{where}: the anchored head is seq {last_anchor}, but the file ends at seq "
            f"{last_file}: records were cut from the end"
        )
    missing = [s for s in anchored if s not in in_file and s <= last_file]
    if missing:
        problems.append(f"{where}: anchored seq {_ranges(missing)}: missing from the file")
    rewritten = [s for s, h in anchored.items() if s in in_file and not (h & in_file[s])]
    if rewritten:
        problems.append(
            f"{where}: seq {_ranges(rewritten)}: hash differs from the anchored one: "
            "rewritten in the file"
        )
    unanchored = [s for s in in_file if s >= history[0][0] and s not in anchored]
    if unanchored:
        problems.append(
            f"{where}: seq {_ranges(unanchored)}: never anchored: appended outside "
            "AuditTrail (forged), or anchoring failed at write time"
        )
    return problems
