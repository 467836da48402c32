"""The scoring server's pod: an init container that fetches the model, then the server.

The init container (`python -m mlops_core.scoring_pod`, same image) downloads the
model and writes the serving config with the keys it reads from the Secret; the
config lives in a memory-backed volume. The server runs as the images' numeric
non-root user on a read-only root filesystem, probed on `/health` (answered once the
models are loaded), and writes its inference log to a volume of its own (a folder per
pod on a shared claim, so no two writers share a file).
"""

from __future__ import annotations

import re
from typing import Any

from mlops_core.k8s_scoring import (
    CONFIG_PATH,
    LOG_DIR,
    MODEL_DIR,
    PORT,
    STORES_DIR,
    UID,
    ScoringDeployment,
)


def _model_labels(uri: str) -> tuple[str, str]:
    """(name, version) of a `models:/name/version` URI; ("", "") for anything else."""
    match = re.fullmatch(r"models:/([^/@]+)/([0-9]+)", uri)
    return (match.group(1), match.group(2)) if match else ("", "")


def _env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def _secret_env(name: str, secret: str, key: str, optional: bool) -> dict[str, Any]:
    ref = {"name": secret, "key": key, "optional": optional}
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def _security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _init_container(d: ScoringDeployment) -> dict[str, Any]:
    model_name, model_version = _model_labels(d.model_uri)
    container: dict[str, Any] = {
        "name": "fetch-model",
        "image": d.image,
        "command": ["python", "-m", "mlops_core.scoring_pod"],
        "env": [
            _env("MLOPS_MODEL_URI", d.model_uri),
            _env("MLOPS_MODEL_NAME", model_name),
            _env("MLOPS_MODEL_VERSION", model_version),
            _env("MLOPS_ENDPOINT", d.endpoint),
            _env("MLOPS_DEPLOYMENT", d.deployment),
            _env("MLOPS_MODEL_DIR", MODEL_DIR),
            _env("MLOPS_INFERENCE_LOG_DIR", LOG_DIR),
            _env("MLOPS_SERVING_CONFIG", CONFIG_PATH),
            _env("HOME", "/tmp"),
            _secret_env("MLOPS_ENDPOINT_PRIMARY_KEY", d.secret, "primary", optional=False),
            _secret_env("MLOPS_ENDPOINT_SECONDARY_KEY", d.secret, "secondary", optional=True),
        ],
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": _security(),
        "volumeMounts": [
            {"name": "model", "mountPath": MODEL_DIR},
            {"name": "config", "mountPath": "/etc/mlops"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    if d.model_source_secret:
        container["envFrom"] = [{"secretRef": {"name": d.model_source_secret}}]
    if d.model_claim:
        mount = {"name": "stores", "mountPath": STORES_DIR, "readOnly": True}
        container["volumeMounts"].append(mount)
    return container


def _server_container(d: ScoringDeployment) -> dict[str, Any]:
    def probe(period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": failures,
        }

    log_mount: dict[str, Any] = {"name": "inference-log", "mountPath": LOG_DIR}
    if d.log_claim:  # one folder per pod on the shared volume: no two writers share a file
        log_mount["subPathExpr"] = "$(POD_NAME)"
    return {
        "name": "scoring",
        "image": d.image,
        "command": [
            *("python", "-m", "serving", "--config", CONFIG_PATH),
            *("--host", "0.0.0.0", "--port", str(PORT)),
        ],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [
            _env("MLOPS_SERVING_CONFIG", CONFIG_PATH),
            _env("HOME", "/tmp"),
            _env("OMP_NUM_THREADS", "1"),  # one event loop per pod; scale out with replicas
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "resources": {
            "requests": {"cpu": d.cpu, "memory": d.memory},
            "limits": {"cpu": d.cpu, "memory": d.memory},
        },
        "startupProbe": probe(period=2, failures=90),  # model load: up to 3 minutes
        "readinessProbe": probe(period=5, failures=2),
        "livenessProbe": probe(period=10, failures=6),
        # let the Service drop this pod before SIGTERM starts uvicorn's graceful shutdown
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
        "securityContext": _security(),
        "volumeMounts": [
            {"name": "model", "mountPath": MODEL_DIR, "readOnly": True},
            {"name": "config", "mountPath": "/etc/mlops", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            log_mount,
        ],
    }


def deployment_manifest(d: ScoringDeployment) -> dict[str, Any]:
    log_volume: dict[str, Any] = (
        {"persistentVolumeClaim": {"claimName": d.log_claim}}
        if d.log_claim
        else {"emptyDir": {"sizeLimit": d.log_storage}}
    )
    pod_spec = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [_init_container(d)],
        "containers": [_server_container(d)],
        "volumes": [
            {"name": "model", "emptyDir": {}},
            {"name": "config", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "inference-log", **log_volume},
            *(
                [{"name": "stores", "persistentVolumeClaim": {"claimName": d.model_claim}}]
                if d.model_claim
                else []
            ),
        ],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": d.selector()},
            }
        ],
    }
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORT)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": d.meta(d.name),
        "spec": {
            "replicas": d.replicas,
            "selector": {"matchLabels": d.selector()},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": d.labels(),
                    "annotations": {**scrape, "prometheus.io/path": "/metrics"},
                },
                "spec": pod_spec,
            },
        },
    }
