"""The NLP loop end to end, in-process, on real Dagster, MLflow, scoring servers and lake.

Runs the demo's own NLP loop (smaller training) and protects the seed's NLP promises:
the TF-IDF baseline passes the gates and staging's text checks (smoke, latency, every
bad text a 4xx) and is promoted; the small BERT is judged against it at the same gate
(across families); production text is logged with its statistics and embedding; the
vocabulary-shifted day drifts and the clean day does not; the drift sensor requests
labeling and never a retrain; simulated annotators' labels become a labeled set
version; the labels sensor's run trains on labeled production text, and staging tests
the candidate on the held-out share of it before anyone approves.
"""

from __future__ import annotations

import math

import dagster as dg
import pytest

from mlops_assets.monitoring.inference_log import inference_log_path
from mlops_assets.scenarios.nlp import SPEC
from mlops_core.naming import drift_sensor_name, labeling_job_name
from mlops_demo.demo_policy import bind_demo_policy
from mlops_demo.nlp import CLEAN_DAY, DRIFT_DAY, run_nlp_loop
from resources.compute import InProcessCompute
from resources.env import local_resources
from tests.conftest import stop_endpoints
from tests.helpers import LOADED_MACHINE_SLO, defs_with, metadata

SMALL = {
    "nlp__training_set": {"config": {"base_texts": 2000, "holdout_texts": 600}},
    "nlp__candidate_model": {"config": {"hyperparameters": {"epochs": 1, "max_length": 32}}},
    "nlp__staging_deployment": LOADED_MACHINE_SLO,
    # 2,000 base texts move a retrained model's holdout accuracy by a point or two either
    # way; these tests are about the loop's mechanics, the demo's gate keeps 0.01
    "nlp__model_evaluation": {"config": {"tolerance": 0.05}},
}


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    home = tmp_path_factory.mktemp("nlp") / "mlops"
    res = local_resources(home)
    res["compute"] = InProcessCompute()
    caller = bind_demo_policy(res, home)
    with dg.instance_for_test() as instance:
        outcome = run_nlp_loop(defs_with(res), instance, res, caller, step=1, training=SMALL)
        yield res, instance, outcome
    stop_endpoints(res)


def test_the_tfidf_baseline_is_gated_staged_with_text_checks_and_promoted(loop):
    _, _, outcome = loop
    train = outcome.runs["train:tfidf"]
    assert train.success, metadata(train, "staging_deployment")
    checks = {c.check_name: c.passed for c in train.get_asset_check_evaluations()}
    assert checks["smoke"] and checks["bad_input"] and checks["latency_slo"]
    assert metadata(train, "candidate_model")["accuracy_holdout"] > 0.65
    deployed = metadata(outcome.runs["promotion:tfidf"], "production_deployment")
    assert deployed["rolled_back"] is False


def test_the_transformer_is_judged_against_the_tfidf_champion(loop):
    res, _, outcome = loop
    bert = outcome.runs["train:bert"]
    evaluation = metadata(bert, "model_evaluation")
    assert evaluation["champion_version"] == "1"  # the TF-IDF model in production
    tfidf_holdout = metadata(outcome.runs["train:tfidf"], "candidate_model")["accuracy_holdout"]
    # same training set version, so the champion scores what it scored at its own gate
    assert math.isclose(evaluation["champion_score"], tfidf_holdout, abs_tol=1e-3)
    run = res["registry"].client("dev").get_run(metadata(bert, "candidate_model")["mlflow_run_id"])
    assert run.data.params["family"] == "bert"


def test_production_texts_are_logged_with_statistics_and_embeddings(loop):
    res, _, _ = loop
    logged = res["lake"].read_parquet(inference_log_path(SPEC.name, DRIFT_DAY))
    expected = {"text", "chars", "tokens", "oov_rate", "emb_0", "prediction", "confidence"}
    assert expected <= set(logged.columns)
    assert set(logged["prediction"]) <= {"fresh", "rotten"}
    assert logged["confidence"].between(0.5, 1).all()  # the served label's own probability
    assert logged["text"].str.len().gt(0).all()


def test_the_shifted_day_drifts_and_the_clean_day_does_not(loop):
    _, _, outcome = loop
    clean = metadata(outcome.runs[f"monitoring:{CLEAN_DAY}"], "data_drift")
    drifted = metadata(outcome.runs[f"monitoring:{DRIFT_DAY}"], "data_drift")
    assert clean["dataset_drift"] is False
    assert drifted["dataset_drift"] is True
    assert {"oov_rate", "embedding"} & set(drifted["drifted_features"])


def test_drift_requests_labeling_and_never_a_retrain(loop):
    _, instance, outcome = loop
    sensor = drift_sensor_name(SPEC.name, SPEC.loopback)
    runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": sensor}))
    assert [r.dagster_run.job_name for r in runs] == [labeling_job_name(SPEC.name)]
    tasks = metadata(outcome.runs["labeling"][-1], "labeling_tasks")
    assert tasks["items"] == SPEC.labeling.items_per_task


def test_labels_retrain_on_production_text_and_staging_tests_on_it(loop):
    res, _, outcome = loop
    retrain = outcome.runs["retrain"]
    assert retrain is not None
    failed = [c.check_name for c in retrain.get_asset_check_evaluations() if not c.passed]
    assert retrain.success, (failed, metadata(retrain, "model_evaluation").get("reason"))
    labeled = metadata(retrain, "labeled_set")
    training = metadata(retrain, "training_set")
    assert training["labeled_set"] == labeled["version"]
    assert training["human_labeled_train"] > 0 and training["human_labeled_holdout"] > 0
    staged = metadata(retrain, "staging_deployment")
    assert staged["production_rows"] == training["human_labeled_holdout"]
    assert 0.0 <= staged["production_score"] <= 1.0
    assert staged["trained_on"] == f"base+{labeled['version']}"
    champion = res["registry"].version_by_alias(SPEC.model_name, "champion", "prod")
    new = res["registry"].version_by_alias(SPEC.model_name, "challenger", "dev")
    assert new.tags["mlops.dataset_version"] == training["version"]
    assert champion.tags.get("mlops.source_version") != str(new.version)  # waits for approval


def test_performance_on_the_shifted_day_is_measured_on_human_labels(loop):
    _, _, outcome = loop
    before = metadata(outcome.runs[f"monitoring:{DRIFT_DAY}"], "model_performance")
    after = metadata(outcome.runs["monitoring:labeled"], "model_performance")
    assert before["labeled_rows"] == 0
    assert after["labeled_rows"] > 0
    assert after["accuracy"] < after["holdout_value"]  # the vocabulary shift hurts
