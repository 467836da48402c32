"""`mlops`: the platform's command line, in the manner of the Azure CLI (`az ml ...`).

`mlops approve|reject`, `mlops model list|show|pending`, `mlops endpoint
list|show|keys|regenerate-key|traffic|serve`, `mlops audit` and `mlops policy
show|azure-roles`; every command takes `-o table|json` and `--help`. Each
command is a function registered with `@command`, next to its arguments.
Constraints:

- Starts fast: only argparse and `cli_output` (stdlib + tabulate) load at
  startup. Resources, MLflow and Dagster are imported inside the command that
  needs them, so `--help` and usage errors never pay for them.
- Never needs the Dagster daemon or instance: commands call the resources
  from `resources_for(current_env())` and the governance code the assets
  use, so a decision taken here equals one taken in the UI. `MLOPS_ENV`
  picks the environment, `MLOPS_HOME` the local stores.
- Exit codes: 0 success; 1 a refused or failed operation, its message on
  stderr; 2 a usage error (argparse's convention, also for a bad traffic split).
- Changes to production (approve/reject, traffic, key rotation) name the
  acting user with `--as`, are checked against the RBAC policy in `prod` and
  are audited, refusals included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlops_assets import cli_output as out

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
    from mlops_assets.governance import PolicyError

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
_DECISION_ARGS = (
    arg("model", help="registered model name"),
    arg("version", help="version in the dev registry"),
    as_user("decides (needs approve_model in prod)"),
    arg("--reason", required=True, help="why; kept in the registry tags and the audit trail"),
)


# decorators apply bottom-up: approve is registered (and listed) first
@command("reject", "reject a dev version for production (audited)", *_DECISION_ARGS,
         decision="reject")  # fmt: skip
@command("approve", "approve a staged dev version for production (audited)", *_DECISION_ARGS,
         decision="approve")  # fmt: skip
def cmd_decide(args: argparse.Namespace) -> None:
    from mlops_assets.approve import record_decision
    from mlops_assets.governance import PermissionDenied

    registry, governance = _resources("registry", "governance")
    try:
        record = record_decision(
            registry, governance, args.model, args.version, args.user, args.decision, args.reason
        )
    except (PermissionDenied, ValueError) as err:  # ApprovalRefused/ApprovalError/PolicyError
        raise CliError(str(err)) from err
    out.emit(record, args.output)


# -- model ----------------------------------------------------------------------------------
@command("model list", "models with their latest version, aliases and version count", REGISTRY)
def cmd_model_list(args: argparse.Namespace) -> None:
    (registry,) = _resources("registry")
    client = registry.client(args.registry)
    models, token = [], None
    while True:
        page = client.search_registered_models(max_results=500, page_token=token)
        models.extend(page)
        if not (token := page.token):
            break
    rows = []
    for model in sorted(models, key=lambda m: m.name):
        versions = registry.versions(model.name, args.registry)
        rows.append(
            {
                "name": model.name,
                "latest_version": str(versions[-1].version) if versions else None,
                "aliases": {a: str(v) for a, v in sorted((model.aliases or {}).items())},
                "versions": len(versions),
            }
        )
    out.emit(rows, args.output)


def _find_version(registry: Any, args: argparse.Namespace) -> Any:
    name, stage = args.name, args.registry
    if args.alias and args.version:
        raise UsageError("give --version or --alias, not both")
    versions = registry.versions(name, stage)
    if not versions:
        raise CliError(f"no model {name!r} in the {stage} registry; `mlops model list "
                       f"--registry {stage}` lists the registered models")  # fmt: skip
    if args.alias:
        found = registry.version_by_alias(name, args.alias, stage)
        if found is None:
            raise CliError(f"{name} has no alias {args.alias!r} in the {stage} registry")
        return found
    if not args.version:
        return versions[-1]
    match = [mv for mv in versions if str(mv.version) == args.version]
    if not match:
        known = ", ".join(str(mv.version) for mv in versions)
        raise CliError(f"{name} has no version {args.version} in {stage}; versions: {known}")
    return match[0]


def _model_files(registry: Any, name: str, version: str, stage: str) -> dict[str, Any]:
    """Signature and input example, from the version's `MLmodel` and example files only."""
    import yaml
    from mlflow.exceptions import MlflowException

    uri = registry.client(stage).get_model_version_download_uri(name, version)

    def read(relative: str) -> str:
        return Path(registry.download_artifacts(f"{uri}/{relative}", stage)).read_text()

    try:
        meta = yaml.safe_load(read("MLmodel"))
        signature = {
            part: json.loads(spec) if isinstance(spec, str) else spec
            for part, spec in (meta.get("signature") or {}).items()
        }
        example = (meta.get("saved_input_example_info") or {}).get("artifact_path")
        return {
            "signature": signature or None,
            "input_example": example and json.loads(read(example)),
        }
    except (MlflowException, OSError, ValueError, AttributeError) as err:
        return {"signature": None, "input_example": None, "model_files_error": str(err)}


