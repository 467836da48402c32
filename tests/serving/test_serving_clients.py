"""MLflow's and Azure ML's own client code against a real `python -m serving` process.

Protects (issue 9, item 6), and is what docs/serving-clients.md points to:
- what MLflow's `ScoringServerClient` calls without a key works unchanged (`/ping`,
  `/version`); its `invoke`, which cannot send the endpoint key, gets a 401;
- the documented replacement (requests with `Authorization: Bearer`, MLflow's own
  `dump_input_data` and `PredictionsResponse`) gets MLflow's answers for JSON and CSV
  bodies, extra columns (ignored, listed in `x-mlops-ignored-columns`) and class
  probabilities (`params: {"output": "probabilities"}` or `?output=probabilities`);
- Azure ML's "consume" sample (urllib, Bearer key, `azureml-model-deployment`) works
  unchanged against `/score`, probabilities included.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.serving.conftest import COLUMNS, MLFLOW_PANDAS_WARNING, PRIMARY, Server, rows

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings(f"ignore:{MLFLOW_PANDAS_WARNING}"),
]


@pytest.fixture
def blue(serve: Callable[[Path], Server], write_config: Callable[..., Path]) -> Server:
    """A server whose blue deployment (LogisticRegression pipeline) takes all traffic."""
    return serve(write_config())


def _sklearn(models: dict[str, Path], name: str) -> Any:
    """The deployment's model as sklearn loads it (to compute the expected answers)."""
    import mlflow.sklearn

    return mlflow.sklearn.load_model(str(models[name]))


def test_mlflow_scoring_client_needs_the_documented_replacement(
    blue: Server, models: dict[str, Path]
) -> None:
    import mlflow
    import requests
    from mlflow.deployments import PredictionsResponse
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient
    from mlflow.utils.proto_json_utils import dump_input_data

    host, port = blue.url.removeprefix("http://").split(":")
    client = ScoringServerClient(host, int(port))
    client.wait_server_ready(timeout=30)  # GET /ping, no key
    assert client.get_version() == mlflow.__version__  # GET /version, no key
    frame = pd.DataFrame(rows(6, seed=21), columns=COLUMNS)
    with pytest.raises(Exception, match="error code 401"):  # it sends no Authorization header
        client.invoke(frame)

    session = requests.Session()  # what docs/serving-clients.md says to use instead
    session.headers["Authorization"] = f"Bearer {PRIMARY}"
    invocations = f"{blue.url}/invocations"
    json_type = {"Content-Type": "application/json"}
    expected = _sklearn(models, "blue").predict(frame).tolist()

    answer = session.post(invocations, data=dump_input_data(frame), headers=json_type)
    assert answer.status_code == 200, answer.text
    assert PredictionsResponse.from_json(answer.text).get_predictions("ndarray").tolist() == (
        expected
    )
    assert "x-mlops-ignored-columns" not in answer.headers

    wider = frame.assign(altitude=10000.0, tail_number="N123")  # MLflow ignores extra columns
    answer = session.post(invocations, data=dump_input_data(wider), headers=json_type)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == expected
    assert json.loads(answer.headers["x-mlops-ignored-columns"]) == ["altitude", "tail_number"]

    csv = {"Content-Type": "text/csv"}
    answer = session.post(invocations, data=frame.to_csv(), headers=csv)  # index column too
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == expected
    assert json.loads(answer.headers["x-mlops-ignored-columns"]) == [""]  # the unnamed index


def test_probabilities_keep_mlflows_response_shape(blue: Server, models: dict[str, Path]) -> None:
    import requests
    from mlflow.deployments import PredictionsResponse
    from mlflow.utils.proto_json_utils import dump_input_data

    frame = pd.DataFrame(rows(5, seed=8), columns=COLUMNS)
    model = _sklearn(models, "blue")
    classes, expected = [str(c) for c in model.classes_], model.predict_proba(frame)
    auth = {"Authorization": f"Bearer {PRIMARY}"}

    answer = requests.post(
        f"{blue.url}/invocations",
        data=dump_input_data(frame, params={"output": "probabilities"}),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    table = PredictionsResponse.from_json(answer.text).get_predictions()  # a DataFrame
    assert list(table.columns) == classes
    np.testing.assert_allclose(table.to_numpy(), expected)

    csv = requests.post(
        f"{blue.url}/invocations?output=probabilities",
        data=frame.to_csv(index=False),
        headers={**auth, "Content-Type": "text/csv"},
    )
    assert csv.status_code == 200, csv.text
    assert csv.json() == answer.json()


def test_azure_ml_consume_sample_works_unchanged(blue: Server, models: dict[str, Path]) -> None:
    data_rows = rows(3, seed=4)
    data = {
        "input_data": {"columns": COLUMNS, "index": [0, 1, 2], "data": data_rows},
        "params": {"output": "probabilities"},
    }
    headers = {  # as the sample on an endpoint's "Consume" page builds them
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": "Bearer " + PRIMARY,
        "azureml-model-deployment": "green",
    }
    request = urllib.request.Request(f"{blue.url}/score", json.dumps(data).encode(), headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
        assert response.headers["azureml-model-deployment"] == "green"
        assert response.headers["x-mlops-model"] == "flights v4"
    model = _sklearn(models, "green")
    classes = [str(c) for c in model.classes_]
    assert [list(row) for row in answer] == [classes] * 3
    got = [[row[c] for c in classes] for row in answer]
    frame = pd.DataFrame(data_rows, columns=COLUMNS)
    np.testing.assert_allclose(got, model.predict_proba(frame))
