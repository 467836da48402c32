"""Scoring server for text models: answers, truncation, log, batching, mirror, health.

Protects: both request shapes (/score `input_data`, /invocations `dataframe_split` and
`dataframe_records`) answer {label, probability} per text, what the model's own pyfunc
`predict` answers, the empty string included; a text over `max_chars` is truncated and
answered, its log row holding the truncated text and the length as sent; the log row's
`inputs` carry the contract's columns (text, chars, tokens, oov_rate, emb_*) from the same
model call, while the client gets the answers only; concurrent requests batched into one
model call each get their own answers and log rows; a mirror logs its own model's columns;
`/health` describes the text input; `mlflow models serve` answers the same model the same
way. The models are `tests/serving/text_model.py` (real
MLflow pyfuncs logged with `mlflow.pyfunc.log_model`, no torch).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.batching import MicroBatcher
from serving.scoring.inference_log import iter_records
from serving.scoring.model import ServedModel
from serving.scoring.parsing import parse_azureml
from serving.scoring.text_model import split_scores
from tests.processes import stop_group
from tests.serving.conftest import (
    AUTH,
    MLFLOW_PANDAS_WARNING,
    ROOT,
    TestClient,
    app_client,
    free_port,
)
from tests.serving.texts.cases import (
    DIMS,
    JSON,
    LABELS,
    LONG,
    MAX_CHARS,
    MAX_TEXTS,
    SHAPES,
    TEXTS,
    score_split,
    text_config,
    wait_for,
)

pytestmark = pytest.mark.filterwarnings(f"ignore:{MLFLOW_PANDAS_WARNING}")
COLUMNS = ["text", "chars", "tokens", "oov_rate", *(f"emb_{i}" for i in range(DIMS))]


def expected_rows(scored: Callable[..., Any], name: str, sent: list[str], limit: int) -> list:
    """The log rows the server must write: what `score_texts` says of the truncated texts."""
    truncated = [t[:limit] for t in sent]
    _, monitor = scored(name, truncated)
    names = [c for c in monitor if c in ("tokens", "oov_rate") or c.startswith("emb_")]
    values = [[float(v) if c != "tokens" else int(v) for v in monitor[c]] for c in names]
    return [[t, len(s), *row] for t, s, *row in zip(truncated, sent, *values, strict=True)]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_request_shape_answers_label_and_probability_per_text(
    texts: TestClient, pyfunc_answer: Callable[[list[str]], list[Any]], shape: str
) -> None:
    path, build = SHAPES[shape]
    response = texts.post(path, json=build(TEXTS), headers=AUTH)
    assert response.status_code == 200, response.text
    answer = response.json() if path == "/score" else response.json()["predictions"]
    assert answer == pyfunc_answer(TEXTS)
    assert [a["label"] for a in answer] == LABELS
    assert all(set(a) == {"label", "probability"} for a in answer)  # no monitoring values
    assert answer[2]["probability"] == 0.5  # the empty string is answered, undecided
    assert response.headers["azureml-model-deployment"] == "kw"


def test_long_text_is_truncated_answered_and_logged_with_its_length(
    texts_config: Callable[..., Path],
    tmp_path: Path,
    pyfunc_answer: Callable[[list[str]], list[Any]],
    scored: Callable[..., Any],
) -> None:
    assert len(LONG) > MAX_CHARS and pyfunc_answer([LONG])[0]["label"] == "fresh"
    with app_client(texts_config()) as client:
        body = score_split([LONG, "fine"])
        response = client.post("/score", json=body, headers={**AUTH, "x-request-id": "long-1"})
    assert response.status_code == 200, response.text
    assert response.json() == pyfunc_answer([LONG[:MAX_CHARS], "fine"])
    assert response.json()[0]["label"] == "rotten"  # the model saw the first 64 characters
    (row,) = iter_records(tmp_path / "inference_log")
    assert row["request_id"] == "long-1" and row["status"] == 200
    assert row["inputs"]["columns"] == COLUMNS
    logged = row["inputs"]["data"]
    assert logged[0][:4] == [LONG[:MAX_CHARS], len(LONG), 8, 0.125]  # "grea" is unknown
    assert logged == expected_rows(scored, "kw", [LONG, "fine"], MAX_CHARS)


@pytest.mark.parametrize("path", ["/score", "/invocations"])
def test_log_row_carries_the_contract_columns_and_the_answers(
    texts_config: Callable[..., Path], tmp_path: Path, scored: Callable[..., Any], path: str
) -> None:
    build = SHAPES["score_input_data_split" if path == "/score" else "invocations_dataframe_split"]
    with app_client(texts_config()) as client:
        response = client.post(path, json=build[1](TEXTS), headers=AUTH)
    assert response.status_code == 200, response.text
    (row,) = iter_records(tmp_path / "inference_log")
    assert row["inputs"]["columns"] == COLUMNS
    assert row["inputs"]["data"] == expected_rows(scored, "kw", TEXTS, MAX_CHARS)
    answers = response.json() if path == "/score" else response.json()["predictions"]
    assert row["outputs"] == answers
    assert row["inputs"]["data"][2][:4] == ["", 0, 0, 0.0]  # no words: oov_rate 0.0


def test_served_model_batches_like_single_calls(text_models: dict[str, Path]) -> None:
    model = ServedModel(text_models["kw"])
    requests = [[LONG], ["a great film", ""], TEXTS]
    batches = [model.decode_texts(parse_azureml(score_split(t))) for t in requests]
    inputs = [({"text": b.array}, len(b.texts)) for b in batches]
    singles = [model.predict(a, n) for a, n in inputs]
    assert model.predict_arrays(inputs) == singles

    async def run() -> tuple[list[Any], int]:
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(model, executor, max_rows=100)
            results = await asyncio.gather(*(batcher.predict(a, n) for a, n in inputs))
            return results, batcher.batches

    results, calls = asyncio.run(run())
    assert calls == 1 and results == singles  # one model call, split back per request
    answers, monitor = split_scores(results[1])
    assert [a["label"] for a in answers] == ["fresh", "fresh"] and len(monitor[0]) == 2 + DIMS


def test_concurrent_requests_are_batched_and_each_gets_its_own_answers(
    texts_config: Callable[..., Path],
    tmp_path: Path,
    pyfunc_answer: Callable[[list[str]], list[Any]],
    scored: Callable[..., Any],
) -> None:
    """The slow model (0.3 s a call) keeps the first request busy while the others queue."""
    requests = {f"req-{i}": [f"great film number {i}", "dull " * i, TEXTS[i % 4]] for i in range(6)}
    start = threading.Barrier(len(requests))
    with app_client(texts_config(traffic={"slow": 100})) as client:

        def send(request_id: str) -> Any:
            start.wait()
            body = score_split(requests[request_id])
            return client.post("/score", json=body, headers={**AUTH, "x-request-id": request_id})

        with ThreadPoolExecutor(len(requests)) as pool:
            responses = dict(zip(requests, pool.map(send, requests), strict=True))
        metrics = client.get("/metrics").text
    for request_id, response in responses.items():
        assert response.status_code == 200, response.text
        assert response.json() == pyfunc_answer(requests[request_id])
    batches = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith('model_batches_total{deployment="slow"}')
    )
    assert batches < len(requests), metrics
    rows = {r["request_id"]: r for r in iter_records(tmp_path / "inference_log")}
    for request_id, sent in requests.items():
        expected = expected_rows(scored, "slow", sent, MAX_CHARS)
        assert rows[request_id]["inputs"]["data"] == expected
        assert rows[request_id]["outputs"] == responses[request_id].json()


def test_mirrors_log_their_own_model_columns(
    texts_config: Callable[..., Path],
    text_models: dict[str, Path],
    tmp_path: Path,
    scored: Callable[..., Any],
) -> None:
    log_dir = tmp_path / "inference_log"
    deployments = text_config(tmp_path, {**text_models, "twin": text_models["kw"]})
    config = texts_config(
        deployments=deployments["deployments"],
        mirror_traffic={"wide": 100, "twin": 100},  # twin: same spec, reuses the live texts
    )
    sent = [LONG, "a great film"]
    with app_client(config) as client:
        for i in range(2):
            response = client.post(
                "/invocations",
                json={"dataframe_records": [{"text": t} for t in sent]},
                headers={**AUTH, "x-request-id": f"mirror-{i}"},
            )
            assert response.status_code == 200, response.text
        wait_for(lambda: sum(r["mirror"] for r in iter_records(log_dir)) == 4)
        metrics = client.get("/metrics").text
    rows = list(iter_records(log_dir))
    live = {r["request_id"]: r for r in rows if not r["mirror"]}
    for row in (r for r in rows if r["mirror"]):
        assert row["status"] == 200 and len(row["outputs"]) == 2, row
        if row["deployment"] == "twin":
            assert row["inputs"] == live[row["request_id"]]["inputs"]
            assert row["outputs"] == live[row["request_id"]]["outputs"]
        else:  # wide: 2000 characters and three embedding dimensions
            assert row["inputs"]["columns"] == [*COLUMNS[:4], "emb_0", "emb_1", "emb_2"]
            assert row["inputs"]["data"] == expected_rows(scored, "wide", sent, 2000)
            assert row["outputs"][0]["label"] == "fresh"  # the whole text: ten "great"
    for name in ("wide", "twin"):
        assert f'mirror_requests_total{{deployment="{name}",status="200"}} 2.0' in metrics


def test_health_describes_the_text_input(texts: TestClient) -> None:
    described = texts.get("/health", headers=AUTH).json()["deployments"]
    assert described["kw"]["input_kind"] == "text"
    assert described["kw"]["predict_fn"] == "score_texts"
    assert described["kw"]["classes"] == ["fresh", "rotten"]
    assert described["kw"]["outputs"] == ["predictions"]
    assert described["kw"]["text"] == {
        "column": "text",
        "max_chars": MAX_CHARS,
        "max_length": 16,
        "max_texts": MAX_TEXTS,
        "embedding_dims": DIMS,
        "task": "classification",
    }
    assert described["wide"]["text"]["max_chars"] == 2000


# --- processes ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_mlflow_models_serve_answers_the_same(
    text_models: dict[str, Path], texts: TestClient, tmp_path: Path
) -> None:
    """`mlflow models serve` calls the model's `predict` (no truncation there: short texts)."""
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # it execs `uvicorn`
        "PYTHONPATH": str(ROOT),  # the pickled model class lives in tests.serving
    }
    command = [str(bin_dir / "mlflow"), "models", "serve", "-m", str(text_models["kw"])]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "-w", "1"]
    with open(tmp_path / "mlflow-serve.log", "wb") as log:
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the uvicorn child stops with it
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "mlflow-serve.log").read_text()
            assert time.monotonic() < deadline, "mlflow models serve did not start"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        for body in (
            {"dataframe_split": {"columns": ["text"], "data": [[t] for t in TEXTS]}},
            {"dataframe_records": [{"text": t} for t in TEXTS]},
        ):
            theirs = httpx.post(f"{url}/invocations", json=body, timeout=30)
            assert theirs.status_code == 200, theirs.text
            ours = texts.post("/invocations", json=body, headers=JSON)
            assert theirs.json() == ours.json()
    finally:
        stop_group(proc, timeout=20)
