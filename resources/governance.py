"""Governance resource: the persona RBAC policy and the append-only audit trail.

Locally the audit trail is a JSONL file under MLOPS_HOME; the policy is the
packaged `rbac_policy.yaml` unless a path is configured. The identity the
automation acts as (sensors promoting, deploying, rolling back) is configured
here too, and goes through the same policy as people.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field


class Governance(dg.ConfigurableResource):
    audit_path: str = Field(description="Append-only JSONL audit trail.")
    policy_path: str | None = Field(default=None, description="RBAC policy YAML; packaged default.")
    automation_user: str = Field(
        default="ci-bot", description="Identity of promotion/deployment automation (CI/CD persona)."
    )
    monitoring_user: str = Field(
        default="monitor-bot", description="Identity of monitoring actions (rollback, scale)."
    )

    def policy(self) -> Any:
        from mlops_assets.governance import Policy

        return Policy.load(self.policy_path)

    def audit(self) -> Any:
        from mlops_assets.governance import AuditTrail

        return AuditTrail(self.audit_path)
