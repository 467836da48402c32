"""One vocabulary for groups, kinds, owners and aliases, checked by a test.

Groups are the lifecycle stages of the MLOps v2 diagram so the asset graph
reads like the architecture; keys are `[scenario, artifact]`.
"""

from __future__ import annotations

import dagster as dg

from mlops_core.naming import CHALLENGER_ALIAS, CHAMPION_ALIAS, key_path

__all__ = ["CHALLENGER_ALIAS", "CHAMPION_ALIAS", "key", "key_path", "scenario_tags"]

DATA_ESTATE = "data_estate"
LABELING = "labeling"
MODEL_DEVELOPMENT = "model_development"
MODEL_REGISTRY = "model_registry"
DEPLOYMENT = "deployment"
MONITORING = "monitoring"
GROUPS = frozenset(
    {DATA_ESTATE, LABELING, MODEL_DEVELOPMENT, MODEL_REGISTRY, DEPLOYMENT, MONITORING}
)

# Lowercase only: the UI shows these as badges and filters on them.
KINDS = frozenset(
    {"python", "pandas", "parquet", "sklearn", "mlflow", "pytorch", "azure", "azureml", "starlette"}
)

OWNERS = ["team:ml-platform"]


def key(scenario: str, artifact: str) -> dg.AssetKey:
    return dg.AssetKey(key_path(scenario, artifact))


def scenario_tags(scenario: str) -> dict[str, str]:
    return {"scenario": scenario}
