"""Recording a person's approve/reject decision: the one code path for the CLI and the UI.

A version must have passed staging before anyone may approve it; the persona
policy decides who may; every decision, refusal included, lands in the audit
trail. Takes the registry and governance resources duck-typed, so this module
imports neither Dagster nor the resources package.
"""

from __future__ import annotations

from typing import Any, Literal


class ApprovalRefused(ValueError):
    """The decision cannot be recorded; the message says why and what to do."""


def record_decision(
    registry: Any,
    governance: Any,
    model_name: str,
    version: str,
    user: str,
    decision: Literal["approve", "reject"],
    reason: str,
) -> dict[str, Any]:
    from mlflow.exceptions import MlflowException

    from mlops_core.governance.approvals import decide

    policy, audit = governance.policy(), governance.audit()
    verdict = policy.allowed(user, "approve_model", "prod")
    # An unauthorized user is refused (and audited) by decide() before anything else;
    # a missing version is refused and audited there too.
    if decision == "approve" and verdict.allowed:
        try:
            mv = registry.client("dev").get_model_version(model_name, str(version))
        except MlflowException:
            mv = None
        staging = (mv.tags or {}).get("mlops.staging") if mv is not None else None
        if mv is not None and staging != "passed":
            audit.record(
                "approve", user, f"{model_name}:{version}", "prod", "denied",
                reason=f"staging checks are '{staging or 'not run'}', approval needs 'passed'",
                details={"decision": decision, "model_name": model_name, "version": str(version)},
                persona=verdict.persona,
            )  # fmt: skip
            raise ApprovalRefused(
                f"{model_name} v{version} has not passed staging (mlops.staging="
                f"{staging or 'not run'}); materialize its staging_deployment first"
            )
    return decide(
        registry, policy, audit, model_name, str(version), user, decision, reason,
        environment="prod",
    )  # fmt: skip
