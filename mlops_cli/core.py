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
  mlops model show classical-flight-delay --alias champion --registry prod -o json
  mlops model list --registry prod -v               # -v: which stores, on stderr
  mlops approve classical-flight-delay 3 --reason "beats the champion, staging green"
  mlops endpoint traffic classical-online blue=90 green=10
  mlops endpoint keys classical-online --as sam     # --as only narrows your own identity
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
    about = (f"who {what}: one of the policy users YOUR identity (OS account or Entra ID) "
             "maps to; needed only when it maps to several; never someone else")  # fmt: skip
    return arg("--as", dest="user", default=None, metavar="USER", help=about)


NAME = arg("name", help="endpoint name")
MODEL = arg("name", help="registered model name")
REGISTRY = arg("--registry", choices=("dev", "prod"), default="dev",
               help="dev (candidates, the default) or prod (promoted copies)")  # fmt: skip
REASON = arg("--reason", help="why, for the audit trail")


# -- resources ------------------------------------------------------------------------------
def _resources(*names: str, stores_needed: bool = True) -> list[Any]:
    """The current environment's resources, initialized (their `EnvVar`s resolved), rooted
    at the stores `mlops_cli.stores.locate` finds: a refusal when none are found, unless
    the command reads no store (`stores_needed=False`)."""
    import logging

    import dagster as dg

    from mlops_cli import stores
    from resources.env import current_env

    try:
        env = current_env()
    except ValueError as err:
        raise CliError(str(err)) from err
    where = stores.locate(env, required=stores_needed)
    stores.note(where.describe())
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # MLflow's INFO lines are noise here
    available, chosen = stores.resources_of(where), []
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


def _caller(identity: Any) -> Any:
    """This process's authenticated identity (OS account, Entra ID); never a flag."""
    try:
        return identity.caller()
    except Exception as err:  # no Azure credential, no passwd entry: a failed operation
        raise CliError(f"cannot establish who is calling: {err}") from err


@contextmanager
def _audited(
    governance: Any,
    identity: Any,
    action: str,
    requested: str | None,
    target: str,
    permission: str,
    reason: str,
    details: dict,
) -> Iterator[str]:
    """Resolve the caller (the `--as` narrowing included), check `permission` in prod under
    the policy for decisions, run the body, and audit the outcome, refusals included.
    Yields the policy user acted as."""
    from mlops_core.governance import IdentityRefused, PolicyError, PolicyOverrideRefused, act_as
    from resources.endpoint import EndpointError

    caller, audit = _caller(identity), governance.audit()
    details = {**details, "requested_as": requested}

    def record(actor: str, persona: str, outcome: str, why: str, policy_hash: str) -> None:
        audit.record(action, actor or caller.principal, target, "prod", outcome, why, details,
                     persona, caller=caller.principal, policy_hash=policy_hash)  # fmt: skip

    try:
        policy = governance.decision_policy()
    except PolicyOverrideRefused as err:  # attempts without an identity are the caller's own
        record(caller.principal, "", "denied", str(err), err.policy.sha256)
        raise CliError(str(err)) from err
    except PolicyError as err:
        raise CliError(str(err)) from err
    try:
        user = act_as(policy, caller, requested, permission)
    except IdentityRefused as err:
        record(caller.principal, "", "denied", str(err), policy.sha256)
        raise CliError(str(err)) from err
    decision = policy.allowed(user, permission, "prod")
    if not decision.allowed:
        record(user, decision.persona, "denied", decision.reason, policy.sha256)
        raise CliError(decision.reason)
    try:
        yield user
    except (EndpointError, ValueError) as err:
        record(user, decision.persona, "failed", str(err), policy.sha256)
        raise CliError(f"{action} on {target} failed: {err}") from err
    record(user, decision.persona, "succeeded", reason, policy.sha256)


# -- approve / reject -----------------------------------------------------------------------
