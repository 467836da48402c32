"""The policy production decisions are taken under, and the contract of the approvals store.

- `policy_for_decisions`: the packaged policy (or the one the deployment
  configured in code), never silently a file named by `$MLOPS_RBAC_POLICY`:
  a different file is refused for prod decisions unless the packaged policy
  sets `allow_policy_override: true`. The refusal carries the swapped policy,
  so the audit record names its hash.
- `ApprovalStoreLike`: what governance needs from the approvals store
  (`resources/approvals_store.py` implements it locally on SQLite and on Azure
  Blob Storage). Every `claim_*`/`record_*` write is insert-or-fail, a
  compare-and-set: of two concurrent writers of one key, exactly one wins and
  the other gets `AlreadyRecorded` with the winner's record.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from mlops_core.governance.policy import POLICY_ENV_VAR, Decision, PermissionDenied, Policy

PROD = "prod"


class PolicyOverrideRefused(PermissionDenied):
    """`$MLOPS_RBAC_POLICY` names a policy other than the packaged one, which forbids that."""

    def __init__(self, policy: Policy, packaged: Policy) -> None:
        reason = (
            f"{POLICY_ENV_VAR}={policy.source} (sha256 {policy.sha256[:12]}) differs from the "
            f"packaged RBAC policy (sha256 {packaged.sha256[:12]}), which does not allow "
            "overrides (allow_policy_override: false): production decisions are refused under it"
        )
        super().__init__(Decision(False, "", "", "", PROD, reason))
        self.policy = policy


def policy_for_decisions(configured: str | None = None) -> Policy:
    """The policy prod decisions use: `configured` (deployment code), else the packaged one.

    `$MLOPS_RBAC_POLICY` is honoured only when it names the packaged content or the
    packaged policy allows overrides; otherwise `PolicyOverrideRefused`.
    """
    if configured:
        return Policy.load(configured)
    packaged = Policy.packaged()
    override = os.environ.get(POLICY_ENV_VAR)
    if not override:
        return packaged
    policy = Policy.load(override)
    if policy.sha256 == packaged.sha256 or packaged.allow_policy_override:
        return policy
    raise PolicyOverrideRefused(policy, packaged)


class AlreadyRecorded(ValueError):
    """An insert-or-fail write lost: the key holds a record already (`existing`)."""

    def __init__(self, message: str, existing: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.existing = existing or {}


class ApprovalStoreLike(Protocol):
    """Decisions, staging results, registrations and promotions, each written once."""

    def claim_decision(self, record: dict[str, Any]) -> None: ...
    def finalize_decision(self, record: dict[str, Any]) -> None: ...
    def release_decision(self, record: dict[str, Any]) -> None: ...
    def decision(
        self, model_name: str, dev_version: str, environment: str = PROD
    ) -> dict[str, Any] | None: ...
    def decisions(self, model_name: str) -> list[dict[str, Any]]: ...
    def record_staging(self, record: dict[str, Any]) -> None: ...
    def staging_results(self, model_name: str, version: str) -> list[dict[str, Any]]: ...
    def record_registration(self, record: dict[str, Any]) -> dict[str, Any]: ...
    def registration(self, model_name: str, version: str) -> dict[str, Any] | None: ...
    def claim_promotion(self, record: dict[str, Any]) -> None: ...
    def release_promotion(self, approval_id: str) -> None: ...
    def promotion(self, approval_id: str) -> dict[str, Any] | None: ...
