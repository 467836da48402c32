"""The code location's root: merges every scenario's definitions and binds resources once.

Loading does no work: `build_defs(env)` is called lazily by `defs()`, and tests
call it for each environment.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from mlops_assets.factory import build_lifecycle_defs
from mlops_assets.k8s_execution import executor_for_env
from mlops_assets.platform import build_platform_defs
from mlops_assets.scenarios.registry import SCENARIOS
from resources.env import Env, current_env, resources_for
from sensors import build_sensor_defs


def build_defs(env: Env, resources: dict[str, Any] | None = None) -> dg.Definitions:
    """All definitions for `env`; `resources` replaces the environment's (tests)."""
    parts = []
    for spec, build_scenario in SCENARIOS.values():
        parts.append(build_scenario())
        parts.append(build_lifecycle_defs(spec))
    automation = dg.AutomationConditionSensorDefinition(
        "mlops_automation_sensor",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
    )
    return dg.Definitions.merge(
        *parts,
        build_platform_defs(),
        build_sensor_defs([spec for spec, _ in SCENARIOS.values()]),
        dg.Definitions(
            sensors=[automation],
            resources=resources or resources_for(env),
            # Steps run in the run's own process. The heavy work already runs elsewhere
            # (training on the compute resource, batch scoring in its worker pool, serving
            # in the endpoint's server), so a process per step would only add a code
            # location load per step. On Kubernetes, MLOPS_EXECUTOR=k8s selects
            # k8s_job_executor: a pod per step, shaped by the step's op tags.
            executor=executor_for_env(),
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs(current_env())
