"""Request counters, latency histograms and server gauges, exposed with `prometheus_client`.

Families (the names `mlops_core.monitoring.health` and the endpoint tests read):
`requests_total{deployment,status}` (deployment="" when the request failed before a
deployment was chosen, e.g. 401), `request_latency_seconds` histogram per deployment
(time to the response, inference log write included), `mirror_requests_total
{deployment,status}`; then gauges and counters read from the live runtime at scrape
time (`RuntimeCollector`: model info, traffic, batching, inference log) and the
process' CPU, memory and start time (`ProcessCollector`).

Each app owns a `CollectorRegistry`, not the library's global one: several apps in one
process (tests) keep separate counts. Each worker process of a `--reuse-port` endpoint
has its own app, so it serves its own counts on its admin port and the control plane
adds the per-worker scrapes up (no multiprocess mode: a scrape of the shared port would
answer from whichever worker the kernel picked anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from serving.runtime import Runtime

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The body is the classic text format; prometheus_client >= 0.22 names it 1.0.0 by default.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The request instruments of one app, in the app's own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("deployment", "status")
        self.requests = Counter(
            "requests_total",
            "Scoring requests answered, by deployment and HTTP status.",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "request_latency_seconds",
            "Time from request to response, by deployment.",
            ("deployment",),
            registry=self.registry,
            buckets=BUCKETS,
        )
        self.mirror_requests = Counter(
            "mirror_requests_total",
            "Mirrored copies scored (responses discarded), by deployment and status.",
            labels,
            registry=self.registry,
        )
        # Labelled children by (deployment, status): `labels()` costs more than the
        # increment, on every request. Only the event loop thread touches this dict.
        self._series: dict[tuple[str, int], tuple[Counter, Histogram | None]] = {}

    def observe(self, deployment: str, status: int, seconds: float) -> None:
        series = self._series.get((deployment, status))
        if series is None:
            # deployment "": refused before routing, no deployment's latency to speak of
            latency = self.latency.labels(deployment) if deployment else None
            series = (self.requests.labels(deployment, str(status)), latency)
            self._series[(deployment, status)] = series
        series[0].inc()
        if series[1] is not None:
            series[1].observe(seconds)

    def observe_mirror(self, deployment: str, status: int) -> None:
        self.mirror_requests.labels(deployment, str(status)).inc()

    def render(self) -> bytes:
        """The whole exposition text of this app's registry."""
        return generate_latest(self.registry)


class RuntimeCollector(Collector):
    """Scrape-time view of the current runtime: its deployments change on reload, and the
    batcher and log-writer counts live in those objects, so they are read, not mirrored."""

    def __init__(self, runtime: Callable[[], Runtime]) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        runtime = self._runtime()
        deps = sorted(runtime.deployments.values(), key=lambda d: d.name)
        traffic, mirror = runtime.settings.traffic, runtime.settings.mirror_traffic
        info = GaugeMetricFamily(
            "model_info",
            "Model served by each deployment (value is 1).",
            labels=("deployment", "model_name", "model_version"),
        )
        share = GaugeMetricFamily(
            "traffic_percent", "Live traffic share of each deployment.", labels=("deployment",)
        )
        mirrored = GaugeMetricFamily(
            "mirror_traffic_percent",
            "Mirrored traffic share per deployment.",
            labels=("deployment",),
        )
        batches = CounterMetricFamily(
            "model_batches_total", "Model calls (each may batch requests).", labels=("deployment",)
        )
        rows = CounterMetricFamily(
            "model_batch_rows_total", "Rows scored in model calls.", labels=("deployment",)
        )
        for d in deps:
            info.add_metric((d.name, d.settings.model_name, d.settings.model_version), 1)
            share.add_metric((d.name,), traffic.get(d.name, 0))
            mirrored.add_metric((d.name,), mirror.get(d.name, 0))
            batches.add_metric((d.name,), d.batcher.batches)
            rows.add_metric((d.name,), d.batcher.rows)
        yield from (info, share, mirrored, batches, rows)
        writer = runtime.writer
        yield CounterMetricFamily(
            "inference_log_rows_total", "Rows written durably to the log.", writer.rows_written
        )
        yield CounterMetricFamily(
            "inference_log_fsyncs_total", "Group commits (one fsync each).", writer.batches_written
        )
        yield CounterMetricFamily(
            "inference_log_write_errors_total", "Failed log writes.", writer.write_errors
        )


def server_metrics(runtime: Callable[[], Runtime]) -> Metrics:
    """An app's metrics: request instruments, the runtime's gauges, process CPU and memory."""
    metrics = Metrics()
    metrics.registry.register(RuntimeCollector(runtime))
    # Reads /proc (Linux, as the fdatasync'ing inference log already requires).
    ProcessCollector(registry=metrics.registry)
    return metrics
