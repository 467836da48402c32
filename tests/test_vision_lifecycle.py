"""The vision loop end to end, in-process, on real Dagster, MLflow, scoring servers and lake.

Runs the demo's own vision loop (smaller training) and protects the seed's CV promises:
the CNN passes the gates and staging's image checks (smoke, latency, every bad image a
4xx) and is promoted; production images are logged by digest with their statistics,
the bytes stored once in the lake; the washed-out day drifts and the clean day does
not; the drift sensor requests labeling and never a retrain; simulated annotators'
labels become a labeled set version, and the labels sensor's run trains on it and
registers a new challenger that waits for approval.
"""

from __future__ import annotations

import dagster as dg
import pytest

from mlops_assets.monitoring.inference_log import inference_log_path, scored_image_path
from mlops_assets.scenarios.vision import SPEC
from mlops_core.naming import drift_sensor_name, labeling_job_name
from mlops_demo.demo_policy import bind_demo_policy
from mlops_demo.vision import CLEAN_DAY, DRIFT_DAY, run_vision_loop
from resources.compute import InProcessCompute
from resources.env import local_resources
from tests.conftest import stop_endpoints
from tests.helpers import LOADED_MACHINE_SLO, defs_with, metadata

SMALL = {
    "vision__training_set": {"config": {"base_images": 3000, "holdout_images": 600}},
    "vision__candidate_model": {"config": {"hyperparameters": {"epochs": 2}}},
    "vision__staging_deployment": LOADED_MACHINE_SLO,
}


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    home = tmp_path_factory.mktemp("vision") / "mlops"
    res = local_resources(home)
    res["compute"] = InProcessCompute()
    caller = bind_demo_policy(res, home)
    with dg.instance_for_test() as instance:
        outcome = run_vision_loop(defs_with(res), instance, res, caller, step=1, training=SMALL)
        yield res, instance, outcome
    stop_endpoints(res)


def test_the_cnn_is_gated_staged_with_image_checks_and_promoted(loop):
    _, _, outcome = loop
    train = outcome.runs["train"]
    assert train.success
    checks = {c.check_name: c.passed for c in train.get_asset_check_evaluations()}
    assert checks["smoke"] and checks["bad_input"] and checks["latency_slo"]
    assert 0.6 < metadata(train, "candidate_model")["accuracy_holdout"] <= 1.0
    assert metadata(outcome.runs["promotion"], "production_deployment")["rolled_back"] is False


def test_production_images_are_logged_by_digest_and_stored_once(loop):
    res, _, _ = loop
    logged = res["lake"].read_parquet(inference_log_path(SPEC.name, DRIFT_DAY))
    assert {"image", "brightness", "contrast", "prediction", "confidence"} <= set(logged.columns)
    assert logged["image"].str.startswith("sha256:").all()
    assert all(res["lake"].exists(scored_image_path(SPEC.name, d)) for d in logged["image"][:20])
    assert logged["confidence"].between(0, 1).all()


def test_the_washed_out_day_drifts_and_the_clean_day_does_not(loop):
    _, _, outcome = loop
    clean = metadata(outcome.runs[f"monitoring:{CLEAN_DAY}"], "data_drift")
    drifted = metadata(outcome.runs[f"monitoring:{DRIFT_DAY}"], "data_drift")
    assert clean["dataset_drift"] is False
    assert drifted["dataset_drift"] is True
    assert {"brightness", "contrast"} <= set(drifted["drifted_features"])


def test_drift_requests_labeling_and_never_a_retrain(loop):
    _, instance, outcome = loop
    sensor = drift_sensor_name(SPEC.name, SPEC.loopback)
    runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": sensor}))
    assert [r.dagster_run.job_name for r in runs] == [labeling_job_name(SPEC.name)]
    tasks = metadata(outcome.runs["labeling"][-1], "labeling_tasks")
    assert tasks["items"] == SPEC.labeling.items_per_task
    assert tasks["random_items"] == round(SPEC.labeling.items_per_task * SPEC.labeling.random_share)


def test_new_labels_build_a_labeled_set_and_a_challenger_waiting_for_approval(loop):
    res, _, outcome = loop
    retrain = outcome.runs["retrain"]
    assert retrain is not None
    failed = [c.check_name for c in retrain.get_asset_check_evaluations() if not c.passed]
    assert retrain.success, (failed, metadata(retrain, "model_evaluation").get("reason"))
    labeled = metadata(retrain, "labeled_set")
    assert labeled["annotators"] == 2 and labeled["items"] > 0
    training = metadata(retrain, "training_set")
    assert training["labeled_set"] == labeled["version"]
    assert training["human_labeled_train"] + training["human_labeled_holdout"] == labeled["items"]
    new = res["registry"].version_by_alias(SPEC.model_name, "challenger", "dev")
    assert str(new.version) == "2" and new.tags["mlops.dataset_version"] == training["version"]
    champion = res["registry"].version_by_alias(SPEC.model_name, "champion", "prod")
    assert champion.tags.get("mlops.source_version", "1") == "1"  # nothing promoted by itself


def test_performance_on_the_drifted_day_is_measured_on_accepted_human_labels(loop):
    _, _, outcome = loop
    before = metadata(outcome.runs[f"monitoring:{DRIFT_DAY}"], "model_performance")
    after = metadata(outcome.runs["monitoring:labeled"], "model_performance")
    assert before["labeled_rows"] == 0  # no ground truth before anyone labeled
    labeled = metadata(outcome.runs["retrain"], "labeled_set")
    assert 0 < after["labeled_rows"] <= labeled["items"]  # accepted labels of that day only
    assert after["accuracy"] < after["holdout_value"]  # the washed-out images hurt


def test_a_log_line_cannot_name_a_path_instead_of_an_image(tmp_path):
    from mlops_assets.monitoring.inference_log import collect_images
    from resources.lake import LocalLake

    (tmp_path / "secret").write_text("not an image")
    lake = LocalLake(root=str(tmp_path / "lake"))
    with pytest.raises(dg.Failure, match="names an image badly"):
        collect_images(lake, SPEC.name, str(tmp_path / "log"), ["sha256:../../secret"])
    assert not (tmp_path / "lake").exists() or not list((tmp_path / "lake").rglob("*"))
