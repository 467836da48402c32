"""Persona RBAC policy: load, validate and query the persona x environment x permission matrix.

The matrix lives in `rbac_policy.yaml` next to this module (policy-as-code,
reviewed like code); `MLOPS_RBAC_POLICY` points at another file. Constraints:

- PyYAML and pydantic only (no Dagster, no MLflow): the CLI, sensors and
  assets all enforce the same file through this module.
- Validation happens on load against the pydantic schema below and is strict:
  an unknown environment, permission, persona or key raises `PolicyError`
  naming the entry (`persona 'x' prod: unknown permission 'y'`), so a typo
  never silently grants or denies a right.
- Permission and environment ids are the product's vocabulary (the tuples
  below), not the file's.
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
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

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


def _known(kind: str, name: Any, known: tuple[str, ...] | list[str]) -> str | None:
    if name in known:
        return None
    return f"unknown {kind} {name!r} (known: {', '.join(known)})"


def _member_of(kind: str, known: tuple[str, ...]) -> AfterValidator:
    def check(name: str) -> str:
        if problem := _known(kind, name, known):
            raise ValueError(problem)
        return name

    return AfterValidator(check)


Environment = Annotated[str, _member_of("environment", ENVIRONMENTS)]
Permission = Annotated[str, _member_of("permission", PERMISSIONS)]
_STRICT = ConfigDict(extra="forbid", frozen=True)


class _Persona(BaseModel):
    """`{description, preprod: [...], prod: [...]}`; the environments land in `rights`."""

    model_config = _STRICT
    description: str = ""
    rights: dict[Environment, Annotated[list[Permission], AfterValidator(frozenset)]]

    @model_validator(mode="before")
    @classmethod
    def _environments_as_rights(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping):  # anything else: "must be a mapping" from pydantic
            envs = {k: v for k, v in raw.items() if k != "description"}
            raw = {"description": raw.get("description", ""), "rights": envs}
        return raw

    @field_validator("rights")
    @classmethod
    def _every_environment(cls, rights: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
        if missing := [e for e in ENVIRONMENTS if e not in rights]:
            raise ValueError(f"lists no {', '.join(missing)} (use [] for none)")
        return rights


class _RoleAssignment(BaseModel):
    model_config = _STRICT
    role: Annotated[str, Field(min_length=1)]
    scope: Annotated[str, Field(min_length=1)]


class _PolicyFile(BaseModel):
    """The YAML file's schema; `Policy.load` turns it into a read-only `Policy`."""

    model_config = _STRICT
    version: Any = None
    personas: Annotated[dict[str, _Persona], Field(min_length=1)]
    users: dict[str, str] | None = None  # None: `users:` with nothing under it
    azure_roles: dict[str, dict[Environment, list[_RoleAssignment] | None]] | None = None

    @model_validator(mode="after")
    def _personas_exist(self) -> _PolicyFile:
        names = list(self.personas)
        for user, persona in (self.users or {}).items():
            if problem := _known("persona", persona, names):
                raise ValueError(f"user {user!r}: {problem}")
        for persona in self.azure_roles or {}:
            if problem := _known("persona", persona, names):
                raise ValueError(f"azure_roles: {problem}")
        return self


_SECTION = {"personas": "persona", "users": "user"}
_TOP_LEVEL = f"(known: {', '.join(_PolicyFile.model_fields)})"


def _describe(error: ErrorDetails) -> str:
    """One validation error in the file's own terms: `persona 'x' prod: problem`."""
    loc: list[Any] = [part for part in error["loc"] if part != "rights"]  # ours, not the file's
    kind, message = error["type"], error["msg"].removeprefix("Value error, ")
    if kind == "model_type":  # not "instance of _Persona": the file has no such thing
        message = "must be a mapping" if loc else "the policy must be a YAML mapping"
    elif kind == "extra_forbidden":
        key = loc.pop()
        message = f"unknown key {key!r}" if loc else f"unknown top-level key {key!r} {_TOP_LEVEL}"
    elif kind == "missing":
        message = f"needs {loc.pop()!r}"
    elif loc[-1:] == ["[key]"]:  # a bad mapping key: an environment, a user id
        message = message if repr(loc[-2]) in message else f"key {loc[-2]!r}: {message}"
        loc = loc[:-2]
    elif kind == "value_error" and loc and isinstance(loc[-1], int):  # it names the list item
        loc.pop()
    if not loc:
        return message
    section, *path = loc
    where = f"{_SECTION.get(section, section)} {path[0]!r}" if path else section
    where += "".join(f"[{part}]" if isinstance(part, int) else f" {part}" for part in path[1:])
    return f"{where}: {message}"


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
        try:
            parsed = _PolicyFile.model_validate(raw)
        except ValidationError as err:
            problems = "; ".join(map(_describe, err.errors()))
            raise PolicyError(f"{src}: {problems}") from None
        azure = {
            persona: {
                env: tuple((r.role, r.scope) for r in roles or []) for env, roles in envs.items()
            }
            for persona, envs in (parsed.azure_roles or {}).items()
        }
        return cls(
            personas=MappingProxyType(
                {name: MappingProxyType(p.rights) for name, p in parsed.personas.items()}
            ),
            users=MappingProxyType(parsed.users or {}),
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
