"""Client mistakes get a 4xx JSON error naming the problem; the server keeps serving.

Also: a model that raises on valid input is a 500 JSON error, logged, and does not
fail the other requests batched with it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from serving.batching import MicroBatcher, ModelError
from serving.scoring.inference_log import iter_records
from serving.scoring.model import ServedModel
from serving.scoring.parsing import parse_azureml
from tests.serving.conftest import AUTH, COLUMNS, TestClient, rows

JSON = {**AUTH, "content-type": "application/json"}


def split(data: list[list[object]], columns: list[str] = COLUMNS) -> bytes:
    return json.dumps({"input_data": {"columns": columns, "data": data}}).encode()


ROW = [1.5, 500, "AA", 3.0]
CASES = [
    # (id, path, body, headers, status, code, text the message must contain)
    (
        "truncated-json",
        "/score",
        b'{"input_data": {"columns": [',
        JSON,
        400,
        "malformed_json",
        "not valid JSON",
    ),
    ("empty-body", "/score", b"", JSON, 400, "malformed_json", "empty"),
    ("not-utf8", "/score", b'{"input_data": "\xff\xfe"}', JSON, 400, "malformed_json", "JSON"),
    ("top-level-list", "/score", b"[1, 2]", JSON, 400, "invalid_shape", "input_data"),
    ("no-input-data", "/score", b'{"data": [[1]]}', JSON, 400, "invalid_shape", "input_data"),
    (
        "extra-top-key",
        "/score",
        b'{"input_data": {"columns": ["a"], "data": [[1]]}, "x": 1}',
        JSON,
        400,
        "invalid_shape",
        "['x']",
    ),
    (
        "two-mlflow-formats",
        "/invocations",
        b'{"dataframe_split": {}, "inputs": {}}',
        JSON,
        400,
        "invalid_shape",
        "exactly one",
    ),
    (
        "old-mlflow-1-shape",
        "/invocations",
        split([ROW])[len(b'{"input_data": ') : -1],
        JSON,
        400,
        "invalid_shape",
        "dataframe_split",
    ),
    (
        "ragged-row",
        "/score",
        split([ROW, ROW[:3]]),
        JSON,
        400,
        "invalid_shape",
        "input_data.data[1] has 3 values for 4 columns",
    ),
    ("row-not-array", "/score", split([ROW, "x"]), JSON, 400, "invalid_shape", "data[1]"),
    ("no-rows", "/score", split([]), JSON, 400, "empty_input", "non-empty"),
    (
        "duplicate-column",
        "/score",
        split([ROW], ["dep_delay", "dep_delay", "carrier", "wind_speed"]),
        JSON,
        400,
        "duplicate_column",
        "dep_delay",
    ),
    (
        "missing-column",
        "/score",
        split([[1.5, "AA"]], ["dep_delay", "carrier"]),
        JSON,
        400,
        "missing_column",
        "'distance'",
    ),
    (
        "extra-column",
        "/score",
        split([[*ROW, 9]], [*COLUMNS, "altitude"]),
        JSON,
        400,
        "unexpected_column",
        "'altitude'",
    ),
    (
        "string-for-double",
        "/score",
        split([ROW, ["late", 500, "AA", 3.0]]),
        JSON,
        400,
        "invalid_type",
        "column 'dep_delay' expects double; row 1 has string",
    ),
    (
        "bool-for-long",
        "/score",
        split([[1.5, True, "AA", 3.0]]),
        JSON,
        400,
        "invalid_type",
        "column 'distance' expects long; row 0 has boolean",
    ),
    (
        "float-for-long",
        "/score",
        split([[1.5, 500.5, "AA", 3.0]]),
        JSON,
        400,
        "invalid_type",
        "'distance'",
    ),
    (
        "number-for-string",
        "/score",
        split([[1.5, 500, 7, 3.0]]),
        JSON,
        400,
        "invalid_type",
        "column 'carrier' expects string; row 0 has integer 7",
    ),
    (
        "array-in-cell",
        "/score",
        split([[[1.5], 500, "AA", 3.0]]),
        JSON,
        400,
        "invalid_type",
        "'dep_delay'",
    ),
    (
        "null-in-required",
        "/score",
        split([ROW, [None, 500, "AA", 3.0]]),
        JSON,
        400,
        "null_value",
        "column 'dep_delay' is required; row 1 is null",
    ),
    (
        "nan-in-required",
        "/score",
        b'{"input_data": {"columns": ["dep_delay", "distance", "carrier"], '
        b'"data": [[NaN, 500, "AA"]]}}',
        JSON,
        400,
        "non_finite_value",
        "'dep_delay'",
    ),
    (
        "inf-in-optional",
        "/score",
        b'{"input_data": {"columns": ["dep_delay", "distance", "carrier", "wind_speed"], '
        b'"data": [[1.5, 500, "AA", Infinity]]}}',
        JSON,
        400,
        "non_finite_value",
        "'wind_speed'",
    ),
    (
        "long-overflow",
        "/score",
        split([[1.5, 2**63, "AA", 3.0]]),
        JSON,
        400,
        "out_of_range",
        "'distance'",
    ),
    (
        "records-not-objects",
        "/invocations",
        b'{"dataframe_records": [[1, 2]]}',
        JSON,
        400,
        "invalid_shape",
        "dataframe_records[0]",
    ),
    (
        "params-not-object",
        "/invocations",
        b'{"dataframe_split": {"columns": ["a"], "data": [[1]]}, "params": [1]}',
        JSON,
        400,
        "invalid_shape",
        "params",
    ),
    (
        "inputs-unequal-columns",
        "/invocations",
        b'{"inputs": {"dep_delay": [1.5, 2.5], "distance": [500]}}',
        JSON,
        400,
        "invalid_shape",
        "'distance'",
    ),
    (
        "text-plain",
        "/score",
        split([ROW]),
        {**AUTH, "content-type": "text/plain"},
        415,
        "unsupported_media_type",
        "application/json",
    ),
    (
        "form-encoded",
        "/invocations",
        b"a=1",
        {**AUTH, "content-type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
        "x-www-form-urlencoded",
    ),
    (
        "latin1-charset",
        "/score",
        split([ROW]),
        {**AUTH, "content-type": "application/json; charset=latin-1"},
        415,
        "unsupported_media_type",
        "latin-1",
    ),
    ("too-large", "/score", split([ROW] * 3000), JSON, 413, "payload_too_large", "65536"),
    (
        "request-id-too-long",
        "/score",
        split([ROW]),
        {**JSON, "x-request-id": "r" * 200},
        400,
        "invalid_request_id",
        "x-request-id",
    ),
]


@pytest.fixture(scope="module")
def module_client(
    models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    from serving.app import create_app
    from serving.settings import ServingSettings
    from tests.serving.conftest import make_config

    directory = tmp_path_factory.mktemp("bad-input")
    settings = ServingSettings.from_dict(make_config(directory, models))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code", "text"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_client_mistake_is_a_4xx_json_error(
    module_client: TestClient,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
    text: str,
) -> None:
    response = module_client.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert text in error["message"], error["message"]
    healthy = module_client.post("/score", content=split([ROW]), headers=JSON)
    assert healthy.status_code == 200


def test_chunked_body_over_the_limit_is_413(module_client: TestClient) -> None:
    chunk = b" " * 8192

    def stream() -> Iterator[bytes]:  # no content-length: the server counts as it reads
        yield b'{"input_data": '
        for _ in range(10):
            yield chunk

    response = module_client.post("/score", content=stream(), headers=JSON)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", "/score", 405, "method_not_allowed"), ("POST", "/nope", 404, "not_found")],
)
def test_unknown_routes_answer_json(
    module_client: TestClient, method: str, path: str, status: int, code: str
) -> None:
    response = module_client.request(method, path, headers=AUTH)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_model_failure_is_a_logged_500(module_client: TestClient) -> None:
    # blue's OneHotEncoder(handle_unknown="error") raises on an unseen carrier: valid input
    # by the signature, so it is the model's failure, not the client's.
    response = module_client.post(
        "/score",
        content=split([[1.5, 500, "ZZ", 3.0]]),
        headers={**JSON, "x-request-id": "unseen-carrier"},
    )
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "model_error" and "ZZ" in error["message"]
    log_dir = module_client.app.state.server.runtime.settings.inference_log_dir
    logged = [r for r in iter_records(log_dir) if r["request_id"] == "unseen-carrier"]
    assert [(r["status"], r["outputs"]) for r in logged] == [(500, None)]
    assert module_client.post("/score", content=split([ROW]), headers=JSON).status_code == 200


def test_one_failing_request_does_not_fail_its_batch(models: dict[str, Path]) -> None:
    model = ServedModel(models["blue"])

    def arrays(data: list[list[object]]):
        table = parse_azureml({"input_data": {"columns": COLUMNS, "data": data}})
        return model.schema.to_arrays(table), table.nrows

    async def run() -> list[object]:
        batcher = MicroBatcher(model, executor, max_rows=100)
        inputs = [arrays(rows(2, 1)), arrays([[1.5, 500, "ZZ", 3.0]]), arrays(rows(3, 2))]
        results = await asyncio.gather(
            *(batcher.predict(a, n) for a, n in inputs), return_exceptions=True
        )
        assert batcher.batches == 1  # all three went in one model call first
        return results

    with ThreadPoolExecutor(1) as executor:
        good, bad, also_good = asyncio.run(run())
    assert isinstance(bad, ModelError) and "ZZ" in str(bad)
    assert good == model.predict(*arrays(rows(2, 1)))
    assert also_good == model.predict(*arrays(rows(3, 2)))
