"""Governance resource: the persona RBAC policy and the append-only audit trail.

Locally the audit trail is a JSONL file under MLOPS_HOME; the policy is the
packaged `rbac_policy.yaml` unless a path is configured (in code, as deployment
configuration: `$MLOPS_RBAC_POLICY` cannot replace it for prod decisions, see
`decision_policy`). The identity the automation acts as (sensors promoting,
deploying, rolling back) is configured here too, and goes through the same
policy as people.
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
    anchor_path: str | None = Field(
        default=None, description="SQLite DB anchoring the audit head; apart from the audit file."
    )
    anchor_container: str | None = Field(
        default=None, description="Blob container (immutability policy) anchoring the audit head."
    )
    anchor_account_url: str | None = Field(
        default=None, description="https://<account>.blob.core.windows.net of anchor_container."
    )
    anchor_connection_string: str | None = Field(
        default=None, description="Storage connection string for anchor_container (dg.EnvVar)."
    )
    anchor_dagster_event_log: bool = Field(
        default=False, description="Also anchor in the Dagster instance's event log."
    )

    def policy(self) -> Any:
        """The policy for reading (display, non-prod checks): `policy_path`, else
        `$MLOPS_RBAC_POLICY`, else the packaged one."""
        from mlops_core.governance import Policy

        return Policy.load(self.policy_path)

    def decision_policy(self) -> Any:
        """The policy prod decisions use: `policy_path` (deployment code) or the packaged one;
        a `$MLOPS_RBAC_POLICY` swap raises `PolicyOverrideRefused` unless the packaged policy
        allows overrides."""
        from mlops_core.governance.trust import policy_for_decisions

        return policy_for_decisions(self.policy_path)

    def audit(self) -> Any:
        """The audit trail, publishing each new head to the configured anchors."""
        from mlops_core.governance import AuditTrail
        from resources.audit_anchors import build_anchors

        anchors = build_anchors(
            self.anchor_path, self.anchor_container, self.anchor_connection_string,
            self.anchor_account_url, self.anchor_dagster_event_log,
        )  # fmt: skip
        return AuditTrail(self.audit_path, anchors=anchors)

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
                            reason=reason, details={"until": until.isoformat()},
                            **self.signature())  # fmt: skip

    def resume(self, actor: str, reason: str) -> None:
        self._state_path().unlink(missing_ok=True)
        self.audit().record("resume_training", actor, "training-automation", "prod",
                            "succeeded", reason=reason, **self.signature())  # fmt: skip

    def signature(self) -> dict[str, str]:
        """`caller=` and `policy_hash=` for an audit record of this process's own action."""
        from mlops_core.governance import PolicyError
        from resources.identity import current_caller

        try:
            caller = current_caller().principal
        except Exception as err:  # an unreadable identity is recorded, not fatal to the action
            caller = f"unknown ({type(err).__name__})"
        try:
            policy_hash = self.policy().sha256
        except PolicyError:
            policy_hash = "unreadable"
        return {"caller": caller, "policy_hash": policy_hash}
