"""Live: the workspaces' MLflow registries and a training job on the compute cluster."""

from __future__ import annotations

import dagster as dg
import pytest

from tests.azure_live.conftest import live

pytestmark = pytest.mark.azure_live


def test_registry_tracks_runs_in_both_workspaces(unique):
    pytest.importorskip("azureml.mlflow", reason="the registry needs azureml-mlflow installed")
    registry = live("registry", "AZUREML_DEV_WORKSPACE", "AZUREML_PROD_WORKSPACE")
    for stage in ("dev", "prod"):
        assert registry.tracking_uri(stage).startswith("azureml://")
        client = registry.client(stage)
        run = client.create_run(registry.ensure_experiment(unique, stage))
        client.log_metric(run.info.run_id, "live_check", 1.0)
        client.set_terminated(run.info.run_id)
        assert client.get_run(run.info.run_id).data.metrics["live_check"] == 1.0


def test_compute_runs_an_entry_point_through_pipes():
    compute = live("compute", "AZUREML_DEV_WORKSPACE", "AZUREML_COMPUTE", "AZUREML_ENVIRONMENT",
                   "MLOPS_PIPES_CONTAINER", "MLOPS_LAKE_ACCOUNT_URL")  # fmt: skip

    @dg.asset
    def live_job(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        meta = compute.run(context, "tests.pipes_entry_point", ["--rows", "4"])
        return dg.MaterializeResult(metadata=meta)

    result = dg.materialize([live_job])
    meta = result.asset_materializations_for_node("live_job")[0].metadata
    assert meta["total"].value == 6 and meta["run_id"].value
