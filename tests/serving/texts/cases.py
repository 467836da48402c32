"""Texts, request bodies and bad cases for the text-serving tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.serving.conftest import AUTH, PRIMARY, SECONDARY, TestClient

JSON = {**AUTH, "content-type": "application/json"}
MAX_CHARS, MAX_TEXTS, DIMS = 64, 8, 4  # the live model's limits (conftest.text_models)
# Settings of the models in `conftest.text_models`: "wide" has the contract's default limits
# (another spec: a mirror decodes for itself), "slow" makes each model call take a while.
KW = {"max_chars": MAX_CHARS, "max_texts": MAX_TEXTS, "embedding_dims": DIMS}
MODELS: dict[str, dict[str, Any]] = {
    "kw": KW,
    "wide": {"max_chars": 2000, "max_texts": 256, "embedding_dims": 3},
    "slow": {**KW, "delay_s": 0.3},
}
FULL_WIDTH = "\uff27\uff32\uff25\uff21\uff34"  # "GREAT" in full-width letters: NFKC folds it
TEXTS = ["A great, charming film", "Dull and boring mess", "", f"{FULL_WIDTH} movie"]
LABELS = ["fresh", "rotten", "fresh", "fresh"]
# 174 characters: the first 64 hold six "terrible" and one "great" (rotten); the model's
# first 16 words of the whole text hold ten "great" (fresh). Truncation decides the label.
LONG = "terrible " * 6 + "great " * 20


def text_config(directory: Path, models: dict[str, Path], **overrides: Any) -> dict[str, Any]:
    config = {
        "endpoint": "nlp-online",
        "deployments": {
            name: {"model_path": str(path), "model_name": f"reviews-{name}", "model_version": "1"}
            for name, path in models.items()
        },
        "traffic": {"kw": 100},
        "keys": {"primary": PRIMARY, "secondary": SECONDARY},
        "inference_log_dir": str(directory / "inference_log"),
        "max_body_bytes": 1 << 20,
    }
    config.update(overrides)
    return config


def score_split(cells: list[Any]) -> dict[str, Any]:
    data = [[cell] for cell in cells]
    return {"input_data": {"columns": ["text"], "index": list(range(len(cells))), "data": data}}


SHAPES: dict[str, tuple[str, Callable[[list[str]], dict[str, Any]]]] = {
    "score_input_data_split": ("/score", score_split),
    "score_input_data_records": ("/score", lambda c: {"input_data": [{"text": x} for x in c]}),
    "invocations_dataframe_split": (
        "/invocations",
        lambda c: {"dataframe_split": {"columns": ["text"], "data": [[x] for x in c]}},
    ),
    "invocations_dataframe_records": (
        "/invocations",
        lambda c: {"dataframe_records": [{"text": x} for x in c]},
    ),
}


def good_request(client: TestClient) -> None:
    response = client.post("/score", json=score_split(["a great film"]), headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()[0]["label"] == "fresh"


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def invocations_records(cells: list[Any]) -> dict[str, Any]:
    return {"dataframe_records": [{"text": c} for c in cells]}


# (id, path, body, status, code, text in the message); bodies are JSON unless bytes
BAD: list[tuple[str, str, Any, int, str, str]] = [
    ("null_cell", "/score", score_split(["ok", None]), 400, "null_value", "row 1 is null"),
    ("number_cell", "/score", score_split([5]), 400, "invalid_text", "row 0 has integer 5"),
    ("float_cell", "/score", score_split([0.5]), 400, "invalid_text", "row 0 has number"),
    ("bool_cell", "/score", score_split([True]), 400, "invalid_text", "row 0 has boolean"),
    ("object_cell", "/score", score_split([{"a": 1}]), 400, "invalid_text", "object"),
    ("list_cell", "/score", score_split([["ok"]]), 400, "invalid_text", "array"),
    (
        "null_cell_invocations",
        "/invocations",
        invocations_records(["ok", None]),
        400,
        "null_value",
        "row 1",
    ),
    (
        "record_without_text",  # a record lacking the key reads as null, as in pandas
        "/invocations",
        {"dataframe_records": [{"text": "ok"}, {}]},
        400,
        "null_value",
        "row 1",
    ),
    (
        "missing_column_invocations",  # `review` is ignored there; `text` is missing
        "/invocations",
        {"dataframe_split": {"columns": ["review"], "data": [["ok"]]}},
        400,
        "missing_column",
        "['text']",
    ),
    (
        "other_column_on_score",
        "/score",
        {"input_data": {"columns": ["review"], "data": [["ok"]]}},
        400,
        "unexpected_column",
        "review",
    ),
    (
        "too_many_texts",
        "/score",
        score_split(["ok"] * (MAX_TEXTS + 1)),
        400,
        "too_many_texts",
        f"at most {MAX_TEXTS}",
    ),
    (
        "too_many_texts_before_cell_checks",
        "/invocations",
        invocations_records([None] * (MAX_TEXTS + 1)),
        400,
        "too_many_texts",
        f"{MAX_TEXTS + 1} texts",
    ),
    (
        "probabilities",
        "/score",
        {**score_split(["ok"]), "params": {"output": "probabilities"}},
        400,
        "unsupported_output",
        "predictions",
    ),
    (
        "invalid_utf8_with_nan",  # the stdlib fallback parser, taken for NaN, refuses it too
        "/score",
        b'{"input_data": {"columns": ["text"], "data": [["\xff\xfe"]]}, "x": NaN}',
        400,
        "malformed_json",
        "not valid JSON",
    ),
    (
        "lone_surrogate",
        "/score",
        b'{"input_data": {"columns": ["text"], "data": [["\\ud800"]]}}',
        400,
        "malformed_json",
        "not valid JSON",
    ),
    (
        "oversized_body",
        "/score",
        score_split(["x" * 1_100_000]),
        413,
        "payload_too_large",
        "at most 1048576",
    ),
]
BAD += [
    (
        "csv_not_utf8",
        "/invocations",
        "text\r\nbad \udcff\r\n",  # encoded with surrogateescape: a raw 0xff byte
        400,
        "malformed_csv",
        "not UTF-8",
    ),
    (
        "csv_empty_field",  # pandas reads an empty field as missing, as MLflow does
        "/invocations",
        'text\r\nok\r\n""\r\n',
        400,
        "null_value",
        "row 1 is null",
    ),
]
