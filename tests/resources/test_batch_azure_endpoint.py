"""`AzureMLBatchEndpoint` and the batch asset on it, offline, against Azurite.

The control plane is the `RecordingMLClient` stand-in: it validates the `BatchEndpoint`
(azure-ai-ml's loader) and the `ModelBatchDeployment` (the SDK's own checks and schema),
builds the invocation body with the SDK's `BatchJobSchema`, and runs the deployment's
scoring script (`mlops_core/batch_azure_score.py`) as Azure's batch driver would: a
subprocess calling `init()` once and `run()` per mini-batch of input files, appending
what `run` returns to the job output. The lake is a real Azurite container. Protects:
each day's output lands where the local pool writes it, with the same rows; the report
maps the job's output back to rows per day; the deployment carries the settings; secrets
never travel in the uploaded manifests; a failing day fails the job and the run with an
error naming the job; each model version scores on its own deployment (so a run scores
with the version it stamps) and old ones are pruned; a run that stops waiting cancels its
job; a failed provisioning names the deployment; the batch asset scores through the
endpoint.
"""

import json
import uuid
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from azure.core.exceptions import HttpResponseError

from mlops_assets.deployment.batch_predictions import build_batch_predictions
from mlops_assets.scenarios.classical import SPEC
from mlops_core.batch import BatchJob, BatchSettings, with_constants
from mlops_core.batch_azure import job_manifest
from mlops_core.lake_fs import FsLake
from resources import azure_ml
from resources.batch_scoring import AzureMLBatchEndpoint, BatchScoringError
from resources.lake import AzureBlobLake
from resources.registry import LocalMlflowRegistry
from tests import batch_scoring_model as tiny
from tests.azure_standin import RecordingMLClient

DAYS = [f"2024-03-0{d}" for d in range(1, 6)]
OUTPUT = "predictions/tiny/{partition}/predictions.parquet"


@pytest.fixture
def blob(azurite) -> AzureBlobLake:
    lake = AzureBlobLake(container=f"batch-{uuid.uuid4().hex[:8]}", connection_string=azurite)
    tiny.write_days(lake, DAYS)
    return lake


@pytest.fixture
def standin(blob, monkeypatch):
    # the compute's identity reaches the lake; here that is Azurite's connection string
    client = RecordingMLClient(
        job_env={"MLOPS_LAKE_STORAGE_OPTIONS": json.dumps(blob.storage_options())}
    )
    monkeypatch.setattr(azure_ml, "ml_client", client.factory)
    yield client
    client.jobs.close()


def batch_endpoint() -> AzureMLBatchEndpoint:
    return AzureMLBatchEndpoint(
        subscription_id="sub", resource_group="rg", workspace="mlw-prod",
        compute="cpu-cluster", environment="mlops-train:3", cores_per_instance=2,
        poll_interval_s=0.1,
    )  # fmt: skip


def make_job(blob: AzureBlobLake, model_dir: str) -> BatchJob:
    return BatchJob(
        load=tiny.load, batch_items=tiny.batch_items, batch_predict=tiny.batch_predict,
        model_dir=model_dir, lake=FsLake(blob.uri("_")[:-1], blob.storage_options()),
        output=OUTPUT, constants={"model_version": "7"}, run_token="t3st",
    )  # fmt: skip


