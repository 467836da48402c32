"""Generic endpoint health: latency, error rates, traffic and saturation of the online endpoint.

Each materialization scrapes every worker's /metrics, differences it against
the previous scrape kept in the lake (so rates cover the window between two
looks), adds CPU and memory per worker, and records what breaches the SLO or
would allow a worker fewer. The result is an `EndpointHealth` (plus display
extras); the scaling sensor reads it back typed and never scrapes anything itself.
"""

import json
import time

import dagster as dg

from mlops_assets import naming
from mlops_core.results import EndpointHealth
from mlops_core.spec import ScenarioSpec
from resources.endpoint import EndpointError, OnlineEndpoints
from resources.lake import DataLake


class HealthConfig(dg.Config):
    slo_p99_ms: float = 250.0
    max_5xx_rate: float = 0.01
    max_cpu_percent: float = 85.0
    min_rpm_per_worker: float = 60.0


def build_endpoint_health(spec: ScenarioSpec) -> dg.AssetsDefinition:
    last_scrape = f"monitoring/{spec.name}/endpoint_health/last_scrape.json"

    @dg.asset(
        key=naming.key(spec.name, "endpoint_health"),
        deps=[naming.key(spec.name, "production_deployment")],
        group_name=naming.MONITORING,
        kinds={"starlette"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
    )
    def endpoint_health(
        context: dg.AssetExecutionContext,
        config: HealthConfig,
        lake: DataLake,
        endpoints: OnlineEndpoints,
    ) -> dg.MaterializeResult:
        """p50/p99 latency, 4xx/5xx rates, requests per minute, CPU and memory per worker."""
        from mlops_core.monitoring.health import (
            breaches,
            health_from_metrics,
            latency_from_log,
            underloaded,
        )
        from serving.scoring.inference_log import iter_records

        try:
            info = endpoints.get(spec.online_endpoint)
            texts = endpoints.worker_metrics(spec.online_endpoint)
        except EndpointError as err:
            raise dg.Failure(f"cannot observe {spec.online_endpoint}: {err}") from err
        now = time.time()
        previous = lake.read_json(last_scrape) if lake.exists(last_scrape) else None
        before = previous["texts"] if previous else None
        # the first look has only totals: they cover the workers' uptime
        window = now - (previous["ts"] if previous else info.extra.get("started") or now)
        health = health_from_metrics(before, texts, max(window, 1e-3))
        stats = endpoints.process_stats(spec.online_endpoint)
        if health.get("cpu_percent_per_worker") is None and stats["workers"]:
            health["cpu_percent_per_worker"] = stats["total"]["cpu_percent"] / len(stats["workers"])
        lake.write_json(last_scrape, {"ts": now, "texts": texts})
        # what clients saw today, from the data collector (server-side time per request)
        today = time.strftime("%Y-%m-%d", time.gmtime(now))
        from_log = latency_from_log(iter_records(info.extra["inference_log_dir"], day=today))
        found = breaches(health, config.slo_p99_ms, config.max_5xx_rate, config.max_cpu_percent)
        idle = not found and underloaded(health, config.slo_p99_ms, config.min_rpm_per_worker)
        live = {k: v for k, v in health["deployments"].items() if k}
        worst_p99 = max((r["p99_ms"] or 0.0 for r in live.values()), default=0.0)
        context.log.info(f"{spec.online_endpoint}: {found or 'healthy'}")
        result = EndpointHealth(
            endpoint=spec.online_endpoint,
            workers=info.workers,
            requests_per_minute=health["total"]["requests_per_minute"] or 0.0,
            rate_4xx=health["total"]["rate_4xx"],
            rate_5xx=health["total"]["rate_5xx"],
            p99_ms=worst_p99,
            cpu_percent_per_worker=health.get("cpu_percent_per_worker") or 0.0,
            slo_p99_ms=config.slo_p99_ms,
            breaches=tuple(found),
            underloaded=bool(idle),
        )
        return dg.MaterializeResult(
            metadata={
                **result.to_metadata(),
                # display extras, never read back
                "window_s": round(window, 1),
                "rss_mb": stats["total"]["rss_bytes"] / 2**20,
                "deployments": dg.MetadataValue.json(json.loads(json.dumps(live, default=str))),
                "inference_log_today": dg.MetadataValue.json(
                    json.loads(json.dumps(from_log, default=str))
                ),
            }
        )

    return endpoint_health
