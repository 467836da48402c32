"""Live: the Blob lake, the approvals store and the Entra identity on a real account."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.azure_live.conftest import live

pytestmark = pytest.mark.azure_live


def test_lake_round_trip_on_the_account(unique):
    lake = live("lake", "MLOPS_LAKE_ACCOUNT_URL", "MLOPS_LAKE_CONTAINER")
    frame = pd.DataFrame({"a": [1, 2, 3]})
    path = f"live-tests/{unique}/frame.parquet"
    try:
        lake.write_parquet(path, frame)
        pd.testing.assert_frame_equal(lake.read_parquet(path), frame)
        assert lake.list(f"live-tests/{unique}") == [path]
    finally:
        lake.delete(path)
    assert not lake.exists(path)


def test_approvals_store_writes_once(unique):
    approvals = live("approvals", "MLOPS_LAKE_ACCOUNT_URL", "MLOPS_GOVERNANCE_CONTAINER")
    record = {"model_name": unique, "version": "1", "run_id": "live", "outcome": "passed"}
    approvals.record_staging(record)
    assert [r["run_id"] for r in approvals.staging_results(unique, "1")] == ["live"]


def test_identity_is_the_signed_in_principal():
    caller = live("identity").caller()
    assert caller.kind == "entra" and caller.name  # whoever DefaultAzureCredential signs in as
