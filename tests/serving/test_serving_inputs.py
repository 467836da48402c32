"""MLflow-compatible inputs and outputs, in process: CSV bodies, extra columns, probabilities.

Protects: a CSV body scores exactly like the same rows as JSON (pandas' missing-value
markers read as null, as `mlflow models serve` reads them); `/invocations` ignores columns
the signature does not name, says so in `x-mlops-ignored-columns` and keeps them out of the
inference log (while `/score` refuses them, see bad_input_cases.py); probabilities are
opt-in, answered per class, refused with a 400 for a model without `predict_proba`, and
never replace the labels monitoring reads from the log; a batch never mixes the two
outputs; every answer and `/health` say which registry a served version belongs to.
CSV and output client mistakes are in `csv_input_cases.py`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.batching import MicroBatcher
from serving.scoring import ServedModel
from serving.scoring.inference_log import iter_records
from serving.settings import ConfigError, ServingSettings
from tests.serving.conftest import (
    AUTH,
    COLUMNS,
    MLFLOW_PANDAS_WARNING,
    TestClient,
    app_client,
    make_config,
    rows,
)

pytestmark = pytest.mark.filterwarnings(f"ignore:{MLFLOW_PANDAS_WARNING}")
CSV = {**AUTH, "content-type": "text/csv"}


def _csv(data: list[list[object]], columns: list[str] = COLUMNS) -> bytes:
    lines = [",".join(columns)] + [",".join("" if v is None else str(v) for v in r) for r in data]
    return "\n".join(lines).encode()


def test_csv_scores_like_json_and_like_mlflow(client: TestClient, models: dict[str, Path]) -> None:
    from mlflow.pyfunc import load_model
    from mlflow.pyfunc.scoring_server import invocations

    data = rows(4, seed=9)
    data[1][3] = None  # the optional wind_speed, empty in CSV
    as_json = client.post(
        "/invocations", json={"dataframe_split": {"columns": COLUMNS, "data": data}}, headers=AUTH
    )
    assert as_json.status_code == 200, as_json.text
    as_csv = client.post("/invocations", content=_csv(data), headers=CSV)
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.json() == as_json.json()
    na = _csv(data).replace(b",\n", b",NA\n", 1)  # pandas reads NA as missing, so does MLflow
    assert client.post("/invocations", content=na, headers=CSV).json() == as_json.json()
    model = load_model(str(models["blue"]))  # MLflow's own scoring code is the oracle
    mlflow = invocations(na.decode(), "text/csv", model, model.metadata.get_input_schema())
    assert mlflow.status == 200 and json.loads(mlflow.response) == as_json.json()
    quoted = b'"dep_delay","distance","carrier","wind_speed"\r\n1.5,500,"AA",3.0\r\n\r\n'
    answer = client.post("/invocations", content=b"\xef\xbb\xbf" + quoted, headers=CSV)
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1


def test_a_large_csv_body_is_read_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import serving.inputs

    body = _csv(rows(50, seed=4))
    inline = client.post("/invocations", content=body, headers=CSV)
    monkeypatch.setattr(serving.inputs, "CSV_INLINE_BYTES", 16)  # this body is now "large"
    threads: list[object] = []
    real = serving.inputs.asyncio.to_thread

    async def spy(func: Callable[..., Any], /, *args: Any) -> Any:
        threads.append(func)
        return await real(func, *args)

    monkeypatch.setattr(serving.inputs.asyncio, "to_thread", spy)
    threaded = client.post("/invocations", content=body, headers=CSV)
    assert threaded.status_code == 200 and threaded.json() == inline.json()
    assert threads == [serving.inputs.parse_csv]


def test_extra_columns_are_ignored_named_and_kept_out_of_the_log(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    data = rows(2, seed=1)
    body = {
        "dataframe_split": {
            "columns": ["flight", *COLUMNS, "tail\nnumber"],
            "data": [["UA1", *r, "N1"] for r in data],
        }
    }
    with app_client(write_config()) as c:
        answer = c.post("/invocations", json=body, headers={**AUTH, "x-request-id": "wide"})
        plain = c.post(
            "/invocations",
            json={"dataframe_split": {"columns": COLUMNS, "data": data}},
            headers=AUTH,
        )
    assert answer.status_code == 200, answer.text
    assert answer.json() == plain.json()
    assert json.loads(answer.headers["x-mlops-ignored-columns"]) == ["flight", "tail\nnumber"]
    [row] = [r for r in iter_records(tmp_path / "inference_log") if r["request_id"] == "wide"]
    assert row["inputs"] == {"columns": COLUMNS, "data": data}
    assert row["ignored_columns"] == ["flight", "tail\nnumber"]


def test_probabilities_are_opt_in_and_the_log_keeps_labels(
    write_config: Callable[..., Path], models: dict[str, Path], tmp_path: Path
) -> None:
    import mlflow.sklearn
    import pandas as pd

    data = rows(3, seed=2)
    model = mlflow.sklearn.load_model(str(models["blue"]))
    frame = pd.DataFrame(data, columns=COLUMNS)
    body = {"input_data": {"columns": COLUMNS, "data": data}, "params": {"output": "probabilities"}}
    with app_client(write_config()) as c:
        answer = c.post("/score", json=body, headers={**AUTH, "x-request-id": "p"})
        query = c.post(
            "/score?output=probabilities", json={"input_data": body["input_data"]}, headers=AUTH
        )
        labels = c.post(
            "/score?output=predictions", json={"input_data": body["input_data"]}, headers=AUTH
        )
        health = c.get("/health", headers=AUTH).json()
    assert answer.status_code == 200, answer.text
    probabilities = answer.json()
    assert query.json() == probabilities and labels.json() == model.predict(frame).tolist()
    classes = [str(c) for c in model.classes_]
    assert [list(p) for p in probabilities] == [classes] * 3
    np.testing.assert_allclose(
        [[p[k] for k in classes] for p in probabilities], model.predict_proba(frame)
    )
    [row] = [r for r in iter_records(tmp_path / "inference_log") if r["request_id"] == "p"]
    assert row["outputs"] == labels.json() and row["probabilities"] == probabilities
    blue = health["deployments"]["blue"]
    assert blue["outputs"] == ["predictions", "probabilities"] and blue["classes"] == classes


def _regressor(path: Path) -> Path:
    """A LinearRegression over two columns: it has no predict_proba."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    model = LinearRegression().fit(frame, frame.a * 2)
    mlflow.sklearn.save_model(model, path, signature=infer_signature(frame, model.predict(frame)))
    return path


