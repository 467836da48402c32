"""The training entry point on its Azure path, offline.

Azure ML's job API cannot run here, so: the command job we would submit is
validated by azure-ai-ml's own YAML loader, and the entry point runs as a
real child process that exchanges Dagster Pipes context and messages through
blob storage (Azurite) and reads its data from abfs:// URIs there - what it
does inside an Azure ML job.
"""

import json
import logging
import shlex
import sys

import dagster as dg
import pandas as pd
import pytest
from azure.ai.ml import load_job
from azure.storage.blob import BlobServiceClient
from dagster_azure.pipes import (
    PipesAzureBlobStorageContextInjector,
    PipesAzureBlobStorageMessageReader,
)

from mlops_assets.scenarios.classical.features import build_features, split_by_time
from mlops_assets.scenarios.classical.source import flights_for_day
from resources.compute import AzureMLCompute
from resources.lake import AzureBlobLake
from resources.registry import LocalMlflowRegistry

MODULE = "mlops_assets.scenarios.classical.train"


@pytest.fixture
def azure_compute() -> AzureMLCompute:
    return AzureMLCompute(
        subscription_id="00000000-0000-0000-0000-000000000000",
        resource_group="rg-mlops",
        workspace="mlw-dev",
        compute="cpu-cluster",
        environment="mlops-train:3",
        pipes_container="pipes",
        storage_account_url="https://stmlops.blob.core.windows.net",
    )


def test_command_job_passes_azure_ai_ml_validation(azure_compute, tmp_path):
    logging.getLogger("azure").setLevel(logging.ERROR)
    argv = ["--train-uri", "abfs://lake/curated/train set.parquet", "--params", '{"max_iter": 5}']
    job = azure_compute.build_command("classical-candidate", MODULE, argv, {"EXTRA": "1"})
    path = tmp_path / "job.yaml"
    job._to_job().dump(path)
    loaded = load_job(path)
    assert type(loaded).__name__ in {"Command", "CommandJob"}  # load_job returns the builder
    assert shlex.split(loaded.command) == ["python", "-m", MODULE, *argv]
    assert loaded.compute == "cpu-cluster"
    assert str(loaded.environment).removeprefix("azureml:") == "mlops-train:3"
    assert loaded.environment_variables["MLOPS_PIPES_TRANSPORT"] == "azure_blob"
    assert loaded.environment_variables["EXTRA"] == "1"


def test_entry_point_reports_through_blob_pipes(azurite, tmp_path, monkeypatch):
    blobs = BlobServiceClient.from_connection_string(azurite)
    blobs.create_container("pipes")
    lake = AzureBlobLake(container="lake", connection_string=azurite)
    days = [f"2013-04-0{d}" for d in range(1, 8)]
    features = build_features(pd.concat([flights_for_day(d) for d in days], ignore_index=True))
    train, holdout = split_by_time(features, 2)
    lake.write_parquet("curated/train.parquet", train)
    lake.write_parquet("curated/holdout.parquet", holdout)
    registry = LocalMlflowRegistry(root=str(tmp_path / "mlflow"))
    experiment = registry.ensure_experiment("azure-path")

    client = dg.PipesSubprocessClient(
        context_injector=PipesAzureBlobStorageContextInjector(container="pipes", client=blobs),
        message_reader=PipesAzureBlobStorageMessageReader(
            container="pipes", client=blobs, interval=0.2
        ),
    )

    @dg.asset
    def remote_candidate(context: dg.AssetExecutionContext):
        return client.run(
            context=context,
            command=[
                sys.executable, "-m", MODULE,
                "--train-uri", lake.uri("curated/train.parquet"),
                "--holdout-uri", lake.uri("curated/holdout.parquet"),
                "--tracking-uri", registry.tracking_uri("dev"),
                "--experiment-id", experiment,
                "--params", json.dumps({"max_iter": 10}),
            ],
            env={
                "MLOPS_PIPES_TRANSPORT": "azure_blob",
                "AZURE_STORAGE_CONNECTION_STRING": azurite,
                "MLOPS_LAKE_STORAGE_OPTIONS": json.dumps(lake.storage_options()),
                "OMP_NUM_THREADS": "1",
            },
        ).get_materialize_result()  # fmt: skip

    result = dg.materialize([remote_candidate])
    assert result.success
    meta = result.asset_materializations_for_node("remote_candidate")[0].metadata
    run_id = meta["mlflow_run_id"].value
    assert lake.uri("curated/train.parquet").startswith("abfs://lake/")
    assert meta["train_rows"].value == len(train)
    run = registry.client("dev").get_run(run_id)
    assert run.data.metrics["roc_auc_holdout"] == pytest.approx(meta["roc_auc_holdout"].value)


def test_secret_lake_options_never_go_into_the_job_definition(azure_compute):
    identity = json.dumps({"account_name": "stmlops", "anon": False})
    job = azure_compute.build_command("c", MODULE, [], {"MLOPS_LAKE_STORAGE_OPTIONS": identity})
    assert job.environment_variables["MLOPS_LAKE_STORAGE_OPTIONS"] == identity
    for secret in ("connection_string", "account_key", "sas_token"):
        options = json.dumps({"account_name": "stmlops", secret: "s3cr3t"})
        with pytest.raises(dg.Failure, match=rf"\['{secret}'\] may hold secrets") as err:
            azure_compute.build_command("c", MODULE, [], {"MLOPS_LAKE_STORAGE_OPTIONS": options})
        assert "s3cr3t" not in str(err.value)


def test_shareable_storage_options_is_an_allowlist():
    from mlops_core.lake_fs import secret_option_keys, shareable_storage_options

    safe = {"account_name": "st", "account_host": "st.blob.core.windows.net", "anon": False}
    assert shareable_storage_options(safe, "x") == safe
    assert secret_option_keys({"account_name": "st", "client_secret": "c", "tenant_id": "t"}) == [
        "client_secret",
        "tenant_id",
    ]  # a key nobody listed is treated as a secret
    with pytest.raises(ValueError, match=r"would be stored in the manifest"):
        shareable_storage_options({"credential": "c"}, "the manifest")
