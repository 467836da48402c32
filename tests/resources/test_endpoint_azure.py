"""`AzureMLOnlineEndpoints` against the `RecordingMLClient` stand-in (tests/azure_standin.py).

Every entity the resource sends is loaded back by azure-ai-ml's own loaders in the
stand-in, which also refuses what the service refuses. Protects: what the endpoint
contract promises on Azure (first deployment takes all traffic, blue/green splits,
mirror traffic, keys, stop/start (a stopped endpoint keeps only a split start can
restore), scale, logs (the SDK's container names), invoke through the scoring URI with the
key), which model reference a deployment gets (prod versions as they are, dev versions
registered under their own name), managed vs Kubernetes entities, errors that name the
resource, and the local-only views failing with a message that says why.
"""

import http.server
import json
import threading
from pathlib import Path

import dagster as dg
import pytest
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Model

from resources import azure_ml
from resources.endpoint import EndpointError
from resources.endpoint_azure import AzureMLOnlineEndpoints
from resources.lake import LocalLake
from tests.azure_standin import RecordingMLClient

ENDPOINT = "classical-online"


@pytest.fixture
def model_dir(tmp_path: Path) -> str:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    return str(folder)


@pytest.fixture
def standin(monkeypatch, model_dir) -> RecordingMLClient:
    client = RecordingMLClient()
    monkeypatch.setattr(azure_ml, "ml_client", client.factory)
    for version in ("1", "2"):  # what the prod workspace's MLflow registry holds
        model = Model(name="flights", version=version, path=model_dir, type=AssetTypes.MLFLOW_MODEL)
        client.models.create_or_update(model)
    return client


def endpoints(**fields) -> AzureMLOnlineEndpoints:
    base = {"subscription_id": "sub", "resource_group": "rg", "workspace": "mlw-prod"}
    return AzureMLOnlineEndpoints(**{**base, **fields})


def bodies(standin: RecordingMLClient, group: str) -> list[dict]:
    return [c.args["body"] for c in standin.calls if c.group == group and "body" in c.args]


def deploy(resource, slot: str, model_dir: str, version: str, endpoint: str = ENDPOINT, **kw):
    labels = {"registry": "prod", **kw}
    return resource.create_or_update_deployment(
        endpoint, slot, model_dir, "flights", version, **labels
    )


def blue_green(standin, model_dir) -> AzureMLOnlineEndpoints:
    resource = endpoints()
    deploy(resource, "blue", model_dir, "1")
    deploy(resource, "green", model_dir, "2")
    return resource


def test_first_deployment_creates_the_endpoint_and_takes_all_traffic(standin, model_dir):
    info = endpoints().create_or_update_deployment(
        ENDPOINT, "blue", model_dir, "flights", "2", registry="prod", source_version="5"
    )
    assert info.traffic == {"blue": 100} and info.running and info.workers == 1
    assert info.scoring_uri == f"https://{ENDPOINT}.westeurope.inference.ml.azure.com/score"
    assert info.deployments["blue"]["version_label"] == "prod v2 (from dev v5)"
    assert info.deployments["blue"]["model_name"] == "flights"
    (endpoint, traffic) = bodies(standin, "online_endpoints")
    assert endpoint["auth_mode"] == "key" and traffic["traffic"] == {"blue": 100}
    (deployment,) = bodies(standin, "online_deployments")
    assert deployment["type"] == "managed" and deployment["instance_type"] == "Standard_DS3_v2"
    assert deployment["model"] == "azureml:flights:2"  # the registered version, as it is
    assert len(bodies(standin, "models")) == 2  # only the two seeded: nothing re-registered


def test_a_dev_version_is_registered_under_its_own_name_once(standin, model_dir):
    resource = endpoints()
    deploy(resource, "blue", model_dir, "3", endpoint="classical-staging", registry="dev")
    deploy(resource, "blue", model_dir, "3", endpoint="classical-staging", registry="dev")
    registered = [b for b in bodies(standin, "models") if b["name"] == "flights-dev"]
    assert len(registered) == 1 and registered[0]["version"] == "3"
    assert registered[0]["type"] == "mlflow_model"
    assert bodies(standin, "online_deployments")[-1]["model"] == "azureml:flights-dev:3"
    assert ("flights", "3") not in standin.models.models  # the prod name gets promotions only


def test_blue_green_split_and_mirror_traffic(standin, model_dir):
    resource = blue_green(standin, model_dir)
    info = resource.get(ENDPOINT)
    assert info.traffic == {"blue": 100, "green": 0}
    assert info.deployments["green"]["instance_count"] == 1
    info = resource.set_traffic(ENDPOINT, {"blue": 90, "green": 10})
    assert info.traffic == {"blue": 90, "green": 10} and info.live_deployment() == "blue"
    info = resource.set_traffic(ENDPOINT, {"blue": 100}, mirror={"green": 20})
    assert info.traffic == {"blue": 100, "green": 0} and info.mirror_traffic == {"green": 20}
    with pytest.raises(EndpointError, match="takes live traffic and cannot be mirrored"):
        resource.set_traffic(ENDPOINT, {"blue": 100}, mirror={"blue": 10})
    with pytest.raises(EndpointError, match="must sum to 100 or 0"):
        resource.set_traffic(ENDPOINT, {"blue": 60, "green": 30})
    with pytest.raises(EndpointError, match=r"has no deployment \['red'\]"):
        resource.set_traffic(ENDPOINT, {"red": 100})
    assert resource.set_traffic(ENDPOINT, {"blue": 100}, mirror={}).mirror_traffic == {}


