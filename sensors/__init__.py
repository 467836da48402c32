"""Sensors that react to signals: approvals, drift, endpoint health, budget, workspace decay.

`build_sensor_defs()` loops over the scenarios so every scenario gets its own,
uniquely named sensors; platform-wide sensors are added once.
"""

import dagster as dg

from mlops_assets.factory import promotion_job_name, training_job_name
from mlops_assets.scenarios.registry import SCENARIOS
from sensors.approvals import build_approval_sensor
from sensors.budget import budget_sensor
from sensors.decay import build_decay_sensor
from sensors.drift import build_drift_sensor
from sensors.infra import build_infra_sensor


def build_sensor_defs() -> dg.Definitions:
    sensors = [budget_sensor, build_decay_sensor()]
    for spec, _ in SCENARIOS.values():
        sensors.append(build_approval_sensor(spec, promotion_job_name(spec)))
        sensors.append(build_infra_sensor(spec))
        if spec.retrain_on_drift:
            sensors.append(build_drift_sensor(spec, training_job_name(spec)))
    return dg.Definitions(sensors=sensors)
