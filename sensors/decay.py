"""Workspace-decay sensor: nobody used the workspace for N days -> notify the owner once.

"Use" is any Dagster run (launched by a person, a schedule or a sensor). The
cursor holds the newest run seen when the owner was last told, so an idle
period notifies once and a new run resets it.
"""

import dagster as dg

from resources.clock import Clock
from resources.notify import Notifier

IDLE_DAYS = 14


def build_decay_sensor(idle_days: int = IDLE_DAYS, owner: str = "team:ml-platform"):
    @dg.sensor(
        name="platform_workspace_decay_sensor",
        minimum_interval_seconds=3600,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Tell the owner when no run happened for {idle_days} days.",
    )
    def decay_sensor(context: dg.SensorEvaluationContext, notifier: Notifier, clock: Clock):
        newest = context.instance.get_run_records(limit=1)
        if not newest:
            return dg.SkipReason("no runs yet")
        run = newest[0]
        idle = (clock.timestamp() - run.create_timestamp.timestamp()) / 86400
        if idle < idle_days:
            return dg.SkipReason(f"last run {idle:.1f} days ago")
        if context.cursor == run.dagster_run.run_id:
            return dg.SkipReason("owner already told about this idle period")
        notifier.notify(
            topic="workspace_decay",
            severity="info",
            title=f"Workspace idle for {idle:.0f} days",
            text=f"No run since {run.create_timestamp:%Y-%m-%d}. Models and data decay when "
            "nobody retrains or monitors them; stop endpoints you no longer need.",
            facts={"last_run": run.dagster_run.run_id, "idle_days": round(idle, 1)},
            audience=owner,
        )
        return dg.SensorResult(
            skip_reason=dg.SkipReason("owner notified"), cursor=run.dagster_run.run_id
        )

    return decay_sensor
