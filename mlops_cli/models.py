"""`mlops approve|reject` and `mlops model list|show|pending`."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from mlops_cli import output as out
from mlops_cli import stores
from mlops_cli.core import (
    MODEL,
    REGISTRY,
    CliError,
    UsageError,
    _caller,
    _resources,
    arg,
    as_user,
    command,
)

_DECISION_ARGS = (
    arg("model", help="registered model name"),
    arg("version", help="version in the dev registry"),
    as_user("decides (needs approve_model in prod)"),
    arg("--reason", required=True, help="why; kept in the approval record and the audit trail"),
)


# decorators apply bottom-up: approve is registered (and listed) first
@command("reject", "reject a dev version for production (audited)", *_DECISION_ARGS,
         decision="reject")  # fmt: skip
@command("approve", "approve a staged dev version for production (audited)", *_DECISION_ARGS,
         decision="approve")  # fmt: skip
def cmd_decide(args: argparse.Namespace) -> None:
    from mlops_core.governance import PermissionDenied
    from mlops_core.governance.decisions import record_decision

    registry, governance, approvals, identity = _resources(
        "registry", "governance", "approvals", "identity"
    )
    try:
        record = record_decision(
            registry, governance, approvals, _caller(identity), args.model, args.version,
            args.decision, args.reason, requested_user=args.user,
        )  # fmt: skip
    except (PermissionDenied, ValueError) as err:  # ApprovalRefused/ApprovalError/PolicyError
        raise CliError(str(err)) from err
    out.emit(record, args.output)


# -- model ---------------------------------------------------------------------------------
# Reads check that a local registry exists before opening it (MLflow would create it), and
# say which registry each version is in: `dev v4`, `prod v2 <- dev v3`.
_OTHER = {"dev": "prod", "prod": "dev"}


@command("model list", "models with their latest version, aliases and version count", REGISTRY)
def cmd_model_list(args: argparse.Namespace) -> None:
    (registry,) = _resources("registry")
    try:
        stores.require_registry(registry, args.registry)
    except stores.MissingStore as missing:  # an empty result that says why
        print(f"note: {missing}", file=sys.stderr)
        out.emit([], args.output, out.MODEL_COLUMNS)
        return
    client = registry.client(args.registry)
    models, token = [], None
    while True:
        page = client.search_registered_models(max_results=500, page_token=token)
        models.extend(page)
        if not (token := page.token):
            break
    rows = [
        out.model_row(args.registry, model, registry.versions(model.name, args.registry))
        for model in sorted(models, key=lambda m: m.name)
    ]
    out.emit(rows, args.output, out.MODEL_COLUMNS)


def _elsewhere(registry: Any, args: argparse.Namespace) -> str:
    """Where the other registry has what was asked for, as the command that shows it."""
    other = _OTHER[args.registry]
    if not stores.has_registry(registry, other):
        return ""
    command = ["mlops", "model", "show", args.name]
    if args.alias:
        found = registry.version_by_alias(args.name, args.alias, other)
        if found is None:
            return ""
        command += ["--alias", args.alias, "--registry", other]
        where = f"the {other} registry has it (v{found.version})"
    else:
        versions = {str(mv.version) for mv in registry.versions(args.name, other)}
        if not versions or (args.version and args.version not in versions):
            return ""
        command += [*(["--version", args.version] if args.version else []), "--registry", other]
        where = f"the {other} registry has it"
    return f"; {where}: {shlex.join(command)}"


def _find_version(registry: Any, args: argparse.Namespace) -> Any:
    name, stage = args.name, args.registry
    if args.alias and args.version:
        raise UsageError("give --version or --alias, not both")
    try:
        stores.require_registry(registry, stage)
    except stores.MissingStore as missing:
        raise CliError(f"{missing}{_elsewhere(registry, args)}") from missing
    versions = registry.versions(name, stage)
    if not versions:
        hint = _elsewhere(registry, args) or (
            f"; `mlops model list --registry {stage}` lists the registered models"
        )
        raise CliError(f"no model {name!r} in the {stage} registry{hint}")
    if args.alias:
        found = registry.version_by_alias(name, args.alias, stage)
        if found is None:
            hint = _elsewhere(registry, args)
            raise CliError(f"{name} has no alias {args.alias!r} in the {stage} registry{hint}")
        return found
    if not args.version:
        return versions[-1]
    match = [mv for mv in versions if str(mv.version) == args.version]
    if not match:
        known = ", ".join(str(mv.version) for mv in versions)
        raise CliError(f"{name} has no version {args.version} in {stage}; versions: {known}")
    return match[0]


def _model_files(registry: Any, uri: str, stage: str) -> dict[str, Any]:
    """Signature and input example, from the version's `MLmodel` and example files only."""
    import yaml
    from mlflow.exceptions import MlflowException

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


@command("model show", "one version: registry, lineage, run metrics and params, signature",
         MODEL, arg("--version", help="version number (default: the latest)"),
         arg("--alias", help="an alias instead of a version, e.g. champion (prod)"),
         REGISTRY)  # fmt: skip
def cmd_model_show(args: argparse.Namespace) -> None:
    from mlflow.exceptions import MlflowException

    registry, approvals = _resources("registry", "approvals")
    mv = _find_version(registry, args)
    client = registry.client(args.registry)
    try:  # the run in the registry read: a promoted copy's own run in prod
        data = client.get_run(mv.run_id).data if mv.run_id else None
    except MlflowException:
        data = None
    uri = client.get_model_version_download_uri(mv.name, mv.version)
    view = out.model_view(
        mv, args.registry, aliases=client.get_registered_model(mv.name).aliases or {},
        metrics=data.metrics if data else {}, params=data.params if data else {},
        artifact_uri=uri, files=_model_files(registry, uri, args.registry),
    )  # fmt: skip
    if args.registry == "dev":  # the approvals store holds the gate's records; tags are a copy
        approvals = stores.readable_approvals(approvals)
        staged = approvals.staging_results(mv.name, str(mv.version))
        decided = approvals.decision(mv.name, str(mv.version)) or {}
        view["staging"] = staged[-1]["outcome"] if staged else "not run"
        view["approval"] = decided.get("decision", "undecided")
        view["approved_by"] = decided.get("user", "")
    out.emit(view if args.output == "json" else out.model_show_table(view), args.output)


@command("model pending", "dev versions awaiting an approval decision", MODEL)
def cmd_model_pending(args: argparse.Namespace) -> None:
    from mlops_core.governance import pending

    registry, approvals = _resources("registry", "approvals")
    try:
        stores.require_registry(registry, "dev")
    except stores.MissingStore as missing:  # an empty result that says why
        print(f"note: {missing}", file=sys.stderr)
        out.emit([], args.output, out.PENDING_COLUMNS)
        return
    rows = pending(registry, stores.readable_approvals(approvals), args.name)
    out.emit([{"registry": "dev", **row} for row in rows], args.output, out.PENDING_COLUMNS)