@command("model show", "one version: status, tags and lineage, run metrics, signature", MODEL,
         arg("--version", help="version number (default: the latest)"),
         arg("--alias", help="an alias instead of a version, e.g. champion"), REGISTRY)  # fmt: skip
def cmd_model_show(args: argparse.Namespace) -> None:
    from mlflow.exceptions import MlflowException

    (registry,) = _resources("registry")
    client = registry.client(args.registry)
    mv = _find_version(registry, args)
    try:
        metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
    except MlflowException:
        metrics = {}
    aliases = client.get_registered_model(mv.name).aliases or {}
    files = _model_files(registry, mv.name, str(mv.version), args.registry)
    view = out.model_view(mv, args.registry, aliases, metrics, files)
    out.emit(view if args.output == "json" else out.model_show_table(view), args.output)


@command("model pending", "dev versions awaiting an approval decision", MODEL)
def cmd_model_pending(args: argparse.Namespace) -> None:
    from mlops_assets.governance import pending

    (registry,) = _resources("registry")
    columns = ("model_name", "version", "aliases", "verdict", "run_id")
    out.emit(pending(registry, args.name), args.output, columns=columns)


# -- endpoint -------------------------------------------------------------------------------
@command("endpoint list", "endpoints: running, scoring URI, traffic, deployed versions")
def cmd_endpoint_list(args: argparse.Namespace) -> None:
    (endpoints,) = _resources("endpoints")
    with _endpoint_errors():
        out.emit_endpoints(endpoints.list(), args.output)


@command("endpoint show", "one endpoint: deployments, traffic, server", NAME)
def cmd_endpoint_show(args: argparse.Namespace) -> None:
    (endpoints,) = _resources("endpoints")
    with _endpoint_errors():
        out.emit_endpoint(endpoints.get(args.name), args.output)


@command("endpoint keys", "the endpoint's primary and secondary keys", NAME)
def cmd_endpoint_keys(args: argparse.Namespace) -> None:
    (endpoints,) = _resources("endpoints")
    with _endpoint_errors():
        out.emit(endpoints.get_keys(args.name), args.output)


@command("endpoint regenerate-key", "replace one key of an endpoint (audited)", NAME,
         arg("--key-type", required=True, choices=("primary", "secondary")),
         as_user("rotates it (needs manage_endpoint_keys in prod)"), REASON)  # fmt: skip
def cmd_endpoint_regenerate_key(args: argparse.Namespace) -> None:
    endpoints, governance = _resources("endpoints", "governance")
    reason = args.reason or f"{args.key_type} key regenerated"
    details = {"endpoint": args.name, "slot": args.key_type}
    with _audited(governance, "key_rotate", args.user, args.name, "manage_endpoint_keys",
                  reason, details):  # fmt: skip
        endpoints.regenerate_key(args.name, args.key_type)
    out.emit({"endpoint": args.name, "regenerated": args.key_type, "by": args.user}, args.output)


