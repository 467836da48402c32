"""Human approvals against a real MLflow registry on SQLite: RBAC, tags, audit, one decision.

Protects the staging -> production gate: only the personas the policy names
can decide, every attempt (allowed or not) leaves an audit record, the
decision lands as model version tags that the promotion sensor reads, and a
decided version cannot be decided again.
"""

from __future__ import annotations

import itertools

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlops_core.governance import (
    ApprovalError,
    AuditTrail,
    PermissionDenied,
    Policy,
    approved_unpromoted,
    decide,
    pending,
)
from mlops_core.governance.approvals import TAG_PROMOTED
from resources.registry import LocalMlflowRegistry

_names = itertools.count()


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> tuple[LocalMlflowRegistry, str, str]:
    """One registry and one logged sklearn model, shared; each test registers its own name."""
    root = tmp_path_factory.mktemp("governance-mlflow")
    registry = LocalMlflowRegistry(root=str(root / "mlflow"))
    x = pd.DataFrame({"a": np.arange(20.0)})
    model = LogisticRegression().fit(x, (x["a"] > 9).astype(int))
    client = registry.client("dev")
    run = client.create_run(registry.ensure_experiment("governance", "dev"))
    # Explicit requirements skip MLflow's slow subprocess-based inference.
    mlflow.sklearn.save_model(model, root / "model", pip_requirements=["scikit-learn"])
    client.log_artifacts(run.info.run_id, str(root / "model"), "model")
    return registry, run.info.run_id, f"{run.info.artifact_uri}/model"


@pytest.fixture
def setup(logged, tmp_path):
    """(registry, model name with two versions, audit trail); v2 holds the challenger alias."""
    registry, run_id, uri = logged
    name = f"flight-delay-{next(_names)}"
    registry.register(name, uri, run_id, {"mlops.verdict": "approved"})
    registry.register(name, uri, run_id, {"mlops.verdict": "rejected"}, alias="challenger")
    return registry, name, AuditTrail(tmp_path / "audit.jsonl")


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load()


def _tags(registry, name: str, version: str) -> dict[str, str]:
    return dict(registry.client("dev").get_model_version(name, version).tags)


def test_unauthorized_approval_is_refused_audited_and_writes_no_tag(setup, policy):
    registry, name, audit = setup
    with pytest.raises(PermissionDenied) as err:
        decide(registry, policy, audit, name, "1", "alice", "approve", "looks good")
    message = str(err.value)
    for part in ("alice", "data_scientist", "approve_model", "prod", "project_lead"):
        assert part in message
    assert not any(k.startswith("mlops.approval") for k in _tags(registry, name, "1"))
    (entry,) = audit.read()
    assert (entry["action"], entry["actor"], entry["outcome"]) == ("approve", "alice", "denied")
    assert entry["target"] == f"{name}:1" and entry["persona"] == "data_scientist"
    assert entry["reason"] == message


def test_authorized_approval_writes_tags_and_audit(setup, policy):
    registry, name, audit = setup
    result = decide(registry, policy, audit, name, "1", "priya", "approve", "beats champion")
    tags = _tags(registry, name, "1")
    assert tags["mlops.approval"] == "approved"
    assert tags["mlops.approval_by"] == "priya"
    assert tags["mlops.approval_persona"] == "project_lead"
    assert tags["mlops.approval_reason"] == "beats champion"
    assert tags["mlops.approval_at"] == result["at"]
    assert tags["mlops.approval_id"] == result["approval_id"] and len(result["approval_id"]) == 32
    (entry,) = audit.read()
    assert entry["outcome"] == "succeeded" and entry["seq"] == result["audit_seq"]
    assert entry["details"]["approval_id"] == result["approval_id"]
    assert audit.verify() == []


def test_tester_approves_in_preprod_but_not_prod(setup, policy):
    registry, name, audit = setup
    with pytest.raises(PermissionDenied, match="model_tester"):
        decide(registry, policy, audit, name, "2", "tess", "approve", "tests pass")
    result = decide(registry, policy, audit, name, "2", "tess", "approve", "tests pass", "preprod")
    assert result["persona"] == "model_tester" and result["environment"] == "preprod"
    assert [e["outcome"] for e in audit.read()] == ["succeeded", "denied"]


def test_a_second_decision_is_refused(setup, policy):
    registry, name, audit = setup
    decide(registry, policy, audit, name, "1", "priya", "approve", "ok")
    with pytest.raises(ApprovalError, match=r"already approved by priya at .*one decision"):
        decide(registry, policy, audit, name, "1", "olivia", "reject", "changed my mind")
    assert _tags(registry, name, "1")["mlops.approval"] == "approved"
    assert audit.read()[0]["outcome"] == "failed"


def test_reject_is_final_and_never_promotable(setup, policy):
    registry, name, audit = setup
    result = decide(registry, policy, audit, name, "2", "olivia", "reject", "unfair on subgroup")
    assert result["decision"] == "rejected"
    assert _tags(registry, name, "2")["mlops.approval"] == "rejected"
    assert approved_unpromoted(registry, name) == []
    assert audit.read()[0]["action"] == "reject"


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_reason_is_required(setup, policy, reason):
    registry, name, audit = setup
    with pytest.raises(ValueError, match="a reason is required"):
        decide(registry, policy, audit, name, "1", "priya", "approve", reason)
    with pytest.raises(ValueError, match="'approve' or 'reject'"):
        decide(registry, policy, audit, name, "1", "priya", "promote", "why")  # type: ignore[arg-type]
    assert audit.read() == []


def test_a_missing_version_lists_the_existing_ones(setup, policy):
    registry, name, audit = setup
    with pytest.raises(ApprovalError, match=f"'{name}' has no version 9 .*existing versions: 1, 2"):
        decide(registry, policy, audit, name, "9", "priya", "approve", "ok")
    with pytest.raises(ApprovalError, match="none: the model is not registered"):
        decide(registry, policy, audit, "no-such-model", "1", "priya", "approve", "ok")


def test_pending_and_approved_unpromoted(setup, policy):
    registry, name, audit = setup
    # v1: evaluated "approved"; v2: evaluated "rejected" but holds the challenger alias.
    assert [r["version"] for r in pending(registry, name)] == ["1", "2"]
    assert pending(registry, name)[1]["aliases"] == ["challenger"]
    assert approved_unpromoted(registry, name) == []

    result = decide(registry, policy, audit, name, "1", "priya", "approve", "ship it")
    assert [r["version"] for r in pending(registry, name)] == ["2"]
    (row,) = approved_unpromoted(registry, name)
    assert (row["version"], row["approval_id"]) == ("1", result["approval_id"])
    assert approved_unpromoted(registry, name) == [row]  # stable until promoted

    registry.client("dev").set_model_version_tag(name, "1", TAG_PROMOTED, "1")
    assert approved_unpromoted(registry, name) == []
