"""Sensors and schedules that react to signals (approvals now; drift, budget, infra, labels next).

`build_sensor_defs()` loops over the scenarios so every scenario gets its own,
uniquely named sensors.
"""

import dagster as dg

from mlops_assets.factory import promotion_job_name
from mlops_assets.scenarios.registry import SCENARIOS
from sensors.approvals import build_approval_sensor


def build_sensor_defs() -> dg.Definitions:
    sensors = [
        build_approval_sensor(spec, promotion_job_name(spec)) for spec, _ in SCENARIOS.values()
    ]
    return dg.Definitions(sensors=sensors)
