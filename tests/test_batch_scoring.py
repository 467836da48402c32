"""The batch endpoint's worker pool: mini-batches across processes, retries, atomic outputs.

Protects: a multi-worker run writes exactly what a single-process loop writes
(same rows, same order per partition, mini-batches scored as one call or not);
a worker killed or hung mid-run is replaced and its mini-batch retried, with no
half-written output left; after exhausted retries the run fails naming the
partition and that partition has no output; the asset records each day with
its rows and path and fails naming the day; the Azure batch deployment built
from the same settings carries them one to one; workers read and write an
Azure (Azurite) lake through fsspec.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from mlops_assets.deployment.batch_predictions import build_batch_predictions
from mlops_assets.scenarios.classical import SPEC
from mlops_core.batch import (
    BatchJob,
    BatchSettings,
    MiniBatch,
    MiniBatchFailed,
    plan_mini_batches,
    with_constants,
)
from mlops_core.batch_azure import build_batch_deployment
from mlops_core.batch_pool import run_batch
from mlops_core.lake_fs import FsLake
from resources.batch_scoring import LocalBatchPool
from resources.lake import AzureBlobLake, LocalLake
from resources.registry import LocalMlflowRegistry
from tests import batch_scoring_model as tiny

DAYS = [f"2024-03-0{d}" for d in range(1, 7)]
TOKEN = "t3st"


def make_job(lake: FsLake, model_dir: str) -> BatchJob:
    return BatchJob(
        load=tiny.load,
        batch_items=tiny.batch_items,
        batch_predict=tiny.batch_predict,
        model_dir=model_dir,
        lake=lake,
        output="predictions/tiny/{partition}/predictions.parquet",
        constants={"model_version": "7"},
        run_token=TOKEN,
    )


@pytest.fixture
def lake(tmp_path) -> FsLake:
    lake = FsLake(root=str(tmp_path / "lake"))
    tiny.write_days(lake, DAYS)
    return lake


def expected(lake: FsLake, model_dir: str, day: str) -> pd.DataFrame:
    """The plain single-process loop: read, predict, add the version."""
    model = tiny.load(model_dir)
    out = tiny.batch_predict(model, tiny.batch_items(lake, day))
    return with_constants(pa_table(out), {"model_version": "7"}).to_pandas()


def pa_table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def leftovers(lake: FsLake) -> list[Path]:
    return sorted(p for p in Path(lake.root).rglob(".*") if p.is_file())


@pytest.mark.parametrize(
    ("n", "size", "workers", "sizes"),
    [
        (10, 10, 2, [1] * 10),  # short range: every worker gets mini-batches
        (365, 10, 2, [10] * 36 + [5]),
        (40, 3, 2, [3] * 13 + [1]),
        (1, 10, 4, [1]),
    ],
)
def test_plan_covers_every_partition_once_in_order(n, size, workers, sizes):
    days = [f"d{i:03d}" for i in range(n)]
    plan = plan_mini_batches(days, size, workers)
    assert [len(b.partitions) for b in plan] == sizes
    assert [p for b in plan for p in b.partitions] == days


@pytest.mark.parametrize(("start_method", "size"), [("forkserver", 2), ("spawn", 1)])
def test_multi_worker_run_writes_what_a_single_process_writes(lake, tmp_path, start_method, size):
    model_dir = tiny.save_model(tmp_path / "model")
    settings = BatchSettings(mini_batch_size=size, max_concurrency_per_instance=2)
    report = run_batch(make_job(lake, model_dir), DAYS, settings, start_method=start_method)
    assert report.workers == 2 and report.retries == 0
    assert list(report.rows) == DAYS
    for day in DAYS:
        written = lake.read_parquet(f"predictions/tiny/{day}/predictions.parquet")
        pd.testing.assert_frame_equal(written, expected(lake, model_dir, day))
        assert report.rows[day] == len(written)
    assert leftovers(lake) == []


def test_killed_worker_is_replaced_and_its_mini_batch_retried(lake, tmp_path):
    marker = tmp_path / "crashed-once"
    faults = {"day": DAYS[2], "mode": "exit_once", "marker": str(marker)}
    model_dir = tiny.save_model(tmp_path / "model", faults)
    job = make_job(lake, model_dir)
    # what an attempt killed while writing leaves behind: the retry must replace it
    half = Path(lake.uri(job.temp_path(DAYS[2])))
    half.parent.mkdir(parents=True)
    half.write_bytes(b"PAR1 half a file")
    messages: list[str] = []
    settings = BatchSettings(mini_batch_size=2, max_concurrency_per_instance=2, max_retries=2)
    report = run_batch(job, DAYS, settings, log=messages.append)
    assert marker.exists()  # the fault fired: a worker died with exit code 13
    assert report.retries == 1
    assert "exited with code 13" in messages[0] and DAYS[2] in messages[0]
    for day in DAYS:
        written = lake.read_parquet(job.output_path(day))
        pd.testing.assert_frame_equal(written, expected(lake, str(tmp_path / "model"), day))
    assert leftovers(lake) == []


def test_exhausted_retries_fail_the_run_naming_the_partition(lake, tmp_path):
    faults = {"day": DAYS[3], "mode": "exit_always"}
    model_dir = tiny.save_model(tmp_path / "model", faults)
    job = make_job(lake, model_dir)
    half = Path(lake.uri(job.temp_path(DAYS[3])))
    half.parent.mkdir(parents=True)
    half.write_bytes(b"PAR1 half a file")
    settings = BatchSettings(mini_batch_size=2, max_concurrency_per_instance=2, max_retries=1)
    with pytest.raises(MiniBatchFailed) as failed:
        run_batch(job, DAYS, settings)
    assert failed.value.partition == DAYS[3]
    assert f"partition {DAYS[3]} failed after 2 attempt(s)" in str(failed.value)
    assert "exited with code 13" in str(failed.value)
    assert not lake.exists(job.output_path(DAYS[3]))
    assert leftovers(lake) == []
    for day in DAYS:  # whatever else was written is whole
        if lake.exists(job.output_path(day)):
            assert len(lake.read_parquet(job.output_path(day))) == len(tiny.batch_items(lake, day))


def test_python_error_fails_the_run_naming_the_partition(lake, tmp_path):
    model_dir = tiny.save_model(tmp_path / "model", {"day": DAYS[0], "mode": "raise_always"})
    settings = BatchSettings(max_concurrency_per_instance=1, max_retries=0)
    with pytest.raises(MiniBatchFailed, match="ValueError: cannot score day 2024-03-01") as failed:
        run_batch(make_job(lake, model_dir), DAYS, settings)
    assert failed.value.partition == DAYS[0] and failed.value.attempts == 1


def test_a_failure_inside_a_whole_mini_batch_names_its_partitions():
    err = MiniBatchFailed(MiniBatch(4, ("d1", "d2")), 1, "worker process exited", None)
    assert err.partition is None
    assert (
        str(err)
        == "mini-batch of partitions d1, d2 failed after 1 attempt(s): worker process exited"
    )


def test_hung_mini_batch_times_out_and_is_retried(lake, tmp_path):
    marker = tmp_path / "hung-once"
    faults = {"day": DAYS[1], "mode": "hang_once", "marker": str(marker)}
    model_dir = tiny.save_model(tmp_path / "model", faults)
    # long enough that a worker's restart and model load finish on a loaded machine (a 3 s
    # timeout failed every attempt there); the hang itself waits it out once
    settings = BatchSettings(mini_batch_size=1, max_concurrency_per_instance=2, retry_timeout=12)
    messages: list[str] = []
    report = run_batch(make_job(lake, model_dir), DAYS, settings, log=messages.append)
    assert marker.exists() and report.retries == 1
    assert "timed out after 12s" in messages[0]
    assert sorted(report.rows) == DAYS


def test_azure_batch_deployment_carries_the_settings_one_to_one(tmp_path):
    settings = BatchSettings(
        mini_batch_size=5,
        max_concurrency_per_instance=0,
        instance_count=3,
        max_retries=2,
        retry_timeout=120,
        output_file_name="scores.parquet",
    )
    deployment = build_batch_deployment(
        settings,
        name="blue",
        endpoint_name="classical-batch",
        model="azureml:classical-flight-delay:3",
        compute="cpu-cluster",
        cores_per_instance=4,
    )
    deployment.dump(tmp_path / "deployment.yaml")
    dumped = yaml.safe_load((tmp_path / "deployment.yaml").read_text())
    assert dumped["type"] == "model"
    assert dumped["settings"] == {
        "mini_batch_size": 5,
        "instance_count": 3,
        "max_concurrency_per_instance": 4,
        "retry_settings": {"max_retries": 2, "timeout": 120},
        "output_action": "append_row",
        "output_file_name": "scores.parquet",
        "error_threshold": 0,
        "environment_variables": {"OMP_NUM_THREADS": "1"},
        "logging_level": "info",
    }
    with pytest.raises(ValueError, match="cores_per_instance"):
        build_batch_deployment(settings, name="b", endpoint_name="e", model="m", compute="c")


def test_workers_read_and_write_an_azure_lake_through_fsspec(tmp_path, azurite):
    container = f"batch-{uuid.uuid4().hex[:8]}"
    blob = AzureBlobLake(container=container, connection_string=azurite, prefix="team-a")
    tiny.write_days(blob, DAYS[:3])
    lake = FsLake(root=blob.uri("_")[:-1], storage_options=blob.storage_options())
    assert lake.remote and lake.list("inputs") == [tiny.input_path(d) for d in DAYS[:3]]
    model_dir = tiny.save_model(tmp_path / "model")
    settings = BatchSettings(max_concurrency_per_instance=2)
    report = run_batch(make_job(lake, model_dir), DAYS[:3], settings)
    assert list(report.rows) == DAYS[:3]
    for day in DAYS[:3]:
        written = blob.read_parquet(f"predictions/tiny/{day}/predictions.parquet")
        pd.testing.assert_frame_equal(written, expected(lake, model_dir, day))


def test_asset_records_each_day_and_fails_naming_the_partition(tmp_path, instance):
    """The Dagster wrapper: per-day records with their rows and path; a failed
    mini-batch fails the run with a `dg.Failure` naming the day."""
    spec = replace(
        SPEC,
        name="tiny",
        data=replace(SPEC.data, first_day=DAYS[0], last_day=DAYS[-1], batch_items=tiny.batch_items),
        model=replace(SPEC.model, load=tiny.load, batch_predict=tiny.batch_predict),
    )
    lake = LocalLake(root=str(tmp_path / "lake"))
    tiny.write_days(lake, DAYS)
    registry = LocalMlflowRegistry(root=str(tmp_path / "mlflow"))
    client = registry.client("dev")
    for version, faults in (("1", None), ("2", {"day": DAYS[4], "mode": "exit_always"})):
        model_dir = tiny.save_model(tmp_path / f"model{version}", faults)
        run = client.create_run(registry.ensure_experiment("tiny"))
        client.log_artifacts(run.info.run_id, model_dir, "model")
        registry.register(spec.model_name, f"{run.info.artifact_uri}/model", run.info.run_id, {})
        registry.promote(spec.model_name, version, tags={})
        assert (
            str(registry.version_by_alias(spec.model_name, "champion", "prod").version) == version
        )
        asset, _ = build_batch_predictions(spec)
        config = {"max_concurrency_per_instance": 2, "max_retries": 0}
        result = dg.materialize(
            [asset],
            resources={"lake": lake, "registry": registry, "batch": LocalBatchPool()},
            instance=instance,
            run_config={"ops": {"tiny__batch_predictions": {"config": config}}},
            tags={
                "dagster/asset_partition_range_start": DAYS[0],
                "dagster/asset_partition_range_end": DAYS[-1],
            },
            raise_on_error=False,
        )
        if faults is None:
            assert result.success
            records = {
                e.partition: e.materialization.metadata
                for e in result.get_asset_materialization_events()
            }
            assert sorted(records) == DAYS
            for day, meta in records.items():
                written = lake.read_parquet(f"predictions/tiny/{day}/predictions.parquet")
                assert meta["row_count"].value == len(written) == len(tiny.batch_items(lake, day))
                assert meta["path"].value.endswith(f"predictions/tiny/{day}/predictions.parquet")
                assert set(written["model_version"]) == {"1"}
            lake.delete(f"predictions/tiny/{DAYS[4]}/predictions.parquet")
        else:
            assert not result.success
            failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
            assert f"partition {DAYS[4]} failed after 1 attempt(s)" in str(
                failure.event_specific_data
            )
            assert not lake.exists(f"predictions/tiny/{DAYS[4]}/predictions.parquet")
