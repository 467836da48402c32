"""Fixtures shared by the drift tests: the flights frames, built once for the package."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.monitoring.flight_cases import flight_frames


@pytest.fixture(scope="package")
def flights() -> dict[str, pd.DataFrame]:
    return flight_frames()
