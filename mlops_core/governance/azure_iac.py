"""Bicep parameters for deploy/azure/modules/roles.bicep, generated from the persona RBAC policy.

`Policy.azure_role_assignments()` exports the policy's `azure_roles` as rows
(persona, environment, role, scope, assignee) whose scopes are placeholders
(`${PREPROD_WORKSPACE_SCOPE}`) and whose assignees are object ids or
`${<PERSONA>_PRINCIPAL_ID}`. This module turns the rows of one environment into
a `deploymentParameters` document for roles.bicep. Constraints:

- Pure Python and PyYAML: no Azure SDK, nothing on the network; the output is
  reviewed like code and deployed with `az deployment group create`.
- The template resolves scopes itself: each placeholder maps to a kind of
  resource main.bicep creates (`SCOPE_KINDS`), and the resources' names come from
  the environment's parameters file, so names are written down once.
- Role names resolve to built-in role definition GUIDs through the shipped
  `azure_builtin_roles.yaml`; every problem (unknown role, a prod scope in a
  preprod grant, a persona without a principal id) raises `IacError` naming the
  persona and what to fix, and all missing principal ids are named at once.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from mlops_core.governance.policy import Policy

BUILTIN_ROLES_PATH = Path(__file__).with_name("azure_builtin_roles.yaml")
PARAMETERS_SCHEMA = (
    "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"
)
# deployment environment (main.bicep's `environment`) -> the policy's environment
POLICY_ENVIRONMENT = {"dev": "preprod", "prod": "prod"}
# placeholder `${<ENV>_<KIND>_SCOPE}` -> the `scope` roles.bicep resolves
SCOPE_KINDS = {
    "WORKSPACE": "workspace",
    "STORAGE": "lake",
    "KEYVAULT": "keyVault",
    "RG": "resourceGroup",
    "ENDPOINT": "endpoint",
}
PRINCIPAL_TYPES = ("Group", "ServicePrincipal", "User")
# roles.bicep names these resources; the environment's parameters file holds the values
TARGET_PARAMETERS = ("workspaceName", "lakeAccountName", "lakeContainerName", "keyVaultName")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ENDPOINT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")  # Azure ML's naming rule
_PLACEHOLDER = re.compile(r"^\$\{(PREPROD|PROD)_([A-Z]+)_SCOPE\}$")


class IacError(ValueError):
    """The policy, a parameters file or an input cannot become a valid Bicep deployment."""


def builtin_roles(path: str | Path = BUILTIN_ROLES_PATH) -> dict[str, str]:
    """Built-in role name -> role definition GUID, checked for well-formed GUIDs."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise IacError(f"{path}: cannot read the built-in role list: {err}") from err
    if not isinstance(raw, dict):
        raise IacError(f"{path}: expected a mapping of role name to role definition id")
    bad = [f"{name}: {guid!r}" for name, guid in raw.items() if not GUID.match(str(guid))]
    if bad:
        raise IacError(f"{path}: not lowercase role definition GUIDs: {'; '.join(bad)}")
    return {str(name): str(guid) for name, guid in raw.items()}


def targets_from_parameters(document: Mapping[str, Any], source: str = "") -> dict[str, str]:
    """The names roles.bicep needs, read from main.bicep's parameters file (JSON)."""
    params = document.get("parameters")
    if not isinstance(params, Mapping):
        raise IacError(f"{source}: not a deploymentParameters file (no 'parameters' object)")
    names = {}
    for key in TARGET_PARAMETERS:
        value = params.get(key, {}).get("value") if isinstance(params.get(key), dict) else None
        if not isinstance(value, str) or not value:
            raise IacError(f"{source}: parameter {key!r} needs a string value for roles.bicep")
        names[key] = value
    return names


def scope_kind(scope: str, policy_env: str, environ: Mapping[str, str]) -> str:
    """The roles.bicep `scope` of a policy scope, which may be a placeholder or its value
    already substituted from the environment by `azure_role_assignments()`."""
    match = _PLACEHOLDER.match(scope)
    if match is None:  # substituted: find the variable that produced it
        match = next(
            (
                m
                for var, value in environ.items()
                if value == scope and (m := _PLACEHOLDER.match(f"${{{var}}}"))
            ),
            None,
        )
    if match is None:
        known = ", ".join(f"${{<PREPROD|PROD>_{k}_SCOPE}}" for k in SCOPE_KINDS)
        raise IacError(f"scope {scope!r} is not one of the policy's placeholders ({known})")
    env, kind = match.group(1).lower(), match.group(2)
    if env != policy_env:
        raise IacError(f"scope {scope!r} belongs to {env}, not to the {policy_env} grants")
    if kind not in SCOPE_KINDS:
        raise IacError(f"scope {scope!r}: the template creates no {kind} resource")
    return SCOPE_KINDS[kind]


