"""Fixtures for the resource tests: `endpoints`, a local online endpoint resource under tmp_path.

Every endpoint it created is stopped (its worker processes ended by PID) at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from resources.endpoint_local import LocalOnlineEndpoints


@pytest.fixture
def endpoints(tmp_path: Path) -> Iterator[LocalOnlineEndpoints]:
    resource = LocalOnlineEndpoints(root=str(tmp_path / "endpoints"))
    yield resource
    for info in resource.list():
        resource.stop(info.name)
