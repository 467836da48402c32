"""The scoring server's Kubernetes manifests and the images, checked offline.

Protects: every rendered manifest (and the committed ones under deploy/k8s/) is valid
under the Kubernetes schemas of the oldest and newest supported versions, and the check
can fail; the pod is wired the way the server works (probes on /health at the named
port, keys from the Secret and never in a manifest, a non-root numeric user that matches
the images); the HPA's latency metric is the one prometheus-adapter derives from the
histogram the real server exports; bad inputs are refused with the problem named; the
committed example is exactly what the renderer prints; the Dockerfiles agree with
pyproject.toml (pins, packages) and copy only what exists and is not ignored.
"""

from __future__ import annotations

import copy
import fnmatch
import importlib.util
import re
import shlex
from typing import Any

import pytest
import yaml
from kubernetes.utils import parse_quantity

from mlops_core import k8s_manifests
from mlops_core.k8s_manifests import ScoringDeployment, render_scoring_manifests
from serving.metrics import Metrics
from tests.deploy.k8s_checks import (
    PYPROJECT,
    ROOT,
    dockerfile,
    image_title,
    image_uid,
    image_version,
    schema_errors,
)

IMAGE = "mlopsregistry.azurecr.io/mlops-scoring:0.1.0"
VARIANTS = {
    "defaults": {},
    "shared_volumes": {
        "log_claim": "inference-logs",
        "model_claim": "mlops-home",
        "model_source_secret": "mlflow-env",
    },
    "single_replica": {"replicas": 1, "max_replicas": 1, "deployment": "green"},
}


def scoring(**overrides: Any) -> ScoringDeployment:
    fields = {"endpoint": "classical-online", "image": IMAGE, "model_uri": "models:/flights/3"}
    return ScoringDeployment(**{**fields, **overrides})


def by_kind(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["kind"]: m for m in manifests}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_rendered_manifest_passes_the_kubernetes_schemas(variant):
    manifests = render_scoring_manifests(scoring(**VARIANTS[variant]))
    expected = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    if "log_claim" in VARIANTS[variant]:
        expected.add("PersistentVolumeClaim")
    assert {m["kind"] for m in manifests} == expected
    assert [e for m in manifests for e in schema_errors(m)] == []


# *-values.yaml are Helm chart values (checked by the autoscaler test), not manifests
COMMITTED = sorted(p for p in (ROOT / "deploy" / "k8s").glob("*.yaml") if "-values" not in p.name)


@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_manifests_pass_the_kubernetes_schemas(path):
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert documents, f"{path.name} has no manifest"
    assert [e for d in documents for e in schema_errors(d)] == []


def test_the_schema_check_rejects_bad_fields_and_types():
    deployment = by_kind(render_scoring_manifests(scoring()))["Deployment"]
    typo = copy.deepcopy(deployment)
    container = typo["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbes"] = container.pop("readinessProbe")
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    assert any("readinessProbes" in e for e in schema_errors(typo))
    assert any("replicas" in e for e in schema_errors(wrong_type))


def test_pod_probes_users_and_keys_match_the_server_and_images():
    d = scoring(model_source_secret="mlflow-env", model_claim="mlops-home")
    pod = by_kind(render_scoring_manifests(d))["Deployment"]["spec"]["template"]["spec"]
    (init,), (server,) = pod["initContainers"], pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert ports == {"http": k8s_manifests.PORT}
    assert server["command"][:3] == ["python", "-m", "serving"]
    # the server reads the file the init container writes
    written = next(e["value"] for e in init["env"] if e["name"] == "MLOPS_SERVING_CONFIG")
    assert server["command"][server["command"].index("--config") + 1] == written
    assert server["command"][-1] == str(ports["http"])
    assert importlib.util.find_spec("serving.__main__") is not None
    assert importlib.util.find_spec(init["command"][2]) is not None  # mlops_core.scoring_pod
    # non-root, as the images' numeric USER; nothing writable but the volumes
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid("scoring") == k8s_manifests.UID
    for container in (init, server):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["image"] == IMAGE
        limits, requests = container["resources"]["limits"], container["resources"]["requests"]
        assert parse_quantity(limits["memory"]) >= parse_quantity(requests["memory"])
    # keys come from the Secret by reference; no env value of any container carries one
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in init["env"] if "valueFrom" in e}
    assert refs["MLOPS_ENDPOINT_PRIMARY_KEY"] == {
        "name": "classical-online-keys",
        "key": "primary",
        "optional": False,
    }
    assert refs["MLOPS_ENDPOINT_SECONDARY_KEY"]["optional"] is True
    assert init["envFrom"] == [{"secretRef": {"name": "mlflow-env"}}]
    # the registry's artifact files, where the Dagster pods write them, read-only
    stores = next(m for m in init["volumeMounts"] if m["name"] == "stores")
    assert stores == {"name": "stores", "mountPath": "/mnt/mlops", "readOnly": True}
    assert "stores" not in {m["name"] for m in server["volumeMounts"]}
    plain = {e["name"]: e.get("value") for c in (init, server) for e in c["env"]}
    assert not [name for name, value in plain.items() if "KEY" in name and value is not None]
    assert plain["MLOPS_MODEL_NAME"] == "flights" and plain["MLOPS_MODEL_VERSION"] == "3"
    config_volume = next(v for v in pod["volumes"] if v["name"] == "config")
    assert config_volume["emptyDir"]["medium"] == "Memory"  # the written keys stay off disk


