"""Scoring server contract, in process: shapes, keys, reload, routing, mirror, health, metrics.

Responses are compared with what MLflow's own scoring code answers for the same
body (`mlflow.pyfunc.scoring_server.invocations`), so MLflow and Azure ML clients
see the same JSON from us.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from serving.app import create_app
from serving.scoring.inference_log import iter_records
from serving.settings import ServingSettings
from tests.serving.conftest import (
    AUTH,
    COLUMNS,
    MLFLOW_PANDAS_WARNING,
    PRIMARY,
    SECONDARY,
    TestClient,
    rows,
)

pytestmark = pytest.mark.filterwarnings(f"ignore:{MLFLOW_PANDAS_WARNING}")

BODIES: dict[str, Callable[[list[list[Any]]], dict[str, Any]]] = {
    "dataframe_split": lambda r: {
        "dataframe_split": {"columns": COLUMNS, "data": r, "index": list(range(len(r)))}
    },
    "dataframe_records": lambda r: {
        "dataframe_records": [dict(zip(COLUMNS, x, strict=True)) for x in r]
    },
    "instances": lambda r: {"instances": [dict(zip(COLUMNS, x, strict=True)) for x in r]},
    "inputs": lambda r: {"inputs": {c: [x[i] for x in r] for i, c in enumerate(COLUMNS)}},
}


@pytest.fixture(scope="module")
def mlflow_answer(models: dict[str, Path]) -> Callable[[str, dict[str, Any]], Any]:
    """What `mlflow models serve` answers for a body, computed by MLflow's own code."""
    from mlflow.pyfunc import load_model
    from mlflow.pyfunc.scoring_server import invocations

    loaded = {name: load_model(str(path)) for name, path in models.items()}

    def answer(deployment: str, body: dict[str, Any]) -> Any:
        model = loaded[deployment]
        result = invocations(
            json.dumps(body), "application/json", model, model.metadata.get_input_schema()
        )
        assert result.status == 200, result.response
        return json.loads(result.response)

    return answer


def app_client(config: Path) -> TestClient:
    return TestClient(create_app(ServingSettings.from_file(config)))


@pytest.mark.parametrize("fmt", sorted(BODIES))
def test_invocations_answers_like_mlflow(client: TestClient, mlflow_answer, fmt: str) -> None:
    body = BODIES[fmt](rows(5, seed=3))
    response = client.post("/invocations", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == mlflow_answer("blue", body)


def test_score_answers_a_list_like_azure_ml(client: TestClient, mlflow_answer) -> None:
    data = rows(4, seed=5)
    body = {"input_data": {"columns": COLUMNS, "index": [0, 1, 2, 3], "data": data}}
    response = client.post("/score", json=body, headers={**AUTH, "x-request-id": "req-abc"})
    assert response.status_code == 200, response.text
    expected = mlflow_answer("blue", BODIES["dataframe_split"](data))["predictions"]
    assert response.json() == expected
    assert response.headers["azureml-model-deployment"] == "blue"
    assert response.headers["x-request-id"] == "req-abc"
    generated = client.post("/score", json=body, headers=AUTH).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", generated)


def test_optional_column_may_be_null_or_absent(client: TestClient) -> None:
    absent = client.post(
        "/score",
        headers=AUTH,
        json={"input_data": {"columns": COLUMNS[:3], "data": [r[:3] for r in rows(2)]}},
    )
    assert absent.status_code == 200, absent.text
    # Python's json (so MLflow's own client) writes a missing float as NaN.
    body = json.dumps(
        {
            "input_data": {
                "columns": COLUMNS,
                "data": [[1.0, 500, "AA", None], [2.0, 600, "DL", float("nan")]],
            }
        }
    )
    null = client.post("/score", content=body, headers={**AUTH, "content-type": "application/json"})
    assert null.status_code == 200, null.text
    assert len(null.json()) == 2


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Bearer wrong-key", 401),
        (f"Basic {PRIMARY}", 401),
        (PRIMARY, 401),
        (f"Bearer {PRIMARY}", 200),
        (f"Bearer {SECONDARY}", 200),
        (f"bearer {SECONDARY}", 200),
    ],
)
def test_key_auth(client: TestClient, header: str | None, status: int) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.post(
        "/score", json={"input_data": {"columns": COLUMNS, "data": rows(1)}}, headers=headers
    )
    assert response.status_code == status
    if status == 401:
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


def test_key_rotation_by_reload(write_config: Callable[..., Path]) -> None:
    body = {"input_data": {"columns": COLUMNS, "data": rows(1)}}
    with app_client(write_config()) as c:
        blue_model = c.app.state.server.runtime.deployments["blue"].model
        # Step 1: a new secondary key; the primary keeps serving throughout.
        write_config(keys={"primary": PRIMARY, "secondary": "rotated-secondary-1"})
        assert c.post("/-/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401
        reloaded = c.post("/-/reload", headers=AUTH)
        assert reloaded.status_code == 200, reloaded.text
        new = {"Authorization": "Bearer rotated-secondary-1"}
        assert c.post("/score", json=body, headers=new).status_code == 200
        assert (
            c.post(
                "/score", json=body, headers={"Authorization": f"Bearer {SECONDARY}"}
            ).status_code
            == 401
        )
        # Step 2: regenerate the primary while clients use the secondary.
        write_config(keys={"primary": "rotated-primary-2", "secondary": "rotated-secondary-1"})
        assert c.post("/-/reload", headers=new).status_code == 200
        assert c.post("/score", json=body, headers=AUTH).status_code == 401
        assert c.post("/score", json=body, headers=new).status_code == 200
        # Unchanged deployments are carried over, not reloaded from disk.
        assert c.app.state.server.runtime.deployments["blue"].model is blue_model
        # A bad config is refused and the running one keeps serving.
        write_config(keys={"primary": "rotated-primary-2"}, traffic={"blue": 90})
        refused = c.post("/-/reload", headers=new)
        assert refused.status_code == 422
        assert "traffic must sum to 100" in refused.json()["error"]["message"]
        assert c.post("/score", json=body, headers=new).status_code == 200


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


def test_health_needs_no_key(client: TestClient) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["endpoint"] == "classical-online"
    assert {n: (d["model_version"], d["traffic"]) for n, d in body["deployments"].items()} == {
        "blue": ("3", 100),
        "green": ("4", 0),
    }
    assert client.get("/ping").status_code == 200


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
    replay = {**AUTH, "x-request-id": "replay-1", "x-mlops-event-date": "2013-07-15"}
    assert client.post("/score", headers=replay, json=body).status_code == 200
    bad = {**AUTH, "x-mlops-event-date": "2013-13-45"}
    response = client.post("/score", headers=bad, json=body)
    assert response.status_code == 400
    assert "x-mlops-event-date" in response.json()["error"]["message"]
    records = list(iter_records(tmp_path / "inference_log", day="2013-07-15"))
    assert [(r["request_id"], r["event_date"]) for r in records] == [("replay-1", "2013-07-15")]
