"""Whether an approved dev version may be promoted now: one check for the sensor and the asset.

`verify_promotion` re-checks, at promotion time and under the policy in force,
everything the approval relied on: an approval record in the approvals store
(registry tags are a display copy and prove nothing), by a user the approver's
identity still maps to and whose persona may `approve_model` in prod, for a
version that passed staging by thresholds no weaker than the policy minimums,
approved by someone other than whoever trained or registered it, with its audit
record present, intact and matching. The approval sensor requests a promotion
run only when it passes; the promotion asset refuses (and audits) when it does
not. Pure: the store, registry and audit trail are duck-typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_core.governance.gates import audit_problem, caller_of, duty_problem, staging_problem
from mlops_core.governance.identity import users_for
from mlops_core.governance.policy import Policy
from mlops_core.governance.trust import PROD, ApprovalStoreLike


@dataclass(frozen=True)
class PromotionCheck:
    """`ok`, or `reason` says why not; `approval` is the store's record when there is one."""

    ok: bool
    reason: str
    approval: dict[str, Any] | None = None


def _registry_problem(registry: Any, registration: dict[str, Any], target: str) -> str | None:
    from mlflow.exceptions import MlflowException

    name, version = target.rsplit(":", 1)
    try:
        mv = registry.client("dev").get_model_version(name, version)
    except MlflowException:
        return f"{target} is not in the dev registry"
    if (mv.run_id or "") != registration.get("mlflow_run_id"):
        return (
            f"{target} in the dev registry comes from run {mv.run_id}, not from the registered "
            f"run {registration.get('mlflow_run_id')}"
        )
    return None


def verify_promotion(
    store: ApprovalStoreLike,
    registry: Any,
    policy: Policy,
    audit: Any,
    model_name: str,
    dev_version: str,
) -> PromotionCheck:
    """Check one dev version against its approval record; see the module docstring."""
    target = f"{model_name}:{dev_version}"
    approval = store.decision(model_name, str(dev_version), PROD)
    if approval is None:
        return PromotionCheck(
            False,
            f"{target} has no approval record in the approvals store (registry tags are a "
            "display copy, not an approval); approve it with `mlops approve`",
        )

    def refuse(reason: str) -> PromotionCheck:
        return PromotionCheck(False, reason, approval)

    if approval["decision"] != "approved":
        return refuse(f"{target} was {approval['decision']} by {approval['user']}")
    if store.promotion(approval["approval_id"]) is not None:
        return refuse(f"approval {approval['approval_id']} of {target} was already promoted")
    user, principal = approval["user"], approval["caller"]
    if user not in users_for(policy, caller_of(principal)):
        return refuse(
            f"the approver's identity {principal} does not map to {user} under the RBAC policy "
            f"in force ({policy.source}, sha256 {policy.sha256[:12]})"
        )
    verdict = policy.allowed(user, "approve_model", PROD)
    if not verdict.allowed:
        return refuse(f"approval of {target} no longer holds: {verdict.reason}")
    results = store.staging_results(model_name, str(dev_version))
    registration = store.registration(model_name, str(dev_version))
    problem = (
        staging_problem(policy, results, target)
        or duty_problem(policy, registration, user, principal, target)
        or _registry_problem(registry, registration or {}, target)
        or audit_problem(audit, approval)
    )
    if problem:
        return refuse(problem)
    reason = f"approved by {user} ({approval['persona']}) at {approval['decided_at']}"
    return PromotionCheck(True, reason, approval)


def promotable(
    store: ApprovalStoreLike, registry: Any, policy: Policy, audit: Any, model_name: str
) -> tuple[list[PromotionCheck], list[PromotionCheck]]:
    """(passing, refused) checks of every approved, unpromoted prod decision, oldest first."""
    passing, refused = [], []
    for record in store.decisions(model_name):
        if record["environment"] != PROD or record["decision"] != "approved":
            continue
        if store.promotion(record["approval_id"]) is not None:
            continue
        check = verify_promotion(store, registry, policy, audit, model_name, record["dev_version"])
        (passing if check.ok else refused).append(check)
    return passing, refused
