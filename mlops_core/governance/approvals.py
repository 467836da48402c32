"""Approval decisions as records in the approvals store, with their audit entry.

`commit_decision` is the last step of `decisions.record_decision` (which checks
the policy, the caller's identity, staging and separation of duties first):

1. claim the (model, dev version, environment) key in the approvals store,
   insert-or-fail: of concurrent deciders exactly one wins; each loser is
   audited as "failed" and gets `ApprovalError` naming the winner;
2. audit the winner's decision ("succeeded", with caller and policy hash);
3. finalize the record with that audit entry's seq and hash, which the
   promotion check verifies;
4. copy the decision to the dev version's tags, for display only: nothing
   trusts them, and a failure to write them fails nothing.

If the audit write fails, the claim is released (no unaudited decision stays);
a process that dies between 1 and 3 leaves a record without an audit entry,
which the promotion check refuses. Pure: MLflow is imported lazily, the store
and registry are duck-typed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from mlops_core.governance.trust import PROD, AlreadyRecorded, ApprovalStoreLike

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
MAX_REASON_CHARS = 5000  # MLflow's model version tag value limit

Choice = Literal["approve", "reject"]
OUTCOME = {"approve": "approved", "reject": "rejected"}


class ApprovalError(ValueError):
    """An approval that cannot be made: missing version, or one already decided."""


def _versions(client: Any, model_name: str) -> list[Any]:
    escaped = model_name.replace("'", "\\'")
    found = client.search_model_versions(f"name = '{escaped}'")
    return sorted(found, key=lambda mv: int(mv.version))


def get_version(registry: Any, model_name: str, version: str) -> Any:
    """The dev registry version, or `ApprovalError` listing the versions that exist."""
    from mlflow.exceptions import MlflowException

    client = registry.client("dev")
    try:
        return client.get_model_version(model_name, version)
    except MlflowException:
        existing = [str(mv.version) for mv in _versions(client, model_name)]
        listed = ", ".join(existing) if existing else "none: the model is not registered"
        raise ApprovalError(
            f"model {model_name!r} has no version {version} in the dev registry; "
            f"existing versions: {listed}"
        ) from None


def _audit_entry(audit: Any, approval_id: str) -> dict[str, Any] | None:
    """The succeeded entry of `approval_id`, if `record()` wrote it before failing."""
    for entry in audit.read(newest_first=True, limit=50):
        details = entry.get("details") or {}
        if details.get("approval_id") == approval_id and entry.get("outcome") == "succeeded":
            return entry
    return None


def commit_decision(
    store: ApprovalStoreLike,
    audit: Any,
    registry: Any,
    *,
    model_name: str,
    version: str,
    user: str,
    persona: str,
    caller: str,
    policy: Any,
    decision: Choice,
    reason: str,
    environment: str = PROD,
) -> dict[str, Any]:
    """Record one decision (steps in the module docstring); returns the finalized record."""
    target = f"{model_name}:{version}"
    details = {"decision": decision, "model_name": model_name, "version": version}
    signed = {"caller": caller, "policy_hash": policy.sha256}
    try:
        mv = get_version(registry, model_name, version)
    except ApprovalError as err:
        audit.record(decision, user, target, environment, "failed", str(err), details, persona,
                     **signed)  # fmt: skip
        raise
    record: dict[str, Any] = {
        "approval_id": uuid.uuid4().hex,
        "model_name": model_name,
        "dev_version": version,
        "environment": environment,
        "decision": OUTCOME[decision],
        "user": user,
        "persona": persona,
        "caller": caller,
        "reason": reason,
        "policy_hash": policy.sha256,
        "policy_source": policy.source,
        "decided_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "mlflow_run_id": mv.run_id or "",
        "audit_seq": None,
        "audit_hash": "",
    }
    try:
        store.claim_decision(record)
    except AlreadyRecorded as err:
        won = err.existing
        message = (
            f"{target} was already {won.get('decision', 'decided')} by {won.get('user', '?')} "
            f"at {won.get('decided_at', '?')} (reason: {won.get('reason', '')}); "
            "one decision per version"
        )
        lost = {**details, "winner": won.get("approval_id", "")}
        audit.record(decision, user, target, environment, "failed", message, lost, persona,
                     **signed)  # fmt: skip
        raise ApprovalError(message) from None
    details = {**details, "approval_id": record["approval_id"], "run_id": record["mlflow_run_id"]}
    try:
        entry = audit.record(
            decision, user, target, environment, "succeeded", reason, details, persona, **signed
        )
    except Exception:
        entry = _audit_entry(audit, record["approval_id"])
        if entry is None:  # not audited: take the decision back
            store.release_decision(record)
            raise
        _finalize(store, registry, record, entry)
        raise  # written and finalized, but the audit write reported a failure (e.g. anchoring)
    return _finalize(store, registry, record, entry)


def _finalize(
    store: ApprovalStoreLike, registry: Any, record: dict[str, Any], entry: dict[str, Any]
) -> dict[str, Any]:
    record = {**record, "audit_seq": entry["seq"], "audit_hash": entry["hash"]}
    store.finalize_decision(record)
    tags = {
        TAG_APPROVAL_ID: record["approval_id"],
        TAG_APPROVAL_BY: record["user"],
        TAG_APPROVAL_PERSONA: record["persona"],
        TAG_APPROVAL_REASON: record["reason"],
        TAG_APPROVAL_AT: record["decided_at"],
        TAG_APPROVAL: record["decision"],
    }
    client = registry.client("dev")
    try:
        for key, value in tags.items():
            client.set_model_version_tag(record["model_name"], record["dev_version"], key, value)
        record["display_tags"] = "written"
    except Exception as err:  # display only: the store and the audit trail hold the decision
        record["display_tags"] = f"not written: {err}"
    return record


def _rows(registry: Any, model_name: str) -> list[dict[str, Any]]:
    """Every dev version as a plain dict, oldest first; [] for an unregistered model."""
    from mlflow.exceptions import MlflowException

    client = registry.client("dev")
    try:
        # search_model_versions leaves `aliases` empty; the registered model has them.
        aliases = dict(client.get_registered_model(model_name).aliases or {})
    except MlflowException:
        return []
    rows = []
    for mv in _versions(client, model_name):
        tags = dict(mv.tags or {})
        rows.append(
            {
                "model_name": mv.name,
                "version": str(mv.version),
                "run_id": mv.run_id or "",
                "aliases": sorted(a for a, v in aliases.items() if str(v) == str(mv.version)),
                "verdict": tags.get(TAG_VERDICT, ""),
            }
        )
    return rows


def pending(registry: Any, store: ApprovalStoreLike, model_name: str) -> list[dict[str, Any]]:
    """Candidates awaiting a human decision: aliased `challenger` or evaluated "approved",
    with no decision in the approvals store. Oldest first."""
    decided = {d["dev_version"] for d in store.decisions(model_name) if d["environment"] == PROD}
    return [
        r
        for r in _rows(registry, model_name)
        if r["version"] not in decided
        and (CHALLENGER_ALIAS in r["aliases"] or r["verdict"] == "approved")
    ]


def approved_unpromoted(store: ApprovalStoreLike, model_name: str) -> list[dict[str, Any]]:
    """Prod approvals in the store not yet promoted, oldest version first (unverified:
    `promotion.verify_promotion` decides whether each may be promoted)."""
    return [
        d
        for d in store.decisions(model_name)
        if d["environment"] == PROD
        and d["decision"] == "approved"
        and store.promotion(d["approval_id"]) is None
    ]
