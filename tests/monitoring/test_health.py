"""Endpoint health from the real scoring server's /metrics text and inference log.

Protects: the parser reads what serving/metrics.py writes (escapes, +Inf, unlabelled
lines) and refuses what is not exposition text; deltas between two scrapes give exact
per-deployment counts and 4xx/5xx rates (401s land on deployment ""), totals when there
is no earlier scrape, per-worker scrapes add up and a restarted worker counts from zero;
histogram quantiles match hand-computed Prometheus `histogram_quantile` values; log
latencies match numpy; breaches and scale-in verdicts fire exactly at their thresholds.
Traffic comes from the real app in-process (starlette TestClient): 200s, 400s, 401s, and
500s from a model that raises on an unseen category.
"""

from __future__ import annotations

import math
import warnings
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from mlops_core.monitoring.health import (
    Sample,
    breaches,
    health_from_metrics,
    histogram_quantile,
    latency_from_log,
    parse_prometheus,
    underloaded,
)
from serving.app import create_app
from serving.scoring.inference_log import iter_records
from serving.settings import ServingSettings

with warnings.catch_warnings():  # starlette 1.x prefers httpx2; httpx works the same here
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore:Operation with range is deprecated")
KEY = "health-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _body(carrier: str, x: float = 3.0) -> dict[str, Any]:
    return {"input_data": {"columns": ["carrier", "x"], "data": [[carrier, x]]}}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two scrapes of a real app around known traffic, and its inference-log folder."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    root = tmp_path_factory.mktemp("health")
    frame = pd.DataFrame({"carrier": ["AA", "DL", "UA", "B6"] * 10, "x": np.arange(40.0)})
    encode = ColumnTransformer(
        [("carrier", OneHotEncoder(handle_unknown="error"), ["carrier"])], remainder="passthrough"
    )
    model = Pipeline([("prep", encode), ("clf", LogisticRegression())])
    model.fit(frame, (frame.x > 19).astype(int))
    mlflow.sklearn.save_model(
        model, root / "model", signature=infer_signature(frame, model.predict(frame))
    )
    deployment = {"model_path": str(root / "model"), "model_name": "m", "model_version": "1"}
    settings = ServingSettings.from_dict(
        {
            "endpoint": "health",
            "deployments": {"blue": deployment, "green": deployment},
            "traffic": {"blue": 100, "green": 0},
            "keys": {"primary": KEY},
            "inference_log_dir": str(root / "log"),
        }
    )
    with TestClient(create_app(settings)) as client:

        def send(n: int, body: dict[str, Any], headers: dict[str, str], status: int) -> None:
            for _ in range(n):
                assert client.post("/score", json=body, headers=headers).status_code == status

        send(5, _body("AA"), AUTH, 200)
        send(1, _body("AA"), {}, 401)
        before = client.get("/metrics").text
        send(20, _body("DL"), AUTH, 200)
        send(2, _body("ZZ"), AUTH, 500)  # the encoder has never seen ZZ: the model raises
        send(3, {"input_data": {"columns": ["x"], "data": [[1.0]]}}, AUTH, 400)
        send(2, _body("AA"), {"Authorization": "Bearer wrong"}, 401)
        send(4, _body("UA"), {**AUTH, "azureml-model-deployment": "green"}, 200)
        after = client.get("/metrics").text
    return {"before": before, "after": after, "log_dir": root / "log"}


def test_parse_prometheus_reads_the_servers_text_and_escapes() -> None:
    text = (
        "# HELP m_total A metric.\n# TYPE m_total counter\n"
        'm_total{a="x\\"y\\\\z\\nw",b="2"} 3 1700000000000\n'
        "process_cpu_seconds_total 1.5\n"
        'h_bucket{le="+Inf"} +Inf\n'
        "g NaN\n\n"
    )
    samples = parse_prometheus(text)
    assert samples[0] == Sample("m_total", {"a": 'x"y\\z\nw', "b": "2"}, 3.0)
    assert samples[1] == Sample("process_cpu_seconds_total", {}, 1.5)
    assert samples[2].labels == {"le": "+Inf"} and samples[2].value == math.inf
    assert math.isnan(samples[3].value)
    for bad in ("m{a=1} 2", 'm{a="1"}', "not a sample"):
        with pytest.raises(ValueError, match="not Prometheus text exposition"):
            parse_prometheus(bad)


