"""Build one scenario's generic lifecycle stages from its `ScenarioSpec`.

Every key and job name derives from `spec.name`, so scenarios cannot collide.
A spec with labeling also gets the labeling stage (labeling tasks, labeled
set) and the two jobs of the relabel loopback: labeling (requested by the
drift sensor) and labeled training (requested by the labels sensor).
"""

from __future__ import annotations

import dagster as dg

from mlops_assets import naming
from mlops_assets.deployment.approval import build_approval
from mlops_assets.deployment.batch_predictions import build_batch_predictions
from mlops_assets.deployment.endpoint_scaling import build_endpoint_scaling_defs
from mlops_assets.deployment.production_deployment import build_production_deployment
from mlops_assets.deployment.staging_deployment import build_staging_deployment
from mlops_assets.labeling.labeled_set import build_labeled_set
from mlops_assets.labeling.labeling_tasks import build_labeling_tasks
from mlops_assets.model_development.candidate_model import build_candidate_model
from mlops_assets.model_development.model_evaluation import build_model_evaluation
from mlops_assets.model_registry.promoted_model import build_promoted_model
from mlops_assets.model_registry.registered_model import build_registered_model
from mlops_assets.monitoring.data_drift import build_data_drift
from mlops_assets.monitoring.endpoint_health import build_endpoint_health
from mlops_assets.monitoring.inference_log import build_inference_log
from mlops_assets.monitoring.model_performance import build_model_performance
from mlops_core import naming as names
from mlops_core.spec import ScenarioSpec


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
        names.training_job_name(spec.name),
        selection=dg.AssetSelection.assets(
            naming.key(spec.name, spec.data.training_set_artifact), *(a.key for a in inner)
        ),
        description=f"{spec.name}: training set -> candidate -> gates -> registry -> staging",
        tags=naming.scenario_tags(spec.name),
    )
    promotion_job = dg.define_asset_job(
        names.promotion_job_name(spec.name),
        selection=dg.AssetSelection.assets(*(a.key for a in outer[1:])),
        description=f"{spec.name}: approved version -> prod registry -> blue/green production",
        tags=naming.scenario_tags(spec.name),
    )
    monitoring_job = dg.define_asset_job(
        names.monitoring_job_name(spec.name),
        selection=dg.AssetSelection.assets(*(a.key for a in monitoring)),
        description=f"{spec.name}: a day of inference log -> performance and drift",
        tags=naming.scenario_tags(spec.name),
    )
    health = build_endpoint_health(spec)
    health_job = dg.define_asset_job(
        names.endpoint_health_job_name(spec.name),
        selection=dg.AssetSelection.assets(health.key),
        tags=naming.scenario_tags(spec.name),
    )
    labeling = build_labeling_defs(spec, training_job.selection)
    return dg.Definitions.merge(
        labeling,
        # the run the endpoint scaling sensor requests (sensors decide, runs act)
        build_endpoint_scaling_defs(spec),
        dg.Definitions(
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
        ),
    )


def build_labeling_defs(spec: ScenarioSpec, training: dg.AssetSelection) -> dg.Definitions:
    """Labeling assets and the relabel loopback's jobs; nothing for a spec without labeling."""
    if spec.labeling is None:
        return dg.Definitions()
    tasks, labeled = build_labeling_tasks(spec), build_labeled_set(spec)
    labeling_job = dg.define_asset_job(
        names.labeling_job_name(spec.name),
        selection=dg.AssetSelection.assets(tasks.key),
        description=f"{spec.name}: uncertain production items -> a labeling task",
        tags=naming.scenario_tags(spec.name),
    )
    labeled_training_job = dg.define_asset_job(
        names.labeled_training_job_name(spec.name),
        selection=dg.AssetSelection.assets(labeled.key) | training,
        description=f"{spec.name}: new labeled set version -> training -> gates -> staging",
        tags=naming.scenario_tags(spec.name),
    )
    return dg.Definitions(assets=[tasks, labeled], jobs=[labeling_job, labeled_training_job])
