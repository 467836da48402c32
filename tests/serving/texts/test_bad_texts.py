"""Every client mistake with a text is a 4xx JSON error naming it, never a 5xx.

Protects: the staging suite's named mistakes (`mlops_core.codecs.text_bad_inputs`: cells
that are not strings, a missing column, bytes that are not UTF-8, malformed JSON, an
oversized body, too many texts) and the server's own cases (row named, both routes, CSV);
after each the server answers the next request. A model that breaks the `score_texts`
contract is a 500 whose log row keeps the texts; malformed text metadata or signatures
and models without `score_texts` are refused at load, naming the problem. The pure checks
(`decode_texts`, `score_rows`) are tested on their edges.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from mlflow.pyfunc import PythonModel

from mlops_core.codecs import text_bad_inputs
from serving.scoring.errors import InputError
from serving.scoring.inference_log import iter_records
from serving.scoring.model import ModelLoadError, ServedModel
from serving.scoring.schema import InputSchema
from serving.scoring.text_model import TextSpec, decode_texts, score_rows
from tests.serving.conftest import AUTH, MLFLOW_PANDAS_WARNING, TestClient, app_client
from tests.serving.text_model import NO_EXAMPLE
from tests.serving.texts.cases import BAD, good_request, score_split

pytestmark = pytest.mark.filterwarnings(
    f"ignore:{MLFLOW_PANDAS_WARNING}", f"ignore:{NO_EXAMPLE}", "ignore:The ``noload`` loader"
)
CODEC_CODES = {
    "null_cell": (400, "null_value"),
    "number_cell": (400, "invalid_text"),
    "bool_cell": (400, "invalid_text"),
    "object_cell": (400, "invalid_text"),
    "list_cell": (400, "invalid_text"),
    "missing_column": (400, "unexpected_column"),  # /score names the column it got instead
    "invalid_utf8": (400, "malformed_json"),
    "malformed_json": (400, "malformed_json"),
    "huge_body": (413, "payload_too_large"),
    "too_many_texts": (400, "too_many_texts"),
}
CODEC_CASES = text_bad_inputs(pd.DataFrame({"text": ["a great film", "dull"]}))


def test_the_codec_names_every_case_the_staging_suite_sends() -> None:
    assert set(CODEC_CASES) == set(CODEC_CODES)
    assert b"\xff\xfe" in CODEC_CASES["invalid_utf8"][0]


@pytest.mark.parametrize("case", sorted(CODEC_CASES))
def test_codec_mistake_is_a_4xx_json_error(texts: TestClient, case: str) -> None:
    body, content_type = CODEC_CASES[case]
    response = texts.post("/score", content=body, headers={**AUTH, "content-type": content_type})
    assert (response.status_code, response.json()["error"]["code"]) == CODEC_CODES[case]
    assert response.headers["content-type"] == "application/json"
    good_request(texts)


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "text"),
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
def test_client_mistake_is_a_4xx_naming_it(
    texts: TestClient, path: str, body: Any, status: int, code: str, text: str
) -> None:
    if isinstance(body, str):  # CSV; surrogate escapes stand for raw bytes
        data, headers = body.encode("utf-8", "surrogateescape"), {"content-type": "text/csv"}
    else:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"content-type": "application/json"}
    response = texts.post(path, content=data, headers={**AUTH, **headers})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert text in error["message"], error["message"]
    good_request(texts)


def test_a_model_breaking_the_contract_is_a_500_and_its_texts_are_logged(
    texts_config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app_client(texts_config()) as client:
        model = client.app.state.server.runtime.deployments["kw"].model

        def no_embeddings(texts: list[str]) -> tuple[list[Any], dict[str, list[Any]]]:
            answers = [{"label": "fresh", "probability": 0.5}] * len(texts)
            return answers, {"tokens": [1] * len(texts), "oov_rate": [0.0] * len(texts)}

        monkeypatch.setattr(model, "_predict", no_embeddings)
        body = score_split(["a great film"])
        response = client.post("/score", json=body, headers={**AUTH, "x-request-id": "broken"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "model_error" and "emb_0" in error["message"]
    (row,) = iter_records(tmp_path / "inference_log")
    assert (row["status"], row["outputs"]) == (500, None)
    assert row["inputs"]["data"] == [["a great film", 12, None, None, None, None, None, None]]


# --- the pure checks ----------------------------------------------------------------------------

SPEC = TextSpec("text", max_chars=5, max_length=4, max_texts=3, embedding_dims=1, task="x")


@pytest.mark.parametrize(
    ("cells", "code", "text"),
    [
        ([None], "null_value", "row 0 is null"),
        (["ok", b"bytes"], "invalid_text", "row 1 has bytes"),
        (["ok", 1.5], "invalid_text", "row 1 has number 1.5"),
        (["a", "b", "c", "d"], "too_many_texts", "at most 3"),
    ],
)
def test_decode_texts_refuses_what_is_not_a_string(cells: list[Any], code: str, text: str) -> None:
    with pytest.raises(InputError, match=text) as raised:
        decode_texts(SPEC, cells)
    assert raised.value.code == code


def test_decode_texts_truncates_by_characters_and_keeps_the_length_sent() -> None:
    batch = decode_texts(SPEC, ["", "héllo wörld", "abcde"])
    assert (batch.texts, batch.chars) == (["", "héllo", "abcde"], [0, 11, 5])
    assert batch.log([(1, 0.0, 0.5)] * 3)["data"][1] == ["héllo", 11, 1, 0.0, 0.5]


@pytest.mark.parametrize(
    ("monitor", "problem"),
    [
        ({"tokens": [1], "oov_rate": [0.0]}, "emb_0"),
        ({"tokens": [1, 2], "oov_rate": [0.0], "emb_0": [0.1]}, "'tokens'"),
        ([1, 0.0, 0.1], "not a dict"),
    ],
)
def test_score_rows_refuses_a_model_breaking_the_contract(monitor: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        score_rows(SPEC, lambda texts: ([{"label": "fresh"}] * len(texts), monitor), ["a"])


# --- load time ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"max_chars": 0}, "max_chars"),
        ({"max_length": "16"}, "max_length"),
        ({"max_texts": True}, "max_texts"),
        ({"embedding_dims": None}, "embedding_dims"),
        ({"task": "regression"}, "task"),
    ],
)
def test_malformed_text_metadata_is_refused_at_load(
    text_models: dict[str, Path], tmp_path: Path, change: dict[str, Any], problem: str
) -> None:
    path = shutil.copytree(text_models["kw"], tmp_path / "model")
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    mlmodel["metadata"].update(change)
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(ModelLoadError, match=problem):
        ServedModel(path)


def test_optional_limits_take_the_contract_defaults() -> None:
    schema = InputSchema.from_signature_json('[{"name": "text", "type": "string"}]')
    meta = {"metadata": {"mlops_input": "text", "task": "classification", "max_length": 128}}
    spec = TextSpec.from_mlmodel(meta, schema)
    assert spec is not None
    assert (spec.max_chars, spec.max_texts, spec.embedding_dims) == (2000, 256, 8)
    assert TextSpec.from_mlmodel({"metadata": {"mlops_input": "image"}}, schema) is None


def test_text_signature_must_be_one_string_column() -> None:
    schema = InputSchema.from_signature_json('[{"name": "text", "type": "binary"}]')
    with pytest.raises(ValueError, match="one string column"):
        TextSpec.from_mlmodel({"metadata": {"mlops_input": "text"}}, schema)


def test_a_text_model_without_score_texts_is_refused(tmp_path: Path) -> None:
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    mlflow.pyfunc.save_model(
        str(tmp_path / "model"),
        python_model=NoScores(),
        signature=ModelSignature(inputs=Schema([ColSpec("string", "text")])),
        metadata={"mlops_input": "text", "task": "classification", "max_length": 16},
        pip_requirements=["mlflow"],
    )
    with pytest.raises(ModelLoadError, match="no score_texts"):
        ServedModel(tmp_path / "model")


class NoScores(PythonModel):
    """A pyfunc that predicts but has no `score_texts`."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> list[str]:
        return ["fresh"] * len(model_input)
