"""The real server process: import isolation, real clients, reload under load, kill -9.

Servers run with `python -m serving` on 127.0.0.1 and a free port; the `serve`
fixture stops each one by PID. Load is bounded (a few threads, about a second).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd
import pytest

from serving.scoring.inference_log import iter_records
from tests.serving.conftest import (
    AUTH,
    COLUMNS,
    MLFLOW_PANDAS_WARNING,
    PRIMARY,
    ROOT,
    Server,
    rows,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings(f"ignore:{MLFLOW_PANDAS_WARNING}"),
]
BODY = {"input_data": {"columns": COLUMNS, "data": rows(2)}}


def test_serving_imports_no_dagster_or_platform_package() -> None:
    check = (
        "import serving.app, serving.__main__, sys; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'dagster', 'mlops_assets', 'resources', 'sensors'}); "
        "assert not bad, bad"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_mlflow_and_azure_ml_clients(
    serve: Callable[[Path], Server], write_config: Callable[..., Path], models: dict[str, Path]
) -> None:
    from mlflow.deployments import PredictionsResponse
    from mlflow.pyfunc import load_model
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient
    from mlflow.utils.proto_json_utils import dump_input_data

    server = serve(write_config(traffic={"blue": 50, "green": 50}))
    host, port = server.url.removeprefix("http://").split(":")
    ScoringServerClient(host, int(port)).wait_server_ready(timeout=30)  # MLflow's /ping probe

    frame = pd.DataFrame(rows(5, seed=11), columns=COLUMNS)
    response = httpx.post(
        f"{server.url}/invocations",
        content=dump_input_data(frame),
        headers={"Content-Type": "application/json", **AUTH},
    )
    assert response.status_code == 200, response.text
    answered = response.headers["azureml-model-deployment"]
    predictions = PredictionsResponse.from_json(response.text).get_predictions("ndarray")
    expected = load_model(str(models[answered])).predict(frame)
    assert predictions.tolist() == expected.tolist()

    # What azure-ai-ml's `online_endpoints.invoke(..., deployment_name="green")` sends.
    azure = httpx.post(
        f"{server.url}/score",
        json=BODY,
        headers={"Content-Type": "application/json", **AUTH, "azureml-model-deployment": "green"},
    )
    assert azure.status_code == 200, azure.text
    assert azure.headers["azureml-model-deployment"] == "green"
    assert isinstance(azure.json(), list) and len(azure.json()) == 2
    metrics = httpx.get(f"{server.url}/metrics").text
    assert f'requests_total{{deployment="{answered}",status="200"}}' in metrics
    assert 'requests_total{deployment="green",status="200"}' in metrics


def _hammer(
    url: str,
    key: str,
    stop: threading.Event,
    out: Counter[int],
    acked: list[str] | None = None,
    prefix: str = "",
) -> None:
    with httpx.Client(timeout=10) as client:
        i = 0
        while not stop.is_set():
            rid = f"{prefix}{i}"
            i += 1
            try:
                response = client.post(
                    f"{url}/score",
                    json=BODY,
                    headers={"Authorization": f"Bearer {key}", "x-request-id": rid},
                )
            except httpx.TransportError:
                out[-1] += 1
                if acked is not None:  # the server is gone (kill -9)
                    return
                continue
            out[response.status_code] += 1
            if acked is not None and response.status_code == 200:
                acked.append(rid)


def test_sighup_reload_rotates_keys_and_traffic_without_failing_requests(
    serve: Callable[[Path], Server], write_config: Callable[..., Path]
) -> None:
    server = serve(write_config())
    stop, statuses = threading.Event(), Counter[int]()
    workers = [
        threading.Thread(target=_hammer, args=(server.url, PRIMARY, stop, statuses))
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    try:
        for step, traffic in enumerate([{"blue": 50, "green": 50}, {"green": 100}, {"blue": 100}]):
            key = f"rotated-secondary-{step}"
            write_config(keys={"primary": PRIMARY, "secondary": key}, traffic=traffic)
            os.kill(server.proc.pid, signal.SIGHUP)
            deadline = time.monotonic() + 20
            while (
                httpx.post(
                    f"{server.url}/score", json=BODY, headers={"Authorization": f"Bearer {key}"}
                ).status_code
                != 200
            ):
                assert time.monotonic() < deadline, "reload did not take effect"
                time.sleep(0.05)
            served = statuses.total()
            while statuses.total() < served + 10:  # load keeps flowing across each reload
                assert time.monotonic() < deadline, f"no traffic after reload: {statuses}"
                time.sleep(0.02)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert statuses[200] >= 30 and set(statuses) == {200}, statuses
    assert httpx.get(f"{server.url}/health", headers=AUTH).json()["reloads"] == 3


def test_kill_9_loses_no_acknowledged_request(
    serve: Callable[[Path], Server], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(traffic={"blue": 50, "green": 50}, mirror_traffic={"green": 20})
    server = serve(config)
    stop, statuses, acked = threading.Event(), Counter[int](), [[] for _ in range(4)]
    workers = [
        threading.Thread(
            target=_hammer, args=(server.url, PRIMARY, stop, statuses, acked[k], f"t{k}-")
        )
        for k in range(4)
    ]
    for worker in workers:
        worker.start()
    # Kill once enough requests were acknowledged; a busy CI box may need longer than 1.5 s.
    deadline = time.monotonic() + 30
    while sum(len(ids) for ids in acked) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # SIGKILL with requests in flight
    stop.set()
    for worker in workers:
        worker.join(timeout=30)
    acknowledged = [rid for ids in acked for rid in ids]
    assert len(acknowledged) > 20, statuses

    restarted = serve(config)  # same log folder; a new process writes a new file
    after = httpx.post(
        f"{restarted.url}/score", json=BODY, headers={**AUTH, "x-request-id": "after-restart"}
    )
    assert after.status_code == 200
    restarted.proc.terminate()
    restarted.proc.wait(timeout=15)

    log_dir = tmp_path / "inference_log"
    live = Counter(r["request_id"] for r in iter_records(log_dir) if not r["mirror"])
    missing = [rid for rid in acknowledged if live[rid] != 1]
    assert not missing, f"{len(missing)} acknowledged requests not logged exactly once"
    assert max(live.values()) == 1  # nothing twice, acknowledged or not
    assert live["after-restart"] == 1
    assert len(list(log_dir.glob("date=*/*.jsonl"))) >= 2  # one file per process
