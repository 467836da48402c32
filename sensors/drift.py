"""Drift / performance sensor: a drifted production day requests one retrain.

Reads what the monitoring assets already computed (materialization metadata
of `data_drift` and `model_performance`); it never touches the data, so an
evaluation takes milliseconds. For a scenario that retrains on drift
(classical), a trigger requests the training job (retrain -> gates ->
registry -> staging); promotion still waits for a human approval. Scenarios
that loop back to labeling get their own sensor (vision, NLP).

Idempotent: the run key is built from the drifted day and the served model
version, so one drift event never launches two runs; a cooldown stops retrain
storms when many days drift; a training pause set by the budget sensor holds
every retrain until it is lifted.
"""

import json

import dagster as dg

from mlops_assets import naming
from mlops_core.spec import ScenarioSpec
from resources.clock import Clock
from resources.governance import Governance
from resources.notify import Notifier

MAX_ACCURACY_DROP = 0.05
COOLDOWN_SECONDS = 6 * 3600


def drift_trigger(metadata: dict, drift_share: float) -> str | None:
    """Why a drift result calls for a retrain, or None.

    Feature drift counts at Evidently's dataset rule (share of drifted features). A
    drifted prediction counts only together with a drifted feature: alone, it moves
    with what is deliberately not monitored per day (weather, calendar) and would
    retrain on every stormy day.
    """
    share = float(metadata.get("share_of_drifted_features", 0.0))
    if share >= drift_share:
        return f"{share:.0%} of features drifted (threshold {drift_share:.0%})"
    if metadata.get("prediction_drift") and share > 0:
        return (
            f"prediction drift (score {float(metadata['prediction_drift_score']):.3g}) "
            f"with {share:.0%} of features drifted"
        )
    return None


def performance_trigger(metadata: dict) -> str | None:
    drop = metadata.get("accuracy_drop")
    if drop is not None and float(drop) > MAX_ACCURACY_DROP:
        return f"accuracy {float(metadata['accuracy']):.3f} is {float(drop):.3f} below holdout"
    return None


def build_drift_sensor(
    spec: ScenarioSpec,
    job_name: str,
    drift_share: float = 0.5,
    cooldown_seconds: int = COOLDOWN_SECONDS,
) -> dg.SensorDefinition:
    keys = {
        "data_drift": naming.key(spec.name, "data_drift"),
        "model_performance": naming.key(spec.name, "model_performance"),
    }

    @dg.sensor(
        name=f"{spec.name}_drift_retrain_sensor",
        job_name=job_name,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Retrain {spec.model_name} when production data or predictions drift, "
        f"or accuracy on labeled traffic drops more than {MAX_ACCURACY_DROP}.",
    )
    def drift_sensor(
        context: dg.SensorEvaluationContext,
        governance: Governance,
        notifier: Notifier,
        clock: Clock,
    ):
        cursor = json.loads(context.cursor) if context.cursor else {}
        triggers: list[tuple[str, str, str]] = []  # (day, version, why)
        for name, key in keys.items():
            after = cursor.get(name)
            records = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=after),
                limit=100,
                ascending=True,
            ).records
            for record in records:
                meta = {
                    k: getattr(v, "value", v)
                    for k, v in record.asset_materialization.metadata.items()
                }
                why = (
                    drift_trigger(meta, drift_share)
                    if name == "data_drift"
                    else performance_trigger(meta)
                )
                if why:
                    version = str(meta.get("model_version", "?"))
                    triggers.append((record.partition_key or "", version, f"{name}: {why}"))
                cursor[name] = record.storage_id
        if not triggers:
            return dg.SensorResult(
                skip_reason=dg.SkipReason("no new drift or performance drop"),
                cursor=json.dumps(cursor),
            )
        day, version, why = triggers[-1]
        now = clock.now()
        since = now.timestamp() - cursor.get("last_retrain", 0)
        if since < cooldown_seconds:
            reason = f"{why} on {day}, but the last retrain was {since:.0f}s ago (cooldown)"
            return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=json.dumps(cursor))
        paused = governance.paused_reason(now)
        if paused:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"{why}; training automation paused: {paused}"),
                cursor=json.dumps(cursor),
            )
        cursor["last_retrain"] = now.timestamp()
        notifier.notify(
            topic="retrain",
            severity="warning",
            title=f"{spec.model_name}: retraining after drift on {day}",
            text=f"{why}. A retrain was requested; the new challenger will wait for approval.",
            facts={"day": day, "served_version": version, "triggers": len(triggers)},
            audience="data-scientists",
        )
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"retrain-{spec.name}-{day}-v{version}",
                    tags={
                        **naming.scenario_tags(spec.name),
                        "mlops/trigger": "drift",
                        "mlops/drift_day": day,
                        "mlops/reason": why[:200],
                    },
                )
            ],
            cursor=json.dumps(cursor),
        )

    return drift_sensor
