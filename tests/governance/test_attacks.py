"""Attacks on the production gate, each measured against the tag-based design and refused now.

Real MLflow (SQLite, dev and prod) through `LocalMlflowRegistry`, the real
approvals store, real Dagster instances running the real promotion and
approval assets and the real approval sensor. Each attack checks three things:
nothing reaches the prod registry, the attempt is refused with its reason,
and the refusal is in the audit trail with the real caller and the policy hash.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3

import dagster as dg
import pytest
import yaml

from mlops_assets.deployment.approval import build_approval
from mlops_assets.model_registry.promoted_model import build_promoted_model
from mlops_assets.scenarios.classical import SPEC
from mlops_core.governance import Caller, IdentityRefused, PolicyOverrideRefused
from mlops_core.governance.decisions import ApprovalRefused, record_decision
from mlops_core.governance.policy import DEFAULT_POLICY_PATH
from mlops_core.governance.promotion import verify_promotion
from resources.identity import os_account
from sensors.approvals import build_approval_sensor
from tests.governance.helpers import approve, staging, with_policy, write_policy
from tests.helpers import QUIET

PROMOTED, APPROVAL = build_promoted_model(SPEC), build_approval(SPEC)
OP = "classical__promoted_model"
FORGED_TAGS = {"mlops.approval": "approved", "mlops.approval_id": "f" * 32,
               "mlops.approval_by": "priya", "mlops.staging": "passed"}  # fmt: skip


def promote(world, instance, version: str = "", **run_config):
    config = {**QUIET, "ops": {OP: {"config": {"dev_version": version}}}, **run_config}
    return dg.materialize([PROMOTED], resources=world.resources, instance=instance,
                          run_config=config, raise_on_error=False)  # fmt: skip


def failure(result) -> str:
    [event] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return event.step_failure_data.error.message


def evaluate_sensor(world, instance):
    sensor = build_approval_sensor(SPEC, "classical_promotion_job")
    resources = {k: world.resources[k] for k in ("registry", "approvals", "governance")}
    with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
        result = sensor(ctx)
    return getattr(result, "run_requests", None) or [], getattr(result, "skip_message", "")


def champion(world):
    return world.resources["registry"].version_by_alias(world.name, "champion", "prod")


def assert_refusal_audited(world, action: str, actor: str, caller: str, policy_hash: str):
    entry = world.audit.read(action=action)[0]
    assert (entry["actor"], entry["outcome"]) == (actor, "denied"), entry
    assert (entry["caller"], entry["policy_hash"]) == (caller, policy_hash), entry
    return entry


def policy_hash(world) -> str:
    return world.resources["governance"].decision_policy().sha256


def test_a_forged_approval_tag_promotes_nothing(world, instance):
    version = world.register()
    client = world.resources["registry"].client("dev")
    for key, value in FORGED_TAGS.items():
        client.set_model_version_tag(world.name, version, key, value)
    requests, skip = evaluate_sensor(world, instance)
    assert requests == [] and "no new verified approval" in skip
    result = promote(world, instance, version)
    assert not result.success and "no approval record in the approvals store" in failure(result)
    assert champion(world) is None
    assert_refusal_audited(world, "promote", "ci-bot", f"os:{os_account()}", policy_hash(world))
    result = promote(world, instance)  # "the oldest approved": still nothing to promote
    assert not result.success and "no promotable approval" in failure(result)


def test_a_real_approval_is_promoted_once_with_caller_and_policy_hash(world, instance):
    version = world.register()
    decision = approve(world.resources, world.name, version)
    requests, _ = evaluate_sensor(world, instance)
    assert [r.run_key for r in requests] == [f"promote-{decision['approval_id']}"]
    result = promote(world, instance, requests[0].run_config["ops"][OP]["config"]["dev_version"])
    assert result.success
    assert champion(world).tags["mlops.approval_id"] == decision["approval_id"]
    [entry] = world.audit.read(action="promote")
    assert entry["outcome"] == "succeeded" and entry["caller"] == f"os:{os_account()}"
    assert entry["policy_hash"] == policy_hash(world)
    assert entry["details"]["approval_audit_seq"] == decision["audit_seq"]
    assert evaluate_sensor(world, instance)[0] == []  # consumed
    again = promote(world, instance, version)
    assert not again.success and "already promoted" in failure(again)


def test_as_cannot_name_someone_else_and_every_refusal_is_audited(world):
    version, h = world.register(), policy_hash(world)
    alice, mallory = Caller.os_account("alice-os"), Caller.os_account("mallory")
    cases = [(alice, "priya", "os:alice-os", "not as 'priya'"),
             (alice, "", "os:alice-os", "empty --as"),
             (mallory, None, "os:mallory", "not mapped to any user")]  # fmt: skip
    for who, requested, actor, message in cases:
        with pytest.raises(IdentityRefused, match=message):
            record_decision(world.resources["registry"], world.resources["governance"],
                            world.store, who, world.name, version, "approve", "mine now",
                            requested_user=requested)  # fmt: skip
        entry = assert_refusal_audited(world, "approve", actor, who.principal, h)
        assert entry["details"]["requested_as"] == requested
    assert world.store.decision(world.name, version) is None
    # narrowing to one of your own users is what --as is for
    assert approve(world.resources, world.name, version, requested="priya")["user"] == "priya"


def test_a_swapped_policy_file_is_refused_for_prod_decisions(world, instance, monkeypatch):
    version = world.register()
    own = write_policy(world.home / "own.yaml",
                       lambda raw: raw["users"].update(alice="project_lead"))  # fmt: skip
    own_hash = hashlib.sha256(own.read_bytes()).hexdigest()
    monkeypatch.setenv("MLOPS_RBAC_POLICY", str(own))
    world.resources["governance"] = with_policy(world.resources["governance"], None)
    with pytest.raises(PolicyOverrideRefused, match="allow_policy_override: false"):
        approve(world.resources, world.name, version, user="alice")
    assert_refusal_audited(world, "approve", "os:alice-os", "os:alice-os", own_hash)
    assert world.store.decision(world.name, version) is None
    requests, skip = evaluate_sensor(world, instance)
    assert requests == [] and "MLOPS_RBAC_POLICY" in skip
    result = promote(world, instance, version)
    assert not result.success and "allow_policy_override" in failure(result)
    assert_refusal_audited(world, "promote", "ci-bot", f"os:{os_account()}", own_hash)


def test_a_launch_config_cannot_reconfigure_governance_for_promotion(world, instance):
    version = world.register()
    approve(world.resources, world.name, version)
    own = write_policy(world.home / "own.yaml")
    audit_path = world.resources["governance"].audit_path  # refusals land in the real trail
    config = {"audit_path": audit_path, "policy_path": str(own)}
    override = {"resources": {"governance": {"config": config}}}
    result = promote(world, instance, version, **override)
    assert not result.success and "reconfigures ['governance']" in failure(result)
    assert champion(world) is None
    assert world.audit.read(action="promote")[0]["outcome"] == "denied"


def test_the_ui_cannot_decide_with_a_self_declared_user(world, instance):
    version = world.register()
    config = {"version": version, "user": "priya", "reason": "trust me"}
    run_config = {**QUIET, "ops": {"classical__approval": {"config": config}}}
    result = dg.materialize([APPROVAL], resources=world.resources, instance=instance,
                            run_config=run_config, raise_on_error=False)  # fmt: skip
    assert not result.success and "no authenticated identity" in failure(result)
    assert "mlops approve" in failure(result)
    entry = assert_refusal_audited(world, "approve", "dagster-ui", f"os:{os_account()}",
                                   world.resources["governance"].policy().sha256)  # fmt: skip
    assert entry["details"]["via"] == "dagster launch config"
    assert entry["details"]["claimed_user"] == "priya"
    assert world.store.decision(world.name, version) is None
    # without a decision it shows the store's view, and why promotion would refuse
    shown = dg.materialize([APPROVAL], resources=world.resources, instance=instance,
                           run_config=QUIET)  # fmt: skip
    [event] = shown.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["decision"] == "undecided" and metadata["promotable"] is False
    assert metadata["decide_with"].startswith(f"mlops approve {world.name} {version}")


def test_weak_staging_thresholds_do_not_launder_a_failed_version(world):
    version = world.register(staged=False)
    staging(world.store, world.name, version, outcome="failed", p99_ms=900.0)
    staging(world.store, world.name, version, slo_p99_ms=1e9, load_requests=2, p99_ms=900.0)
    with pytest.raises(ApprovalRefused, match=r"has not passed staging.*outcome 'failed'"):
        approve(world.resources, world.name, version)
    other = world.register(staged=False)  # only weak or reconfigured runs: nothing counts
    staging(world.store, world.name, other, slo_p99_ms=1e9, load_requests=2)
    staging(world.store, world.name, other, launch_overrides=["registry"])
    with pytest.raises(ApprovalRefused, match=r"no staging result .* counts"):
        approve(world.resources, world.name, other)
    assert [e["outcome"] for e in world.audit.read(action="approve")] == ["denied", "denied"]


@pytest.mark.parametrize("role", ["trained_by", "registered_by"])
def test_nobody_approves_what_they_trained_or_registered(world, role):
    version = world.register(**{role: "os:priya-os"})
    with pytest.raises(ApprovalRefused, match="separation of duties"):
        approve(world.resources, world.name, version)
    assert world.audit.read(action="approve")[0]["outcome"] == "denied"
    assert approve(world.resources, world.name, version, user="olivia")["user"] == "olivia"
    unrecorded = str(world.resources["registry"].register(world.name, world.uri, world.run_id,
                                                          {}).version)  # fmt: skip
    staging(world.store, world.name, unrecorded)
    with pytest.raises(ApprovalRefused, match="no registration record"):
        approve(world.resources, world.name, unrecorded, user="olivia")


def test_a_tampered_audit_entry_or_store_record_blocks_promotion(world, instance):
    policy, args = world.resources["governance"].decision_policy(), (world.store,)
    registry, audit = world.resources["registry"], world.audit

    def check(version: str) -> str:
        return verify_promotion(*args, registry, policy, audit, world.name, version).reason

    edited, swapped, unfinished = world.register(), world.register(), world.register()
    first = approve(world.resources, world.name, edited)
    approve(world.resources, world.name, swapped)
    assert verify_promotion(*args, registry, policy, audit, world.name, edited).ok
    text = audit.path.read_text()
    audit.path.write_text(text.replace(first["reason"], "rubber stamp", 1))
    assert "was altered" in check(edited)
    with sqlite3.connect(world.store.path) as db:  # the approver's name rewritten in the store
        row = db.execute(
            "SELECT record FROM decisions WHERE dev_version = ?", (swapped,)
        ).fetchone()
        forged = {**json.loads(row[0]), "user": "olivia", "persona": "product_owner",
                  "caller": "os:olivia-os"}  # fmt: skip
        db.execute("UPDATE decisions SET record = ? WHERE dev_version = ?",
                   (json.dumps(forged), swapped))  # fmt: skip
    assert "does not match" in check(swapped) and "actor, caller" in check(swapped)
    world.store.claim_decision({**first, "dev_version": unfinished, "approval_id": "u" * 32,
                                "audit_seq": None})  # fmt: skip
    assert "never completed" in check(unfinished)
    result = promote(world, instance, edited)
    assert not result.success and "was altered" in failure(result)


def test_the_packaged_policy_is_strict_by_default():
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    assert raw["allow_policy_override"] is False and raw["separation_of_duties"] is True
    assert raw["staging_minimums"] == {"max_slo_p99_ms": 500, "min_load_requests": 100}
    assert raw["os_users"] == {} and raw["entra_ids"] == {}  # nobody acts until mapped