def test_days_are_scored_on_the_endpoint_and_mapped_back(standin, blob, tmp_path):
    model_dir = tiny.save_model(tmp_path / "model")
    job = make_job(blob, model_dir)
    settings = BatchSettings(mini_batch_size=2, max_retries=1)
    report = batch_endpoint().score(
        "tiny-batch", job, DAYS, settings, model_name="tiny", model_version="7"
    )
    assert list(report.rows) == DAYS and report.mini_batches == 3 and report.workers == 2
    model = tiny.load(model_dir)
    for day in DAYS:
        written = blob.read_parquet(f"predictions/tiny/{day}/predictions.parquet")
        items = tiny.batch_items(job.lake, day)
        expected = with_constants(
            dg_table(tiny.batch_predict(model, items)), {"model_version": "7"}
        ).to_pandas()
        pd.testing.assert_frame_equal(written, expected)
        assert report.rows[day] == len(items)

    (deployment,) = [c.args["body"] for c in standin.calls if "body" in c.args
                     and c.group == "batch_deployments"]  # fmt: skip
    assert deployment["name"] == "scoring-v7"
    assert deployment["model"] == "azureml:tiny-prod:7"  # registered from the model folder
    assert deployment["code_configuration"]["scoring_script"] == "mlops_core/batch_azure_score.py"
    assert deployment["settings"]["mini_batch_size"] == 2
    assert deployment["settings"]["max_concurrency_per_instance"] == 2  # 0: the node's cores
    assert deployment["settings"]["retry_settings"]["max_retries"] == 1
    assert deployment["settings"]["output_file_name"] == "partitions.jsonl"
    (invoked,) = [c for c in standin.calls if c.method == "invoke"]
    assert invoked.args["body"]["inputData"]["input"]["jobInputType"] == "UriFolder"


def dg_table(frame: pd.DataFrame):
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def test_manifests_carry_no_secret_storage_options(blob, tmp_path):
    job = make_job(blob, str(tmp_path))
    manifest = job_manifest(job, DAYS[0])
    assert manifest["storage_options"] is None  # a connection string stays on this side
    assert manifest["load"] == "tests.batch_scoring_model:load"
    identity = replace(job, lake=FsLake("abfs://lake", {"account_name": "st", "anon": False}))
    assert job_manifest(identity, DAYS[0])["storage_options"] == {
        "account_name": "st",
        "anon": False,
    }
    with pytest.raises(ValueError, match="not a module-level function"):
        job_manifest(replace(job, load=lambda d: d), DAYS[0])


def test_a_failing_day_fails_the_job_and_names_it(standin, blob, tmp_path):
    model_dir = tiny.save_model(tmp_path / "model", {"day": DAYS[2], "mode": "raise_always"})
    with pytest.raises(BatchScoringError, match=r"batch job batchjob-\w+ on endpoint tiny-batch"):
        batch_endpoint().score(
            "tiny-batch", make_job(blob, model_dir), DAYS, BatchSettings(max_retries=0),
            model_name="tiny", model_version="8",
        )  # fmt: skip
    assert not blob.exists(f"predictions/tiny/{DAYS[2]}/predictions.parquet")
    (job,) = standin.jobs.runs.values()
    assert f"cannot score day {DAYS[2]}" in job.log.read_text()


def score(resource: AzureMLBatchEndpoint, blob, model_dir: str, version: str, days=DAYS):
    return resource.score("tiny-batch", make_job(blob, model_dir), days, BatchSettings(),
                          model_name="tiny", model_version=version)  # fmt: skip


def test_each_version_scores_on_its_own_deployment_and_old_ones_are_pruned(standin, blob, tmp_path):
    model_dir = tiny.save_model(tmp_path / "model")
    resource = batch_endpoint().model_copy(update={"keep_deployments": 1})
    score(resource, blob, model_dir, "7", DAYS[:1])
    standin.batch_endpoints.endpoints["tiny-batch"].defaults = {"deployment_name": "scoring-v7"}
    score(resource, blob, model_dir, "8", DAYS[:1])
    deployments = standin.batch_deployments.deployments
    assert str(deployments[("tiny-batch", "scoring-v7")].model).endswith("tiny-prod:7")
    assert str(deployments[("tiny-batch", "scoring-v8")].model).endswith("tiny-prod:8")
    score(resource, blob, model_dir, "9", DAYS[:1])
    invoked = [c.args["deployment_name"] for c in standin.calls if c.method == "invoke"]
    assert invoked == ["scoring-v7", "scoring-v8", "scoring-v9"]  # the version it stamps
    # keep 1: v8 is deleted; v7 stays as the endpoint's default
    assert standin.batch_deployments.names("tiny-batch") == {"scoring-v7", "scoring-v9"}


