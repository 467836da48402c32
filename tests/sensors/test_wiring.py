"""Sensors name the jobs and ops of the runs they request without importing the assets.

Protects: the job and op names a sensor writes into its run requests (sensors may not
import asset modules) are those of the assets that act, and every sensor's job exists
in the loaded code location.
"""

from __future__ import annotations

import dagster as dg

from mlops_assets.definitions import build_defs
from mlops_assets.deployment.endpoint_scaling import build_endpoint_scaling
from mlops_assets.platform.budget_alert import budget_alert, budget_alert_job
from mlops_assets.platform.workspace_decay import workspace_decay_job, workspace_decay_notice
from mlops_assets.scenarios.classical import SPEC
from sensors import budget, decay
from sensors.infra import build_infra_sensor


def test_platform_sensors_name_the_acting_jobs_and_ops():
    assert budget.budget_sensor.job_name == budget_alert_job.name
    assert budget_alert.op.name == budget.BUDGET_ALERT_OP
    assert dg.AssetKey(["platform", "cost_ledger"]) == budget.COST_LEDGER_KEY
    assert decay.build_decay_sensor().job_name == workspace_decay_job.name
    assert workspace_decay_notice.op.name == decay.DECAY_OP


def test_every_sensor_job_is_defined():
    defs = build_defs("local")
    jobs = {job.name for job in defs.jobs or []}
    deciding = [
        s for s in defs.sensors or [] if not isinstance(s, dg.AutomationConditionSensorDefinition)
    ]
    assert {s.job_name for s in deciding} <= jobs
    scaling = build_endpoint_scaling(SPEC)
    assert (
        build_infra_sensor(SPEC).job_name in jobs
        and scaling.op.name == "classical__endpoint_scaling"
    )
