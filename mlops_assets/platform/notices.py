"""Notices a sensor-requested run sends about itself, built from the tags the sensor set.

The drift sensor only decides: it tags the loopback run it requests
(`mlops/trigger=drift`, `mlops/loopback`, `mlops/drift_day`,
`mlops/served_version`, `mlops/reason`, `mlops/pending_triggers`). The first
asset of the requested job calls `announce_loopback(context.run.tags, ...)`,
so the "retraining after drift" notice is sent by the run, and a notifier
outage can fail that run but never hold a sensor's run request back. Runs
started by a person carry no trigger tag and announce nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resources.notify import Notifier

WHAT_NEXT = {
    "retrain": ("retraining", "the new challenger will wait for approval"),
    "relabel": ("sending items to labelers", "new labels will request a retrain"),
}


def announce_loopback(
    tags: Mapping[str, str], notifier: Notifier, model_name: str
) -> dict[str, Any] | None:
    """Tell data scientists why this run was requested; None when no sensor requested it."""
    if tags.get("mlops/trigger") != "drift":
        return None
    loopback = tags.get("mlops/loopback", "retrain")
    doing, then = WHAT_NEXT.get(loopback, WHAT_NEXT["retrain"])
    day = tags.get("mlops/drift_day", "?")
    return notifier.notify(
        topic=loopback,
        severity="warning",
        title=f"{model_name}: {doing} after drift on {day}",
        text=f"{tags.get('mlops/reason', 'drift')}. This run was requested; {then}.",
        facts={
            "day": day,
            "served_version": tags.get("mlops/served_version", "?"),
            "triggers": tags.get("mlops/pending_triggers", "1"),
        },
        audience="data-scientists",
    )
