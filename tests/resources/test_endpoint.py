"""The local online endpoint resource against real scoring-server processes.

Protects: the first deployment takes all traffic and later ones none; traffic
and key changes reach the running server by reload; a bad change is refused
before it replaces a working config; stop() ends the process by PID.
"""

from __future__ import annotations

import os

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

from resources.endpoint import EndpointError, LocalOnlineEndpoints

X = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7})


def _model(path, flip: bool = False) -> str:
    y = (X["a"] > 19).astype(int)
    model = LogisticRegression().fit(X, 1 - y if flip else y)
    mlflow.sklearn.save_model(model, path, signature=infer_signature(X, model.predict(X)))
    return str(path)


@pytest.fixture
def endpoints(tmp_path):
    resource = LocalOnlineEndpoints(root=str(tmp_path / "endpoints"))
    yield resource
    for info in resource.list():
        resource.stop(info.name)


def payload(rows: list[list[float]]) -> dict:
    return {"input_data": {"columns": ["a", "b"], "index": list(range(len(rows))), "data": rows}}


def test_deploy_traffic_keys_and_stop(endpoints, tmp_path):
    blue = endpoints.create_or_update_deployment("t-ep", "blue", _model(tmp_path / "m1"), "m", "1")
    assert blue.traffic == {"blue": 100} and blue.running
    green = endpoints.create_or_update_deployment(
        "t-ep", "green", _model(tmp_path / "m2", flip=True), "m", "2"
    )
    assert green.traffic == {"blue": 100, "green": 0}
    assert endpoints.invoke("t-ep", payload([[30.0, 1.0]])).json() == [1]
    assert endpoints.invoke("t-ep", payload([[30.0, 1.0]]), deployment="green").json() == [0]

    endpoints.set_traffic("t-ep", {"green": 100})
    response = endpoints.invoke("t-ep", payload([[30.0, 1.0]]))
    assert response.json() == [0] and response.headers["azureml-model-deployment"] == "green"

    old = endpoints.get_keys("t-ep")
    new = endpoints.regenerate_key("t-ep", "primary")
    assert new["primary"] != old["primary"] and new["secondary"] == old["secondary"]
    assert endpoints.invoke("t-ep", payload([[1.0, 1.0]])).status_code == 200  # new key works

    pid = endpoints.get("t-ep").extra["pid"]
    endpoints.stop("t-ep")
    assert not endpoints.get("t-ep").running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_refused_changes_keep_the_running_config(endpoints, tmp_path):
    endpoints.create_or_update_deployment("t-ep2", "blue", _model(tmp_path / "m1"), "m", "1")
    with pytest.raises(EndpointError, match="no deployment \\['purple'\\]"):
        endpoints.set_traffic("t-ep2", {"purple": 100})
    with pytest.raises(ValueError, match="sum to 100"):
        endpoints.set_traffic("t-ep2", {"blue": 50})
    with pytest.raises(EndpointError, match="move its traffic first"):
        endpoints.delete_deployment("t-ep2", "blue")
    with pytest.raises(EndpointError, match="does not exist"):
        endpoints.get("nope")
    assert endpoints.get("t-ep2").traffic == {"blue": 100}
    assert endpoints.invoke("t-ep2", payload([[30.0, 1.0]])).status_code == 200
