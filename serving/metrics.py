"""Request counters and latency histograms, rendered in the Prometheus text format.

Hand-written (text exposition format 0.0.4) to keep the server's dependencies
small. All updates happen on the event loop thread, so plain dicts and ints
need no locks.

Families: `requests_total{deployment,status}` (deployment="" when the request
failed before a deployment was chosen, e.g. 401), `request_latency_seconds`
histogram per deployment (time to the response, inference log write included),
`mirror_requests_total{deployment,status}`; the app adds gauges (model info,
traffic, batching and inference-log counters, process CPU and memory).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Sample = tuple[Mapping[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    """Lines of one metric family: HELP, TYPE and its samples."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples]
    return lines


class Histogram:
    """Cumulative-bucket latency histogram (seconds)."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last slot is +Inf
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sum += seconds

    def lines(self, name: str, labels: Mapping[str, str]) -> list[str]:
        out, running = [], 0
        for bound, count in zip((*map(_number, BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            out.append(f"{name}_bucket{_labels({**labels, 'le': bound})} {running}")
        out.append(f"{name}_sum{_labels(labels)} {_number(self.sum)}")
        out.append(f"{name}_count{_labels(labels)} {running}")
        return out


class Metrics:
    """Counters of scoring requests, per deployment and HTTP status."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.mirror_requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, Histogram] = {}

    def observe(self, deployment: str, status: int, seconds: float) -> None:
        key = (deployment, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        if deployment:
            histogram = self.latency.get(deployment)
            if histogram is None:
                histogram = self.latency[deployment] = Histogram()
            histogram.observe(seconds)

    def observe_mirror(self, deployment: str, status: int) -> None:
        key = (deployment, status)
        self.mirror_requests[key] = self.mirror_requests.get(key, 0) + 1

    def render(self, extra: Iterable[list[str]] = ()) -> str:
        """The whole exposition text: these families, then `extra` ones."""

        def counts(table: dict[tuple[str, int], int]) -> list[Sample]:
            return [({"deployment": d, "status": str(s)}, n) for (d, s), n in sorted(table.items())]

        lines = family(
            "requests_total",
            "counter",
            "Scoring requests answered, by deployment and HTTP status.",
            counts(self.requests),
        )
        lines += [
            "# HELP request_latency_seconds Time from request to response, by deployment.",
            "# TYPE request_latency_seconds histogram",
        ]
        for deployment, histogram in sorted(self.latency.items()):
            lines += histogram.lines("request_latency_seconds", {"deployment": deployment})
        lines += family(
            "mirror_requests_total",
            "counter",
            "Mirrored copies scored (responses discarded), by deployment and status.",
            counts(self.mirror_requests),
        )
        for block in extra:
            lines += block
        return "\n".join(lines) + "\n"
