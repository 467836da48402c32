"""Scoring server routing and records, in process: traffic split, pinning, mirror, logs, metrics.

Protects: a weighted split honours its percentages and keeps a request id on one deployment;
a pinned deployment header wins (an unknown one is a 404); mirrored traffic is scored, logged
and discarded; every scored request is an inference-log row; /metrics is valid Prometheus
text with the counts the requests imply; a replay's event-date header files it by its day
(who may send it, and which days: `test_serving_trust.py`).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from serving.scoring.inference_log import iter_records
from tests.serving.conftest import (
    AUTH,
    COLUMNS,
    MLFLOW_PANDAS_WARNING,
    REPLAY,
    TestClient,
    app_client,
    rows,
)

pytestmark = pytest.mark.filterwarnings(f"ignore:{MLFLOW_PANDAS_WARNING}")


def test_traffic_split_and_pinning(write_config: Callable[..., Path]) -> None:
    body = {"input_data": {"columns": COLUMNS, "data": rows(1)}}
    with app_client(write_config(traffic={"blue": 70, "green": 30})) as c:
        served = Counter(
            c.post("/score", json=body, headers={**AUTH, "x-request-id": f"split-{i}"}).headers[
                "azureml-model-deployment"
            ]
            for i in range(300)
        )
        assert 170 <= served["blue"] <= 250 and served["blue"] + served["green"] == 300
        again = c.post("/score", json=body, headers={**AUTH, "x-request-id": "split-7"})
        first = c.post("/score", json=body, headers={**AUTH, "x-request-id": "split-7"})
        assert (
            again.headers["azureml-model-deployment"] == first.headers["azureml-model-deployment"]
        )
    with app_client(write_config(traffic={"blue": 100, "green": 0})) as c:
        pinned = c.post("/score", json=body, headers={**AUTH, "azureml-model-deployment": "green"})
        assert pinned.status_code == 200
        assert pinned.headers["azureml-model-deployment"] == "green"
        unknown = c.post("/score", json=body, headers={**AUTH, "azureml-model-deployment": "red"})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "deployment_not_found"
        assert "'red'" in unknown.json()["error"]["message"]


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_mirror_traffic_is_scored_logged_and_discarded(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(traffic={"blue": 100}, mirror_traffic={"green": 100})
    log_dir = tmp_path / "inference_log"
    body = {"input_data": {"columns": COLUMNS, "data": rows(2)}}
    with app_client(config) as c:
        ids = [f"mirror-{i}" for i in range(5)]
        for rid in ids:
            response = c.post("/score", json=body, headers={**AUTH, "x-request-id": rid})
            assert response.headers["azureml-model-deployment"] == "blue"
        c.post(
            "/score",
            json=body,
            headers={**AUTH, "azureml-model-deployment": "blue", "x-request-id": "pinned"},
        )
        _wait_for(lambda: sum(r["mirror"] for r in iter_records(log_dir)) == 5)
        metrics = c.get("/metrics").text
    records = list(iter_records(log_dir))
    mirrored = {r["request_id"]: r for r in records if r["mirror"]}
    assert sorted(mirrored) == ids  # a pinned request is not mirrored
    assert {r["deployment"] for r in mirrored.values()} == {"green"}
    assert all(r["status"] == 200 and len(r["outputs"]) == 2 for r in mirrored.values())
    assert 'mirror_requests_total{deployment="green",status="200"} 5.0' in metrics


def test_inference_log_rows(client: TestClient, tmp_path: Path) -> None:
    data = rows(3, seed=9)
    answers = {}
    for rid in ("log-1", "log-2"):
        response = client.post(
            "/score",
            headers={**AUTH, "x-request-id": rid},
            json={"input_data": {"columns": COLUMNS, "data": data}},
        )
        answers[rid] = response.json()
    client.post(
        "/invocations",
        headers={**AUTH, "x-request-id": "log-3"},
        json={"dataframe_records": [dict(zip(COLUMNS, r, strict=True)) for r in data]},
    )
    records = list(iter_records(tmp_path / "inference_log"))
    assert Counter(r["request_id"] for r in records) == {"log-1": 1, "log-2": 1, "log-3": 1}
    row = next(r for r in records if r["request_id"] == "log-1")
    assert row["outputs"] == answers["log-1"]
    assert row["inputs"] == {"columns": COLUMNS, "data": data}
    assert (
        row["endpoint"],
        row["deployment"],
        row["model_name"],
        row["model_version"],
        row["status"],
        row["mirror"],
    ) == ("classical-online", "blue", "flights", "3", 200, False)
    assert row["timestamp"].endswith("+00:00") and row["latency_ms"] > 0
    records_row = next(r for r in records if r["request_id"] == "log-3")
    assert [list(x) for x in records_row["inputs"]["data"]] == data


_SAMPLE = re.compile(r'^([a-z_]+)(\{(?:[a-z_]+="[^"]*",?)*\})? (-?[\d.]+(?:e[+-]\d+)?|\+Inf)$')


def test_metrics_prometheus_text(client: TestClient) -> None:
    body = {"input_data": {"columns": COLUMNS, "data": rows(1)}}
    for _ in range(3):
        client.post("/score", json=body, headers=AUTH)
    client.post("/score", json=body)  # 401, before any deployment is chosen
    client.post("/score", json={"input_data": {"columns": ["x"], "data": [[1]]}}, headers=AUTH)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    typed, samples = set(), {}
    for line in response.text.splitlines():
        if line.startswith("# TYPE"):
            typed.add(line.split()[2])
        elif not line.startswith("# HELP"):
            match = _SAMPLE.match(line)
            assert match, f"not exposition format: {line!r}"
            base = re.sub(r"_(bucket|sum|count)$", "", match[1])
            assert base in typed, f"{match[1]} has no TYPE line before it"
            samples[match[1] + (match[2] or "")] = float(match[3])
    assert samples['requests_total{deployment="blue",status="200"}'] == 3
    assert samples['requests_total{deployment="blue",status="400"}'] == 1
    assert samples['requests_total{deployment="",status="401"}'] == 1
    buckets = [
        v
        for k, v in samples.items()
        if k.startswith('request_latency_seconds_bucket{deployment="blue"')
    ]
    assert buckets == sorted(buckets) and buckets[-1] == 4
    assert samples['request_latency_seconds_count{deployment="blue"}'] == 4
    assert samples['model_info{deployment="green",model_name="flights",model_version="4"}'] == 1
    assert samples["inference_log_rows_total"] == 3
    assert samples['traffic_percent{deployment="blue"}'] == 100
    assert samples['model_batch_rows_total{deployment="blue"}'] == 3
    assert samples["process_cpu_seconds_total"] > 0 and samples["process_resident_memory_bytes"] > 0


def test_event_date_header_files_replayed_traffic_by_its_day(
    client: TestClient, tmp_path: Path
) -> None:
    body = {"input_data": {"columns": COLUMNS, "data": rows(2, seed=4)}}
    replay = {
        **AUTH,
        "x-request-id": "replay-1",
        "x-mlops-event-date": "2013-07-15",
        "x-mlops-replay-key": REPLAY,
    }
    assert client.post("/score", headers=replay, json=body).status_code == 200
    bad = {**replay, "x-mlops-event-date": "2013-13-45"}
    response = client.post("/score", headers=bad, json=body)
    assert response.status_code == 400
    assert "x-mlops-event-date" in response.json()["error"]["message"]
    records = list(iter_records(tmp_path / "inference_log", day="2013-07-15"))
    assert [(r["request_id"], r["event_date"]) for r in records] == [("replay-1", "2013-07-15")]
