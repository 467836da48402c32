"""Scoring server contract, in process: request shapes, optional columns, keys, reload, health.

Responses are compared with what MLflow's own scoring code answers for the same
body (`mlflow.pyfunc.scoring_server.invocations`), so MLflow and Azure ML clients
see the same JSON from us. Traffic routing, mirroring, the inference log and metrics
are in `test_serving_routing.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.serving.conftest import (
    AUTH,
    COLUMNS,
    MLFLOW_PANDAS_WARNING,
    PRIMARY,
    REPLAY,
    SECONDARY,
    TestClient,
    app_client,
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
        (f"Bearer {REPLAY}", 401),  # the replay key only goes with a scoring key
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


def test_health_details_need_a_key(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "ready": True}  # probes: no key
    body = client.get("/health", headers=AUTH).json()
    assert body["status"] == "ok" and body["ready"] and body["endpoint"] == "classical-online"
    assert {n: (d["model_version"], d["traffic"]) for n, d in body["deployments"].items()} == {
        "blue": ("3", 100),
        "green": ("4", 0),
    }
    for header in ("Bearer wrong-key", f"Bearer {REPLAY}"):
        refused = client.get("/health", headers={"Authorization": header})
        assert refused.status_code == 401 and "model_path" not in refused.text
        assert refused.json()["error"]["code"] == "unauthorized"
    assert client.get("/ping").status_code == 200