def default_principal_type(persona: str, environ: Mapping[str, str]) -> str:
    """`<PERSONA>_PRINCIPAL_TYPE` if set; else processes are managed identities, people groups."""
    chosen = environ.get(f"{persona.upper()}_PRINCIPAL_TYPE")
    if chosen is None:
        return "ServicePrincipal" if persona.endswith("_process") else "Group"
    if chosen not in PRINCIPAL_TYPES:
        raise IacError(f"{persona.upper()}_PRINCIPAL_TYPE={chosen!r}: use one of {PRINCIPAL_TYPES}")
    return chosen


def role_assignments(
    rows: Iterable[Mapping[str, str]],
    environment: str,
    roles: Mapping[str, str],
    endpoints: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """roles.bicep `assignments` for `environment` (dev|prod) from policy export rows.

    Endpoint grants apply to each of `endpoints` (online endpoints the platform has
    created); one (resource, principal, role) appears once, its personas joined.
    """
    if environment not in POLICY_ENVIRONMENT:
        raise IacError(f"environment {environment!r}: use one of {sorted(POLICY_ENVIRONMENT)}")
    env = os.environ if environ is None else environ
    policy_env, endpoint_names = POLICY_ENVIRONMENT[environment], list(endpoints)
    if bad := [name for name in endpoint_names if not ENDPOINT_NAME.match(name)]:
        raise IacError(f"not Azure ML online endpoint names (3-32 letters, digits, '-'): {bad}")
    merged: dict[tuple[str, ...], dict[str, str]] = {}
    missing: dict[str, str] = {}
    for row in rows:
        if row["environment"] != policy_env:
            continue
        persona, role = row["persona"], row["role"]
        if role not in roles:
            raise IacError(
                f"persona {persona!r} ({policy_env}): role {role!r} is not in the built-in role "
                f"list {BUILTIN_ROLES_PATH.name}; add its id from Azure's built-in roles page, "
                "or grant a role that is listed"
            )
        kind = scope_kind(row["scope"], policy_env, env)
        principal = row["assignee"]
        if not GUID.match(principal.lower()):
            missing[persona] = principal
            continue
        if kind == "endpoint" and not endpoint_names:
            raise IacError(
                f"persona {persona!r} ({policy_env}) is granted {role!r} on an online endpoint: "
                "name the endpoints (mlops policy bicep-params --endpoint NAME; they must exist: "
                "the platform creates them when it first deploys)"
            )
        for endpoint in endpoint_names if kind == "endpoint" else [""]:
            key = (kind, endpoint, principal.lower(), roles[role])
            if key in merged:
                merged[key]["persona"] += f"+{persona}"
                continue
            merged[key] = {
                "persona": persona,
                "role": role,
                "roleDefinitionId": roles[role],
                "principalId": principal.lower(),
                "principalType": default_principal_type(persona, env),
                "scope": kind,
                "endpointName": endpoint,
            }
    if missing:
        named = ", ".join(
            f"{p.upper()}_PRINCIPAL_ID" + ("" if v.startswith("${") else f" (not a GUID: {v!r})")
            for p, v in missing.items()
        )
        raise IacError(
            f"personas without an Entra object id (of their group or managed identity): "
            f"{', '.join(missing)}; set {named}"
        )
    return list(merged.values())


def bicep_parameters(
    rows: Iterable[Mapping[str, str]],
    environment: str,
    targets: Mapping[str, str],
    policy_sha256: str,
    endpoints: Iterable[str] = (),
    roles: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The whole deploymentParameters document for roles.bicep."""
    assignments = role_assignments(rows, environment, roles or builtin_roles(), endpoints, environ)
    values: dict[str, Any] = {key: targets[key] for key in TARGET_PARAMETERS}
    values |= {"policySha256": policy_sha256, "assignments": assignments}
    return {
        "$schema": PARAMETERS_SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {key: {"value": value} for key, value in values.items()},
    }


def from_policy(
    policy: Policy,
    environment: str,
    parameters_file: str | Path,
    endpoints: Iterable[str] = (),
    principal_ids: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """roles.bicep parameters for `environment` from a loaded `Policy`, with the resource
    names of main.bicep's parameters file (`deploy/azure/parameters.<env>.json`)."""
    path = Path(parameters_file)
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise IacError(f"{path}: cannot read main.bicep's parameters: {err}") from err
    if not isinstance(document, dict):
        raise IacError(f"{path}: not a deploymentParameters file")
    targets = targets_from_parameters(document, str(path))
    declared = document["parameters"].get("environment", {}).get("value")
    if declared != environment:
        raise IacError(f"{path} is for environment {declared!r}, not {environment!r}")
    ids = dict(principal_ids or {})
    if unknown := sorted(set(ids) - set(policy.azure_roles)):
        known = ", ".join(policy.azure_roles)
        raise IacError(f"principal ids for unknown personas {unknown}; the policy has: {known}")
    rows = policy.azure_role_assignments(ids)
    return bicep_parameters(rows, environment, targets, policy.sha256, endpoints)
