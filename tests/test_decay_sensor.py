"""The workspace-decay sensor tells the owner once per idle period, and again after new use."""

from __future__ import annotations

import dagster as dg

from resources.notify import OutboxNotifier
from sensors.decay import build_decay_sensor


@dg.asset
def touched() -> None:
    """Any run counts as use of the workspace."""


def evaluate(sensor, instance, notifier, cursor):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"notifier": notifier}
    ) as ctx:
        result = sensor(ctx)
    return getattr(result, "cursor", None) or cursor


def test_idle_workspace_notifies_once_per_idle_period(tmp_path, instance):
    notifier = OutboxNotifier(outbox_path=str(tmp_path / "outbox.jsonl"))
    busy = build_decay_sensor(idle_days=14)
    idle = build_decay_sensor(idle_days=0)  # every moment counts as idle
    assert evaluate(idle, instance, notifier, None) is None  # no runs at all yet

    dg.materialize([touched], instance=instance)
    assert evaluate(busy, instance, notifier, None) is None  # used today: nothing to say
    cursor = evaluate(idle, instance, notifier, None)
    assert [n["topic"] for n in notifier.read_outbox()] == ["workspace_decay"]
    assert evaluate(idle, instance, notifier, cursor) == cursor
    assert len(notifier.read_outbox()) == 1  # the same idle period is not told twice

    second = dg.materialize([touched], instance=instance)
    assert evaluate(idle, instance, notifier, cursor) == second.run_id
    assert len(notifier.read_outbox()) == 2
