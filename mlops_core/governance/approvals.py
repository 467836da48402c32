"""Human-in-the-loop approval of registered model versions (MLOps v2 staging -> production gate).

A decision is stored twice: as tags on the dev registry's model version (the
registry is the source of truth; the promotion sensor reads the tags and uses
`mlops.approval_id` as its run key) and as a record in the audit trail.
Constraints:

- Pure Python, no Dagster: `registry` is duck-typed, anything whose
  `.client("dev")` returns an `mlflow.MlflowClient` (such as
  `resources.registry.ModelRegistry`). MLflow is imported lazily so that
  importing the governance package stays cheap for the CLI.
- Both approve and reject need `approve_model` in the target environment;
  a denied attempt is audited as "denied" and writes no tag.
- One decision per version, final: a decided version is never re-decided
  (re-register the model to decide again). The check-then-tag sequence is not
  atomic in MLflow; `mlops.approval` is written last, as the commit marker,
  so a half-written decision reads as undecided.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from mlops_core.governance.audit import AuditTrail
from mlops_core.governance.policy import PermissionDenied, Policy

TAG_APPROVAL = "mlops.approval"
TAG_APPROVAL_BY = "mlops.approval_by"
TAG_APPROVAL_PERSONA = "mlops.approval_persona"
TAG_APPROVAL_REASON = "mlops.approval_reason"
TAG_APPROVAL_AT = "mlops.approval_at"
TAG_APPROVAL_ID = "mlops.approval_id"
TAG_VERDICT = "mlops.verdict"
TAG_PROMOTED = "mlops.promoted_to_prod_version"
# Same value as mlops_assets.naming.CHALLENGER_ALIAS, which imports Dagster.
CHALLENGER_ALIAS = "challenger"
PERMISSION = "approve_model"
MAX_REASON_CHARS = 5000  # MLflow's model version tag value limit

Choice = Literal["approve", "reject"]
_OUTCOME_TAG = {"approve": "approved", "reject": "rejected"}


class ApprovalError(ValueError):
    """An approval that cannot be made: missing version, or one already decided."""


class RegistryLike(Protocol):
    def client(self, stage: Literal["dev", "prod"] = "dev") -> Any: ...


def _versions(client: Any, model_name: str) -> list[Any]:
    escaped = model_name.replace("'", "\\'")
    found = client.search_model_versions(f"name = '{escaped}'")
    return sorted(found, key=lambda mv: int(mv.version))


def _get_version(client: Any, model_name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(model_name, version)
    except MlflowException:
        existing = [str(mv.version) for mv in _versions(client, model_name)]
        listed = ", ".join(existing) if existing else "none: the model is not registered"
        raise ApprovalError(
            f"model {model_name!r} has no version {version} in the dev registry; "
            f"existing versions: {listed}"
        ) from None


def decide(
    registry: RegistryLike,
    policy: Policy,
    audit: AuditTrail,
    model_name: str,
    version: str,
    user: str,
    decision: Choice,
    reason: str,
    environment: str = "prod",
) -> dict[str, Any]:
    """Approve or reject one dev registry version on behalf of `user`; returns the decision.

    Raises ValueError (bad decision or reason), PermissionDenied (audited as
    "denied"), or ApprovalError for a missing or already decided version
    (audited as "failed").
    """
    if decision not in _OUTCOME_TAG:
        raise ValueError(f"decision must be 'approve' or 'reject', not {decision!r}")
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("a reason is required for an approval decision")
    if len(reason) > MAX_REASON_CHARS:
        raise ValueError(f"the reason is over {MAX_REASON_CHARS} characters")
    version = str(version)
    target = f"{model_name}:{version}"
    verdict = policy.allowed(user, PERMISSION, environment)
    base = {"decision": decision, "model_name": model_name, "version": version}
    if not verdict.allowed:
        audit.record(
            decision, user, target, environment, "denied", verdict.reason, base, verdict.persona
        )
        raise PermissionDenied(verdict)

    client = registry.client("dev")
    try:
        mv = _get_version(client, model_name, version)
        tags = dict(mv.tags or {})
        if TAG_APPROVAL in tags:
            raise ApprovalError(
                f"{target} was already {tags[TAG_APPROVAL]} by {tags.get(TAG_APPROVAL_BY, '?')} "
                f"at {tags.get(TAG_APPROVAL_AT, '?')} "
                f"(reason: {tags.get(TAG_APPROVAL_REASON, '')}); one decision per version"
            )
    except ApprovalError as err:
        audit.record(decision, user, target, environment, "failed", str(err), base, verdict.persona)
        raise

    outcome = _OUTCOME_TAG[decision]
    record = {
        "approval_id": uuid.uuid4().hex,
        "model_name": model_name,
        "version": version,
        "decision": outcome,
        "by": user,
        "persona": verdict.persona,
        "reason": reason,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": environment,
    }
    new_tags = {
        TAG_APPROVAL_ID: record["approval_id"],
        TAG_APPROVAL_BY: user,
        TAG_APPROVAL_PERSONA: verdict.persona,
        TAG_APPROVAL_REASON: reason,
        TAG_APPROVAL_AT: record["at"],
        TAG_APPROVAL: outcome,  # last: the commit marker
    }
    for key, value in new_tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    entry = audit.record(
        decision,
        user,
        target,
        environment,
        "succeeded",
        reason,
        {**base, "approval_id": record["approval_id"], "run_id": mv.run_id or ""},
        verdict.persona,
    )
    record["audit_seq"] = entry["seq"]
    return record


def _rows(registry: RegistryLike, model_name: str) -> list[dict[str, Any]]:
    """Every dev version as a plain dict, oldest first; [] for an unregistered model."""
    from mlflow.exceptions import MlflowException

    client = registry.client("dev")
    try:
        # search_model_versions leaves `aliases` empty; the registered model has them.
        aliases = dict(client.get_registered_model(model_name).aliases or {})
    except MlflowException:
        return []
    return [_summary(mv, aliases) for mv in _versions(client, model_name)]


def _summary(mv: Any, aliases: dict[str, str]) -> dict[str, Any]:
    tags = dict(mv.tags or {})
    return {
        "model_name": mv.name,
        "version": str(mv.version),
        "run_id": mv.run_id or "",
        "aliases": sorted(a for a, v in aliases.items() if str(v) == str(mv.version)),
        "verdict": tags.get(TAG_VERDICT, ""),
        "approval": tags.get(TAG_APPROVAL, ""),
        "approval_id": tags.get(TAG_APPROVAL_ID, ""),
        "approval_by": tags.get(TAG_APPROVAL_BY, ""),
        "approval_at": tags.get(TAG_APPROVAL_AT, ""),
        "approval_reason": tags.get(TAG_APPROVAL_REASON, ""),
        "promoted_to_prod_version": tags.get(TAG_PROMOTED, ""),
    }


def pending(registry: RegistryLike, model_name: str) -> list[dict[str, Any]]:
    """Candidates awaiting a human decision: aliased `challenger` or evaluated "approved",
    with no `mlops.approval` tag yet. Oldest first."""
    return [
        r
        for r in _rows(registry, model_name)
        if not r["approval"] and (CHALLENGER_ALIAS in r["aliases"] or r["verdict"] == "approved")
    ]


def approved_unpromoted(registry: RegistryLike, model_name: str) -> list[dict[str, Any]]:
    """Versions a human approved that are not yet promoted to prod. Oldest first.

    The promotion sensor requests one run per row with `approval_id` as run key,
    and promotion sets `mlops.promoted_to_prod_version` on the dev version.
    """
    return [
        r
        for r in _rows(registry, model_name)
        if r["approval"] == "approved" and not r["promoted_to_prod_version"]
    ]
