"""`mlops approve|reject` and `mlops model list|show|pending`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlops_cli import output as out
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

    registry, approvals = _resources("registry", "approvals")
    client = registry.client(args.registry)
    mv = _find_version(registry, args)
    try:
        metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
    except MlflowException:
        metrics = {}
    aliases = client.get_registered_model(mv.name).aliases or {}
    files = _model_files(registry, mv.name, str(mv.version), args.registry)
    view = out.model_view(mv, args.registry, aliases, metrics, files)
    if args.registry == "dev":  # the approvals store holds the gate's records; tags are a copy
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
    columns = ("model_name", "version", "aliases", "verdict", "run_id")
    out.emit(pending(registry, approvals, args.name), args.output, columns=columns)
