"""Recording a person's approve/reject decision: the one code path for the CLI and the demo.

In order, each refusal audited (with the caller and the policy's hash):

1. the policy: the packaged one (or the deployment's), never a `$MLOPS_RBAC_POLICY`
   swap the packaged policy does not allow (`trust.policy_for_decisions`);
2. the identity: the caller comes from the environment (OS account, Entra ID);
   `requested_user` (`--as`) may only narrow it to one of its own policy users;
3. the permission: `approve_model` in prod for that user's persona;
4. for an approval, the evidence in the approvals store: a passed staging result
   for this exact version judged by thresholds no weaker than the policy's
   minimums, and separation of duties (the approver neither trained nor
   registered it);
5. `approvals.commit_decision`: one decision per version, compare-and-set.

Takes the registry, governance and approvals store duck-typed, so this module
imports neither Dagster nor the resources package.
"""

from __future__ import annotations

from typing import Any, NoReturn

from mlops_core.governance.approvals import (
    MAX_REASON_CHARS,
    OUTCOME,
    ApprovalError,
    Choice,
    commit_decision,
    get_version,
)
from mlops_core.governance.gates import duty_problem, staging_problem
from mlops_core.governance.identity import Caller, IdentityRefused, act_as
from mlops_core.governance.policy import PermissionDenied
from mlops_core.governance.trust import PROD, ApprovalStoreLike, PolicyOverrideRefused

PERMISSION = "approve_model"


class ApprovalRefused(ValueError):
    """The decision cannot be recorded; the message says why and what to do."""


def record_decision(
    registry: Any,
    governance: Any,
    store: ApprovalStoreLike,
    caller: Caller,
    model_name: str,
    version: str,
    decision: Choice,
    reason: str,
    requested_user: str | None = None,
) -> dict[str, Any]:
    """Decide on `model_name` v`version` for prod as `caller`; returns the store's record.

    Raises ValueError for a bad decision or reason (not audited: nothing was
    attempted), PermissionDenied (policy swap, identity, permission) or
    ApprovalRefused (staging, separation of duties) or ApprovalError (missing
    or already decided version), each audited.
    """
    if decision not in OUTCOME:
        raise ValueError(f"decision must be 'approve' or 'reject', not {decision!r}")
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("a reason is required for an approval decision")
    if len(reason) > MAX_REASON_CHARS:
        raise ValueError(f"the reason is over {MAX_REASON_CHARS} characters")
    version, audit = str(version), governance.audit()
    target = f"{model_name}:{version}"
    details = {"decision": decision, "model_name": model_name, "version": version,
               "requested_as": requested_user}  # fmt: skip

    def refuse(actor: str, persona: str, why: str, policy_hash: str, error: Exception) -> NoReturn:
        outcome = "failed" if isinstance(error, ApprovalError) else "denied"
        audit.record(decision, actor or caller.principal, target, PROD, outcome, why, details,
                     persona, caller=caller.principal, policy_hash=policy_hash)  # fmt: skip
        raise error

    # Until the identity is established, the attempt is the caller's own (`requested_as`
    # in the details says whom it claimed to be).
    try:
        policy = governance.decision_policy()
    except PolicyOverrideRefused as err:
        refuse(caller.principal, "", str(err), err.policy.sha256, err)
    try:
        user = act_as(policy, caller, requested_user, PERMISSION)
    except IdentityRefused as err:
        refuse(caller.principal, "", str(err), policy.sha256, err)
    verdict = policy.allowed(user, PERMISSION, PROD)
    if not verdict.allowed:
        refuse(user, verdict.persona, verdict.reason, policy.sha256, PermissionDenied(verdict))
    if decision == "approve":
        try:
            get_version(registry, model_name, version)
        except ApprovalError as err:
            refuse(user, verdict.persona, str(err), policy.sha256, err)
        problem = staging_problem(
            policy, store.staging_results(model_name, version), target
        ) or duty_problem(
            policy, store.registration(model_name, version), user, caller.principal, target
        )
        if problem:
            refuse(user, verdict.persona, problem, policy.sha256, ApprovalRefused(problem))
    return commit_decision(
        store, audit, registry, model_name=model_name, version=version, user=user,
        persona=verdict.persona, caller=caller.principal, policy=policy, decision=decision,
        reason=reason,
    )  # fmt: skip
