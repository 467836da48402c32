"""A code location for tests/test_postgres_daemon.py: one cheap asset and a sensor asking
for it with a fixed run key, so the daemon launches exactly one run however often it ticks.

Small on purpose: the test is about the daemon's storage (ticks, cursors, the run queue,
run-key dedup, the run's events) on PostgreSQL, not about the product's assets.
"""

import dagster as dg


@dg.asset
def heartbeat() -> dg.MaterializeResult:
    """A value the launched run writes, so its materialization lands in the event log."""
    return dg.MaterializeResult(metadata={"beats": 1})


@dg.sensor(
    target=[heartbeat],
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def heartbeat_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    ticks = int(context.cursor or 0) + 1
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key="once")], cursor=str(ticks))


defs = dg.Definitions(assets=[heartbeat], sensors=[heartbeat_sensor])