def test_a_new_colour_can_be_rendered_without_taking_the_service():
    kinds = {m["kind"] for m in render_scoring_manifests(scoring(deployment="green"), False)}
    assert kinds == {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"}


def test_service_budget_and_autoscaler_target_this_deployment():
    d = scoring(deployment="green", replicas=3, max_replicas=12)
    kinds = by_kind(render_scoring_manifests(d))
    pod_labels = kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        kinds["Service"]["spec"]["selector"],
        kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        kinds["Deployment"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= pod_labels.items() and selector["mlops/deployment"] == "green"
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == kinds["Deployment"]["metadata"]["name"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 12)


def test_autoscaler_scales_on_cpu_and_on_the_latency_the_server_exports():
    hpa = by_kind(render_scoring_manifests(scoring(latency_target_s=0.2)))[
        "HorizontalPodAutoscaler"
    ]
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    pods = metrics["Pods"]["pods"]
    assert pods["target"] == {"type": "AverageValue", "averageValue": "200m"}
    adapter = yaml.safe_load(
        (ROOT / "deploy" / "k8s" / "prometheus-adapter-values.yaml").read_text()
    )
    (rule,) = adapter["rules"]["custom"]
    assert rule["name"]["as"] == pods["metric"]["name"] == k8s_manifests.LATENCY_METRIC
    series = re.match(r"^(\w+)\{", rule["seriesQuery"]).group(1)
    assert re.fullmatch(rule["name"]["matches"], series)
    # the series exists in what the real server's metrics registry renders
    server_metrics = Metrics()
    server_metrics.observe("blue", 200, 0.01)
    exported = {line.split("{")[0] for line in server_metrics.render().decode().splitlines()}
    assert series in exported


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"endpoint": "Classical_Online"}, "endpoint must be a DNS label"),
        ({"deployment": "blue-"}, "deployment must be a DNS label"),
        ({"image": "registry/mlops-scoring"}, "fixed tag"),
        ({"image": "registry/mlops-scoring:latest"}, "fixed tag"),
        ({"model_uri": " "}, "model_uri is empty"),
        ({"replicas": 0}, "replicas"),
        ({"replicas": 5, "max_replicas": 4}, "replicas"),
        ({"memory": "lots"}, "memory 'lots' is not a Kubernetes quantity"),
        ({"latency_target_s": 0}, "latency_target_s"),
    ],
)
def test_bad_inputs_are_refused_with_the_problem_named(overrides, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        scoring(**overrides)


def test_a_digest_pinned_image_is_accepted():
    digest = "registry/mlops-scoring@sha256:" + "a" * 64
    assert scoring(image=digest).image == digest


def test_committed_example_is_what_the_renderer_prints(capsys):
    path = ROOT / "deploy" / "k8s" / "scoring-classical-online.yaml"
    text = path.read_text()
    command = next(
        line for line in text.splitlines() if "python -m mlops_core.k8s_manifests" in line
    )
    argv = shlex.split(command.split("python -m mlops_core.k8s_manifests", 1)[1])
    assert k8s_manifests.main(argv) == 0
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#")) + "\n"
    assert capsys.readouterr().out == body
    pod = by_kind(list(yaml.safe_load_all(body)))["Deployment"]["spec"]["template"]["spec"]
    name, tag = pod["containers"][0]["image"].rsplit("/", 1)[1].split(":")
    assert (name, tag) == (image_title("scoring"), PYPROJECT["project"]["version"])


def test_cli_refuses_bad_input_with_status_2(capsys):
    argv = ["--endpoint", "classical-online", "--image", "reg/x", "--model-uri", "models:/m/1"]
    assert k8s_manifests.main(argv) == 2
    assert "image must name a fixed tag" in capsys.readouterr().err


def _dockerignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p.removeprefix("**/")) for p in patterns)


@pytest.mark.parametrize("name", ["code-location", "scoring"])
def test_dockerfiles_agree_with_pyproject_and_the_build_context(name):
    text = dockerfile(name)
    assert image_version(name) == PYPROJECT["project"]["version"]
    torch_pin = next(d for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch=="))
    assert f"pip install {torch_pin}" in text
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = re.findall(r"^COPY (\S+) ", text, re.MULTILINE)
    for source in copied:
        assert (ROOT / source).exists(), f"{name}: COPY {source} does not exist"
        assert not _dockerignored(source, ignored), f"{name}: COPY {source} is .dockerignored"
    # every package setuptools installs is in the build context (pip install would miss it)
    packages = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {p.rstrip("*") for p in packages} <= set(copied)
