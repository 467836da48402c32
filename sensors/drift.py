"""Drift / performance sensor: a drifted or degraded production day requests the loopback run.

Reads what the monitoring assets already computed, typed: `DriftResult` and
`PerformanceResult` from the materialization metadata of `data_drift` and
`model_performance`; it never touches data, so a tick takes milliseconds. Each
result says itself whether it calls for the loopback (`result.trigger()`), and
the spec says which one: `retrain` requests the training job, `relabel` the
labeling job. Promotion still waits for a human approval.

The sensor only decides. The requested run carries the reason in its tags and
announces itself (see `mlops_assets.platform.notices`), so a notifier outage
can never hold a run request back.

Cursor (JSON): the last storage id read per asset, the triggers still `pending`,
the time of the `last_request` and the run keys already `served`. A trigger
seen during the cooldown or a training pause (budget) stays pending and is
served when the cooldown or pause ends; all pending triggers are then served by
one run, keyed by the newest (day, served model version), so one event never
yields two run keys.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import dagster as dg

from mlops_core import naming
from mlops_core.results import DriftResult, PerformanceResult, ResultError
from mlops_core.spec import DEFAULT_COOLDOWN_SECONDS, ScenarioSpec
from resources.clock import Clock
from resources.governance import Governance

COOLDOWN_SECONDS = DEFAULT_COOLDOWN_SECONDS
"""The default; a spec sets its own (`MonitoringSpec.cooldown_seconds`)."""
SERVED_KEPT = 50
"""Run keys remembered as served, so a late result for a served event asks nothing again."""
RESULTS: dict[str, type[DriftResult] | type[PerformanceResult]] = {
    "data_drift": DriftResult,
    "model_performance": PerformanceResult,
}


def loopback_job_name(spec: ScenarioSpec) -> str:
    if spec.loopback == "relabel":
        return naming.labeling_job_name(spec.name)
    return naming.training_job_name(spec.name)


def loopback_run_config(spec: ScenarioSpec, pending: list[dict[str, str]], why: str) -> dict:
    """The loopback run's config: labeling tasks cover every pending day; training needs none."""
    if spec.loopback != "relabel":
        return {}
    days = sorted({t["day"] for t in pending})
    config = {"days": days, "reason": why[:500]}
    return {"ops": {f"{spec.name}__labeling_tasks": {"config": config}}}


def read_new_triggers(
    context: dg.SensorEvaluationContext, spec: ScenarioSpec, cursor: dict[str, Any]
) -> list[dict[str, str]]:
    """Triggers in results stored since the cursor (which advances past every result read)."""
    found = []
    for artifact, result_type in RESULTS.items():
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(naming.key_path(spec.name, artifact)),
                after_storage_id=cursor.get(artifact),
            ),
            limit=100,
            ascending=True,
        ).records
        for record in records:
            cursor[artifact] = record.storage_id
            try:
                result = result_type.from_metadata(record.asset_materialization.metadata)
            except ResultError as err:  # one malformed result must not stall the sensor
                context.log.warning(f"skipping {artifact} storage id {record.storage_id}: {err}")
                continue
            why = result.trigger()
            if why:
                day = record.partition_key or result.day
                version = result.model_version or "unknown"
                found.append(
                    {
                        "run_key": f"{spec.loopback}-{spec.name}-{day}-v{version}",
                        "day": day,
                        "version": version,
                        "why": f"{artifact}: {why}",
                    }
                )
    return found


def request_time(value: float | str | None) -> float:
    """The cursor's last request as epoch seconds; written ISO-8601 (readable in the UI),
    epoch numbers from older cursors are still read."""
    if value is None:
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(value).timestamp()


def hold_reason(
    cursor: dict[str, Any], governance: Governance, now: datetime, cooldown_seconds: int
) -> str | None:
    """Why pending triggers must wait (cooldown, training pause), or None."""
    since = now.timestamp() - request_time(cursor.get("last_request"))
    if since < cooldown_seconds:
        return f"cooldown: the last loopback run was requested {since:.0f}s ago"
    paused = governance.paused_reason(now)
    return f"training automation paused: {paused}" if paused else None


def build_drift_sensor(
    spec: ScenarioSpec, *, cooldown_seconds: int | None = None
) -> dg.SensorDefinition:
    """`cooldown_seconds` overrides the spec's (tests)."""
    if cooldown_seconds is None:
        cooldown_seconds = spec.monitoring.cooldown_seconds
    job_name = loopback_job_name(spec)
    share = getattr(spec.monitoring.drift, "drift_share", None)
    drifts = f"at least {share:.0%} of features drift" if share else "its data drifts"

    @dg.sensor(
        name=naming.drift_sensor_name(spec.name, spec.loopback),
        job_name=job_name,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Watches {spec.name}/data_drift and {spec.name}/model_performance. Requests "
            f"{job_name} when {drifts} or "
            f"{spec.monitoring.performance_metric} drops more than {spec.monitoring.max_drop} "
            f"below holdout; at most one request per {cooldown_seconds / 3600:g} h (later "
            "triggers wait, then one run serves them all), none while the budget pauses "
            "training. Promotion still needs a human approval."
        ),
    )
    def drift_sensor(
        context: dg.SensorEvaluationContext, governance: Governance, clock: Clock
    ) -> dg.SensorResult:
        cursor: dict[str, Any] = json.loads(context.cursor) if context.cursor else {}
        cursor.setdefault("last_request", cursor.pop("last_retrain", 0.0))
        served = list(cursor.get("served", []))
        pending = list(cursor.get("pending", []))
        known = set(served) | {t["run_key"] for t in pending}
        for trigger in read_new_triggers(context, spec, cursor):
            if trigger["run_key"] not in known:
                pending.append(trigger)
                known.add(trigger["run_key"])
        cursor["pending"] = pending
        if not pending:
            return dg.SensorResult(
                skip_reason=dg.SkipReason("no new drift or performance drop"),
                cursor=json.dumps(cursor),
            )
        now = clock.now()
        held = hold_reason(cursor, governance, now, cooldown_seconds)
        if held:
            days = ", ".join(t["day"] for t in pending)
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"{len(pending)} trigger(s) pending ({days}); {held}"),
                cursor=json.dumps(cursor),
            )
        newest = max(pending, key=lambda t: t["day"])
        request = dg.RunRequest(
            run_key=newest["run_key"],
            run_config=loopback_run_config(spec, pending, newest["why"]),
            tags={
                "scenario": spec.name,
                "mlops/trigger": "drift",
                "mlops/loopback": spec.loopback,
                "mlops/drift_day": newest["day"],
                "mlops/served_version": newest["version"],
                "mlops/reason": newest["why"][:200],
                "mlops/pending_triggers": str(len(pending)),
            },
        )
        cursor.update(
            pending=[],
            last_request=now.isoformat(timespec="seconds"),
            served=[*served, *(t["run_key"] for t in pending)][-SERVED_KEPT:],
        )
        return dg.SensorResult(run_requests=[request], cursor=json.dumps(cursor))

    return drift_sensor
