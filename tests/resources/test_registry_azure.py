"""`AzureMLRegistry`: tracking URIs from the workspaces, then MLflow end to end.

The `RecordingMLClient` stand-in answers `workspaces.get(name)` with a `Workspace` entity
whose `mlflow_tracking_uri` is where a real workspace's would point: here the prod
workspace's is a real `mlflow server` on 127.0.0.1 (artifacts proxied through it, as Azure
ML's are), the dev workspace's a SQLite store. Protects: each stage resolves its own
workspace's URI, once per resource; an unknown workspace is an error naming it; register,
alias, promote (copying the model through the server) and download work on those URIs.
"""

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError

from resources import azure_ml
from resources.registry import AzureMLRegistry
from tests.azure_standin import RecordingMLClient
from tests.conftest import free_port
from tests.processes import stop_group


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` on 127.0.0.1 with a SQLite store; stopped (its process group) after."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
         "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield url
    finally:
        stop_group(proc, timeout=20)
        log.close()


@pytest.fixture
def workspaces(mlflow_server, tmp_path, monkeypatch):
    standin = RecordingMLClient(
        workspaces={"mlw-dev": f"sqlite:///{tmp_path}/dev.db", "mlw-prod": mlflow_server}
    )
    monkeypatch.setattr(azure_ml, "ml_client", standin.factory)
    return standin


def registry(**fields) -> AzureMLRegistry:
    names = {"dev_workspace": "mlw-dev", "prod_workspace": "mlw-prod", **fields}
    return AzureMLRegistry(subscription_id="sub", resource_group="rg", **names)


def test_each_stage_resolves_its_workspace_once(workspaces, mlflow_server, tmp_path):
    reg = registry()
    assert reg.tracking_uri("prod") == mlflow_server
    assert reg.tracking_uri("dev") == f"sqlite:///{tmp_path}/dev.db"
    reg.tracking_uri("prod")
    assert [c.args["name"] for c in workspaces.calls] == ["mlw-prod", "mlw-dev"]
    assert workspaces.opened == [("sub", "rg", "mlw-prod"), ("sub", "rg", "mlw-dev")]
    with pytest.raises(ResourceNotFoundError, match="workspace mlw-nope not found"):
        registry(prod_workspace="mlw-nope").tracking_uri("prod")


def test_register_promote_and_download_through_the_workspace_uris(workspaces, tmp_path):
    reg = registry()
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "weights.bin").write_bytes(b"\x00\x01" * 64)
    dev = reg.client("dev")
    run = dev.create_run(reg.ensure_experiment("flights"))
    dev.log_metric(run.info.run_id, "roc_auc_holdout", 0.81)
    dev.log_artifacts(run.info.run_id, str(model), "model")
    dev.set_terminated(run.info.run_id)
    name = f"flights-{tmp_path.name[-12:]}"
    registered = reg.register(name, f"{run.info.artifact_uri}/model", run.info.run_id,
                              {"mlops.dataset_root": "d1"}, alias="challenger")  # fmt: skip
    assert reg.version_by_alias(name, "challenger").version == registered.version

    version = str(registered.version)
    promoted = reg.promote(name, version, tags={"mlops.approved_by": "priya"})
    assert reg.version_by_alias(name, "champion", "prod").version == promoted.version
    assert promoted.tags["mlops.source_version"] == version
    prod_run = reg.client("prod").get_run(promoted.run_id)
    assert prod_run.data.metrics["roc_auc_holdout"] == pytest.approx(0.81)
    assert promoted.source.startswith("mlflow-artifacts:")  # stored behind the server
    folder = Path(reg.download_model(name, promoted.version, "prod"))
    assert (folder / "weights.bin").read_bytes() == (model / "weights.bin").read_bytes()
