"""Live: an online endpoint and a batch endpoint in the prod workspace, deleted after.

Each takes 10-20 minutes (provisioning) and costs the VM time it runs.
`AZUREML_ENDPOINT_KIND=kubernetes` with `AZUREML_KUBERNETES_COMPUTE` tests the
Kubernetes (Arc) flavour instead of the managed one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlops_core.batch import BatchJob, BatchSettings
from mlops_core.lake_fs import FsLake
from resources import azure_ml
from resources.lake import AzureBlobLake
from tests import batch_scoring_model as tiny
from tests.azure_live.conftest import live

pytestmark = pytest.mark.azure_live


def sklearn_model(folder: Path) -> str:
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    mlflow.sklearn.save_model(model, str(folder))
    return str(folder)


def test_online_endpoint_deploys_splits_rotates_and_scores(unique, tmp_path):
    endpoints = live("endpoints", "AZUREML_PROD_WORKSPACE")
    model_dir = sklearn_model(tmp_path / "model")
    try:
        info = endpoints.create_or_update_deployment(unique, "blue", model_dir, unique, "1",
                                                     registry="dev")  # fmt: skip
        assert info.running and info.traffic == {"blue": 100}
        payload = {"input_data": {"columns": ["0", "1", "2"], "index": [0], "data": [[1, 0, 0]]}}
        assert endpoints.invoke(unique, payload, deployment="blue").status_code == 200
        keys = endpoints.get_keys(unique)
        assert endpoints.regenerate_key(unique, "secondary")["primary"] == keys["primary"]
        endpoints.create_or_update_deployment(unique, "green", model_dir, unique, "1",
                                              registry="dev")  # fmt: skip
        assert endpoints.set_traffic(unique, {"blue": 90, "green": 10}).traffic["green"] == 10
        assert endpoints.get_logs(unique, "blue", lines=20)
    finally:
        endpoints.delete_endpoint(unique)


def test_batch_endpoint_scores_days_in_the_lake(unique, tmp_path):
    lake = live("lake", "MLOPS_LAKE_ACCOUNT_URL", "MLOPS_LAKE_CONTAINER")
    batch = live("batch", "AZUREML_PROD_WORKSPACE", "AZUREML_COMPUTE", "AZUREML_ENVIRONMENT")
    days = ["2024-03-01", "2024-03-02"]
    root = AzureBlobLake(
        container=lake.container, account_url=lake.account_url, prefix=f"live-tests/{unique}"
    )
    tiny.write_days(root, days)
    job = BatchJob(
        load=tiny.load, batch_items=tiny.batch_items, batch_predict=tiny.batch_predict,
        model_dir=tiny.save_model(tmp_path / "model"),
        lake=FsLake(root.uri("_")[:-1], root.storage_options()),
        output="predictions/{partition}/predictions.parquet", run_token="live",
    )  # fmt: skip
    try:
        report = batch.score(unique, job, days, BatchSettings(), model_name=unique,
                             model_version="1")  # fmt: skip
        for day in days:
            written = root.read_parquet(f"predictions/{day}/predictions.parquet")
            assert report.rows[day] == len(written)
    finally:
        ml = azure_ml.ml_client(batch.subscription_id, batch.resource_group, batch.workspace)
        azure_ml.wait(lambda: ml.batch_endpoints.begin_delete(unique), f"deleting {unique}")