def traffic_item(text: str) -> tuple[str, int]:
    """One `DEPLOYMENT=PERCENT` argument; argparse turns the error into exit code 2."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: write DEPLOYMENT=PERCENT, e.g. blue=90")
    try:
        percent = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the percentage must be an integer") from None
    if not 0 <= percent <= 100:
        raise argparse.ArgumentTypeError(f"{text!r}: the percentage must be from 0 to 100")
    return name.strip(), percent


def traffic_split(items: Sequence[tuple[str, int]]) -> dict[str, int]:
    """The whole split; a repeated deployment or a sum other than 100 is a usage error."""
    split: dict[str, int] = {}
    for name, percent in items:
        if name in split:
            raise UsageError(f"deployment {name!r} appears twice in the traffic split")
        split[name] = percent
    if sum(split.values()) != 100:
        raise UsageError(f"traffic percentages must sum to 100, not {sum(split.values())}")
    return split


@command("endpoint traffic", "set the traffic split across deployments (audited)", NAME,
         arg("traffic", nargs="+", type=traffic_item, metavar="DEPLOYMENT=PERCENT",
             help="e.g. blue=90 green=10: integers summing to 100"),
         as_user("shifts traffic (needs deploy_endpoint in prod)"), REASON)  # fmt: skip
def cmd_endpoint_traffic(args: argparse.Namespace) -> None:
    split = traffic_split(args.traffic)
    endpoints, governance = _resources("endpoints", "governance")
    reason = args.reason or "traffic " + ", ".join(f"{k}={v}" for k, v in split.items())
    details = {"endpoint": args.name, "traffic": split}
    with _audited(governance, "set_traffic", args.user, args.name, "deploy_endpoint",
                  reason, details):  # fmt: skip
        info = endpoints.set_traffic(args.name, split)
    out.emit_endpoint(info, args.output)


@command("endpoint serve", "start local scoring servers on 127.0.0.1 (or --stop them)",
         arg("name", nargs="?", help="one endpoint (default: all)"),
         arg("--stop", action="store_true", help="stop the servers instead"))  # fmt: skip
def cmd_endpoint_serve(args: argparse.Namespace) -> None:
    (endpoints,) = _resources("endpoints")
    if not args.stop and not hasattr(endpoints, "start"):
        raise CliError("these endpoints are managed by Azure ML: there is no local server")
    with _endpoint_errors():
        names = [args.name] if args.name else [info.name for info in endpoints.list()]
        if not names and not args.stop:
            raise CliError(f"no endpoints under {getattr(endpoints, 'root', '?')}; deploy a model "
                           "first (`make demo`, or a scenario's deployment assets)")  # fmt: skip
        for name in names:
            endpoints.stop(name) if args.stop else endpoints.start(name)
        out.emit_endpoints([endpoints.get(name) for name in names], args.output)


# -- audit / policy -------------------------------------------------------------------------
def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


@command("audit", "the audit trail, newest first, or --verify its hash chain",
         arg("--limit", type=_positive, help="at most N records"),
         arg("--action", help="only this action, e.g. approve, key_rotate, set_traffic"),
         arg("--target", help="only this target, e.g. classical-flight-delay:3 or an endpoint"),
         arg("--verify", action="store_true", help="check the hash chain; exit 1 if broken"),
         )  # fmt: skip
def cmd_audit(args: argparse.Namespace) -> None:
    (governance,) = _resources("governance")
    trail = governance.audit()
    if not args.verify:
        records = trail.read(limit=args.limit, action=args.action, target=args.target)
        out.emit(records, args.output, columns=out.AUDIT_COLUMNS)
        return
    problems = trail.verify()
    out.emit({"path": str(trail.path), "intact": not problems, "head": trail.head(),
              "records": len(trail.read()), "problems": problems}, args.output)  # fmt: skip
    if problems:
        raise CliError(f"the audit trail {trail.path} has {len(problems)} problem(s), listed above")


@command("policy show", "the persona x environment x permission matrix, with users")
def cmd_policy_show(args: argparse.Namespace) -> None:
    personas = out.policy_personas(_policy_of(*_resources("governance")))
    out.emit(personas if args.output == "json" else out.policy_rows(personas), args.output)


@command("policy azure-roles", "the Azure role assignments the policy implies")
def cmd_policy_azure_roles(args: argparse.Namespace) -> None:
    columns = ("persona", "environment", "role", "scope", "assignee")
    rows = _policy_of(*_resources("governance")).azure_role_assignments()
    out.emit(rows, args.output, columns=columns)


# -- entry point ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-o", "--output", choices=out.FORMATS, default="table",
                        help="output format (default: table)")  # fmt: skip
    parser = argparse.ArgumentParser(
        prog="mlops", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Operate the MLOps platform: models, approvals, endpoints, audit, policy.",
    )  # fmt: skip
    top = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    groups: dict[str, Any] = {}
    for path, handler, help_text, arguments, defaults in _COMMANDS:
        *group, name = path.split()
        subs = top
        if group:
            if group[0] not in groups:
                about = GROUPS[group[0]]
                holder = top.add_parser(group[0], help=about, description=about)
                groups[group[0]] = holder.add_subparsers(
                    dest="command", metavar="COMMAND", required=True
                )
            subs = groups[group[0]]
        sub = subs.add_parser(name, help=help_text, description=help_text, parents=[common])
        sub.set_defaults(handler=handler, command_parser=sub, **defaults)
        for flags, kwargs in arguments:
            sub.add_argument(*flags, **kwargs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code (the `mlops` script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2)
        return stop.code if isinstance(stop.code, int) else 2
    try:
        args.handler(args)
    except UsageError as err:
        args.command_parser.print_usage(sys.stderr)
        print(f"{args.command_parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except CliError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `mlops ... | head`: the reader left; say nothing more
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - interpreter shutdown closes it
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