@pytest.mark.parametrize(
    ("failure", "raised"),
    [(HttpResponseError(message="(ServiceUnavailable)"), BatchScoringError),
     (KeyboardInterrupt(), KeyboardInterrupt)],
)  # fmt: skip
def test_a_run_that_stops_waiting_cancels_its_job(standin, blob, tmp_path, monkeypatch,
                                                  failure, raised):  # fmt: skip
    get = standin.jobs.get
    calls = iter(range(1_000_000))

    def flaky_get(name: str):
        if next(calls) == 1:  # the job has started; the second poll fails
            raise failure
        return get(name)

    monkeypatch.setattr(standin.jobs, "get", flaky_get)
    with pytest.raises(raised) as err:
        score(batch_endpoint(), blob, tiny.save_model(tmp_path / "model"), "7")
    (job,) = standin.jobs.runs.values()
    assert standin.methods("jobs").count("begin_cancel") == 1
    assert job.entity.status == "Canceled"
    if raised is BatchScoringError:
        assert f"batch job {job.entity.name} on endpoint tiny-batch failed" in str(err.value)


def test_a_failed_deployment_provisioning_names_the_deployment(standin, blob, tmp_path):
    standin.fail_next("batch_deployments", "OperationFailed: quota exceeded for cpu-cluster")
    with pytest.raises(BatchScoringError, match=r"batch deployment scoring-v7 of endpoint "
                       r"tiny-batch failed: .*quota exceeded"):  # fmt: skip
        score(batch_endpoint(), blob, tiny.save_model(tmp_path / "model"), "7")
    failed = standin.batch_deployments.deployments[("tiny-batch", "scoring-v7")]
    assert failed.provisioning_state == "Failed"
    assert "invoke" not in standin.methods("batch_endpoints")


def test_a_local_lake_is_refused(standin, tmp_path):
    job = make_job(AzureBlobLake(container="x", connection_string="UseDevelopmentStorage=true"),
                   str(tmp_path))  # fmt: skip
    local = replace(job, lake=FsLake(str(tmp_path / "lake")))
    with pytest.raises(BatchScoringError, match="cannot read the local lake"):
        batch_endpoint().score("tiny-batch", local, DAYS, BatchSettings(),
                               model_name="tiny", model_version="7")  # fmt: skip
    assert standin.calls == []


def test_the_batch_asset_scores_through_the_endpoint(standin, blob, tmp_path, instance):
    spec = replace(
        SPEC,
        name="tiny",
        data=replace(SPEC.data, first_day=DAYS[0], last_day=DAYS[-1], batch_items=tiny.batch_items),
        model=replace(SPEC.model, load=tiny.load, batch_predict=tiny.batch_predict),
    )
    registry = LocalMlflowRegistry(root=str(tmp_path / "mlflow"))
    client = registry.client("dev")
    run = client.create_run(registry.ensure_experiment("tiny"))
    client.log_artifacts(run.info.run_id, tiny.save_model(tmp_path / "model"), "model")
    registry.register(spec.model_name, f"{run.info.artifact_uri}/model", run.info.run_id, {})
    registry.promote(spec.model_name, "1", tags={})
    asset, _ = build_batch_predictions(spec)
    result = dg.materialize(
        [asset],
        resources={"lake": blob, "registry": registry, "batch": batch_endpoint()},
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": DAYS[0],
            "dagster/asset_partition_range_end": DAYS[-1],
        },
    )
    assert result.success
    records = {
        e.partition: e.materialization.metadata for e in result.get_asset_materialization_events()
    }
    assert sorted(records) == DAYS
    for day, meta in records.items():
        written = blob.read_parquet(f"predictions/tiny/{day}/predictions.parquet")
        assert meta["row_count"].value == len(written)
        assert set(written["model_version"]) == {"1"}
    endpoints = [c.args["name"] for c in standin.calls if c.group == "batch_endpoints"
                 and c.method == "begin_create_or_update"]  # fmt: skip
    assert endpoints == ["tiny-batch"]
    assert Path(standin.models.require(f"azureml:{spec.model_name}-prod:1").path).is_dir()