def test_deleting_a_deployment_that_takes_traffic_is_refused(standin, model_dir):
    resource = blue_green(standin, model_dir)
    with pytest.raises(EndpointError, match="still takes 100%"):
        resource.delete_deployment(ENDPOINT, "blue")
    with pytest.raises(Exception, match="still takes traffic"):  # the service's own rule
        standin.online_deployments.begin_delete(name="blue", endpoint_name=ENDPOINT)
    assert set(resource.delete_deployment(ENDPOINT, "green").deployments) == {"blue"}


def test_keys_rotate_one_slot_at_a_time(standin, model_dir):
    resource = blue_green(standin, model_dir)
    before = resource.get_keys(ENDPOINT)
    assert set(before) == {"primary", "secondary"} and before["primary"] != before["secondary"]
    after = resource.regenerate_key(ENDPOINT, "secondary")
    assert after["primary"] == before["primary"] and after["secondary"] != before["secondary"]
    with pytest.raises(EndpointError, match="key slot must be one of"):
        resource.regenerate_key(ENDPOINT, "replay")


def test_stop_takes_traffic_away_and_start_or_a_deploy_restores_it(standin, model_dir):
    resource = blue_green(standin, model_dir)
    resource.set_traffic(ENDPOINT, {"blue": 90, "green": 10}, mirror={})
    resource.stop(ENDPOINT)
    info = resource.get(ENDPOINT)
    assert not info.running and info.extra["state"] == "stopped"
    assert info.traffic == {"blue": 0, "green": 0}
    info = resource.set_traffic(ENDPOINT, {"blue": 80, "green": 20})  # kept for start
    assert not info.running and info.traffic == {"blue": 0, "green": 0}
    info = resource.start(ENDPOINT)
    assert info.running and info.traffic == {"blue": 80, "green": 20}
    resource.stop(ENDPOINT)
    info = deploy(resource, "green", model_dir, "2")
    assert info.running and info.traffic == {"blue": 80, "green": 20}


def test_a_stopped_endpoint_keeps_only_a_split_start_can_restore(standin, model_dir):
    resource = blue_green(standin, model_dir)
    resource.set_traffic(ENDPOINT, {"blue": 90, "green": 10}, mirror={})
    resource.stop(ENDPOINT)
    with pytest.raises(EndpointError, match=r"green still takes 10% .* when it starts"):
        resource.delete_deployment(ENDPOINT, "green")
    with pytest.raises(EndpointError, match="must sum to 100 or 0, got 90"):
        resource.set_traffic(ENDPOINT, {"blue": 90})
    with pytest.raises(EndpointError, match=r"blue .* takes live traffic and cannot be mirrored"):
        resource.set_traffic(ENDPOINT, {"blue": 100}, mirror={"blue": 10})
    with pytest.raises(EndpointError, match="at most 50%"):
        resource.set_traffic(ENDPOINT, {"blue": 100}, mirror={"green": 60})
    resource.set_traffic(ENDPOINT, {"blue": 100})  # green leaves the kept split ...
    assert set(resource.delete_deployment(ENDPOINT, "green").deployments) == {"blue"}
    info = resource.start(ENDPOINT)  # ... and start restores what was kept
    assert info.running and info.traffic == {"blue": 100}


def test_one_ml_client_per_resource_and_sdk_log_container_names(standin, model_dir):
    resource = blue_green(standin, model_dir)
    resource.set_traffic(ENDPOINT, {"blue": 90, "green": 10})
    resource.get_logs(ENDPOINT, "blue", lines=5, container="storage-initializer")
    assert len(standin.opened) == 1  # not one MLClient (and credential) per call
    assert resource.get_logs(ENDPOINT, "green", lines=5, container="inference-server")
    with pytest.raises(EndpointError, match="log container must be one of"):
        resource.get_logs(ENDPOINT, "blue", container="InferenceServer")  # the REST name
    with pytest.raises(Exception, match="Invalid container type"):  # the SDK's own check
        standin.online_deployments.get_logs("blue", ENDPOINT, 5, container_type="InferenceServer")


