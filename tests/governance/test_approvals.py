"""Human approvals against a real MLflow registry on SQLite and the real approvals store.

Protects the staging -> production gate: only the personas the policy names
can decide, every attempt (allowed or not) leaves an audit record with the
caller and the policy hash, the decision is a record in the approvals store
(tags are a copy), a decided version cannot be decided again, and approval
needs a passed staging result in the store.
"""

from __future__ import annotations

import pytest

from mlops_core.governance import (
    ApprovalError,
    PermissionDenied,
    approved_unpromoted,
    pending,
)
from mlops_core.governance.decisions import ApprovalRefused
from tests.governance.helpers import approve


def test_unauthorized_approval_is_refused_audited_and_records_nothing(world):
    version = world.register()
    with pytest.raises(PermissionDenied) as err:
        approve(world.resources, world.name, version, user="alice", reason="looks good")
    message = str(err.value)
    for part in ("alice", "data_scientist", "approve_model", "prod", "project_lead"):
        assert part in message
    assert world.store.decision(world.name, version) is None
    assert not any(k.startswith("mlops.approval") for k in world.tags(version))
    (entry,) = world.audited(version)
    assert (entry["action"], entry["actor"], entry["outcome"]) == ("approve", "alice", "denied")
    assert entry["persona"] == "data_scientist" and entry["reason"] == message
    assert entry["caller"] == "os:alice-os"
    assert entry["policy_hash"] == world.resources["governance"].decision_policy().sha256


def test_authorized_approval_is_a_store_record_with_its_audit_entry(world):
    version = world.register()
    result = approve(world.resources, world.name, version, reason="beats champion")
    stored = world.store.decision(world.name, version)
    assert stored == {k: v for k, v in result.items() if k != "display_tags"}
    assert (stored["decision"], stored["user"], stored["persona"]) == (
        "approved", "priya", "project_lead"
    )  # fmt: skip
    assert stored["caller"] == "os:priya-os" and len(stored["approval_id"]) == 32
    (entry,) = world.audited(version)
    assert entry["outcome"] == "succeeded" and entry["seq"] == stored["audit_seq"]
    assert entry["hash"] == stored["audit_hash"]
    assert entry["details"]["approval_id"] == stored["approval_id"]
    assert (entry["caller"], entry["policy_hash"]) == (stored["caller"], stored["policy_hash"])
    tags = world.tags(version)  # the display copy
    assert tags["mlops.approval"] == "approved" and tags["mlops.approval_by"] == "priya"
    assert tags["mlops.approval_id"] == stored["approval_id"]
    assert world.audit.verify() == []


def test_tester_cannot_approve_in_prod(world):
    version = world.register()
    with pytest.raises(PermissionDenied, match="model_tester"):
        approve(world.resources, world.name, version, user="tess")
    assert world.audited(version)[0]["outcome"] == "denied"


def test_a_second_decision_is_refused(world):
    version = world.register()
    approve(world.resources, world.name, version)
    with pytest.raises(ApprovalError, match=r"already approved by priya at .*one decision"):
        approve(world.resources, world.name, version, user="olivia", decision="reject")
    assert world.store.decision(world.name, version)["user"] == "priya"
    assert world.tags(version)["mlops.approval"] == "approved"
    assert [e["outcome"] for e in world.audited(version)] == ["succeeded", "failed"]


def test_reject_is_final_and_never_promotable(world):
    version = world.register()
    result = approve(world.resources, world.name, version, user="olivia", decision="reject",
                     reason="unfair on subgroup")  # fmt: skip
    assert result["decision"] == "rejected"
    assert approved_unpromoted(world.store, world.name) == []
    assert world.audited(version)[0]["action"] == "reject"


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_reason_is_required(world, reason):
    version = world.register()
    with pytest.raises(ValueError, match="a reason is required"):
        approve(world.resources, world.name, version, reason=reason)
    with pytest.raises(ValueError, match="'approve' or 'reject'"):
        approve(world.resources, world.name, version, decision="promote")
    assert world.audited(version) == []  # malformed input: nothing was attempted


def test_a_missing_version_lists_the_existing_ones_and_is_audited(world):
    world.register()
    world.register()
    with pytest.raises(ApprovalError, match=f"'{world.name}' has no version 9 .*versions: 1, 2"):
        approve(world.resources, world.name, "9")
    assert world.audited("9")[0]["outcome"] == "failed"


def test_approval_needs_a_staging_result_in_the_store(world):
    version = world.register(staged=False)
    client = world.resources["registry"].client("dev")
    client.set_model_version_tag(
        world.name, version, "mlops.staging", "passed"
    )  # a tag proves nothing
    with pytest.raises(ApprovalRefused, match=r"has not passed staging.*staging_deployment"):
        approve(world.resources, world.name, version)
    (entry,) = world.audited(version)
    assert entry["outcome"] == "denied" and "staging" in entry["reason"]


def test_pending_and_approved_unpromoted_come_from_the_store(world):
    v1, v2 = world.register(alias=None), world.register()

    def waiting() -> list[str]:
        return [r["version"] for r in pending(world.resources["registry"], world.store, world.name)]

    assert waiting() == [v1, v2]
    result = approve(world.resources, world.name, v1, reason="ship it")
    assert waiting() == [v2]
    (row,) = approved_unpromoted(world.store, world.name)
    assert (row["dev_version"], row["approval_id"]) == (v1, result["approval_id"])
    client = world.resources["registry"].client("dev")
    client.set_model_version_tag(world.name, v1, "mlops.promoted_to_prod_version", "1")
    assert approved_unpromoted(world.store, world.name) == [row]  # a tag does not promote
    world.store.claim_promotion({"approval_id": result["approval_id"]})
    assert approved_unpromoted(world.store, world.name) == []
