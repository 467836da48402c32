"""The audit trail: hash chain, tamper detection with line numbers, multi-process appends.

Protects the governance promise that who-did-what records cannot be edited,
dropped from the middle or interleaved by concurrent writers unnoticed, that
the file is only ever appended to, and that every head is anchored outside it
(append-only SQLite table, Dagster event log) or the write says why not.
(The eleven tampering attacks are in test_audit_tampering.py.)
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from mlops_core.governance import AuditTrail, record_hash
from mlops_core.governance.anchors import AnchorError, AuditAnchor, SqliteAnchor
from mlops_core.governance.audit import GENESIS_HASH
from resources.audit_anchors import DagsterEventLogAnchor


def _fill(trail: AuditTrail, n: int) -> list[dict]:
    return [
        trail.record(
            "approve",
            f"user{i}",
            f"m:{i}",
            "prod",
            "succeeded",
            reason=f"r{i}",
            details={"i": i, "path": Path("/x")},
            persona="project_lead",
        )
        for i in range(n)
    ]


def test_records_chain_and_verify(tmp_path):
    trail = AuditTrail(tmp_path / "audit" / "trail.jsonl")
    records = _fill(trail, 3)
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[0]["prev_hash"] == GENESIS_HASH
    assert records[1]["prev_hash"] == records[0]["hash"]
    assert records[0]["ts"].endswith("+00:00")
    assert records[0]["details"] == {"i": 0, "path": "/x"}
    assert all(record_hash(r) == r["hash"] for r in records)
    assert trail.verify() == []
    assert trail.head() == records[-1]["hash"]
    stored = [json.loads(line) for line in trail.path.read_text().splitlines()]
    assert stored == records


def test_read_filters_and_orders(tmp_path):
    trail = AuditTrail(tmp_path / "trail.jsonl")
    assert trail.read() == [] and trail.verify() == [] and trail.head() == GENESIS_HASH
    _fill(trail, 3)
    trail.record("rollback", "monitor-bot", "m:1", "prod", "succeeded", "drift")
    assert [r["seq"] for r in trail.read()] == [4, 3, 2, 1]
    assert [r["seq"] for r in trail.read(newest_first=False, limit=2)] == [1, 2]
    assert [r["seq"] for r in trail.read(target="m:1")] == [4, 2]
    assert [r["actor"] for r in trail.read(action="rollback")] == ["monitor-bot"]


def test_an_edited_record_is_detected_with_its_line(tmp_path):
    trail = AuditTrail(tmp_path / "trail.jsonl")
    _fill(trail, 4)
    lines = trail.path.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["actor"] = "mallory"
    lines[1] = json.dumps(edited)
    trail.path.write_text("\n".join(lines) + "\n")
    problems = trail.verify()
    assert problems == ["line 2: hash mismatch: the record was edited"]


def test_a_rehashed_edit_or_dropped_line_breaks_the_chain(tmp_path):
    trail = AuditTrail(tmp_path / "trail.jsonl")
    _fill(trail, 4)
    lines = trail.path.read_text().splitlines()
    forged = json.loads(lines[1])
    forged["reason"] = "forged"
    forged["hash"] = record_hash(forged)
    trail.path.write_text("\n".join([lines[0], json.dumps(forged), lines[2], lines[3]]) + "\n")
    assert trail.verify() == ["line 3: chain broken: prev_hash does not match line 2"]

    trail.path.write_text("\n".join([lines[0], lines[2], lines[3]]) + "\n")
    assert trail.verify() == [
        "line 2: chain broken: prev_hash does not match line 1",
        "line 2: seq 3 does not follow 1",
    ]


def test_bad_json_and_a_torn_tail_are_reported_and_appends_continue(tmp_path):
    trail = AuditTrail(tmp_path / "trail.jsonl")
    first = _fill(trail, 2)
    before = trail.path.read_bytes()
    with trail.path.open("ab") as f:
        f.write(b'{"seq": 3, "act')  # a crash mid-write
    after = trail.record("deploy", "ci-bot", "m:2", "prod", "succeeded")
    content = trail.path.read_bytes()
    assert content.startswith(before)  # never rewritten
    assert after["seq"] == 3 and after["prev_hash"] == first[-1]["hash"]
    assert trail.verify() == ["line 3: not a valid JSON audit record"]
    assert [r["seq"] for r in trail.read()] == [3, 2, 1]


def test_invalid_outcome_or_missing_actor_is_refused(tmp_path):
    trail = AuditTrail(tmp_path / "trail.jsonl")
    with pytest.raises(ValueError, match="unknown outcome 'ok'"):
        trail.record("approve", "priya", "m:1", "prod", "ok")
    with pytest.raises(ValueError, match="actor"):
        trail.record("approve", "", "m:1", "prod", "allowed")
    assert not trail.path.exists()


def _append_many(path: str, worker: int, count: int, anchor_path: str) -> None:
    trail = AuditTrail(path, anchors=[SqliteAnchor(anchor_path)])
    for i in range(count):
        trail.record("scale", f"worker{worker}", f"m:{i}", "preprod", "succeeded")


def test_concurrent_appends_from_processes_keep_one_chain(tmp_path):
    path, anchor_path = str(tmp_path / "trail.jsonl"), str(tmp_path / "db" / "anchors.db")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, w, 50, anchor_path)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    trail = AuditTrail(path, anchors=[SqliteAnchor(anchor_path)])
    records = trail.read(newest_first=False)
    assert len(records) == 200
    assert [r["seq"] for r in records] == list(range(1, 201))
    assert {r["actor"] for r in records} == {f"worker{w}" for w in range(4)}
    assert trail.verify() == []
    # Publishing under the file lock keeps the anchors in file order.
    assert trail.anchors[0].history() == [(r["seq"], r["hash"]) for r in records]


# -- anchors -----------------------------------------------------------------------------------
def test_the_sqlite_anchor_table_refuses_update_delete_and_overwrite(tmp_path):
    anchor = SqliteAnchor(tmp_path / "anchors.db")
    assert isinstance(anchor, AuditAnchor) and anchor.latest() is None and anchor.history() == []
    anchor.publish(1, "a" * 64)
    anchor.publish(2, "b" * 64)
    conn = sqlite3.connect(anchor.path, isolation_level=None)  # no transaction left open
    for statement in (
        "UPDATE audit_anchor SET hash = hash",
        "DELETE FROM audit_anchor WHERE seq = 2",
        f"INSERT OR REPLACE INTO audit_anchor VALUES (2, '{'c' * 64}', 'now')",
        f"INSERT INTO audit_anchor VALUES (1, '{'c' * 64}', 'now')",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(statement)
    with pytest.raises(AnchorError, match="seq must exceed the newest"):
        anchor.publish(2, "c" * 64)
    assert anchor.history() == [(1, "a" * 64), (2, "b" * 64)]
    conn.execute("DROP TRIGGER audit_anchor_no_delete")
    with pytest.raises(AnchorError, match=r"audit_anchor_no_delete are missing: .* tampered"):
        anchor.history()


class _Unreachable:
    name = "unreachable"

    def publish(self, seq: int, head_hash: str) -> None:
        raise ConnectionError("network down")

    def latest(self) -> None:
        return None

    def history(self) -> list:
        return []


def test_a_failed_anchor_keeps_the_record_and_raises_naming_the_anchor(tmp_path):
    good = SqliteAnchor(tmp_path / "anchors.db")
    trail = AuditTrail(tmp_path / "trail.jsonl", anchors=[_Unreachable(), good])
    with pytest.raises(AnchorError, match=r"seq 1 is written to .*: unreachable: network down"):
        trail.record("deploy", "ci-bot", "m:1", "prod", "succeeded")
    assert [r["seq"] for r in trail.read()] == [1]  # durable, and the other anchor has it
    assert good.latest() == (1, trail.head())
    assert trail.verify() == [
        "anchor unreachable holds no head, but the file has 1 record(s): the trail was never "
        "anchored, or the anchor was deleted or reset"
    ]


def test_the_dagster_event_log_anchor(tmp_path):
    import dagster as dg

    with dg.DagsterInstance.ephemeral() as instance:
        anchor = DagsterEventLogAnchor(instance)
        trail = AuditTrail(tmp_path / "trail.jsonl", anchors=[anchor])
        records = _fill(trail, 3)
        assert anchor.history() == [(r["seq"], r["hash"]) for r in records]
        assert anchor.latest() == (3, trail.head())
        trail.path.write_text("\n".join(trail.path.read_text().splitlines()[:2]) + "\n")
        assert "records were cut from the end" in trail.verify()[0]