def test_real_metrics_text_round_trips(served: dict[str, Any]) -> None:
    samples = parse_prometheus(served["after"])
    requests = {
        (s.labels["deployment"], s.labels["status"]): s.value
        for s in samples
        if s.name == "requests_total"
    }
    assert requests == {
        ("", "401"): 3,
        ("blue", "200"): 25,
        ("blue", "400"): 3,
        ("blue", "500"): 2,
        ("green", "200"): 4,
    }
    count = next(
        s.value
        for s in samples
        if s.name == "request_latency_seconds_count" and s.labels == {"deployment": "blue"}
    )
    assert count == 30


def test_health_over_a_window_between_two_scrapes(served: dict[str, Any]) -> None:
    health = health_from_metrics(served["before"], served["after"], seconds=30.0)
    blue, green, refused = (health["deployments"][d] for d in ("blue", "green", ""))
    assert blue["requests"] == 25 and blue["status_counts"] == {"200": 20, "400": 3, "500": 2}
    assert blue["rate_5xx"] == pytest.approx(2 / 25) and blue["rate_4xx"] == pytest.approx(3 / 25)
    assert blue["requests_per_minute"] == pytest.approx(50.0)
    assert green["requests"] == 4 and green["rate_5xx"] == 0.0
    assert refused["status_counts"] == {"401": 2} and refused["p99_ms"] is None
    assert health["total"]["requests"] == 31 and health["total"]["rate_4xx"] == pytest.approx(
        5 / 31
    )
    assert health["workers"] == 1 and health["cpu_percent_per_worker"] >= 0

    # p50/p99 lie in the bucket holding that rank of the window's (differenced) histogram.
    def buckets(text: str) -> dict[float, float]:
        return {
            float(s.labels["le"]): s.value
            for s in parse_prometheus(text)
            if s.name == "request_latency_seconds_bucket" and s.labels["deployment"] == "blue"
        }

    old, new = buckets(served["before"]), buckets(served["after"])
    window = {le: new[le] - old[le] for le in new}
    for label, q in (("p50_ms", 0.5), ("p99_ms", 0.99)):
        upper = min(le for le, n in window.items() if n >= q * 25)
        lower = max((le for le in window if le < upper), default=0.0)
        assert lower * 1000 <= blue[label] <= upper * 1000, (label, blue[label], window)
    assert blue["p50_ms"] <= blue["p99_ms"]

    totals = health_from_metrics(None, served["after"], seconds=60.0)
    assert totals["deployments"]["blue"]["requests"] == 30
    assert totals["deployments"]["blue"]["requests_per_minute"] == pytest.approx(30.0)
    assert totals["cpu_percent_per_worker"] is None


