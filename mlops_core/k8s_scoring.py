"""What a Kubernetes online deployment of the scoring server is made from, validated.

`ScoringDeployment` holds the inputs of `mlops_core.k8s_manifests` (endpoint and
deployment names, image, model URI, replicas, resources, targets) and refuses a bad one
with every problem named; the constants are the paths, port and user the images and
`mlops_core.scoring_pod` agree on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PORT = 8080
UID = 10001  # the images' USER; runAsNonRoot needs a numeric one
CONFIG_PATH = "/etc/mlops/serving.json"
MODEL_DIR = "/models"
LOG_DIR = "/var/lib/mlops/inference"
STORES_DIR = "/mnt/mlops"  # MLOPS_HOME in the Dagster pods (deploy/helm/dagster-values.yaml)
LATENCY_METRIC = "scoring_request_latency_p95_seconds"  # prometheus-adapter's name for it
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$")


@dataclass(frozen=True)
class ScoringDeployment:
    """What to serve and how: one endpoint deployment of the scoring server."""

    endpoint: str
    image: str
    model_uri: str
    deployment: str = "blue"
    namespace: str = "mlops"
    replicas: int = 2
    max_replicas: int = 10
    cpu: str = "1"
    memory: str = "2Gi"
    cpu_target_percent: int = 70
    latency_target_s: float = 0.25
    keys_secret: str = ""  # default: <endpoint>-keys
    model_source_secret: str = ""  # env for the model download (MLFLOW_TRACKING_URI, ...)
    # the claim holding MLOPS_HOME, when the registry's artifacts are files there (read-only)
    model_claim: str = ""
    log_claim: str = ""  # a ReadWriteMany claim for the inference log; "" keeps it per pod
    log_storage: str = "20Gi"

    def __post_init__(self) -> None:
        problems = [
            f"{field} must be a DNS label (lowercase letters, digits, '-'), got {value!r}"
            for field, value in (
                ("endpoint", self.endpoint),
                ("deployment", self.deployment),
                ("namespace", self.namespace),
            )
            if not _DNS_LABEL.match(value) or len(value) > 32
        ]
        if len(self.name) > 63:
            problems.append(f"'{self.name}' (endpoint-deployment) is over 63 characters")
        tag = self.image.rsplit("/", 1)[-1]
        if "@sha256:" not in self.image and (":" not in tag or tag.endswith(":latest")):
            problems.append(f"image must name a fixed tag or digest, got {self.image!r}")
        if not self.model_uri.strip():
            problems.append("model_uri is empty")
        if not 1 <= self.replicas <= self.max_replicas:
            problems.append(f"need 1 <= replicas ({self.replicas}) <= max_replicas")
        problems += [
            f"{field} {value!r} is not a Kubernetes quantity"
            for field, value in (("cpu", self.cpu), ("memory", self.memory))
            if not _QUANTITY.match(value)
        ]
        if not 0 < self.latency_target_s <= 60 or not 0 < self.cpu_target_percent <= 100:
            problems.append("latency_target_s must be in (0, 60], cpu_target_percent in (0, 100]")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def name(self) -> str:
        return f"{self.endpoint}-{self.deployment}"

    @property
    def secret(self) -> str:
        return self.keys_secret or f"{self.endpoint}-keys"

    def labels(self) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": "mlops-scoring",
            "app.kubernetes.io/instance": self.endpoint,
            "app.kubernetes.io/component": "online-endpoint",
            "app.kubernetes.io/part-of": "mlops",
            "mlops/deployment": self.deployment,
        }

    def selector(self) -> dict[str, str]:
        keys = ("app.kubernetes.io/instance", "mlops/deployment")
        return {k: v for k, v in self.labels().items() if k in keys}

    def meta(self, name: str) -> dict[str, Any]:
        return {"name": name, "namespace": self.namespace, "labels": self.labels()}
