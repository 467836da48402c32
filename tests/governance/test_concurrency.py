"""Six approvals of one version at the same instant: one decision, five refusals, six audits.

Measured before: with tags as the record, four of six "succeeded", the tags
were mixed, and two half-failed with no audit. Now the store's unique key is
the compare-and-set: each thread opens its own connections (SQLite store,
audit file, MLflow) and all start together at a barrier.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from mlops_core.governance import ApprovalError
from tests.governance.helpers import approve

DECIDERS = ("priya", "olivia", "priya", "olivia", "priya", "olivia")


def test_six_concurrent_approvals_make_exactly_one_decision(world):
    version = world.register()
    barrier = threading.Barrier(len(DECIDERS))

    def decide(user: str) -> dict | Exception:
        barrier.wait()
        try:
            return approve(world.resources, world.name, version, user=user, reason=f"{user} ok")
        except ApprovalError as err:
            return err

    with ThreadPoolExecutor(len(DECIDERS)) as pool:
        outcomes = list(pool.map(decide, DECIDERS))

    won = [o for o in outcomes if isinstance(o, dict)]
    lost = [o for o in outcomes if isinstance(o, ApprovalError)]
    assert len(won) == 1 and len(lost) == 5, outcomes
    winner = won[0]
    assert all("one decision per version" in str(err) for err in lost)
    assert all(f"already approved by {winner['user']}" in str(err) for err in lost)

    stored = world.store.decision(world.name, version)
    assert stored["approval_id"] == winner["approval_id"] and stored["audit_seq"]
    audited = world.audited(version)
    assert sorted(e["outcome"] for e in audited) == ["failed"] * 5 + ["succeeded"]
    assert all(e["caller"] and e["policy_hash"] for e in audited)
    [success] = [e for e in audited if e["outcome"] == "succeeded"]
    assert success["seq"] == stored["audit_seq"] and success["actor"] == winner["user"]
    assert world.audit.verify() == []

    tags = world.tags(version)  # the display copy is the winner's, whole
    assert tags["mlops.approval_id"] == winner["approval_id"]
    assert (tags["mlops.approval_by"], tags["mlops.approval_reason"]) == (
        winner["user"], winner["reason"]
    )  # fmt: skip
