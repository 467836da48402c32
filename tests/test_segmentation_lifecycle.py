"""The segmentation loop end to end, in-process, on real Dagster, MLflow, scoring servers and lake.

Protects what wiring a second vision task promises: the generic lifecycle builds it from
its spec; the tiny U-Net passes the gates and staging's image checks (served masks equal
in-process ones exactly, every bad image a 4xx, latency) and is promoted by an approval;
production tiles are logged by digest with their statistics, object count and foreground
share (never the mask); the washed-out day drifts and the clean day does not; the drift
sensor asks for a segmentation labeling task (never a retrain); the batch endpoint's
worker pool scores a day of tiles with masks.
"""

from __future__ import annotations

import dagster as dg
import pytest

from mlops_assets.deployment.batch_predictions import predictions_path
from mlops_assets.monitoring.inference_log import inference_log_path, scored_image_path
from mlops_assets.scenarios.segmentation import SPEC
from mlops_assets.scenarios.segmentation.data_assets import FIRST_DAY, LAST_DAY, raw_path
from mlops_core.governance.decisions import record_decision
from mlops_core.naming import drift_sensor_name, labeling_job_name
from mlops_demo.demo_policy import bind_demo_policy
from mlops_demo.runs import run_job, tick
from mlops_demo.vision import day_range, send_items
from resources.compute import InProcessCompute
from resources.env import local_resources
from tests.conftest import stop_endpoints
from tests.helpers import LOADED_MACHINE_SLO, defs_with, metadata

CLEAN_DAY, DRIFT_DAY = "2024-07-03", "2024-07-08"
TINY = {"epochs": 4, "base_channels": 4, "max_train_tiles": 48}
TRAINING = {
    "segmentation__candidate_model": {"config": {"hyperparameters": TINY}},
    "segmentation__staging_deployment": LOADED_MACHINE_SLO,
}
ONE_WORKER = {"segmentation__batch_predictions": {"config": {"max_concurrency_per_instance": 1}}}


def send_tiles(res: dict, day: str) -> int:
    """A day's new tiles to the production endpoint, as the demo sends vision's images."""
    return send_items(res, SPEC, res["lake"].read_parquet(raw_path(day)), day, per_request=8)


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    home = tmp_path_factory.mktemp("segmentation") / "mlops"
    res = local_resources(home)
    res["compute"] = InProcessCompute()
    caller = bind_demo_policy(res, home)
    runs: dict = {}
    try:
        with dg.instance_for_test() as instance:
            defs = defs_with(res)
            tags = day_range(FIRST_DAY, LAST_DAY)
            runs["data"] = run_job(defs, "segmentation_data_job", instance, tags=tags)
            train = runs["train"] = run_job(
                defs, "segmentation_training_job", instance, run_config={"ops": TRAINING}
            )
            assert train.success, "training did not reach staging"
            version = str(metadata(train, "registered_model")["version"])
            record_decision(
                res["registry"], res["governance"], res["approvals"], caller, SPEC.model_name,
                version, "approve", "test: holdout IoU and tiles reviewed",
            )  # fmt: skip
            promoted = tick(defs, "segmentation_approval_sensor", instance, res)
            runs["promotion"] = promoted[-1][1] if promoted else None
            runs["requests"] = sum(send_tiles(res, day) for day in (CLEAN_DAY, DRIFT_DAY))
            for day in (CLEAN_DAY, DRIFT_DAY):
                runs[f"monitoring:{day}"] = run_job(
                    defs, "segmentation_monitoring_job", instance, partition_key=day
                )
            sensor = drift_sensor_name(SPEC.name, SPEC.loopback)
            runs["labeling"] = [r for _, r in tick(defs, sensor, instance, res)]
            runs["batch"] = run_job(
                defs, "segmentation_batch_scoring_job", instance, partition_key=CLEAN_DAY,
                run_config={"ops": ONE_WORKER},
            )  # fmt: skip
            yield res, instance, runs
    finally:
        stop_endpoints(res)


