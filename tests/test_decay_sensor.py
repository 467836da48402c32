"""The workspace-decay sensor tells the owner once per idle period, and again after new use."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from resources.clock import Clock
from resources.notify import OutboxNotifier
from sensors.decay import build_decay_sensor


@dg.asset
def touched() -> None:
    """Any run counts as use of the workspace."""


def evaluate(sensor, instance, notifier, cursor, days_after_last_run: float = 0.0):
    """Evaluate with the clock pinned `days_after_last_run` after the newest run (or now)."""
    records = instance.get_run_records(limit=1)
    at = records[0].create_timestamp if records else Clock().now()
    clock = Clock(frozen_at=(at + timedelta(days=days_after_last_run)).isoformat())
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"notifier": notifier, "clock": clock}
    ) as ctx:
        result = sensor(ctx)
    return getattr(result, "cursor", None) or cursor


def test_idle_workspace_notifies_once_per_idle_period(tmp_path, instance):
    notifier = OutboxNotifier(outbox_path=str(tmp_path / "outbox.jsonl"))
    sensor = build_decay_sensor(idle_days=14)
    assert evaluate(sensor, instance, notifier, None, 30) is None  # no runs at all yet

    dg.materialize([touched], instance=instance)
    assert evaluate(sensor, instance, notifier, None, 13.9) is None  # used recently: nothing to say
    cursor = evaluate(sensor, instance, notifier, None, 14.1)
    assert [n["topic"] for n in notifier.read_outbox()] == ["workspace_decay"]
    assert evaluate(sensor, instance, notifier, cursor, 20) == cursor
    assert len(notifier.read_outbox()) == 1  # the same idle period is not told twice

    second = dg.materialize([touched], instance=instance)
    assert evaluate(sensor, instance, notifier, cursor, 15) == second.run_id
    assert len(notifier.read_outbox()) == 2