def test_scale_sets_the_live_deployments_instances_within_limits(standin, model_dir):
    resource = blue_green(standin, model_dir)
    info = resource.scale(ENDPOINT, 3)
    assert info.workers == 3 and bodies(standin, "online_deployments")[-1]["instance_count"] == 3
    assert resource.get(ENDPOINT).deployments["green"]["instance_count"] == 1
    # a new idle slot starts with the live slot's capacity, ready to take all traffic
    resource.delete_deployment(ENDPOINT, "green")
    deploy(resource, "green", model_dir, "2")
    assert resource.get(ENDPOINT).deployments["green"]["instance_count"] == 3
    with pytest.raises(EndpointError, match="max_instances=4"):
        resource.scale(ENDPOINT, 5)


def test_kubernetes_kind_builds_kubernetes_entities(standin, model_dir):
    resource = endpoints(kind="kubernetes", kubernetes_compute="arc-aks")
    deploy(resource, "blue", model_dir, "1")
    assert bodies(standin, "online_endpoints")[0]["compute"] == "azureml:arc-aks"
    deployment = bodies(standin, "online_deployments")[0]
    assert deployment["type"] == "kubernetes"
    assert deployment["instance_type"] == "defaultinstancetype"
    with pytest.raises(EndpointError, match="needs kubernetes_compute"):
        endpoints(kind="kubernetes").get(ENDPOINT)


def test_a_scoring_script_deployment_carries_code_and_environment(standin, model_dir):
    resource = endpoints(scoring_script="serving/azureml/score.py", environment="mlops-serving:2")
    deploy(resource, "blue", model_dir, "1")
    deployment = bodies(standin, "online_deployments")[0]
    assert deployment["code_configuration"]["scoring_script"] == "serving/azureml/score.py"
    assert deployment["environment"] == "azureml:mlops-serving:2"
    with pytest.raises(EndpointError, match=r"no scoring script serving/score\.py"):
        deploy(endpoints(scoring_script="serving/score.py", environment="e:1"), "green",
               model_dir, "1")  # fmt: skip
    with pytest.raises(EndpointError, match="needs an environment"):
        deploy(endpoints(scoring_script="serving/azureml/score.py"), "green", model_dir, "1")


def test_names_and_provisioning_failures_are_errors_naming_the_resource(standin, model_dir):
    with pytest.raises(EndpointError, match="at least 3 and at most 32"):
        deploy(endpoints(), "blue", model_dir, "1", endpoint="ab")
    resource = blue_green(standin, model_dir)
    standin.fail_next("online_deployments", "OperationFailed: quota exceeded for Standard_DS3_v2")
    with pytest.raises(EndpointError, match=f"deployment green of endpoint {ENDPOINT} failed"):
        deploy(resource, "green", model_dir, "2")
    assert resource.get(ENDPOINT).deployments["green"]["provisioning_state"] == "Failed"
    with pytest.raises(EndpointError, match="does not exist in workspace mlw-prod"):
        resource.get("no-such-endpoint")


class _Scorer(http.server.BaseHTTPRequestHandler):
    """A scoring URI on 127.0.0.1 that answers only the endpoint's primary key."""

    key = ""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ok = self.headers.get("Authorization") == f"Bearer {self.key}"
        reply = {"deployment": self.headers.get("azureml-model-deployment"), "echo": body}
        payload = json.dumps(reply if ok else {"error": "bad key"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        return None


def test_invoke_goes_to_the_scoring_uri_with_the_key_and_logs_are_read(monkeypatch, model_dir):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scorer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        client = RecordingMLClient(scoring_uri=lambda name: f"http://127.0.0.1:{port}/score")
        monkeypatch.setattr(azure_ml, "ml_client", client.factory)
        resource = endpoints()
        deploy(resource, "blue", model_dir, "7", registry="dev")
        _Scorer.key = resource.get_keys(ENDPOINT)["primary"]
        response = resource.invoke(ENDPOINT, {"input_data": {"data": [[1]]}}, deployment="blue")
        assert response.status_code == 200
        assert response.json() == {"deployment": "blue", "echo": {"input_data": {"data": [[1]]}}}
        logs = resource.get_logs(ENDPOINT, "blue", lines=5)
        assert "azureml:flights-dev:7" in logs or "flights-dev:7" in logs
    finally:
        server.shutdown()
        server.server_close()


def test_local_only_views_fail_with_a_reason_and_health_reports_it(standin, model_dir, tmp_path):
    from mlops_assets.monitoring.endpoint_health import build_endpoint_health
    from mlops_assets.scenarios.classical import SPEC

    resource = blue_green(standin, model_dir)
    for view in (resource.worker_metrics, resource.process_stats):
        with pytest.raises(EndpointError, match="Azure Monitor"):
            view(ENDPOINT)
    result = dg.materialize(
        [build_endpoint_health(SPEC)],
        resources={"lake": LocalLake(root=str(tmp_path / "lake")), "endpoints": resource},
        raise_on_error=False,
    )
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "cannot observe classical-online" in str(failure.event_specific_data)
    assert "Azure Monitor" in str(failure.event_specific_data)
    with pytest.raises(EndpointError, match="model data collection"):
        resource.get(ENDPOINT).extra["inference_log_dir"]  # what inference_log reads
