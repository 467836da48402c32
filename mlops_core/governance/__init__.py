"""Governance: persona RBAC as policy-as-code, a tamper-evident audit trail, human approvals.

- `policy`: the MLOps v2 persona x environment x permission matrix, loaded
  from `rbac_policy.yaml` (or `$MLOPS_RBAC_POLICY`), validated on load,
  queried with `Policy.allowed/require`, exported as Azure role assignments.
- `audit`: an append-only, hash-chained JSONL trail of who approved,
  promoted, deployed or rolled back what, when and why.
- `approvals`: approve/reject decisions on dev registry versions, stored as
  MLflow model version tags plus an audit record.

Pure Python with no Dagster import, so the CLI, sensors and assets share it
and it loads fast; MLflow is imported only when an approval touches the registry.
"""

from mlops_core.governance.approvals import (
    ApprovalError,
    approved_unpromoted,
    decide,
    pending,
)
from mlops_core.governance.audit import AuditTrail, record_hash
from mlops_core.governance.policy import (
    ENVIRONMENTS,
    PERMISSIONS,
    Decision,
    PermissionDenied,
    Policy,
    PolicyError,
)

__all__ = [
    "ENVIRONMENTS",
    "PERMISSIONS",
    "ApprovalError",
    "AuditTrail",
    "Decision",
    "PermissionDenied",
    "Policy",
    "PolicyError",
    "approved_unpromoted",
    "decide",
    "pending",
    "record_hash",
]
