"""Lineage facts attached to MLflow runs and registered versions."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

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
