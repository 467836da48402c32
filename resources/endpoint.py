"""Online endpoints: deployments, traffic, keys - modelled on azure-ai-ml's online endpoints.

The vocabulary follows `az ml online-endpoint` / `online-deployment`: an
endpoint has named deployments (blue, green), a traffic split in percent,
optional mirror traffic and two keys. The control plane only talks to this
interface; the data plane (serving/) never imports Dagster.

Implementations: `resources.endpoint_local.LocalOnlineEndpoints` (scoring-server
processes on 127.0.0.1) and `resources.endpoint_azure.AzureMLOnlineEndpoints` (Azure ML
managed or Kubernetes online endpoints, built with azure-ai-ml entities).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg

from serving.labels import version_label

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import httpx

KEY_SLOTS = ("primary", "secondary")


class EndpointError(RuntimeError):
    """An endpoint operation that cannot proceed; the message says what to do."""


def deployment_view(deployment: dict[str, Any]) -> dict[str, Any]:
    """A deployment's stored config plus `version_label` (`prod v2 (from dev v3)`, or `v2` for
    deployments recorded without a registry)."""
    label = version_label(
        str(deployment.get("model_version", "")),
        deployment.get("registry"),
        deployment.get("source_version"),
    )
    return {**deployment, "version_label": label}


@dataclass
class EndpointInfo:
    """What an endpoint is and does now.

    `scoring_uri` is the endpoint's stable address, also while it is stopped (None only
    before it was ever started); `running` is whether something of it answers there now;
    `workers` counts its live worker processes. `deployments` are `deployment_view`s.
    """

    name: str
    scoring_uri: str | None
    traffic: dict[str, int]
    mirror_traffic: dict[str, int]
    deployments: dict[str, dict[str, Any]]
    running: bool
    workers: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def live_deployment(self) -> str | None:
        """The deployment taking most traffic (the 'blue' of a blue/green pair)."""
        return max(self.traffic, key=self.traffic.get) if self.traffic else None


class OnlineEndpoints(dg.ConfigurableResource, ABC):
    """Interface to online endpoints (local scoring server or Azure ML)."""

    @abstractmethod
    def create_or_update_deployment(
        self,
        endpoint: str,
        deployment: str,
        model_dir: str,
        model_name: str,
        model_version: str,
        *,
        registry: str | None = None,
        source_version: str | None = None,
    ) -> EndpointInfo:
        """Create the endpoint if needed and (re)deploy a model, and start the endpoint; a
        new endpoint's first deployment takes all traffic, later ones start with none.

        `registry` names the registry `model_version` belongs to ("prod", "dev"), and
        `source_version` the dev version a prod version was promoted from; both are kept
        with the deployment and shown (`/health`, `mlops endpoint list`, `x-mlops-model`)."""

    @abstractmethod
    def set_traffic(
        self, endpoint: str, traffic: dict[str, int], mirror: dict[str, int] | None = None
    ) -> EndpointInfo: ...

    @abstractmethod
    def delete_deployment(self, endpoint: str, deployment: str) -> EndpointInfo: ...

    @abstractmethod
    def get(self, endpoint: str) -> EndpointInfo: ...

    @abstractmethod
    def list(self) -> list[EndpointInfo]: ...

    @abstractmethod
    def get_keys(self, endpoint: str) -> dict[str, str]: ...

    @abstractmethod
    def regenerate_key(self, endpoint: str, slot: str) -> dict[str, str]: ...

    @abstractmethod
    def stop(self, endpoint: str) -> None: ...

    @abstractmethod
    def scale(self, endpoint: str, workers: int) -> EndpointInfo:
        """Run `workers` serving processes (instances) behind the endpoint's one address;
        raises EndpointError beyond the implementation's limit."""

    def process_stats(self, endpoint: str, interval_s: float = 0.5) -> dict[str, Any]:
        """CPU and memory per worker and in total (where the implementation can see them)."""
        raise EndpointError(f"{type(self).__name__} does not report process stats")

    def worker_metrics(self, endpoint: str) -> dict[str, str]:
        """Prometheus text of each worker, keyed by worker id."""
        raise EndpointError(f"{type(self).__name__} does not expose per-worker metrics")

    def invoke(
        self,
        endpoint: str,
        payload: dict[str, Any],
        deployment: str | None = None,
        path: str = "/score",
        timeout: float = 30.0,
    ) -> httpx.Response:
        import httpx

        info = self.get(endpoint)
        if not info.running or not info.scoring_uri:
            raise EndpointError(
                f"endpoint {endpoint} is not running (`mlops endpoint serve {endpoint}` starts it)"
            )
        headers = {"Authorization": f"Bearer {self.get_keys(endpoint)['primary']}"}
        if deployment:
            headers["azureml-model-deployment"] = deployment
        base = info.scoring_uri.rsplit("/", 1)[0]
        return httpx.post(base + path, json=payload, headers=headers, timeout=timeout)
