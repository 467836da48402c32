"""Timing a sensor's evaluation the way the daemon runs it, for the benches."""

from __future__ import annotations

import time
from typing import Any


def tick_seconds(sensor: Any, instance: Any, defs: Any, repeats: int) -> list[float]:
    """Seconds of `repeats` evaluations of `sensor` against `instance`, each in a fresh
    sensor context with the definitions' resources (the first pays lazy imports)."""
    import dagster as dg

    times = []
    for _ in range(repeats):
        with dg.build_sensor_context(
            instance=instance, resources=defs.resources, definitions=defs
        ) as ctx:
            started = time.perf_counter()
            sensor(ctx)
            times.append(time.perf_counter() - started)
    return times
