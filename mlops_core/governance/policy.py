"""Persona RBAC policy: load, validate and query the persona x environment x permission matrix.

The matrix lives in `rbac_policy.yaml` next to this module (policy-as-code,
reviewed like code); `MLOPS_RBAC_POLICY` points at another file. Constraints:

- PyYAML and pydantic only (no Dagster, no MLflow): the CLI, sensors and
  assets all enforce the same file through this module.
- Validation happens on load against the pydantic schema (`policy_schema.py`), strict:
  an unknown environment, permission, persona or key raises `PolicyError`
  naming the entry (`persona 'x' prod: unknown permission 'y'`), so a typo
  never silently grants or denies a right.
- Permission and environment ids are the product's vocabulary (the tuples
  below), not the file's.
- Every answer is a `Decision` with a human sentence as its reason, which is
  what the audit trail records and what `PermissionDenied` says.
- Besides the matrix the file holds what the product's gates read: which OS
  accounts (`os_users`) and Entra IDs (`entra_ids`) act as which users, the
  staging minimums, `separation_of_duties` and `allow_policy_override`
  (`trust.py`: whether `$MLOPS_RBAC_POLICY` may replace it for prod decisions).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import ValidationError

from mlops_core.governance.policy_schema import (
    ENVIRONMENTS,
    PERMISSIONS,
    PolicyFile,
    describe,
    known,
)

POLICY_ENV_VAR = "MLOPS_RBAC_POLICY"
DEFAULT_POLICY_PATH = Path(__file__).with_name("rbac_policy.yaml")
__all__ = ["ENVIRONMENTS", "PERMISSIONS", "Decision", "PermissionDenied", "Policy", "PolicyError"]


class PolicyError(ValueError):
    """The policy file (or a query against it) names something the product does not know."""


@dataclass(frozen=True)
class Decision:
    """One authorization answer; `reason` is a sentence fit for a log, an error or an audit."""

    allowed: bool
    user: str
    persona: str
    permission: str
    environment: str
    reason: str


class PermissionDenied(PermissionError):
    """A user lacks a permission; the message is the decision's reason."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


@dataclass(frozen=True)
class StagingMinimums:
    """The weakest thresholds a staging result may be judged by and still count as passed."""

    max_slo_p99_ms: float = 500.0
    min_load_requests: int = 100

    def weaker(self, slo_p99_ms: float, load_requests: int) -> list[str]:
        """How thresholds `slo_p99_ms`/`load_requests` fall short of these minimums ([]: none)."""
        short = []
        if not slo_p99_ms <= self.max_slo_p99_ms:
            short.append(f"SLO p99 {slo_p99_ms:g} ms is over the {self.max_slo_p99_ms:g} ms most")
        if not load_requests >= self.min_load_requests:
            short.append(f"{load_requests} load requests are under the {self.min_load_requests}")
        return short


