"""Governance resource: the persona RBAC policy and the append-only audit trail.

Locally the audit trail is a JSONL file under MLOPS_HOME; the policy is the
packaged `rbac_policy.yaml` unless a path is configured. The identity the
automation acts as (sensors promoting, deploying, rolling back) is configured
here too, and goes through the same policy as people.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
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
        from mlops_core.governance import Policy

        return Policy.load(self.policy_path)

    def audit(self) -> Any:
        from mlops_core.governance import AuditTrail

        return AuditTrail(self.audit_path)

    # -- training automation pause (set by the budget sensor, lifted by a person or a new month)
    def _state_path(self) -> Path:
        return Path(self.audit_path).with_name("automation.json")

    def paused_reason(self, now: datetime | None = None) -> str | None:
        """Why training automation is paused now, or None when it may run."""
        path = self._state_path()
        if not path.exists():
            return None
        state = json.loads(path.read_text())
        until = datetime.fromisoformat(state["until"])
        if (now or datetime.now(UTC)) >= until:
            return None
        return f"{state['reason']} (until {state['until']})"

    def pause(self, until: datetime, reason: str, actor: str) -> None:
        path = self._state_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"until": until.isoformat(), "reason": reason, "by": actor}))
        os.replace(tmp, path)
        self.audit().record("pause_training", actor, "training-automation", "prod", "succeeded",
                            reason=reason, details={"until": until.isoformat()})  # fmt: skip

    def resume(self, actor: str, reason: str) -> None:
        self._state_path().unlink(missing_ok=True)
        self.audit().record("resume_training", actor, "training-automation", "prod",
                            "succeeded", reason=reason)  # fmt: skip
