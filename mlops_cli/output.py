"""Output of the `mlops` CLI: `-o json` for machines, `-o table` (the default) for people.

As in the Azure CLI, a command builds one piece of data (a dict or a list of
dicts) and the output format only decides how it is shown: JSON prints it
whole, the table flattens nested values into short cells. Constraints:

- Imported when the CLI starts, so only the stdlib and `tabulate` (no MLflow,
  no Dagster): objects from those libraries are read by duck typing here.
- JSON output is exactly `json.dumps` of the data, so it always parses.
- Views never carry endpoint keys; `endpoint keys` is the one command that
  prints them, and the audit trail records which key slot rotated, not the key.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TextIO

from tabulate import tabulate

FORMATS = ("table", "json")
MAX_CELL = 72  # wrap wider table cells so a row fits a terminal

AUDIT_COLUMNS = ("seq", "ts", "action", "actor", "persona", "caller", "target", "outcome", "reason")
ENDPOINT_COLUMNS = ("name", "running", "workers", "scoring_uri", "traffic", "deployments")
MODEL_COLUMNS = ("registry", "name", "latest", "aliases", "versions")
PENDING_COLUMNS = ("registry", "model_name", "version", "aliases", "verdict", "run_id")
# An MLflow 3 logged model: `models:/m-<hex>`, or its artifact folder `.../models/m-<hex>/artifacts`
_LOGGED_MODEL = re.compile(r"(?:^models:/|/models/)(m-[0-9a-f]+)(?:/artifacts)?/?$")


def emit(
    data: Any, output: str, columns: Sequence[str] | None = None, file: TextIO | None = None
) -> None:
    """Print `data` as JSON or as a table (a dict as field/value rows, a list as a grid)."""
    stream = file or sys.stdout
    if output == "json":
        print(json.dumps(data, indent=2, default=str), file=stream)
    else:
        print(render_table(data, columns), file=stream)


def render_table(data: Any, columns: Sequence[str] | None = None) -> str:
    if isinstance(data, Mapping):
        rows = [[key, cell(value)] for key, value in data.items()]
        return tabulate(rows, headers=["field", "value"], maxcolwidths=[None, MAX_CELL])
    if isinstance(data, list):
        if not data:
            return "(none)"
        cols = list(columns or dict.fromkeys(key for row in data for key in row))
        rows = [[cell(row.get(col)) for col in cols] for row in data]
        return tabulate(rows, headers=cols, maxcolwidths=MAX_CELL)
    return str(data)


def cell(value: Any) -> str:
    """One table cell: mappings as `key=value` lines, lists comma-joined or one per line."""
    if value is None:
        return ""
    if isinstance(value, bool):
        # lowercase on purpose: tabulate's column wrapping (maxcolwidths) casts the strings
        # "True"/"False" with bool(), which turns "False" into True.
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "\n".join(f"{key}={cell(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        if all(not isinstance(item, Mapping | list | tuple) for item in value):
            return ", ".join(str(item) for item in value)
        return "\n".join(cell(item) for item in value)
    return str(value)


def timestamp(millis: int | None) -> str | None:
    """An MLflow epoch-milliseconds timestamp as ISO 8601 UTC."""
    if not millis:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds")


# -- registry -------------------------------------------------------------------------------
def aliases_of(version: str, aliases: Mapping[str, Any]) -> list[str]:
    """The aliases (of a registered model's alias -> version map) pointing at `version`."""
    return sorted(alias for alias, target in aliases.items() if str(target) == str(version))


def version_label(stage: str, version: Any, tags: Mapping[str, str] | None) -> str:
    """`dev v4`, or for a promoted copy where from (`mlops.source_*` tags):
    `prod v2 (from dev v3)`, the words the endpoints and asset pages use."""
    from mlops_core.naming import version_label as label

    tags = tags or {}
    source_registry = tags.get("mlops.source_stage") or "dev"
    return label(str(version), stage, tags.get("mlops.source_version"), source_registry)


def promoted_from(tags: Mapping[str, str]) -> dict[str, str | None] | None:
    """The version a promoted copy came from (its lineage tags), or None."""
    if not tags.get("mlops.source_version"):
        return None
    return {
        "registry": tags.get("mlops.source_stage") or "dev",
        "version": tags["mlops.source_version"],
        "run_id": tags.get("mlops.source_run_id") or None,
    }


def logged_model_id(mv: Any, artifact_uri: str | None) -> str | None:
    """The MLflow 3 logged model behind a version: its `model_id`, else read off its URIs."""
    if getattr(mv, "model_id", None):
        return str(mv.model_id)
    for uri in (mv.source, artifact_uri):
        if uri and (found := _LOGGED_MODEL.search(uri)):
            return found.group(1)
    return None


def model_row(stage: str, model: Any, versions: Sequence[Any]) -> dict[str, Any]:
    """One `model list` row: the registry it is in and its latest version, with lineage."""
    latest = versions[-1] if versions else None
    return {
        "registry": stage,
        "name": model.name,
        "latest": latest and version_label(stage, latest.version, latest.tags),
        "latest_version": latest and str(latest.version),
        "aliases": {alias: str(v) for alias, v in sorted((model.aliases or {}).items())},
        "versions": len(versions),
    }


def model_view(
    mv: Any,
    stage: str,
    *,
    aliases: Mapping[str, Any],
    metrics: Mapping[str, float],
    params: Mapping[str, str],
    artifact_uri: str | None,
    files: dict,
) -> dict[str, Any]:
    """What `model show` shows of a model version: where it is (`models:/<name>/<version>`
    in which registry, promoted from where), state, lineage tags, run metrics and params,
    model files. `source` is the artifact location, never a `models:/m-...` indirection."""
    version, tags = str(mv.version), dict(sorted((mv.tags or {}).items()))
    return {
        "name": mv.name,
        "version": version,
        "registry": stage,
        "registry_version": version_label(stage, version, tags),
        "model_uri": f"models:/{mv.name}/{version}",
        "promoted_from": promoted_from(tags),
        "aliases": aliases_of(version, aliases),
        "status": mv.status,
        "staging": tags.get("mlops.staging", "not run"),
        "approval": tags.get("mlops.approval", "undecided"),
        "created": timestamp(mv.creation_timestamp),
        "run_id": mv.run_id,
        "logged_model_id": logged_model_id(mv, artifact_uri),
        "source": artifact_uri or mv.source,
        "tags": tags,
        "metrics": dict(sorted(metrics.items())),
        "params": dict(sorted(params.items())),
        **files,
    }


def signature_lines(signature: Mapping[str, Any] | None) -> dict[str, list[str]] | None:
    """An MLmodel signature as `name: type` lines, for the table view of `model show`."""
    if not signature:
        return None

    def describe(spec: Mapping[str, Any]) -> str:
        if spec.get("type") == "tensor":
            tensor = spec.get("tensor-spec", {})
            kind = f"tensor {tensor.get('dtype')} {tensor.get('shape')}"
        else:
            kind = str(spec.get("type"))
        optional = "" if spec.get("required", True) else " (optional)"
        return f"{spec['name']}: {kind}{optional}" if spec.get("name") else kind + optional

    return {
        part: [describe(spec) for spec in specs or []]
        for part, specs in signature.items()
        if isinstance(specs, list)
    }


def model_show_table(view: Mapping[str, Any]) -> dict[str, Any]:
    """`model show` for people: the signature as lines, the input example compacted."""
    table = dict(view)
    table["signature"] = signature_lines(view.get("signature"))
    if view.get("input_example") is not None:
        table["input_example"] = json.dumps(view["input_example"])
    return table


# -- endpoints ------------------------------------------------------------------------------
def endpoint_view(info: Any) -> dict[str, Any]:
    """An `EndpointInfo` as plain data, with the deployment taking most traffic."""
    view = asdict(info)
    view["live_deployment"] = info.live_deployment()
    return view


def emit_endpoints(infos: Iterable[Any], output: str) -> None:
    views = [endpoint_view(info) for info in infos]
    emit(views if output == "json" else [endpoint_row(v) for v in views], output, ENDPOINT_COLUMNS)


def emit_endpoint(info: Any, output: str) -> None:
    view = endpoint_view(info)
    emit(view if output == "json" else endpoint_row(view), output)


def endpoint_row(view: Mapping[str, Any]) -> dict[str, Any]:
    """One table row: traffic as `blue=90, green=10`, deployments as `blue: model v3`."""
    deployments = [
        f"{slot}: {d.get('model_name')} v{d.get('model_version')}"
        for slot, d in view["deployments"].items()
    ]
    traffic = [f"{slot}={pct}" for slot, pct in view["traffic"].items()]
    return {**view, "traffic": ", ".join(traffic), "deployments": deployments}


# -- governance -----------------------------------------------------------------------------
def policy_personas(policy: Any) -> list[dict[str, Any]]:
    """One entry per persona: its users and its permissions per environment (policy order)."""
    users: dict[str, list[str]] = {}
    for user, persona in policy.users.items():
        users.setdefault(persona, []).append(user)
    entries: dict[str, dict[str, Any]] = {}
    for row in policy.matrix():
        persona = row["persona"]
        entry = entries.setdefault(
            persona, {"persona": persona, "users": users.get(persona, []), "permissions": {}}
        )
        entry["permissions"][row["environment"]] = row["permissions"]
    return list(entries.values())


def policy_rows(personas: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The persona x environment x permission matrix, one row per persona and environment."""
    return [
        {
            "persona": entry["persona"],
            "users": entry["users"],
            "environment": env,
            "permissions": perms or ["(none)"],
        }
        for entry in personas
        for env, perms in entry["permissions"].items()
    ]