@dataclass(frozen=True)
class Policy:
    """A validated RBAC policy. Build it with `Policy.load()`; it is read-only.

    `sha256` is the content hash of the file it was loaded from: the audit trail
    records it with every decision, so a swapped policy shows.
    """

    personas: Mapping[str, Mapping[str, frozenset[str]]]
    users: Mapping[str, str]
    azure_roles: Mapping[str, Mapping[str, tuple[tuple[str, str], ...]]]
    source: str
    sha256: str = ""
    allow_policy_override: bool = False
    separation_of_duties: bool = True
    staging_minimums: StagingMinimums = field(default_factory=StagingMinimums)
    os_users: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    entra_ids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Policy:
        """Load and validate `path`, else `$MLOPS_RBAC_POLICY`, else the packaged policy."""
        chosen = Path(path or os.environ.get(POLICY_ENV_VAR) or DEFAULT_POLICY_PATH)
        src = str(chosen)
        try:
            content = chosen.read_bytes()
            raw = yaml.safe_load(content)
        except OSError as err:
            raise PolicyError(f"{src}: cannot read the RBAC policy: {err}") from err
        except yaml.YAMLError as err:
            raise PolicyError(f"{src}: not valid YAML: {err}") from err
        try:
            parsed = PolicyFile.model_validate(raw)
        except ValidationError as err:
            problems = "; ".join(map(describe, err.errors()))
            raise PolicyError(f"{src}: {problems}") from None
        azure = {
            persona: {
                env: tuple((r.role, r.scope) for r in roles or []) for env, roles in envs.items()
            }
            for persona, envs in (parsed.azure_roles or {}).items()
        }
        minimums = parsed.staging_minimums
        return cls(
            personas=MappingProxyType(
                {name: MappingProxyType(p.rights) for name, p in parsed.personas.items()}
            ),
            users=MappingProxyType(parsed.users or {}),
            azure_roles=MappingProxyType({p: MappingProxyType(e) for p, e in azure.items()}),
            source=src,
            sha256=hashlib.sha256(content).hexdigest(),
            allow_policy_override=parsed.allow_policy_override,
            separation_of_duties=parsed.separation_of_duties,
            staging_minimums=StagingMinimums(minimums.max_slo_p99_ms, minimums.min_load_requests),
            os_users=MappingProxyType(dict(parsed.os_users or {})),
            entra_ids=MappingProxyType(dict(parsed.entra_ids or {})),
        )

    @classmethod
    def packaged(cls) -> Policy:
        """The policy shipped with the code (`rbac_policy.yaml`), whatever the environment says."""
        return cls.load(DEFAULT_POLICY_PATH)

    def _check_query(self, permission: str, environment: str) -> None:
        if problem := known("permission", permission, PERMISSIONS):
            raise PolicyError(problem)
        if problem := known("environment", environment, ENVIRONMENTS):
            raise PolicyError(problem)

    def persona_of(self, user: str) -> str:
        """The user's persona; `PermissionDenied` when the user is not in the policy."""
        persona = self.users.get(user)
        if persona is None:
            reason = f"{user!r} is not a user in the RBAC policy ({self.source})"
            raise PermissionDenied(Decision(False, user, "", "", "", reason))
        return persona

    def who_may(self, permission: str, environment: str) -> list[str]:
        """Personas holding `permission` in `environment`, in policy order."""
        self._check_query(permission, environment)
        return [p for p, envs in self.personas.items() if permission in envs[environment]]

    def allowed(self, user: str, permission: str, environment: str) -> Decision:
        """Whether `user` may exercise `permission` in `environment`, with the reason why."""
        self._check_query(permission, environment)
        persona = self.users.get(user)
        who = ", ".join(self.who_may(permission, environment)) or "none"
        if persona is None:
            reason = (
                f"{user} is not a user in the RBAC policy, so may not {permission} in "
                f"{environment}; personas allowed: {who}"
            )
            return Decision(False, user, "", permission, environment, reason)
        if permission in self.personas[persona][environment]:
            reason = f"{user} ({persona}) may {permission} in {environment}"
            return Decision(True, user, persona, permission, environment, reason)
        reason = (
            f"{user} ({persona}) may not {permission} in {environment}; personas allowed: {who}"
        )
        return Decision(False, user, persona, permission, environment, reason)

    def require(self, user: str, permission: str, environment: str) -> Decision:
        """The allowing decision, or `PermissionDenied` carrying the denying one."""
        decision = self.allowed(user, permission, environment)
        if not decision.allowed:
            raise PermissionDenied(decision)
        return decision

    def matrix(self) -> list[dict[str, Any]]:
        """One row per persona and environment, permissions in vocabulary order, for display."""
        return [
            {
                "persona": persona,
                "environment": env,
                "permissions": [p for p in PERMISSIONS if p in envs[env]],
            }
            for persona, envs in self.personas.items()
            for env in ENVIRONMENTS
        ]

    def azure_role_assignments(
        self, principal_ids: dict[str, str] | None = None
    ) -> list[dict[str, str]]:
        """Azure role assignments as `az role assignment create` arguments.

        `principal_ids` maps a persona to the object id of its Entra group or
        managed identity; a persona without one gets `${<PERSONA>_PRINCIPAL_ID}`.
        `${VAR}` placeholders in scopes and assignees are filled from the
        environment where set and left visible where not.
        """
        ids = principal_ids or {}
        env = dict(os.environ)
        rows = []
        for persona, envs in self.azure_roles.items():
            assignee = ids.get(persona) or f"${{{persona.upper()}_PRINCIPAL_ID}}"
            for environment, roles in envs.items():
                for role, scope in roles:
                    rows.append(
                        {
                            "assignee": Template(assignee).safe_substitute(env),
                            "role": role,
                            "scope": Template(scope).safe_substitute(env),
                            "persona": persona,
                            "environment": environment,
                        }
                    )
        return rows
