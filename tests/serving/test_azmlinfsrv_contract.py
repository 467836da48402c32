"""Azure ML's inference server running `serving/azureml/score.py` answers like the local server.

Protects: on Azure ML the scoring contract is azmlinfsrv's (`score.py` with `init()` and
`run()`); there `POST /score` must answer every request of the local server's corpus
(`bad_input_cases`, `csv_input_cases`, `hostile_input_cases`, `texts/cases`: their `/score`
requests, as azmlinfsrv serves no `/invocations`) with the same status and error code
(and message), and every valid request with the same JSON: a tabular sklearn model (an
unseen category is the model's own 500) and a text pyfunc (truncation included). Each
answer is compared with the in-process local server's answer to the same request. The one
known difference: azmlinfsrv itself answers 431 to a request id over 100 characters.

The server is the real `azmlinfsrv` of `.tools/azmlinfsrv-venv` (`make azmlinfsrv`), its
model folder nested as Azure ML mounts one (`AZUREML_MODEL_DIR/<model>/MLmodel`), bound to
127.0.0.1 (checked in /proc/net/tcp). The same comparison runs in process on
`serving.azureml.contract.Scorer`, so the mapping is checked where the venv is absent too.
"""

from __future__ import annotations

import io
import json
import math
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from serving.azureml.contract import Request, Scorer, find_model
from serving.scoring.model import ModelLoadError, ServedModel
from tests.serving import azmlinfsrv
from tests.serving.bad_input_cases import CASES, JSON, split
from tests.serving.conftest import COLUMNS, MLFLOW_PANDAS_WARNING, TestClient, app_client, rows
from tests.serving.csv_input_cases import CSV_CASES
from tests.serving.hostile_input_cases import HOSTILE_CASES
from tests.serving.text_model import NO_EXAMPLE, log_text_models
from tests.serving.texts.cases import BAD as TEXT_BAD
from tests.serving.texts.cases import KW, LONG, SHAPES, TEXTS, text_config

pytestmark = pytest.mark.filterwarnings(
    f"ignore:{MLFLOW_PANDAS_WARNING}", f"ignore:{NO_EXAMPLE}", "ignore:The ``noload`` loader"
)
LIMITS = {"tabular": 65536, "text": 1 << 20}  # make_config's and text_config's max_body_bytes
OWN_ANSWERS = {"request-id-too-long": 431}  # azmlinfsrv answers these before run()
SAME_CODE_ONLY = {"unsupported_output"}  # the local message names the deployment


