"""Sensors that decide on signals: approvals, drift, labels, endpoint health, budget, decay.

A sensor only decides: it returns run requests (each with a run key built
from what it observed) or a skip reason, and a new cursor; scaling,
notifications, audit records and training pauses happen in the runs it
requests. `build_sensor_defs(specs)` takes the scenarios as plain specs, so
this package imports no asset module (only `mlops_core`, `resources` and
`mlops_assets.naming`); every scenario gets its own, uniquely named sensors,
and platform-wide sensors are added once.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from mlops_core.naming import promotion_job_name
from mlops_core.spec import ScenarioSpec
from sensors.approvals import build_approval_sensor
from sensors.budget import budget_sensor
from sensors.decay import build_decay_sensor
from sensors.drift import build_drift_sensor
from sensors.infra import build_infra_sensor
from sensors.labels import build_labels_sensor


def build_sensor_defs(specs: Sequence[ScenarioSpec]) -> dg.Definitions:
    sensors = [budget_sensor, build_decay_sensor()]
    for spec in specs:
        sensors.append(build_approval_sensor(spec, promotion_job_name(spec.name)))
        sensors.append(build_infra_sensor(spec))
        sensors.append(build_drift_sensor(spec))
        if spec.labeling is not None:
            sensors.append(build_labels_sensor(spec))
    return dg.Definitions(sensors=sensors)
