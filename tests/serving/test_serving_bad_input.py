"""Client mistakes get a 4xx JSON error naming the problem; the server keeps serving.

The cases themselves are in `bad_input_cases.py`, `csv_input_cases.py` (CSV bodies and
output choices) and, for bodies that once got a 500 (deep nesting, integers beyond 64 bits,
lone surrogates), `hostile_input_cases.py`. A model
that raises on valid input is covered in `test_serving_model_errors.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.serving.bad_input_cases import CASES, JSON, ROW, split
from tests.serving.conftest import AUTH, TestClient
from tests.serving.csv_input_cases import CSV_CASES
from tests.serving.hostile_input_cases import HOSTILE_CASES

ALL_CASES = [*CASES, *CSV_CASES, *HOSTILE_CASES]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code", "text"),
    [case[1:] for case in ALL_CASES],
    ids=[case[0] for case in ALL_CASES],
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