def test_the_unet_is_gated_staged_with_exact_masks_and_promoted(loop):
    _, _, runs = loop
    assert runs["data"].success
    assert metadata(runs["data"], "raw_tiles")["drifted_days"] == [
        "2024-07-07", "2024-07-08", "2024-07-09", "2024-07-10",
    ]  # fmt: skip
    train = runs["train"]
    checks = {c.check_name: c for c in train.get_asset_check_evaluations()}
    assert all(checks[n].passed for n in ("smoke", "bad_input", "latency_slo"))
    assert checks["smoke"].metadata["mismatches"].value == 0  # masks equal, byte for byte
    candidate = metadata(train, "candidate_model")
    assert 0.4 < candidate["iou_holdout"] <= 1.0
    assert metadata(train, "training_set")["labeled_set"] == "none"
    assert metadata(train, "model_evaluation")["verdict"] == "approved"
    deployed = metadata(runs["promotion"], "production_deployment")
    assert deployed["rolled_back"] is False


def test_production_tiles_are_logged_with_counts_and_never_masks(loop):
    res, _, runs = loop
    assert runs["requests"] == 6  # 24 tiles a day, 8 per request, two days
    logged = res["lake"].read_parquet(inference_log_path(SPEC.name, DRIFT_DAY))
    assert len(logged) == 24
    assert {"image", "brightness", "contrast", "sharpness", "prediction",
            "foreground_fraction"} <= set(logged.columns)  # fmt: skip
    assert "mask" not in logged.columns
    assert logged["image"].str.startswith("sha256:").all()
    assert all(res["lake"].exists(scored_image_path(SPEC.name, d)) for d in logged["image"])
    assert logged["foreground_fraction"].between(0, 1).all()
    assert (logged["prediction"] >= 0).all()


def test_the_washed_out_day_drifts_and_the_clean_day_does_not(loop):
    _, _, runs = loop
    clean = metadata(runs[f"monitoring:{CLEAN_DAY}"], "data_drift")
    drifted = metadata(runs[f"monitoring:{DRIFT_DAY}"], "data_drift")
    assert clean["dataset_drift"] is False
    assert drifted["dataset_drift"] is True
    assert {"brightness", "contrast"} <= set(drifted["drifted_features"])
    performance = metadata(runs[f"monitoring:{DRIFT_DAY}"], "model_performance")
    assert performance["labeled_rows"] == 0  # no ground truth dropped: IoU is not monitored


def test_drift_requests_a_segmentation_labeling_task_of_the_odd_masks(loop):
    res, instance, runs = loop
    sensor = drift_sensor_name(SPEC.name, SPEC.loopback)
    launched = instance.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": sensor}))
    assert [r.dagster_run.job_name for r in launched] == [labeling_job_name(SPEC.name)]
    tasks = metadata(runs["labeling"][-1], "labeling_tasks")
    assert tasks["items"] == SPEC.labeling.items_per_task and tasks["classes"] == ["nucleus"]
    (task,) = res["labeling"].manifests(SPEC.name)
    assert task["task_format"] == "segmentation"
    items = res["labeling"].task_items(SPEC.name, task["task_id"])
    assert {i["image"][:7] for i in items} == {"sha256:"}  # a drawing tool shows the tile
    uncertain = [i for i in items if i["why"] == "uncertain"]
    scores = [i["uncertainty"] for i in uncertain]
    assert uncertain and scores == sorted(scores, reverse=True)
    # the washed-out day's masks cover most of the tile: far from nuclei's usual share
    assert uncertain[0]["foreground_fraction"] > 0.5


def test_the_batch_pool_scores_a_day_of_tiles_with_masks(loop):
    res, _, runs = loop
    assert runs["batch"].success
    table = res["lake"].read_parquet(predictions_path(SPEC.name, CLEAN_DAY))
    raw = res["lake"].read_parquet(raw_path(CLEAN_DAY))
    assert list(table["tile_id"]) == list(raw["tile_id"])
    assert {"objects", "foreground_fraction", "mask", "model_version"} <= set(table.columns)
    assert table["mask"].map(lambda m: isinstance(m, str) and len(m) > 0).all()
    logged = res["lake"].read_parquet(inference_log_path(SPEC.name, CLEAN_DAY))
    # the same tiles, online and in batch, get the same object counts
    assert sorted(table["objects"]) == sorted(logged["prediction"])
