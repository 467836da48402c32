"""Infrastructure sensor: scale the online endpoint out on an SLO breach, back in when idle.

Reads the latest `endpoint_health` materialization (latency p99 vs SLO, 5xx
rate, CPU per worker). A breach adds a worker, up to `max_workers`; an
underloaded endpoint gives one back, down to one. Each health result is acted
on once (the cursor is its storage id). Every change is checked against the
persona policy for the monitoring identity, written to the audit trail and
sent to the infrastructure owners.
"""

import dagster as dg

from mlops_assets import naming
from mlops_core.spec import ScenarioSpec
from resources.endpoint import EndpointError, OnlineEndpoints
from resources.governance import Governance
from resources.notify import Notifier


def build_infra_sensor(spec: ScenarioSpec, max_workers: int = 4) -> dg.SensorDefinition:
    key = naming.key(spec.name, "endpoint_health")

    @dg.sensor(
        name=f"{spec.name}_endpoint_scaling_sensor",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Scale {spec.online_endpoint} out on latency/5xx/CPU breaches "
        f"(up to {max_workers} workers) and back in when idle.",
    )
    def infra_sensor(
        context: dg.SensorEvaluationContext,
        endpoints: OnlineEndpoints,
        governance: Governance,
        notifier: Notifier,
    ):
        records = context.instance.fetch_materializations(key, limit=1).records
        if not records or str(records[0].storage_id) == context.cursor:
            return dg.SkipReason("no new endpoint health result")
        record = records[0]
        meta = {k: getattr(v, "value", v) for k, v in record.asset_materialization.metadata.items()}
        cursor = str(record.storage_id)
        workers, found = int(meta["workers"]), list(meta.get("breaches") or [])
        if found:
            target, why = min(workers + 1, max_workers), "; ".join(found)
        elif meta.get("underloaded"):
            target, why = max(workers - 1, 1), f"underloaded: {meta['requests_per_minute']:.0f} rpm"
        else:
            return dg.SensorResult(skip_reason=dg.SkipReason("endpoint healthy"), cursor=cursor)
        if target == workers:
            notifier.notify(
                topic="infra", severity="critical", title=f"{spec.online_endpoint} at its limit",
                text=f"{why}; already at {workers} worker(s) (max {max_workers}).",
                audience="platform-support",
            )  # fmt: skip
            return dg.SensorResult(skip_reason=dg.SkipReason(f"at limit: {why}"), cursor=cursor)
        actor = governance.monitoring_user
        audit, target_id = governance.audit(), f"{spec.online_endpoint}:workers"
        decision = governance.policy().allowed(actor, "scale_endpoint", "prod")
        if not decision.allowed:
            audit.record("scale", actor, target_id, "prod", "denied", decision.reason)
            return dg.SensorResult(skip_reason=dg.SkipReason(decision.reason), cursor=cursor)
        try:
            endpoints.scale(spec.online_endpoint, target)
        except EndpointError as err:
            audit.record("scale", actor, target_id, "prod", "failed", str(err))
            raise
        audit.record(
            "scale", actor, target_id, "prod", "succeeded", reason=why,
            details={"from": workers, "to": target}, persona=decision.persona,
        )  # fmt: skip
        notifier.notify(
            topic="infra",
            severity="warning" if target > workers else "info",
            title=f"{spec.online_endpoint} scaled {'out' if target > workers else 'in'} "
            f"to {target} worker(s)",
            text=why,
            facts={"from": workers, "to": target},
            audience="platform-support",
        )
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"scaled {workers} -> {target}: {why}"), cursor=cursor
        )

    return infra_sensor
