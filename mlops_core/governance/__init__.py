"""Governance: persona RBAC as policy-as-code, a tamper-evident audit trail, human approvals.

- `policy`: the MLOps v2 persona x environment x permission matrix, loaded
  from `rbac_policy.yaml` (or `$MLOPS_RBAC_POLICY`), validated on load,
  queried with `Policy.allowed/require`, exported as Azure role assignments;
  also who is who (`os_users`, `entra_ids`) and the staging minimums.
- `trust`: the policy production decisions are taken under (a swapped file is
  refused unless the packaged policy allows it) and the approvals store contract.
- `identity`: the caller from the environment, mapped to policy users.
- `audit`: an append-only, hash-chained JSONL trail of who approved,
  promoted, deployed or rolled back what, when and why.
- `decisions` / `approvals`: approve/reject decisions as compare-and-set
  records in the approvals store, each with its audit entry; tags on the
  registry version are a display copy.
- `gates` / `promotion`: the checks a promotion re-runs at promotion time, used
  by the approval sensor and the promotion asset alike.

Pure Python with no Dagster import, so the CLI, sensors and assets share it
and it loads fast; MLflow is imported only when an approval touches the registry.
"""

from mlops_core.governance.approvals import ApprovalError, approved_unpromoted, pending
from mlops_core.governance.audit import AuditTrail, record_hash
from mlops_core.governance.identity import Caller, IdentityRefused, act_as, users_for
from mlops_core.governance.policy import (
    ENVIRONMENTS,
    PERMISSIONS,
    Decision,
    PermissionDenied,
    Policy,
    PolicyError,
)
from mlops_core.governance.promotion import PromotionCheck, verify_promotion
from mlops_core.governance.trust import AlreadyRecorded, PolicyOverrideRefused

__all__ = [
    "ENVIRONMENTS",
    "PERMISSIONS",
    "AlreadyRecorded",
    "ApprovalError",
    "AuditTrail",
    "Caller",
    "Decision",
    "IdentityRefused",
    "PermissionDenied",
    "Policy",
    "PolicyError",
    "PolicyOverrideRefused",
    "PromotionCheck",
    "act_as",
    "approved_unpromoted",
    "pending",
    "record_hash",
    "users_for",
    "verify_promotion",
]
