"""Build one scenario's generic lifecycle stages from its `ScenarioSpec`.

Every key and job name derives from `spec.name`, so scenarios cannot collide.
"""

from __future__ import annotations

import dagster as dg

from mlops_assets import naming
from mlops_assets.deployment.approval import build_approval
from mlops_assets.deployment.batch_predictions import build_batch_predictions
from mlops_assets.deployment.production_deployment import build_production_deployment
from mlops_assets.deployment.staging_deployment import build_staging_deployment
from mlops_assets.model_development.stage import build_candidate_model, build_model_evaluation
from mlops_assets.model_registry.promoted_model import build_promoted_model
from mlops_assets.model_registry.registered_model import build_registered_model
from mlops_assets.monitoring.endpoint_health import build_endpoint_health
from mlops_assets.monitoring.stage import (
    build_data_drift,
    build_inference_log,
    build_model_performance,
)
from mlops_core.spec import ScenarioSpec


def training_job_name(spec: ScenarioSpec) -> str:
    return f"{spec.name}_training_job"


def promotion_job_name(spec: ScenarioSpec) -> str:
    return f"{spec.name}_promotion_job"


def monitoring_job_name(spec: ScenarioSpec) -> str:
    return f"{spec.name}_monitoring_job"


def build_lifecycle_defs(spec: ScenarioSpec) -> dg.Definitions:
    inner = [
        build_candidate_model(spec),
        build_model_evaluation(spec),
        build_registered_model(spec),
        build_staging_deployment(spec),
    ]
    outer = [build_approval(spec), build_promoted_model(spec), build_production_deployment(spec)]
    batch, batch_schedule = build_batch_predictions(spec)
    monitoring = [build_inference_log(spec), build_model_performance(spec), build_data_drift(spec)]
    training_job = dg.define_asset_job(
        training_job_name(spec),
        selection=dg.AssetSelection.assets(
            naming.key(spec.name, spec.training_set_artifact), *(a.key for a in inner)
        ),
        description=f"{spec.name}: training set -> candidate -> gates -> registry -> staging",
        tags=naming.scenario_tags(spec.name),
    )
    promotion_job = dg.define_asset_job(
        promotion_job_name(spec),
        selection=dg.AssetSelection.assets(*(a.key for a in outer[1:])),
        description=f"{spec.name}: approved version -> prod registry -> blue/green production",
        tags=naming.scenario_tags(spec.name),
    )
    monitoring_job = dg.define_asset_job(
        monitoring_job_name(spec),
        selection=dg.AssetSelection.assets(*(a.key for a in monitoring)),
        description=f"{spec.name}: a day of inference log -> performance and drift",
        tags=naming.scenario_tags(spec.name),
    )
    health = build_endpoint_health(spec)
    health_job = dg.define_asset_job(
        f"{spec.name}_endpoint_health_job",
        selection=dg.AssetSelection.assets(health.key),
        tags=naming.scenario_tags(spec.name),
    )
    return dg.Definitions(
        assets=[*inner, *outer, batch, *monitoring, health],
        jobs=[training_job, promotion_job, monitoring_job, health_job],
        schedules=[
            batch_schedule,
            dg.build_schedule_from_partitioned_job(
                monitoring_job, name=f"{spec.name}_daily_monitoring_schedule", hour_of_day=2
            ),
            dg.ScheduleDefinition(
                name=f"{spec.name}_endpoint_health_schedule",
                job=health_job,
                cron_schedule="* * * * *",
                default_status=dg.DefaultScheduleStatus.STOPPED,
            ),
        ],
    )
