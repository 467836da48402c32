"""Live Azure tests: real subscription, real workspaces, real storage (`make test-azure-live`).

Every test here is marked `azure_live` (not run by `make test`) and skips, naming what is
missing, unless the variables it needs are set; docs/azure.md lists them and the roles the
signed-in identity needs. Resources come from `resources.env.azure_resources()`, resolved
from those variables, so the wiring `MLOPS_ENV=azure` uses is what gets tested. Tests
name what they create `mlops-live-<random>` and delete it when done (endpoints cost money
while they exist).
"""

from __future__ import annotations

import os
import secrets
from typing import Any

import pytest

BASE = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP")


def require(*names: str) -> None:
    missing = [name for name in (*BASE, *names) if not os.environ.get(name)]
    if missing:
        pytest.skip(f"live Azure test needs {', '.join(missing)} (see docs/azure.md)")


def live(key: str, *names: str) -> Any:
    """The azure environment's resource `key`, resolved from the environment variables."""
    require(*names)
    from resources.env import azure_resources

    return azure_resources()[key].process_config_and_initialize()


@pytest.fixture
def unique() -> str:
    return f"mlops-live-{secrets.token_hex(3)}"