def _json(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def _chunks() -> Iterator[bytes]:  # no content-length: the body is counted as it is read
    yield b'{"input_data": '
    yield from [b" " * 8192] * 10


_SPLIT = {"input_data": {"columns": COLUMNS, "index": [0, 1, 2, 3], "data": rows(4, seed=5)}}
_NAN = {
    "input_data": {"columns": COLUMNS, "data": [[1.0, 500, "AA", None], [2, 600, "DL", math.nan]]}
}
# (kind, id, method, path, body (bytes, or a chunk generator), headers, the local status)
Case = tuple[str, str, str, str, bytes | Callable[[], Iterator[bytes]], dict[str, str], int]
CORPUS: list[Case] = [
    *(("tabular", c[0], "POST", c[1], c[2], c[3], c[4])
      for c in (*CASES, *CSV_CASES, *HOSTILE_CASES)),
    ("tabular", "split-with-index", "POST", "/score", _json(_SPLIT), JSON, 200),
    ("tabular", "records", "POST", "/score",
     _json({"input_data": [dict(zip(COLUMNS, r, strict=True)) for r in rows(3, seed=6)]}), JSON,
     200),
    ("tabular", "columns", "POST", "/score",
     _json({"input_data": {c: [r[i] for r in rows(3, 7)] for i, c in enumerate(COLUMNS)}}), JSON,
     200),
    ("tabular", "optional-absent", "POST", "/score",
     split([r[:3] for r in rows(2)], COLUMNS[:3]), JSON, 200),
    ("tabular", "optional-nan", "POST", "/score", _json(_NAN), JSON, 200),
    ("tabular", "probabilities-param", "POST", "/score",
     _json({**_SPLIT, "params": {"output": "probabilities"}}), JSON, 200),
    ("tabular", "probabilities-query", "POST", "/score?output=probabilities", _json(_SPLIT), JSON,
     200),
    ("tabular", "unseen-category-model-error", "POST", "/score", split([[1.5, 500, "ZZ", 3.0]]),
     JSON, 500),
    ("tabular", "get", "GET", "/score", b"", JSON, 405),
    ("tabular", "chunked-over-limit", "POST", "/score", _chunks, JSON, 413),
    *(("text", c[0], "POST", c[1], _json(c[2]), JSON, c[3]) for c in TEXT_BAD),
    *(("text", name, "POST", path, _json(shape([*TEXTS, LONG])), JSON, 200)
      for name, (path, shape) in SHAPES.items()),
]  # fmt: skip
CORPUS = [case for case in CORPUS if urlsplit(case[3]).path == "/score"]  # Azure's one route
IDS = [f"{case[0]}-{case[1]}" for case in CORPUS]
FIELDS = ("kind", "case", "method", "path", "body", "headers", "expected")


def assert_same(
    case: str, local: httpx.Response, expected: int, status: int, ctype: str, body: bytes
) -> None:
    """The local server answers as the corpus says, and the other side the same: answers in
    full, errors by status, code and message."""
    assert local.status_code == expected, local.text
    if case in OWN_ANSWERS:
        assert status == OWN_ANSWERS[case], body
        return
    assert status == local.status_code, (body, local.text)
    assert ctype == "application/json"
    got, want = json.loads(body), local.json()
    if status == 200:
        assert got == want
        return
    assert got["error"]["code"] == want["error"]["code"], got
    if want["error"]["code"] not in SAME_CODE_ONLY:
        assert got["error"]["message"] == want["error"]["message"]


@pytest.fixture(scope="module")
def text_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return log_text_models(tmp_path_factory.mktemp("azml-texts"), {"kw": KW})["kw"]


@pytest.fixture(scope="module")
def local(
    module_client: TestClient, text_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, TestClient]]:
    """The in-process local servers the answers are compared with."""
    config = tmp_path_factory.mktemp("azml-local") / "texts.json"
    config.write_text(json.dumps(text_config(config.parent, {"kw": text_model})))
    with app_client(config) as texts:
        yield {"tabular": module_client, "text": texts}


@pytest.fixture(scope="module")
def model_dirs(
    models: dict[str, Path], text_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """AZUREML_MODEL_DIR per kind, the model one folder below it as Azure ML mounts it."""
    root = tmp_path_factory.mktemp("azureml-models")
    dirs = {"tabular": root / "flights" / "1", "text": root / "reviews" / "1"}
    shutil.copytree(models["blue"], dirs["tabular"] / "model")
    shutil.copytree(text_model, dirs["text"] / "model")
    return dirs


@pytest.fixture(scope="module")
def servers(
    model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, azmlinfsrv.Server]]:
    if not azmlinfsrv.AZMLINFSRV.exists():
        pytest.skip(azmlinfsrv.MISSING)
    work = tmp_path_factory.mktemp("azmlinfsrv")
    started = {kind: azmlinfsrv.launch(d, work, LIMITS[kind]) for kind, d in model_dirs.items()}
    try:
        for server in started.values():  # both start at once: their model loads overlap
            server.wait_ready()
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def scorers(models: dict[str, Path], text_model: Path) -> dict[str, Scorer]:
    """What `init()` builds, in process (drain bytes: the local server's default)."""
    paths = {"tabular": models["blue"], "text": text_model}
    return {kind: Scorer(ServedModel(path), LIMITS[kind], 16 << 20) for kind, path in paths.items()}


def _content(body: bytes | Callable[[], Iterator[bytes]]) -> bytes | Iterator[bytes]:
    return body() if callable(body) else body  # a generator is read once: one per request


