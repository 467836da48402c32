"""Launching runs the way the Dagster daemon would, so a daemon started later agrees.

The demo evaluates sensors in-process (no daemon yet) and launches what they request.
Each launched run carries the tags the daemon itself writes (`dagster/sensor_name`,
`dagster/run_key`): a daemon started afterwards (`make dev`) looks runs up by exactly
those tags, finds the request already served and skips it, so one event never
launches two runs, whoever evaluated the sensor first.
"""

from __future__ import annotations

import time

import dagster as dg

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def as_launched_by(sensor: dg.SensorDefinition, request: dg.RunRequest) -> dict[str, str]:
    """The tags the daemon puts on a run it launches for `request`: with them, a daemon
    started later (`make dev`) finds the run under the sensor's run key and never
    launches the same event a second time."""
    return {
        **request.tags,
        "dagster/sensor_name": sensor.name,
        "dagster/run_key": request.run_key or "",
    }


def run_job(defs: dg.Definitions, job: str, instance, run_config=None, **kwargs):
    started = time.monotonic()
    config = {**QUIET, **(run_config or {})}
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, raise_on_error=False, run_config=config, **kwargs
    )
    status = "succeeded" if result.success else "FAILED"
    print(f"   {job}: {status} in {time.monotonic() - started:.1f}s (run {result.run_id[:8]})")
    return result


def tick(
    defs: dg.Definitions,
    sensor_name: str,
    instance: dg.DagsterInstance,
    resources: dict,
    run_config: dict | None = None,
) -> list[tuple[dg.RunRequest, dg.ExecuteInProcessResult]]:
    """Evaluate a sensor once and run each request it makes, tagged as the daemon would; a
    request whose run key this sensor already served (by the demo or a daemon) is skipped,
    as the daemon skips it. `run_config` adds to the requests' own (e.g. smaller training)."""
    sensor = defs.resolve_sensor_def(sensor_name)
    needed = {k: resources[k] for k in sensor.required_resource_keys}
    with dg.build_sensor_context(instance=instance, resources=needed) as ctx:
        requests = getattr(sensor(ctx), "run_requests", None) or []
    launched = []
    for request in requests:
        tags = as_launched_by(sensor, request)
        served = instance.get_run_records(
            dg.RunsFilter(tags={k: tags[k] for k in ("dagster/sensor_name", "dagster/run_key")}),
            limit=1,
        )
        if served:
            run_id = served[0].dagster_run.run_id
            print(f"   run key {request.run_key} already served by run {run_id[:8]}")
            continue
        print(f"   sensor requested run_key {request.run_key}")
        result = run_job(
            defs,
            request.job_name or sensor.job_name,
            instance,
            run_config={**(request.run_config or {}), **(run_config or {})},
            tags=tags,
        )
        launched.append((request, result))
    return launched
