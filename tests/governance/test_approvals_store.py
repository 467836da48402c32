"""One contract for both approvals stores: SQLite locally, Blob Storage on Azure (via Azurite).

Protects: every write is insert-or-fail (a compare-and-set: concurrent writers
of one key get exactly one winner, the others the winner's record), a decision
is finalized with its audit seq once, a claim without an audit entry can be
released, staging results keep their order, the first registration wins, and
a model name cannot reach another model's records.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from mlops_core.governance import AlreadyRecorded
from resources.approvals_store import LocalApprovalStore
from resources.approvals_store_azure import AzureBlobApprovalStore
from tests.governance.helpers import staging

_containers = itertools.count()


@pytest.fixture(params=["local", "azure"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalApprovalStore(path=str(tmp_path / "approvals.db"))
    connection = request.getfixturevalue("azurite")
    return AzureBlobApprovalStore(
        container=f"governance-{next(_containers)}", connection_string=connection
    )


def decision(version: str = "1", approval_id: str = "a1", user: str = "priya", **extra) -> dict:
    return {"approval_id": approval_id, "model_name": "m", "dev_version": version,
            "environment": "prod", "decision": "approved", "user": user, "audit_seq": None,
            "audit_hash": "", **extra}  # fmt: skip


def test_a_decision_is_claimed_once_and_finalized_once(store):
    store.claim_decision(decision())
    with pytest.raises(AlreadyRecorded) as err:
        store.claim_decision(decision(approval_id="a2", user="olivia"))
    assert err.value.existing["user"] == "priya"
    assert store.decision("m", "1")["approval_id"] == "a1"
    assert store.decision("m", "1", "preprod") is None  # one key per environment
    done = {**decision(), "audit_seq": 7, "audit_hash": "h"}
    store.finalize_decision(done)
    assert store.decision("m", "1") == done
    with pytest.raises(AlreadyRecorded):
        store.finalize_decision({**done, "audit_seq": 8})
    store.release_decision(done)  # a finalized decision is never released
    assert store.decision("m", "1") == done


def test_an_unaudited_claim_can_be_released(store):
    store.claim_decision(decision())
    store.release_decision(decision(approval_id="someone-else"))
    assert store.decision("m", "1") is not None
    store.release_decision(decision())
    assert store.decision("m", "1") is None
    store.claim_decision(decision(approval_id="a3"))


def test_concurrent_claims_have_one_winner(store):
    barrier = threading.Barrier(6)

    def claim(i: int) -> str:
        barrier.wait()
        try:
            store.claim_decision(decision(approval_id=f"c{i}", user=f"u{i}"))
            return "won"
        except AlreadyRecorded:
            return "lost"

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(claim, range(6)))
    assert sorted(results) == ["lost"] * 5 + ["won"]


def test_decisions_are_listed_per_model_in_version_order(store):
    for version in ("10", "2", "1"):
        store.claim_decision(decision(version, approval_id=f"v{version}"))
    store.claim_decision({**decision("1", approval_id="other"), "model_name": "m/../n"})
    assert [d["dev_version"] for d in store.decisions("m")] == ["1", "2", "10"]
    assert [d["approval_id"] for d in store.decisions("m/../n")] == ["other"]
    assert store.decisions("nothing") == []


def test_staging_results_registrations_and_promotions(store):
    first = staging(store, "m", "1", outcome="failed")
    second = staging(store, "m", "1")
    with pytest.raises(AlreadyRecorded):
        store.record_staging(first)  # the same run twice
    assert [r["run_id"] for r in store.staging_results("m", "1")] == [
        first["run_id"], second["run_id"]
    ]  # fmt: skip
    assert store.staging_results("m", "2") == []

    who = {"model_name": "m", "version": "1", "trained_by": "os:a", "registered_by": "os:b"}
    assert store.record_registration(who) == who
    assert store.record_registration({**who, "trained_by": "os:mallory"}) == who
    assert store.registration("m", "1") == who and store.registration("m", "9") is None

    store.claim_promotion({"approval_id": "a1", "dagster_run_id": "r1"})
    with pytest.raises(AlreadyRecorded) as err:
        store.claim_promotion({"approval_id": "a1", "dagster_run_id": "r2"})
    assert err.value.existing["dagster_run_id"] == "r1"
    store.release_promotion("a1")
    assert store.promotion("a1") is None
