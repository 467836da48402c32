"""The audit trail: hash chain, tamper detection with line numbers, multi-process appends.

Protects the governance promise that who-did-what records cannot be edited,
dropped from the middle or interleaved by concurrent writers unnoticed, and
that the file is only ever appended to.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from mlops_core.governance import AuditTrail, record_hash
from mlops_core.governance.audit import GENESIS_HASH


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


def _append_many(path: str, worker: int, count: int) -> None:
    trail = AuditTrail(path)
    for i in range(count):
        trail.record("scale", f"worker{worker}", f"m:{i}", "preprod", "succeeded")


def test_concurrent_appends_from_processes_keep_one_chain(tmp_path):
    path = str(tmp_path / "trail.jsonl")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, w, 50)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    trail = AuditTrail(path)
    records = trail.read(newest_first=False)
    assert len(records) == 200
    assert [r["seq"] for r in records] == list(range(1, 201))
    assert {r["actor"] for r in records} == {f"worker{w}" for w in range(4)}
    assert trail.verify() == []
