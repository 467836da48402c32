"""Infrastructure sensor: decide to scale the online endpoint out on an SLO breach, in when idle.

Reads the latest `endpoint_health` result, typed (`EndpointHealth`: p99 vs SLO,
5xx rate, CPU per worker, breaches, underloaded). A breach asks for one worker
more, up to `max_workers`; an underloaded endpoint for one fewer, down to one.
A breach at `max_workers` asks for the same count: the run then tells the
infrastructure owners the endpoint is at its limit.

The sensor only decides: it requests one run of the scenario's endpoint
scaling job per health result (run key `scale-<scenario>-<storage id>`, the
cursor is that storage id), and the run checks the persona policy, scales,
writes the audit record and notifies (`mlops_assets/deployment/endpoint_scaling.py`).
"""

from __future__ import annotations

import dagster as dg

from mlops_core import naming
from mlops_core.results import EndpointHealth, ResultError
from mlops_core.spec import ScenarioSpec

MIN_WORKERS = 1


def scaling_target(health: EndpointHealth, max_workers: int) -> tuple[int, str] | None:
    """(target workers, reason) for one health result, or None when nothing is to be done."""
    if health.breaches:
        return min(health.workers + 1, max_workers), "; ".join(health.breaches)
    if health.underloaded and health.workers > MIN_WORKERS:
        return health.workers - 1, f"underloaded: {health.requests_per_minute:.0f} rpm"
    return None


def build_infra_sensor(spec: ScenarioSpec, max_workers: int = 4) -> dg.SensorDefinition:
    key = dg.AssetKey(naming.key_path(spec.name, "endpoint_health"))
    job_name = naming.endpoint_scaling_job_name(spec.name)
    op_name = f"{spec.name}__endpoint_scaling"

    @dg.sensor(
        name=f"{spec.name}_endpoint_scaling_sensor",
        job_name=job_name,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Watches {spec.name}/endpoint_health. Requests {job_name}: one worker more for "
            f"{spec.online_endpoint} on a breach the health asset found (p99 over the SLO, "
            f"5xx or CPU per worker over their limits: HealthConfig, 250 ms / 1% / 85% by "
            f"default), up to {max_workers} workers; one fewer when idle, down to "
            f"{MIN_WORKERS}. One request per health result."
        ),
    )
    def infra_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        records = context.instance.fetch_materializations(key, limit=1).records
        if not records or str(records[0].storage_id) == context.cursor:
            return dg.SkipReason("no new endpoint health result")
        record = records[0]
        cursor = str(record.storage_id)
        try:
            health = EndpointHealth.from_metadata(record.asset_materialization.metadata)
        except ResultError as err:
            return dg.SensorResult(skip_reason=dg.SkipReason(str(err)), cursor=cursor)
        decision = scaling_target(health, max_workers)
        if decision is None:
            return dg.SensorResult(skip_reason=dg.SkipReason("endpoint healthy"), cursor=cursor)
        target, reason = decision
        config = {
            "target_workers": target,
            "from_workers": health.workers,
            "max_workers": max_workers,
            "reason": reason,
            "health_storage_id": record.storage_id,
        }
        request = dg.RunRequest(
            run_key=f"scale-{spec.name}-{record.storage_id}",
            run_config={"ops": {op_name: {"config": config}}},
            tags={
                "scenario": spec.name,
                "mlops/trigger": "endpoint_health",
                "mlops/reason": reason[:200],
            },
        )
        return dg.SensorResult(run_requests=[request], cursor=cursor)

    return infra_sensor
