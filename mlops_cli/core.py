"""Command registry and helpers shared by the `mlops` command groups."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Handler = Callable[[argparse.Namespace], None]
Arg = tuple[tuple[str, ...], dict[str, Any]]
_COMMANDS: list[tuple[str, Handler, str, tuple[Arg, ...], dict[str, Any]]] = []
GROUPS = {
    "model": "registered models in the dev and prod registries",
    "endpoint": "online endpoints: deployments, traffic, keys, local servers",
    "policy": "the persona RBAC policy",
}
EPILOG = """examples:
  mlops model show classical-flight-delay --alias champion -o json
  mlops approve classical-flight-delay 3 --as priya --reason "beats the champion, staging green"
  mlops endpoint traffic classical-online blue=90 green=10 --as sam
  mlops audit --action approve --limit 5"""


class CliError(Exception):
    """A refused or failed operation: the message goes to stderr and the exit code is 1."""


class UsageError(Exception):
    """Arguments argparse accepted but the command cannot use: exit code 2, like argparse."""


def arg(*flags: str, **kwargs: Any) -> Arg:
    return flags, kwargs


def command(path: str, help_text: str, *args: Arg, **defaults: Any) -> Callable[[Handler], Handler]:
    """Register `handler` as `mlops <path>` with these arguments (and fixed `defaults`)."""

    def register(handler: Handler) -> Handler:
        _COMMANDS.append((path, handler, help_text, args, defaults))
        return handler

    return register


def as_user(what: str) -> Arg:
    return arg("--as", dest="user", required=True, metavar="USER",
               help=f"who {what}: a user id of the RBAC policy (`mlops policy show`)")  # fmt: skip


NAME = arg("name", help="endpoint name")
MODEL = arg("name", help="registered model name")
REGISTRY = arg("--registry", choices=("dev", "prod"), default="dev", help="default: dev")
REASON = arg("--reason", help="why, for the audit trail")


# -- resources ------------------------------------------------------------------------------
def _resources(*names: str) -> list[Any]:
    """The current environment's resources, initialized (their `EnvVar`s resolved)."""
    import logging

    import dagster as dg

    from resources.env import current_env, resources_for

    try:
        env = current_env()
    except ValueError as err:
        raise CliError(str(err)) from err
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # MLflow's INFO lines are noise here
    available, chosen = resources_for(env), []
    for name in names:
        resource = available[name]
        missing = [
            value.env_var_name
            for field in type(resource).model_fields
            if isinstance(value := getattr(resource, field), dg.EnvVar)
            and value.env_var_name not in os.environ
        ]
        if missing:
            raise CliError(f"MLOPS_ENV={env} needs {', '.join(missing)} set for its {name}")
        chosen.append(resource.process_config_and_initialize())
    return chosen


def _policy_of(governance: Any) -> Any:
    """The loaded RBAC policy; a broken policy file is a failed operation, not a traceback."""
    from mlops_core.governance import PolicyError

    try:
        return governance.policy()
    except PolicyError as err:
        raise CliError(str(err)) from err


@contextmanager
def _endpoint_errors() -> Iterator[None]:
    from resources.endpoint import EndpointError

    try:
        yield
    except EndpointError as err:
        raise CliError(str(err)) from err


@contextmanager
def _audited(
    governance: Any,
    action: str,
    user: str,
    target: str,
    permission: str,
    reason: str,
    details: dict,
) -> Iterator[None]:
    """Check `permission` in prod for `user`, run the body, and audit the outcome either way."""
    from resources.endpoint import EndpointError

    decision = _policy_of(governance).allowed(user, permission, "prod")
    audit = governance.audit()

    def record(outcome: str, why: str) -> None:
        audit.record(action, user, target, "prod", outcome, why, details, decision.persona)

    if not decision.allowed:
        record("denied", decision.reason)
        raise CliError(decision.reason)
    try:
        yield
    except (EndpointError, ValueError) as err:
        record("failed", str(err))
        raise CliError(f"{action} on {target} failed: {err}") from err
    record("succeeded", reason)


# -- approve / reject -----------------------------------------------------------------------
