"""Endpoint health from the scoring server's own signals: /metrics scrapes and the inference log.

Pure functions, no Dagster and no I/O, so a sensor can call them cheaply and tests can
hand-check them. `prometheus_client` parses the text; the PromQL-style arithmetic is
here. What they read is what `serving/metrics.py` exports:
`requests_total{deployment,status}` (deployment="" for requests refused before a
deployment was chosen, e.g. 401), `request_latency_seconds_{bucket,sum,count}` per
deployment, and `process_cpu_seconds_total` per process.

A scrape is one text, or a mapping of worker id to text when an endpoint runs several
worker processes behind one port (`OnlineEndpoints.worker_metrics`): the shared port
answers from whichever worker the kernel picked, so only per-worker scrapes add up.
Counters are differenced per worker and then summed; a counter that went down (the
worker restarted) counts from zero, as Prometheus' `increase()` does. Quantiles are
estimated from the differenced histogram by linear interpolation inside the bucket,
as `histogram_quantile()` does, so they are only as fine as the buckets.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Scrape = str | Mapping[str, str]


@dataclass(frozen=True)
class Sample:
    """One exposition line: `name{labels} value`."""

    name: str
    labels: dict[str, str]
    value: float


def parse_prometheus(text: str) -> list[Sample]:
    """Samples of a Prometheus text exposition, in text order (`prometheus_client`'s parser).

    Counter samples are named with their `_total` suffix, as the server writes them; a
    timestamp is dropped (a scrape is one instant). `ValueError` when it is not the format.
    """
    try:
        return [
            Sample(s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
    except ValueError as exc:  # the parser says what it choked on, not where
        raise ValueError(f"metrics text is not Prometheus text exposition: {exc}") from exc


def _as_workers(scrape: Scrape) -> dict[str, list[Sample]]:
    texts = {"": scrape} if isinstance(scrape, str) else dict(scrape)
    return {worker: parse_prometheus(text) for worker, text in texts.items()}


def _key(sample: Sample) -> tuple[str, tuple[tuple[str, str], ...]]:
    return sample.name, tuple(sorted(sample.labels.items()))


def _increase(before: Scrape | None, after: Scrape) -> list[Sample]:
    """Per-worker counter increases over the window, one sample per worker and series."""
    old = _as_workers(before) if before is not None else {}
    out = []
    for worker, samples in _as_workers(after).items():
        previous = {_key(s): s.value for s in old.get(worker, [])}
        for s in samples:
            start = previous.get(_key(s), 0.0)
            out.append(Sample(s.name, s.labels, s.value - start if s.value >= start else s.value))
    return out


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Quantile `q` from cumulative bucket counts {upper bound: count}, +Inf included.

    Linear interpolation inside the bucket holding the rank, with 0 as the lower edge of
    the first bucket; a rank in the +Inf bucket answers the highest finite bound. None
    when nothing was observed.
    """
    bounds = sorted(buckets)
    if not bounds or bounds[-1] != math.inf:
        raise ValueError("a histogram needs its +Inf bucket")
    counts, running = [], 0.0
    for bound in bounds:  # enforce monotonic counts (scrapes of a moving histogram)
        running = max(running, buckets[bound])
        counts.append(running)
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    i = next(k for k, count in enumerate(counts) if count >= rank)
    if bounds[i] == math.inf:
        return bounds[-2] if len(bounds) > 1 else None
    lower, below = (0.0, 0.0) if i == 0 else (bounds[i - 1], counts[i - 1])
    if counts[i] == below:
        return bounds[i]
    return lower + (bounds[i] - lower) * (rank - below) / (counts[i] - below)


def _rates(requests: int, statuses: Mapping[int, int], seconds: float) -> dict[str, Any]:
    errors_4xx = sum(n for s, n in statuses.items() if 400 <= s < 500)
    errors_5xx = sum(n for s, n in statuses.items() if s >= 500)
    return {
        "requests": requests,
        "rate_4xx": errors_4xx / requests if requests else 0.0,
        "rate_5xx": errors_5xx / requests if requests else 0.0,
        "requests_per_minute": requests * 60.0 / seconds if seconds > 0 else None,
        "status_counts": {str(s): n for s, n in sorted(statuses.items())},
    }


def health_from_metrics(before: Scrape | None, after: Scrape, seconds: float) -> dict[str, Any]:
    """Traffic, error rates and latency per deployment between two scrapes `seconds` apart.

    With `before` None the counters are totals, so pass the time they cover (uptime).
    Returns {"window_s", "workers", "cpu_percent_per_worker", "deployments": {name:
    {requests, rate_4xx, rate_5xx, requests_per_minute, status_counts, p50_ms, p99_ms}},
    "total": {...the same over all deployments, latency excluded}}. The deployment ""
    holds requests refused before routing (401 and the like). CPU is the mean over
    workers in percent of one core (None without `before`).
    """
    samples = _increase(before, after)
    statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    cpu_seconds = 0.0
    for s in samples:
        if s.name == "requests_total":
            statuses[s.labels.get("deployment", "")][int(s.labels["status"])] += int(s.value)
        elif s.name == "request_latency_seconds_bucket":
            buckets[s.labels.get("deployment", "")][float(s.labels["le"])] += s.value
        elif s.name == "process_cpu_seconds_total":
            cpu_seconds += s.value
    deployments = {}
    for name in sorted(set(statuses) | set(buckets)):
        counts = statuses.get(name, {})
        row = _rates(sum(counts.values()), counts, seconds)
        for label, q in (("p50_ms", 0.5), ("p99_ms", 0.99)):
            value = histogram_quantile(q, buckets[name]) if name in buckets else None
            row[label] = round(value * 1000, 3) if value is not None else None
        deployments[name] = row
    overall: dict[int, int] = defaultdict(int)
    for counts in statuses.values():
        for status, n in counts.items():
            overall[status] += n
    workers = len(_as_workers(after))
    return {
        "window_s": seconds,
        "workers": workers,
        "cpu_percent_per_worker": (
            round(100.0 * cpu_seconds / seconds / workers, 1)
            if before is not None and seconds > 0
            else None
        ),
        "deployments": deployments,
        "total": _rates(sum(overall.values()), overall, seconds),
    }


def _quantile(values: list[float], q: float) -> float:
    """Exact quantile of sorted values, linear between closest ranks (numpy's default)."""
    position = q * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def latency_from_log(records: Iterable[Mapping[str, Any]], mirror: bool = False) -> dict[str, Any]:
    """Per deployment from inference-log rows: count, error rates, p50/p99 latency_ms and
    requests per minute over the rows' own time span (None for fewer than two rows).

    Mirrored copies are left out unless `mirror`; their latency is not what clients saw.
    """
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    stamps: dict[str, list[float]] = defaultdict(list)
    for record in records:
        if bool(record.get("mirror")) != mirror:
            continue
        name = record.get("deployment") or ""
        statuses[name][int(record["status"])] += 1
        if record.get("latency_ms") is not None:
            latencies[name].append(float(record["latency_ms"]))
        stamps[name].append(datetime.fromisoformat(record["timestamp"]).timestamp())
    out = {}
    for name in sorted(statuses):
        values, times = sorted(latencies[name]), stamps[name]
        count = sum(statuses[name].values())
        span = max(times) - min(times)
        row = _rates(count, statuses[name], span)
        if count < 2 or span <= 0:
            row["requests_per_minute"] = None
        row["count"] = row.pop("requests")
        row["p50_ms"] = round(_quantile(values, 0.5), 3) if values else None
        row["p99_ms"] = round(_quantile(values, 0.99), 3) if values else None
        out[name] = row
    return out


def breaches(
    health: Mapping[str, Any],
    slo_p99_ms: float,
    max_5xx_rate: float,
    max_cpu_percent: float,
    min_requests: int = 10,
) -> list[str]:
    """Why the endpoint needs attention (more workers, a look at errors); [] when healthy.

    Latency and error rates of a deployment count once it served `min_requests` in the
    window (a few requests make a noisy p99). CPU is per worker, percent of one core.
    """
    reasons = []
    window = health.get("window_s")
    for name, row in health.get("deployments", {}).items():
        if not name or row["requests"] < min_requests:
            continue
        seen = f"{row['requests']} requests" + (f" in {window:g} s" if window else "")
        p99 = row.get("p99_ms")
        if p99 is not None and p99 > slo_p99_ms:
            reasons.append(
                f"deployment {name}: p99 latency {p99:.0f} ms over the {slo_p99_ms:g} ms SLO "
                f"({seen})"
            )
        if row["rate_5xx"] > max_5xx_rate:
            reasons.append(
                f"deployment {name}: 5xx rate {row['rate_5xx']:.1%} over {max_5xx_rate:.1%} "
                f"({seen})"
            )
    cpu = health.get("cpu_percent_per_worker")
    if cpu is not None and cpu > max_cpu_percent:
        reasons.append(
            f"workers saturated: {cpu:.0f}% CPU per worker over {max_cpu_percent:g}% "
            f"({health.get('workers', 1)} worker(s))"
        )
    return reasons


def underloaded(
    health: Mapping[str, Any],
    slo_p99_ms: float,
    min_rpm_per_worker: float,
    latency_headroom: float = 0.5,
    max_cpu_percent: float = 30.0,
) -> bool:
    """Whether one worker fewer would do: more than one worker, each taking fewer than
    `min_rpm_per_worker` requests a minute, every deployment's p99 under
    `latency_headroom` x the SLO, and CPU per worker (when known) under `max_cpu_percent`.
    """
    workers = int(health.get("workers", 1))
    rpm = health.get("total", {}).get("requests_per_minute")
    if workers <= 1 or rpm is None or rpm / workers >= min_rpm_per_worker:
        return False
    cpu = health.get("cpu_percent_per_worker")
    if cpu is not None and cpu >= max_cpu_percent:
        return False
    return all(
        row.get("p99_ms") is None or row["p99_ms"] < latency_headroom * slo_p99_ms
        for name, row in health.get("deployments", {}).items()
        if name
    )