def test_probabilities_of_a_regressor_are_a_400(tmp_path: Path, models: dict[str, Path]) -> None:
    deployment = {"model_path": str(_regressor(tmp_path / "reg")), "model_version": "1"}
    config = make_config(tmp_path, models, deployments={"blue": deployment}, traffic={"blue": 100})
    (tmp_path / "c.json").write_text(json.dumps(config))
    body = {"inputs": {"a": [1.0], "b": [2.0]}, "params": {"output": "probabilities"}}
    with app_client(tmp_path / "c.json") as c:
        refused = c.post("/invocations", json=body, headers=AUTH)
        body.pop("params")
        assert c.post("/invocations", json=body, headers=AUTH).status_code == 200
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "unsupported_output" and "'blue'" in error["message"]


def test_a_batch_holds_one_output(models: dict[str, Path]) -> None:
    model = ServedModel(models["blue"])
    from serving.scoring import parse_mlflow

    table = parse_mlflow({"dataframe_split": {"columns": COLUMNS, "data": rows(2)}})
    arrays = model.schema.to_arrays(table)

    async def run() -> tuple[list[object], int]:
        with ThreadPoolExecutor(2) as executor:
            batcher = MicroBatcher(model, executor, max_rows=100)
            outputs = ("predictions", "probabilities", "probabilities", "predictions")
            results = await asyncio.gather(*(batcher.predict(arrays, 2, o) for o in outputs))
            return results, batcher.batches

    (first, second, third, fourth), batches = asyncio.run(run())
    assert first == fourth and second == third
    assert [label for label, _ in second] == first and set(second[0][1]) == {"0", "1"}
    assert batches == 3  # predictions, then both probabilities, then predictions again


def test_answers_and_health_name_the_registry_version(
    write_config: Callable[..., Path], models: dict[str, Path]
) -> None:
    blue = {"model_path": str(models["blue"]), "model_name": "flights", "model_version": "2",
            "registry": "prod", "source_version": "3"}  # fmt: skip
    green = {"model_path": str(models["green"]), "model_name": "flights", "model_version": "4"}
    body = {"input_data": {"columns": COLUMNS, "data": rows(1)}}
    with app_client(write_config(deployments={"blue": blue, "green": green})) as c:
        answer = c.post("/score", json=body, headers=AUTH)
        old = c.post("/score", json=body, headers={**AUTH, "azureml-model-deployment": "green"})
        health = c.get("/health", headers=AUTH).json()["deployments"]
        version = c.get("/version")
    assert answer.headers["x-mlops-model"] == "flights prod v2 (from dev v3)"
    assert old.headers["x-mlops-model"] == "flights v4"  # recorded before registries: as before
    assert {k: health["blue"][k] for k in ("registry", "source_version", "version_label")} == {
        "registry": "prod", "source_version": "3", "version_label": "prod v2 (from dev v3)"
    }  # fmt: skip
    assert health["green"]["registry"] is None and health["green"]["version_label"] == "v4"
    import mlflow

    assert version.status_code == 200 and version.text == mlflow.__version__


def test_registry_labels_are_checked(tmp_path: Path, models: dict[str, Path]) -> None:
    deployment = {"model_path": str(models["blue"]), "model_version": "2", "registry": "prod live"}
    config = make_config(tmp_path, models, deployments={"blue": deployment}, traffic={"blue": 100})
    with pytest.raises(ConfigError, match=r"deployments\.blue\.registry: must match"):
        ServingSettings.from_dict(config)
