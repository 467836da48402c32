"""The RBAC policy file's schema (pydantic) and its error messages in the file's own terms.

`policy.Policy.load` validates a YAML file against `PolicyFile` and turns every
validation error into one sentence with `describe()`: `persona 'x' prod: problem`.
Strict (`extra="forbid"`): an unknown environment, permission, persona, user or
key is an error, so a typo never silently grants or denies a right.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

ENVIRONMENTS: tuple[str, ...] = ("preprod", "prod")
PERMISSIONS: tuple[str, ...] = (
    *("read_data", "write_data", "label_data"),  # data estate
    *("train_model", "register_model", "read_registry"),  # model development
    *("approve_model", "promote_model"),  # staging -> production gate
    *("deploy_endpoint", "rollback_deployment", "manage_endpoint_keys", "score_endpoint"),
    "scale_endpoint",  # add or remove serving instances (the infra sensor)
    *("read_monitoring", "manage_budget", "manage_policy"),  # operations and governance
)


def known(kind: str, name: Any, names: tuple[str, ...] | list[str]) -> str | None:
    if name in names:
        return None
    return f"unknown {kind} {name!r} (known: {', '.join(names)})"


def _member_of(kind: str, names: tuple[str, ...]) -> AfterValidator:
    def check(name: str) -> str:
        if problem := known(kind, name, names):
            raise ValueError(problem)
        return name

    return AfterValidator(check)


Environment = Annotated[str, _member_of("environment", ENVIRONMENTS)]
Permission = Annotated[str, _member_of("permission", PERMISSIONS)]
_STRICT = ConfigDict(extra="forbid", frozen=True)


def _as_tuple(users: str | list[str]) -> tuple[str, ...]:
    return (users,) if isinstance(users, str) else tuple(users)


# An identity (OS account, Entra ID object id or UPN) -> the policy user(s) it may act as.
_UserList = Annotated[list[str], Field(min_length=1)]
IdentityUsers = Annotated[str | _UserList, AfterValidator(_as_tuple)]


class Persona(BaseModel):
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


class RoleAssignment(BaseModel):
    model_config = _STRICT
    role: Annotated[str, Field(min_length=1)]
    scope: Annotated[str, Field(min_length=1)]


class StagingMinimums(BaseModel):
    """The weakest staging thresholds a passed staging result may have been judged by."""

    model_config = _STRICT
    max_slo_p99_ms: Annotated[float, Field(gt=0)] = 500.0
    min_load_requests: Annotated[int, Field(ge=1)] = 100


class PolicyFile(BaseModel):
    """The YAML file's schema; `Policy.load` turns it into a read-only `Policy`."""

    model_config = _STRICT
    version: Any = None
    allow_policy_override: bool = False
    separation_of_duties: bool = True
    staging_minimums: StagingMinimums = StagingMinimums()
    personas: Annotated[dict[str, Persona], Field(min_length=1)]
    users: dict[str, str] | None = None  # None: `users:` with nothing under it
    os_users: dict[str, IdentityUsers] | None = None
    entra_ids: dict[str, IdentityUsers] | None = None
    azure_roles: dict[str, dict[Environment, list[RoleAssignment] | None]] | None = None

    @model_validator(mode="after")
    def _names_exist(self) -> PolicyFile:
        names, users = list(self.personas), list(self.users or {})
        for user, persona in (self.users or {}).items():
            if problem := known("persona", persona, names):
                raise ValueError(f"user {user!r}: {problem}")
        for section in ("os_users", "entra_ids"):
            for identity, mapped in (getattr(self, section) or {}).items():
                for user in mapped:
                    if problem := known("user", user, users):
                        raise ValueError(f"{section} {identity!r}: {problem}")
        for persona in self.azure_roles or {}:
            if problem := known("persona", persona, names):
                raise ValueError(f"azure_roles: {problem}")
        return self


_SECTION = {"personas": "persona", "users": "user"}
_TOP_LEVEL = f"(known: {', '.join(PolicyFile.model_fields)})"


def describe(error: ErrorDetails) -> str:
    """One validation error in the file's own terms: `persona 'x' prod: problem`."""
    loc: list[Any] = [part for part in error["loc"] if part != "rights"]  # ours, not the file's
    kind, message = error["type"], error["msg"].removeprefix("Value error, ")
    if kind == "model_type":  # not "instance of Persona": the file has no such thing
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
