"""Against a real cluster (marker `k8s_live`, not run by `make test`): the manifests work.

Uses the current kubectl context through the kubernetes client and a throwaway
namespace that is deleted afterwards. How to run (docs/kubernetes.md, "Live tests"):

    export MLOPS_K8S_SCORING_IMAGE=$REGISTRY/mlops-scoring:0.1.0  # pushed, pullable
    export MLOPS_K8S_MODEL_URI=models:/classical-flight-delay/1
    export MLOPS_K8S_MODEL_SOURCE_SECRET=mlops-model-source  # optional, see below
    export MLOPS_K8S_SCORE_BODY=request.json  # optional: a body the model scores
    .venv/bin/pytest -m k8s_live tests/deploy/test_k8s_live.py

`MLOPS_K8S_MODEL_SOURCE_SECRET` names a Secret in the `default` namespace whose data
(MLFLOW_TRACKING_URI, storage credentials) the model download needs; it is copied into
the throwaway namespace.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from mlops_assets.k8s_execution import run_launcher_config, step_job
from mlops_core.k8s_manifests import PORT, ScoringDeployment, render_scoring_manifests
from mlops_core.k8s_training import training_op_tags
from tests.deploy.k8s_checks import ROOT

pytestmark = pytest.mark.k8s_live
TIMEOUT_S = float(os.environ.get("MLOPS_K8S_TIMEOUT_S", "600"))


@pytest.fixture(scope="module")
def api() -> Any:
    kubernetes = pytest.importorskip("kubernetes")
    try:
        kubernetes.config.load_kube_config()
    except (kubernetes.config.ConfigException, OSError) as exc:
        pytest.skip(f"no kubectl context to test against: {exc}")
    return kubernetes.client.ApiClient()


@pytest.fixture
def namespace(api: Any) -> Iterator[str]:
    from kubernetes import client

    name = f"mlops-live-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name, "labels": {"mlops/test": "k8s-live"}}})
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Foreground")


def _wait_available(api: Any, namespace: str, name: str, replicas: int) -> None:
    from kubernetes import client

    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        status = apps.read_namespaced_deployment_status(name, namespace).status
        if (status.available_replicas or 0) >= replicas:
            return
        time.sleep(3)
    pods = core.list_namespaced_pod(namespace).items
    states = {p.metadata.name: [c.state.to_dict() for c in p.status.container_statuses or []]
              for p in pods}  # fmt: skip
    pytest.fail(f"{name} not available after {TIMEOUT_S:.0f} s: {json.dumps(states, default=str)}")


def _request(api: Any, namespace: str, pod: str, method: str, path: str, **kw: Any):
    """One HTTP request to the pod's port through the API server's port-forward."""
    from kubernetes import client
    from kubernetes.stream import portforward

    forward = portforward(
        client.CoreV1Api(api).connect_get_namespaced_pod_portforward,
        pod,
        namespace,
        ports=str(PORT),
    )
    conn = http.client.HTTPConnection("pod", PORT, timeout=30)
    conn.sock = forward.socket(PORT)
    try:
        conn.request(method, path, **kw)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
        forward.close()


def test_scoring_deployment_becomes_ready_and_scores(api, namespace):
    from kubernetes import client, utils

    image, model_uri = (
        os.environ.get(k, "") for k in ("MLOPS_K8S_SCORING_IMAGE", "MLOPS_K8S_MODEL_URI")
    )
    if not image or not model_uri:
        pytest.skip("set MLOPS_K8S_SCORING_IMAGE and MLOPS_K8S_MODEL_URI (a pushed image, a model)")
    core = client.CoreV1Api(api)
    source = os.environ.get("MLOPS_K8S_MODEL_SOURCE_SECRET", "")
    if source:
        data = core.read_namespaced_secret(source, "default").data
        core.create_namespaced_secret(namespace, {"metadata": {"name": source}, "data": data})
    key = secrets.token_hex(24)
    keys = {"metadata": {"name": "live-online-keys"}, "stringData": {"primary": key}}
    core.create_namespaced_secret(namespace, keys)
    d = ScoringDeployment(
        endpoint="live-online",
        image=image,
        model_uri=model_uri,
        namespace=namespace,
        replicas=1,
        max_replicas=2,
        model_source_secret=source,
    )
    for manifest in render_scoring_manifests(d):
        utils.create_from_dict(api, manifest, namespace=namespace)
    _wait_available(api, namespace, d.name, replicas=1)
    selector = ",".join(f"{k}={v}" for k, v in d.selector().items())
    pod = core.list_namespaced_pod(namespace, label_selector=selector).items[0].metadata.name

    assert _request(api, namespace, pod, "GET", "/health")[0] == 200
    bearer = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    assert _request(api, namespace, pod, "POST", "/score", body=b"{}")[0] == 401
    status, body = _request(
        api, namespace, pod, "POST", "/score", body=b'{"input_data": 1}', headers=bearer
    )
    assert 400 <= status < 500 and "error" in json.loads(body)
    if os.environ.get("MLOPS_K8S_SCORE_BODY"):
        request = Path(os.environ["MLOPS_K8S_SCORE_BODY"]).read_bytes()
        status, body = _request(api, namespace, pod, "POST", "/score", body=request, headers=bearer)
        assert status == 200, body
    metrics = _request(api, namespace, pod, "GET", "/metrics")[1].decode()
    assert "request_latency_seconds_bucket" in metrics


def test_api_server_accepts_the_gpu_training_step_job(api, namespace):
    """Server-side dry run: admission and the cluster's own schemas, nothing scheduled."""
    from kubernetes import client

    values = yaml.safe_load((ROOT / "deploy" / "helm" / "dagster-values.yaml").read_text())

    @dg.asset(op_tags=training_op_tags("gpu"))
    def candidate_model() -> None: ...

    job = step_job(
        run_launcher_config(values, namespace=namespace),
        candidate_model.op.tags,
        image="mlopsregistry.azurecr.io/mlops-code-location:0.1.0",
        run_id=str(uuid.uuid4()),
        step_key="candidate_model",
        job_name="vision_training_job",
    )
    created = client.BatchV1Api(api).create_namespaced_job(namespace, job, dry_run="All")
    assert created.spec.template.spec.node_selector == {"mlops/pool": "gpu"}
