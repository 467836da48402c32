"""Offline checks shared by the deployment tests: Kubernetes schemas and Dagster config schemas."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import dagster as dg
import kubernetes_validate

ROOT = Path(__file__).resolve().parents[2]
# The oldest minor AKS still supports and the newest the installed package bundles.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    """Every supported version's complaint about `manifest` (strict: unknown fields refused)."""
    errors = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            errors.append(f"{version} {manifest.get('kind')} {where}: {exc.message}")
    return errors


def config_errors(schema: Any, value: Any) -> str | None:
    """Dagster's own verdict on `value` under `schema` (a config_type() or Field dict)."""

    @dg.op(config_schema=schema)
    def probe() -> None: ...

    @dg.job
    def probe_job() -> None:
        probe()

    try:
        dg.validate_run_config(probe_job, {"ops": {"probe": {"config": value}}})
    except dg.DagsterInvalidConfigError as exc:
        return str(exc)
    return None


def dockerfile(name: str) -> str:
    return (ROOT / "deploy" / "docker" / f"{name}.Dockerfile").read_text()


def dockerfile_fact(text: str, pattern: str) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"no line matching {pattern!r}"
    return match.group(1)


def image_title(name: str) -> str:
    return dockerfile_fact(dockerfile(name), r'org\.opencontainers\.image\.title="([^"]+)"')


def image_version(name: str) -> str:
    return dockerfile_fact(dockerfile(name), r"^ARG VERSION=(\S+)$")


def image_uid(name: str) -> int:
    return int(dockerfile_fact(dockerfile(name), r"^USER (\d+):\d+$"))
