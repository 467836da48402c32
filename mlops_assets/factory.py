"""Build one scenario's generic lifecycle stages from its `ScenarioSpec`.

Every key and job name derives from `spec.name`, so scenarios cannot collide.
"""

from __future__ import annotations

import dagster as dg

from mlops_assets import naming
from mlops_assets.model_development import build_candidate_model, build_model_evaluation
from mlops_assets.register import build_registered_model
from mlops_assets.spec import ScenarioSpec


def training_job_name(spec: ScenarioSpec) -> str:
    return f"{spec.name}_training_job"


def build_lifecycle_defs(spec: ScenarioSpec) -> dg.Definitions:
    assets = [
        build_candidate_model(spec),
        build_model_evaluation(spec),
        build_registered_model(spec),
    ]
    training_job = dg.define_asset_job(
        training_job_name(spec),
        selection=dg.AssetSelection.assets(
            naming.key(spec.name, spec.training_set_artifact),
            *(a.key for a in assets),
        ),
        description=f"{spec.name}: training set -> candidate -> evaluation gates -> registry",
        tags=naming.scenario_tags(spec.name),
    )
    return dg.Definitions(assets=assets, jobs=[training_job])