def test_per_worker_scrapes_add_up_and_restarts_count_from_zero(served: dict[str, Any]) -> None:
    before, after = served["before"], served["after"]
    joined = health_from_metrics({"1": before}, {"1": after, "2": before}, seconds=60.0)
    assert joined["workers"] == 2
    assert joined["deployments"]["blue"]["requests"] == 25 + 5  # worker 2 is new: its totals
    restarted = health_from_metrics({"1": after}, {"1": before}, seconds=60.0)
    assert restarted["deployments"]["blue"]["requests"] == 5  # counters went down: a restart


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, {0.1: 10, 0.2: 30, 0.4: 40, math.inf: 40}, 0.15),  # 0.1 + 0.1 * 10/20
        (0.99, {0.1: 10, 0.2: 30, 0.4: 40, math.inf: 40}, 0.392),  # 0.2 + 0.2 * 9.6/10
        (0.5, {0.1: 10, 0.2: 10, 0.4: 10, math.inf: 20}, 0.1),  # rank 10 ends bucket 1
        (0.99, {0.1: 10, 0.2: 10, 0.4: 10, math.inf: 20}, 0.4),  # in +Inf: highest bound
        (0.25, {0.1: 8, math.inf: 8}, 0.025),  # first bucket starts at 0
        (0.9, {0.1: 0, math.inf: 0}, None),  # nothing observed
    ],
)
def test_histogram_quantile_by_hand(
    q: float, buckets: dict[float, float], expected: float | None
) -> None:
    assert histogram_quantile(q, buckets) == pytest.approx(expected)


def test_latency_from_log_matches_numpy(served: dict[str, Any]) -> None:
    records = list(iter_records(served["log_dir"]))
    latency = latency_from_log(records)
    assert set(latency) == {"blue", "green"}  # 400s and 401s never reach a model or the log
    blue = [r for r in records if r["deployment"] == "blue"]
    values = [r["latency_ms"] for r in blue]
    stamps = [datetime.fromisoformat(r["timestamp"]).timestamp() for r in blue]
    row = latency["blue"]
    assert row["count"] == 27 and row["status_counts"] == {"200": 25, "500": 2}
    assert row["rate_5xx"] == pytest.approx(2 / 27)
    assert row["p50_ms"] == pytest.approx(np.percentile(values, 50), abs=1e-3)
    assert row["p99_ms"] == pytest.approx(np.percentile(values, 99), abs=1e-3)
    assert row["requests_per_minute"] == pytest.approx(27 * 60 / (max(stamps) - min(stamps)))
    assert latency_from_log(records[:1])[records[0]["deployment"]]["requests_per_minute"] is None


def _health(p99_ms: float, rate_5xx: float, rpm: float, workers: int, cpu: float | None) -> dict:
    row = {"requests": 100, "rate_5xx": rate_5xx, "p99_ms": p99_ms, "requests_per_minute": rpm}
    return {
        "window_s": 300.0,
        "workers": workers,
        "cpu_percent_per_worker": cpu,
        "deployments": {"blue": row, "": {"requests": 100, "rate_5xx": 0.0, "p99_ms": None}},
        "total": {"requests_per_minute": rpm},
    }


def test_breaches_and_underloaded() -> None:
    limits = {"slo_p99_ms": 250, "max_5xx_rate": 0.01, "max_cpu_percent": 80}
    assert breaches(_health(250, 0.01, 600, 2, 80), **limits) == []  # at the limits is fine
    reasons = breaches(_health(312, 0.031, 600, 2, 95), **limits)
    assert reasons == [
        "deployment blue: p99 latency 312 ms over the 250 ms SLO (100 requests in 300 s)",
        "deployment blue: 5xx rate 3.1% over 1.0% (100 requests in 300 s)",
        "workers saturated: 95% CPU per worker over 80% (2 worker(s))",
    ]
    quiet = _health(900, 0.5, 1, 1, None)
    quiet["deployments"]["blue"]["requests"] = 3  # too few to judge latency or errors
    assert breaches(quiet, **limits) == []

    assert underloaded(_health(100, 0, 20, 2, 5), slo_p99_ms=250, min_rpm_per_worker=60)
    assert not underloaded(_health(100, 0, 20, 1, 5), slo_p99_ms=250, min_rpm_per_worker=60)
    assert not underloaded(_health(130, 0, 20, 2, 5), slo_p99_ms=250, min_rpm_per_worker=60)
    assert not underloaded(_health(100, 0, 120, 2, 5), slo_p99_ms=250, min_rpm_per_worker=60)
    assert not underloaded(_health(100, 0, 20, 2, 50), slo_p99_ms=250, min_rpm_per_worker=60)
