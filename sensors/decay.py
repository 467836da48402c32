"""Workspace-decay sensor: nobody used the workspace for N days -> request one notice run.

"Use" is any Dagster run (launched by a person, a schedule or a sensor) except
the notice runs themselves, which would otherwise reset the idle period they
report. The cursor holds the newest
run seen when the owner was last told, and the run key is built from it too,
so an idle period notifies once and a new run resets it.
"""

from __future__ import annotations

import dagster as dg

from mlops_core.naming import WORKSPACE_DECAY_JOB
from resources.clock import Clock

IDLE_DAYS = 14
DECAY_JOB = WORKSPACE_DECAY_JOB
DECAY_OP = "platform__workspace_decay_notice"
TRIGGER = "workspace_decay"
RECENT_RUNS = 20
"""Runs looked at to find the newest one that is not a decay notice."""


def build_decay_sensor(
    idle_days: int = IDLE_DAYS, owner: str = "team:ml-platform"
) -> dg.SensorDefinition:
    @dg.sensor(
        name="platform_workspace_decay_sensor",
        job_name=DECAY_JOB,
        minimum_interval_seconds=3600,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Request a notice to the owner when no run happened for {idle_days} days.",
    )
    def decay_sensor(
        context: dg.SensorEvaluationContext, clock: Clock
    ) -> dg.SensorResult | dg.SkipReason:
        records = context.instance.get_run_records(limit=RECENT_RUNS)
        used = [r for r in records if r.dagster_run.job_name != DECAY_JOB]
        if not used:
            return dg.SkipReason("no runs yet")
        run = used[0]
        idle = (clock.timestamp() - run.create_timestamp.timestamp()) / 86400
        if idle < idle_days:
            return dg.SkipReason(f"last run {idle:.1f} days ago")
        last_id = run.dagster_run.run_id
        if context.cursor == last_id:
            return dg.SkipReason("owner already told about this idle period")
        config = {
            "last_run_id": last_id,
            "last_run_at": run.create_timestamp.isoformat(),
            "idle_days": round(idle, 1),
            "owner": owner,
        }
        request = dg.RunRequest(
            run_key=f"decay-{last_id}",
            run_config={"ops": {DECAY_OP: {"config": config}}},
            tags={"scenario": "platform", "mlops/trigger": TRIGGER},
        )
        return dg.SensorResult(run_requests=[request], cursor=last_id)

    return decay_sensor
