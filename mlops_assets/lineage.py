"""Lineage facts attached to MLflow runs and registered versions."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

import dagster as dg

REPO_ROOT = Path(__file__).resolve().parents[1]


@cache
def git_commit() -> str:
    """The checked-out commit (with '-dirty' for local changes); MLOPS_GIT_COMMIT overrides."""
    if os.environ.get("MLOPS_GIT_COMMIT"):
        return os.environ["MLOPS_GIT_COMMIT"]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def latest_metadata(context: dg.AssetExecutionContext, key: dg.AssetKey) -> dict:
    """Plain-valued metadata of `key`'s latest materialization; fails if there is none."""
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        raise dg.Failure(
            f"{key.to_user_string()} has never been materialized; materialize it first"
        )
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
