"""`AzureMLCompute.run` executed end to end, offline, through the real `PipesAzureMLClient`.

Only Azure ML's control plane is a stand-in (`RecordingMLClient`, tests/azure_standin.py):
its `jobs.create_or_update` validates the command job with azure-ai-ml's `load_job` and
runs the job's command as a subprocess with only the job's environment variables (plus
the storage connection a compute identity would provide). Everything else is real:
dagster-azure's Pipes client, context injector and message reader, the entry point's
Pipes writer, and Azurite blob containers between them. Protects: the resource submits
a job carrying the Pipes bootstrap variables, waits for it through `jobs.get`, returns
the metadata the entry point reported; a failed job fails the step.
"""

import shlex
import uuid

import dagster as dg
import pytest
from azure.storage.blob import BlobServiceClient

from resources import azure_ml
from resources.compute import AzureMLCompute
from tests.azure_standin import RecordingMLClient

MODULE = "tests.pipes_entry_point"


@pytest.fixture
def pipes_setup(azurite, monkeypatch):
    container = f"pipes-{uuid.uuid4().hex[:8]}"
    BlobServiceClient.from_connection_string(azurite).create_container(container)
    standin = RecordingMLClient(job_env={"AZURE_STORAGE_CONNECTION_STRING": azurite})
    monkeypatch.setattr(azure_ml, "ml_client", standin.factory)
    compute = AzureMLCompute(
        subscription_id="00000000-0000-0000-0000-000000000000",
        resource_group="rg-mlops",
        workspace="mlw-dev",
        compute="cpu-cluster",
        environment="mlops-train:3",
        pipes_container=container,
        storage_account_url="https://stmlops.blob.core.windows.net",
        storage_connection_string=azurite,
        poll_interval_s=0.2,
    )
    yield standin, compute
    standin.jobs.close()


def materialize(compute: AzureMLCompute, argv: list[str]) -> dg.ExecuteInProcessResult:
    @dg.asset
    def remote_candidate(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        meta = compute.run(context, MODULE, argv, env={"MLOPS_TEST_EXTRA": "passed"})
        return dg.MaterializeResult(metadata={f"job_{k}": v for k, v in meta.items()})

    return dg.materialize([remote_candidate], raise_on_error=False)


def test_run_submits_a_job_and_returns_what_the_entry_point_reported(pipes_setup):
    standin, compute = pipes_setup
    result = materialize(compute, ["--rows", "5"])
    assert result.success, result.all_events
    meta = result.asset_materializations_for_node("remote_candidate")[0].metadata
    assert meta["job_rows"].value == 5
    assert meta["job_total"].value == sum(range(5))
    assert meta["job_extra_env"].value == "passed"  # the job's own environment variables

    assert standin.opened == [("00000000-0000-0000-0000-000000000000", "rg-mlops", "mlw-dev")]
    (submitted,) = [c for c in standin.calls if c.method == "create_or_update"]
    body = submitted.args["body"]
    assert shlex.split(body["command"]) == ["python", "-m", MODULE, "--rows", "5"]
    assert body["compute"] == "azureml:cpu-cluster"
    env = body["environment_variables"]
    assert env["MLOPS_PIPES_TRANSPORT"] == "azure_blob"
    assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"} <= set(env)
    (job,) = standin.jobs.runs.values()
    assert meta["job_run_id"].value == job.entity.name
    assert job.entity.status == "Completed"
    assert standin.methods("jobs").count("get") >= 1  # the client polled the job


def test_a_failed_job_fails_the_step(pipes_setup):
    standin, compute = pipes_setup
    result = materialize(compute, ["--rows", "5", "--fail"])
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "Error running Azure ML job: Failed" in str(failure.event_specific_data)
    (job,) = standin.jobs.runs.values()
    assert job.entity.status == "Failed"