@pytest.mark.parametrize(FIELDS, CORPUS, ids=IDS)
def test_azmlinfsrv_answers_like_the_local_server(
    servers: dict[str, azmlinfsrv.Server], local: dict[str, TestClient], kind: str, case: str,
    method: str, path: str, body: Any, headers: dict[str, str], expected: int,
) -> None:  # fmt: skip
    url = servers[kind].url + path
    sent = httpx.request(method, url, content=_content(body), headers=headers, timeout=30)
    want = local[kind].request(method, path, content=_content(body), headers=headers)
    ctype = sent.headers.get("content-type")
    assert_same(case, want, expected, sent.status_code, ctype, sent.content)


IN_PROCESS = [case for case in CORPUS if case[1] not in OWN_ANSWERS]


@pytest.mark.parametrize(FIELDS, IN_PROCESS, ids=[f"{case[0]}-{case[1]}" for case in IN_PROCESS])
def test_scorer_answers_like_the_local_server(
    scorers: dict[str, Scorer], local: dict[str, TestClient], kind: str, case: str,
    method: str, path: str, body: Any, headers: dict[str, str], expected: int,
) -> None:  # fmt: skip
    """The same mapping in process, where the azmlinfsrv venv is absent too."""
    data = b"".join(body()) if callable(body) else body
    length = None if callable(body) else len(data)  # a chunked body declares none
    query = parse_qs(urlsplit(path).query).get("output", [None])[0]
    request = Request(method, headers.get("content-type"), length, io.BytesIO(data).read, query)
    answer = scorers[kind].answer(request)
    want = local[kind].request(method, path, content=_content(body), headers=headers)
    ctype = answer.headers["Content-Type"]
    assert_same(case, want, expected, answer.status, ctype, answer.body)


def test_azmlinfsrv_listens_on_loopback_only_and_serves_score(
    servers: dict[str, azmlinfsrv.Server],
) -> None:
    server = servers["tabular"]
    hosts = azmlinfsrv.listening_hosts(server.port)
    if hosts is not None:  # Linux: the kernel's own table of listening sockets
        assert hosts == {"0100007F"}, f"listening on {hosts}, not only 127.0.0.1"
    assert httpx.get(f"{server.url}/").text == "Healthy"
    assert httpx.post(f"{server.url}/invocations", content=b"{}", headers=JSON).status_code == 404


def test_azmlinfsrv_refuses_to_start_without_a_model(tmp_path: Path) -> None:
    """init() failing is a deployment that never becomes live, its log naming the problem."""
    if not azmlinfsrv.AZMLINFSRV.exists():
        pytest.skip(azmlinfsrv.MISSING)
    (tmp_path / "flights" / "1").mkdir(parents=True)
    server = azmlinfsrv.launch(tmp_path / "flights" / "1", tmp_path, 65536)
    try:
        assert server.proc.wait(timeout=90) == 3  # azmlinfsrv's exit status for a failed init
    finally:
        server.stop()
    assert "no MLmodel file in" in server.output()


def test_find_model_follows_azure_ml_layouts(tmp_path: Path) -> None:
    for folder in ("direct", "one/model", "two/flights/3"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "MLmodel").write_text("flavors: {}\n")
        assert find_model(tmp_path / folder.split("/")[0]) == tmp_path / folder
    (tmp_path / "two" / "other" / "1").mkdir(parents=True)
    (tmp_path / "two" / "other" / "1" / "MLmodel").write_text("flavors: {}\n")
    with pytest.raises(ModelLoadError, match=r"2 MLflow models \['flights/3', 'other/1'\]"):
        find_model(tmp_path / "two")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no MLmodel file in"):
        find_model(tmp_path / "empty")


@pytest.mark.parametrize(
    ("environ", "error"),
    [
        ({}, "AZUREML_MODEL_DIR is not set"),
        ({"AZUREML_MODEL_DIR": "/nonexistent/model"}, "is not a directory"),
        ({"AZUREML_MODEL_DIR": ".", "MLOPS_MAX_BODY_BYTES": "1MB"}, "positive number of bytes"),
    ],
)
def test_init_names_what_is_wrong_with_the_environment(environ: dict[str, str], error: str) -> None:
    with pytest.raises((ModelLoadError, ValueError), match=error):
        Scorer.from_env(environ)
