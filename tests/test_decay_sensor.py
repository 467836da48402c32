"""The workspace-decay sensor requests one notice run per idle period, and again after new use.

Protects: the tick only decides (it requests a notice run, keyed by the newest run
that counts as use, and sends nothing); the run notifies the owner; the notice runs
themselves are not "use", so they neither reset the idle period nor trigger another
notice. Time is a pinned Clock relative to the newest run.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from mlops_assets.platform.workspace_decay import workspace_decay_job, workspace_decay_notice
from resources.clock import Clock
from resources.notify import OutboxNotifier
from sensors.decay import build_decay_sensor


@dg.asset
def touched() -> None:
    """Any run counts as use of the workspace."""


def tick(sensor, instance, cursor, last_use, days_after: float):
    """Evaluate with the clock pinned `days_after` the last use; (requests, new cursor)."""
    clock = Clock(frozen_at=(last_use + timedelta(days=days_after)).isoformat())
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"clock": clock}
    ) as ctx:
        result = sensor(ctx)
    if isinstance(result, dg.SkipReason):
        return [], cursor
    return list(result.run_requests or []), result.cursor


def created(instance, run_id: str):
    return instance.get_run_record_by_id(run_id).create_timestamp


def test_idle_workspace_requests_one_notice_per_idle_period(tmp_path, instance):
    notifier = OutboxNotifier(outbox_path=str(tmp_path / "outbox.jsonl"))
    defs = dg.Definitions(
        assets=[workspace_decay_notice],
        jobs=[workspace_decay_job],
        resources={"notifier": notifier},
    )
    sensor = build_decay_sensor(idle_days=14)
    assert tick(sensor, instance, None, Clock().now(), 30) == ([], None)  # no runs at all yet

    first = dg.materialize([touched], instance=instance)
    used = created(instance, first.run_id)
    assert tick(sensor, instance, None, used, 13.9) == ([], None)  # used recently
    (request,), cursor = tick(sensor, instance, None, used, 14.1)
    assert request.run_key == f"decay-{first.run_id}" and cursor == first.run_id
    assert notifier.read_outbox() == []  # the tick sent nothing

    notice = defs.resolve_job_def(sensor.job_name).execute_in_process(
        instance=instance, run_config=request.run_config, tags=request.tags
    )
    assert notice.success
    (sent,) = notifier.read_outbox()
    assert sent["topic"] == "workspace_decay" and sent["facts"]["last_run"] == first.run_id
    assert sent["audience"] == "team:ml-platform"
    # the notice run is not use: the same idle period is not told twice
    assert tick(sensor, instance, cursor, used, 20) == ([], cursor)

    second = dg.materialize([touched], instance=instance)
    (again,), cursor = tick(sensor, instance, cursor, created(instance, second.run_id), 15)
    assert again.run_key == f"decay-{second.run_id}" and cursor == second.run_id
