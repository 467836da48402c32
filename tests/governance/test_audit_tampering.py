"""Tampering with the audit trail is detected once its heads are anchored outside the file.

Protects the governance promise behind `mlops audit --verify`: whoever can write
the audit file cannot edit, drop, forge, cut, re-chain, empty or delete it
without `verify()` naming the problem, because every head the trail had is
anchored elsewhere (a trigger-protected SQLite table; on Azure, write-once blobs
in an immutable container, exercised here against Azurite). Six of the eleven
attacks leave a chain that is consistent on its own: the anchors are what catch them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_cli import main
from mlops_core.governance import AuditTrail, record_hash
from mlops_core.governance.anchors import AnchorError, SqliteAnchor
from mlops_core.governance.audit import GENESIS_HASH
from resources.audit_anchors import AzureBlobAnchor
from resources.env import local_resources

OUTCOMES = ["allowed", "denied", "succeeded", "denied", "succeeded", "allowed"]


def _fill(trail: AuditTrail) -> list[dict]:
    return [
        trail.record("approve", f"user{i}", f"m:{i}", "prod", outcome, reason=f"r{i}")
        for i, outcome in enumerate(OUTCOMES)
    ]


@pytest.fixture
def trail(tmp_path) -> AuditTrail:
    anchor = SqliteAnchor(tmp_path / "mlflow" / "audit-anchors.db")
    trail = AuditTrail(tmp_path / "governance" / "audit.jsonl", anchors=[anchor])
    _fill(trail)
    return trail


def _records(trail: AuditTrail) -> list[dict]:
    return [json.loads(line) for line in trail.path.read_text().splitlines()]


def _write(trail: AuditTrail, records: list[dict]) -> None:
    trail.path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _rechain(records: list[dict], start: int = 0) -> list[dict]:
    """Renumber and re-hash records[start:] so the chain is consistent again."""
    out = [dict(r) for r in records]
    for i in range(start, len(out)):
        out[i]["seq"] = i + 1
        out[i]["prev_hash"] = out[i - 1]["hash"] if i else GENESIS_HASH
        out[i]["hash"] = record_hash(out[i])
    return out


def edit_field(trail):
    records = _records(trail)
    records[2]["actor"] = "mallory"
    _write(trail, records)


def edit_and_rehash(trail):
    records = _records(trail)
    records[2]["actor"] = "mallory"
    records[2]["hash"] = record_hash(records[2])
    _write(trail, records)


def edit_and_rechain(trail):
    records = _records(trail)
    records[2]["actor"] = "mallory"
    _write(trail, _rechain(records, start=2))


def delete_middle(trail):
    records = _records(trail)
    _write(trail, records[:2] + records[3:])


def delete_middle_and_rechain(trail):
    records = _records(trail)
    _write(trail, _rechain(records[:2] + records[3:], start=2))


def append_forged(trail):
    records = _records(trail)
    forged = {**records[-1], "action": "deploy", "actor": "mallory", "outcome": "succeeded"}
    _write(trail, _rechain([*records, forged], start=len(records)))


def cut_tail(trail):
    _write(trail, _records(trail)[:-2])


def rewrite_all(trail):
    records = [{**r, "actor": "mallory", "reason": "forged"} for r in _records(trail)]
    _write(trail, _rechain(records))


def remove_denied_and_rechain(trail):
    _write(trail, _rechain([r for r in _records(trail) if r["outcome"] != "denied"]))


def empty_file(trail):
    trail.path.write_text("")


def delete_file(trail):
    trail.path.unlink()


ATTACKS = {  # attack -> what verify() says about it (one of its problems contains this)
    edit_field: "line 3: hash mismatch",
    edit_and_rehash: "seq 3: hash differs",
    edit_and_rechain: "seq 3-6: hash differs",
    delete_middle: "anchored seq 3: missing from the file",
    delete_middle_and_rechain: "seq 3-5: hash differs",
    append_forged: "seq 7: never anchored",
    cut_tail: "the anchored head is seq 6, but the file ends at seq 4",
    rewrite_all: "seq 1-6: hash differs",
    remove_denied_and_rechain: "seq 2-4: hash differs",
    empty_file: "the file has no records: the trail was deleted or emptied",
    delete_file: "the file has no records: the trail was deleted or emptied",
}
# These leave a chain that verifies on its own: only the anchors tell.
CHAIN_CLEAN = {
    edit_and_rechain, delete_middle_and_rechain, append_forged, cut_tail, rewrite_all,
    remove_denied_and_rechain, empty_file, delete_file,
}  # fmt: skip


def test_an_untampered_trail_verifies_clean_and_every_head_is_anchored(trail):
    records = _records(trail)
    assert trail.verify() == []
    (anchor,) = trail.anchors
    assert anchor.history() == [(r["seq"], r["hash"]) for r in records]
    assert anchor.latest() == (6, trail.head())


@pytest.mark.parametrize("attack", list(ATTACKS), ids=lambda a: a.__name__)
def test_each_tampering_attack_is_reported(trail, attack):
    attack(trail)
    problems = trail.verify()
    assert any(ATTACKS[attack] in p for p in problems), problems
    unanchored = AuditTrail(trail.path).verify()
    assert (unanchored == []) == (attack in CHAIN_CLEAN), unanchored


def test_a_write_after_truncation_is_refused_by_the_anchor_but_kept_in_the_file(trail):
    cut_tail(trail)
    with pytest.raises(AnchorError, match=r"seq 5 is written to .* could not be anchored"):
        trail.record("deploy", "ci-bot", "m:1", "prod", "succeeded")
    assert trail.read(limit=1)[0]["seq"] == 5
    assert any("records were cut from the end" in p for p in trail.verify())


def test_a_deleted_anchor_database_is_reported(trail):
    Path(trail.anchors[0].path).unlink()
    assert trail.verify() == [
        f"anchor {trail.anchors[0].name} holds no head, but the file has 6 record(s): the "
        "trail was never anchored, or the anchor was deleted or reset"
    ]


def test_verify_on_the_command_line_reports_a_cut_trail(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    for var in ("MLOPS_ENV", "MLOPS_RBAC_POLICY"):
        monkeypatch.delenv(var, raising=False)
    trail = local_resources(tmp_path)["governance"].audit()
    assert [a.name for a in trail.anchors] == [f"sqlite:{tmp_path / 'mlflow/audit-anchors.db'}"]
    _fill(trail)
    assert main(["audit", "--verify", "-o", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["intact"] and result["anchors"][trail.anchors[0].name]["seq"] == 6
    cut_tail(trail)
    assert main(["audit", "--verify", "-o", "json"]) == 1
    captured = capsys.readouterr()
    assert "1 problem(s)" in captured.err
    assert "records were cut from the end" in json.loads(captured.out)["problems"][0]


# -- the Azure anchor, against Azurite (which does not enforce immutability policies) ----------
@pytest.fixture
def blob_anchor(azurite, request) -> AzureBlobAnchor:
    from azure.storage.blob import BlobServiceClient

    container = f"anchors-{abs(hash(request.node.name)) % 10**8}"
    BlobServiceClient.from_connection_string(azurite).create_container(container)
    return AzureBlobAnchor.connect(container, connection_string=azurite)


def test_azure_blob_anchor_publishes_write_once_heads(blob_anchor):
    assert blob_anchor.latest() is None and blob_anchor.history() == []
    heads = [(seq, str(seq) * 64) for seq in range(1, 4)]
    for seq, head in heads:
        blob_anchor.publish(seq, head)
    assert blob_anchor.history() == heads
    assert blob_anchor.latest() == (3, "3" * 64)
    with pytest.raises(AnchorError, match="seq 2 is already anchored"):
        blob_anchor.publish(2, "f" * 64)
    assert blob_anchor.name.startswith("azure-blob:http://127.0.0.1:")


def test_azure_blob_anchor_detects_truncation_and_rewriting(tmp_path, blob_anchor):
    trail = AuditTrail(tmp_path / "audit.jsonl", anchors=[blob_anchor])
    _fill(trail)
    assert trail.verify() == []
    assert blob_anchor.latest() == (6, trail.head())
    cut_tail(trail)
    assert trail.verify() == [
        f"anchor {blob_anchor.name}: the anchored head is seq 6, but the file ends at seq 4: "
        "records were cut from the end"
    ]
    remove_denied_and_rechain(trail)
    assert any("seq 2: hash differs" in p for p in trail.verify())
