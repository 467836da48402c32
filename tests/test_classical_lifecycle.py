"""The classical inner loop on real Dagster instances, MLflow on SQLite and a local lake.

Protects the foundation's promises: the whole graph registers a challenger
with lineage; a corrupt day stops everything downstream and keeps what was
stored; a worse challenger is rejected and the champion stays; re-landing a
day duplicates nothing.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from mlops_assets.scenarios.classical import SPEC
from mlops_assets.scenarios.classical.data_assets import landing_path, raw_path, validated_path
from mlops_assets.scenarios.classical.source import flights_for_day
from resources.compute import SubprocessCompute
from tests.helpers import defs_with, land_days, materialized, metadata, train

WORSE = {"max_iter": 2, "max_depth": 1, "learning_rate": 0.01}


def test_data_job_lands_and_validates_every_day(landed, stores):
    result = landed[1]
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert sorted(c.check_name for c in checks) == [
        "label_rate", "nulls", "physical_ranges", "ranges",
        "reference_codes", "row_count", "schema", "timestamps",
    ]  # fmt: skip
    assert all(c.passed for c in checks)
    lake = stores["lake"]
    assert len(lake.list("validated/classical/flights")) == 59
    validated = lake.read_parquet(validated_path("2013-02-14"))
    assert len(validated) == len(flights_for_day("2013-02-14"))


def test_whole_graph_registers_a_challenger_with_lineage(stores, instance):
    stores["compute"] = SubprocessCompute()  # the real Pipes path
    result = train(defs_with(stores), instance)
    assert result.success, [e.message for e in result.all_events if e.is_failure]

    registry = stores["registry"]
    mv = registry.version_by_alias(SPEC.model_name, "challenger", "dev")
    assert mv is not None and str(mv.version) == "1"
    assert mv.tags["mlops.partition_range"] == "2013-01-01..2013-02-28"
    assert mv.tags["mlops.code_version"] == SPEC.model.code_version
    assert mv.tags["mlops.dagster_run_id"] == result.run_id
    assert mv.tags["mlops.registered_by_dagster_run"] == result.run_id
    assert mv.tags["mlops.git_commit"]

    candidate = metadata(result, "candidate_model")
    assert 0.6 < candidate["roc_auc_holdout"] <= 1.0
    assert "data:image/png;base64," in candidate["confusion_matrix"]
    run = registry.client("dev").get_run(candidate["mlflow_run_id"])
    assert run.data.tags["mlops.verdict"] == "approved"
    assert {"roc_auc_holdout", "accuracy_holdout"} <= set(run.data.metrics)

    model = SPEC.model.load(registry.download_model(SPEC.model_name, "1"))
    dataset = metadata(result, "training_set")
    holdout = stores["lake"].read_parquet(f"{dataset['root']}/holdout.parquet")
    # the registered model reproduces the run's exact metric; the page shows it to 4 decimals
    exact = run.data.metrics["roc_auc_holdout"]
    assert SPEC.model.score(model, holdout)["roc_auc"] == pytest.approx(exact)
    assert candidate["roc_auc_holdout"] == round(exact, 4)
    assert metadata(result, "registered_model")["version"] == "1"


def test_worse_challenger_is_rejected_and_champion_unchanged(stores, instance):
    defs = defs_with(stores)
    registry = stores["registry"]
    assert train(defs, instance).success
    champion = registry.promote(SPEC.model_name, "1", tags={"mlops.approved_by": "test"})
    assert champion.aliases == ["champion"]

    result = train(defs, instance, hyperparameters=WORSE)
    assert not result.success
    gate = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not gate["no_worse_than_champion"].passed
    assert materialized(result, "registered_model") == []
    evaluation = metadata(result, "model_evaluation")
    assert evaluation["verdict"] == "rejected"
    assert "worse than champion v1" in evaluation["reason"]
    assert evaluation["challenger_roc_auc_holdout"] < evaluation["champion_roc_auc_holdout"] - 0.01

    assert [str(mv.version) for mv in registry.versions(SPEC.model_name, "dev")] == ["1"]
    now = registry.version_by_alias(SPEC.model_name, "champion", "prod")
    assert (now.version, now.run_id) == (champion.version, champion.run_id)

    # A later run of the registry step alone re-reads the verdict and refuses.
    alone = defs.resolve_job_def("classical_training_job").execute_in_process(
        instance=instance,
        raise_on_error=False,
        asset_selection=[dg.AssetKey(["classical", "registered_model"])],
    )
    assert not alone.success
    failure = next(e for e in alone.all_events if e.event_type_value == "STEP_FAILURE")
    assert "rejected" in failure.event_specific_data.error.message
    assert [str(mv.version) for mv in registry.versions(SPEC.model_name, "dev")] == ["1"]


def test_slice_gap_gate_rejects_an_unfair_model(stores, instance):
    result = train(defs_with(stores), instance, max_slice_gap=0.0)
    assert not result.success
    gate = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert gate == {"no_worse_than_champion": True, "slice_gap": False}
    assert "gap across origin" in metadata(result, "model_evaluation")["reason"]
    assert stores["registry"].versions(SPEC.model_name, "dev") == []


def _missing_column(frame: pd.DataFrame) -> bytes:
    return frame.drop(columns=["arr_delay"]).to_parquet(index=False)


def _wrong_type(frame: pd.DataFrame) -> bytes:
    return frame.assign(distance=frame["distance"].astype(str) + " mi").to_parquet(index=False)


@pytest.mark.parametrize(
    ("make_file", "expected"),
    [
        (lambda f: b"PAR1 this is not parquet at all", "not readable parquet"),
        (_missing_column, "missing column 'arr_delay'"),
        (_wrong_type, "column 'distance' has type"),
    ],
    ids=["garbage", "missing_column", "wrong_type"],
)
def test_corrupt_partition_blocks_downstream_and_keeps_stored_data(
    stores, instance, make_file, expected
):
    defs, lake, day = defs_with(stores), stores["lake"], "2013-03-01"
    assert land_days(defs, instance, day, day).success
    good = lake.read_bytes(validated_path(day))

    lake.write_bytes(landing_path(day), make_file(flights_for_day(day)))
    result = land_days(defs, instance, day, day)
    assert not result.success
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert failed and any(expected in (c.description or "") for c in failed)
    assert materialized(result, "validated_flights") == []
    assert lake.read_bytes(validated_path(day)) == good
    assert stores["registry"].versions(SPEC.model_name, "dev") == []


def test_relanding_a_day_is_idempotent(stores, instance):
    defs, lake, day = defs_with(stores), stores["lake"], "2013-03-02"
    for _ in range(2):
        assert land_days(defs, instance, day, day).success
    source = flights_for_day(day)
    assert len(lake.read_parquet(raw_path(day))) == len(source)
    assert len(lake.read_parquet(validated_path(day))) == len(source)
    assert lake.list("validated/classical/flights").count(validated_path(day)) == 1


def test_training_set_names_days_that_are_not_validated(stores, instance):
    result = train(defs_with(stores), instance, end="2013-03-10")
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "2013-03-01" in failure.event_specific_data.error.message
    assert "not validated" in failure.event_specific_data.error.message
