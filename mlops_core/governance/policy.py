"""Persona RBAC policy: load, validate and query the persona x environment x permission matrix.

The matrix lives in `rbac_policy.yaml` next to this module (policy-as-code,
reviewed like code); `MLOPS_RBAC_POLICY` points at another file. Constraints:

- Pure Python (PyYAML only, no Dagster, no MLflow): the CLI, sensors and
  assets all enforce the same file through this module.
- Validation happens on load and is strict: an unknown environment,
  permission, persona or top-level key raises `PolicyError` naming the entry,
  so a typo never silently grants or denies a right.
- Permission and environment ids are the product's vocabulary, not the file's.
- Every answer is a `Decision` with a human sentence as its reason, which is
  what the audit trail records and what `PermissionDenied` says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from types import MappingProxyType
from typing import Any

import yaml

POLICY_ENV_VAR = "MLOPS_RBAC_POLICY"
DEFAULT_POLICY_PATH = Path(__file__).with_name("rbac_policy.yaml")

ENVIRONMENTS: tuple[str, ...] = ("preprod", "prod")
PERMISSIONS: tuple[str, ...] = (
    *("read_data", "write_data", "label_data"),  # data estate
    *("train_model", "register_model", "read_registry"),  # model development
    *("approve_model", "promote_model"),  # staging -> production gate
    *("deploy_endpoint", "rollback_deployment", "manage_endpoint_keys", "score_endpoint"),
    "scale_endpoint",  # add or remove serving instances (the infra sensor)
    *("read_monitoring", "manage_budget", "manage_policy"),  # operations and governance
)
_TOP_LEVEL_KEYS = frozenset({"version", "personas", "users", "azure_roles"})


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


def _fail(source: str, message: str) -> PolicyError:
    return PolicyError(f"{source}: {message}")


def _known(kind: str, name: Any, known: tuple[str, ...] | list[str]) -> str | None:
    if name in known:
        return None
    return f"unknown {kind} {name!r} (known: {', '.join(known)})"


def _parse_personas(src: str, raw: Any) -> dict[str, dict[str, frozenset[str]]]:
    if not isinstance(raw, Mapping) or not raw:
        raise _fail(src, "'personas' must be a non-empty mapping of persona -> environments")
    personas: dict[str, dict[str, frozenset[str]]] = {}
    for persona, body in raw.items():
        if not isinstance(body, Mapping):
            raise _fail(src, f"persona {persona!r} must map environments to permission lists")
        envs: dict[str, frozenset[str]] = {}
        for env, perms in body.items():
            if env == "description":
                continue
            if problem := _known("environment", env, ENVIRONMENTS):
                raise _fail(src, f"persona {persona!r}: {problem}")
            if not isinstance(perms, list):
                raise _fail(src, f"persona {persona!r} {env}: permissions must be a list")
            for perm in perms:
                if problem := _known("permission", perm, PERMISSIONS):
                    raise _fail(src, f"persona {persona!r} {env}: {problem}")
            envs[env] = frozenset(perms)
        if missing := [e for e in ENVIRONMENTS if e not in envs]:
            raise _fail(src, f"persona {persona!r} lists no {', '.join(missing)} (use [] for none)")
        personas[str(persona)] = envs
    return personas


def _parse_users(src: str, raw: Any, personas: list[str]) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise _fail(src, "'users' must be a mapping of user id -> persona")
    for user, persona in raw.items():
        if not isinstance(user, str):
            raise _fail(src, f"user id {user!r} is not a string; quote it in the YAML")
        if problem := _known("persona", persona, personas):
            raise _fail(src, f"user {user!r}: {problem}")
    return dict(raw)


def _parse_azure(src: str, raw: Any, personas: list[str]) -> dict[str, dict[str, tuple]]:
    if not isinstance(raw, Mapping):
        raise _fail(src, "'azure_roles' must be a mapping of persona -> environment -> roles")
    out: dict[str, dict[str, tuple]] = {}
    for persona, envs in raw.items():
        if problem := _known("persona", persona, personas):
            raise _fail(src, f"azure_roles: {problem}")
        if not isinstance(envs, Mapping):
            raise _fail(src, f"azure_roles {persona!r} must map environments to role lists")
        out[persona] = {}
        for env, roles in envs.items():
            if problem := _known("environment", env, ENVIRONMENTS):
                raise _fail(src, f"azure_roles {persona!r}: {problem}")
            for entry in roles or []:
                if not (isinstance(entry, Mapping) and entry.get("role") and entry.get("scope")):
                    raise _fail(src, f"azure_roles {persona!r} {env}: {entry!r} needs role, scope")
            out[persona][env] = tuple((str(e["role"]), str(e["scope"])) for e in roles or [])
    return out


@dataclass(frozen=True)
class Policy:
    """A validated RBAC policy. Build it with `Policy.load()`; it is read-only."""

    personas: Mapping[str, Mapping[str, frozenset[str]]]
    users: Mapping[str, str]
    azure_roles: Mapping[str, Mapping[str, tuple[tuple[str, str], ...]]]
    source: str

    @classmethod
    def load(cls, path: str | Path | None = None) -> Policy:
        """Load and validate `path`, else `$MLOPS_RBAC_POLICY`, else the packaged policy."""
        chosen = Path(path or os.environ.get(POLICY_ENV_VAR) or DEFAULT_POLICY_PATH)
        src = str(chosen)
        try:
            raw = yaml.safe_load(chosen.read_text())
        except OSError as err:
            raise PolicyError(f"{src}: cannot read the RBAC policy: {err}") from err
        except yaml.YAMLError as err:
            raise PolicyError(f"{src}: not valid YAML: {err}") from err
        if not isinstance(raw, Mapping):
            raise _fail(src, "the policy must be a YAML mapping")
        if extra := sorted(set(raw) - _TOP_LEVEL_KEYS):
            raise _fail(src, f"unknown top-level key(s) {extra} (known: {sorted(_TOP_LEVEL_KEYS)})")
        personas = _parse_personas(src, raw.get("personas"))
        names = list(personas)
        users = _parse_users(src, raw.get("users") or {}, names)
        azure = _parse_azure(src, raw.get("azure_roles") or {}, names)
        return cls(
            personas=MappingProxyType({p: MappingProxyType(e) for p, e in personas.items()}),
            users=MappingProxyType(users),
            azure_roles=MappingProxyType({p: MappingProxyType(e) for p, e in azure.items()}),
            source=src,
        )

    def _check_query(self, permission: str, environment: str) -> None:
        if problem := _known("permission", permission, PERMISSIONS):
            raise PolicyError(problem)
        if problem := _known("environment", environment, ENVIRONMENTS):
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
