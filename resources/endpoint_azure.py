"""`AzureMLOnlineEndpoints`: the `OnlineEndpoints` interface on Azure ML online endpoints.

`kind` picks a managed online endpoint (`ManagedOnlineEndpoint` + `ManagedOnlineDeployment`
on `instance_type` VMs) or a Kubernetes one (`KubernetesOnlineEndpoint` on the attached
compute `kubernetes_compute`, e.g. an Arc-enabled AKS cluster, + `KubernetesOnlineDeployment`).
Endpoints use key auth (`Authorization: Bearer <key>`, primary and secondary), as the local
scoring server does, so probes and clients are the same code.

Models: the workspace's MLflow registry is its model registry, so a version of the
registry that lives in this workspace (`registry_stage`, prod by default) deploys as
`azureml:<name>:<version>`; a version from another registry (dev on a staging endpoint) is
registered from its folder as `<name>-<registry>` (see `azure_ml.model_reference`). Without
`scoring_script` the deployment is a no-code MLflow deployment; with it, the deployment runs
that script (`init()`/`run()`, the Azure ML inference server contract) in `environment`.

Decisions:
- `stop`: a managed endpoint has no stopped state and its deployments need at least one
  instance. Stopping sets all live and mirror traffic to 0 (the endpoint answers no
  scoring request; instances are still billed) and keeps the previous split in the endpoint
  tag `mlops.stopped_traffic`; `start` or the next deploy restores it. Traffic set while
  stopped is kept for `start`, as the local resource does. `delete_endpoint` stops billing.
- `scale` sets `instance_count` of the deployment taking most traffic (`workers` reports it).
- Per-worker Prometheus text and process stats exist only for the local server: Azure
  reports endpoint metrics through Azure Monitor, so those calls raise `EndpointError`
  saying so (`endpoint_health` turns that into a clear run failure).
All SDK calls go through `resources.azure_ml` (one `MLClient` factory, one LRO helper).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, PrivateAttr

from resources import azure_ml
from resources.endpoint import KEY_SLOTS, EndpointError, EndpointInfo, OnlineEndpoints
from resources.endpoint_azure_entities import (
    STOPPED_TAG,
    build_deployment,
    check_split,
    endpoint_info,
    live_deployment,
    new_endpoint,
    stopped_split,
    traffic_share,
)

# azure.ai.ml.constants.EndpointDeploymentLogContainerType, the names get_logs accepts
LOG_CONTAINERS = ("inference-server", "storage-initializer")
NO_WORKER_VIEW = (
    "Azure ML endpoints report CPU, memory and latency through Azure Monitor metrics "
    "(the endpoint's Metrics page), not per-worker Prometheus text; endpoint health and "
    "autoscaling on Azure are Azure Monitor's (see docs/azure.md)"
)


class AzureMLOnlineEndpoints(OnlineEndpoints):
    """Online endpoints in one Azure ML workspace (MLOps v2: the prod workspace)."""

    subscription_id: str
    resource_group: str
    workspace: str = Field(description="Workspace holding the endpoints.")
    kind: Literal["managed", "kubernetes"] = Field(
        default="managed", description="Managed online endpoint, or Kubernetes (Arc) compute."
    )
    kubernetes_compute: str | None = Field(
        default=None, description="Attached Kubernetes compute name (kind=kubernetes)."
    )
    instance_type: str | None = Field(
        default=None, description="VM size (managed) or instance type (Kubernetes)."
    )
    instance_count: int = Field(default=1, description="Instances of a new deployment.")
    max_instances: int = Field(default=4, description="Most instances `scale` may set.")
    environment: str | None = Field(
        default=None, description="Environment (`name:version`) running `scoring_script`."
    )
    scoring_code: str | None = Field(default=None, description="Folder holding the script.")
    scoring_script: str | None = Field(
        default=None, description="Script with init()/run(); none: no-code MLflow deployment."
    )
    registry_stage: str = Field(
        default="prod", description="The model registry that is this workspace's own."
    )
    lro_timeout_s: float = Field(default=3600.0, description="Longest wait on an operation.")
    # one MLClient (and credential, with its token cache) per resource instance
    _client: Any = PrivateAttr(default=None)

    # -- plumbing ------------------------------------------------------------------------
    def _ml(self) -> Any:
        if self.kind == "kubernetes" and not self.kubernetes_compute:
            raise EndpointError("kind=kubernetes needs kubernetes_compute (the attached compute)")
        if self._client is None:
            self._client = azure_ml.ml_client(
                self.subscription_id, self.resource_group, self.workspace
            )
        return self._client

    def _wait(self, start: Any, what: str) -> Any:
        return azure_ml.wait(start, what, self.lro_timeout_s, EndpointError)

    def _endpoint(self, ml: Any, name: str) -> Any:
        found = azure_ml.get_or_none(ml.online_endpoints.get, name)
        if found is None:
            raise EndpointError(
                f"endpoint {name!r} does not exist in workspace {self.workspace}; "
                "deploy a model to create it"
            )
        return found

    def _update(self, ml: Any, endpoint: Any, what: str) -> None:
        self._wait(lambda: ml.online_endpoints.begin_create_or_update(endpoint), what)

    # -- interface -------------------------------------------------------------------------
    def create_or_update_deployment(
        self, endpoint, deployment, model_dir, model_name, model_version, *,
        registry=None, source_version=None,
    ):  # fmt: skip
        ml = self._ml()
        ep = azure_ml.get_or_none(ml.online_endpoints.get, endpoint)
        if ep is None:
            new = new_endpoint(endpoint, self.kind, self.kubernetes_compute)
            ep = self._wait(lambda: ml.online_endpoints.begin_create_or_update(new), endpoint)
        labels = {"model_name": model_name, "model_version": str(model_version),
                  "registry": registry, "source_version": source_version}  # fmt: skip
        tags = {f"mlops.{k}": str(v) for k, v in labels.items() if v}
        model = azure_ml.model_reference(
            ml, name=model_name, version=str(model_version), model_dir=model_dir,
            registry=registry, workspace_registry=self.registry_stage, tags=tags,
        )  # fmt: skip
        existing = {d.name: d for d in ml.online_deployments.list(endpoint)}
        live = live_deployment(ep, existing)
        # blue/green: a new slot starts with the capacity the live one runs with
        template = existing.get(deployment) or existing.get(live or "")
        count = template.instance_count if template else self.instance_count
        code = (self.scoring_code, self.scoring_script, self.environment)
        dep = build_deployment(self.kind, endpoint, deployment, model, count, tags,
                               self.instance_type, code)  # fmt: skip
        self._wait(
            lambda: ml.online_deployments.begin_create_or_update(dep),
            f"deployment {deployment} of endpoint {endpoint}",
        )
        self._start(ml, endpoint, first=deployment)
        return self.get(endpoint)

    def _start(self, ml: Any, endpoint: str, first: str | None = None) -> None:
        """Restore the split `stop` kept; an endpoint with no traffic gives `first` all."""
        ep = self._endpoint(ml, endpoint)
        names = {d.name for d in ml.online_deployments.list(endpoint)}
        kept = stopped_split(ep)
        source = kept["traffic"] if kept else (ep.traffic or {})
        traffic = {k: v for k, v in source.items() if k in names and v}
        if not traffic and first:
            traffic = {first: 100}
        if kept is None and traffic == {k: v for k, v in (ep.traffic or {}).items() if v}:
            return  # already serving this split
        ep.traffic = {name: traffic.get(name, 0) for name in sorted(names)}
        if kept is not None:
            ep.mirror_traffic = {k: v for k, v in kept["mirror"].items() if k in names}
            ep.tags = {k: v for k, v in ep.tags.items() if k != STOPPED_TAG}
        self._update(ml, ep, f"traffic of endpoint {endpoint}")

    def set_traffic(self, endpoint, traffic, mirror=None):
        ml = self._ml()
        ep = self._endpoint(ml, endpoint)
        known = {d.name for d in ml.online_deployments.list(endpoint)}
        unknown = sorted((set(traffic) | set(mirror or {})) - known)
        if unknown:
            raise EndpointError(
                f"endpoint {endpoint} has no deployment {unknown}; has {sorted(known)}"
            )
        split = {name: int(traffic.get(name, 0)) for name in sorted(known)}
        kept = stopped_split(ep)
        mirrored = kept.get("mirror", {}) if kept else (ep.mirror_traffic or {})
        if mirror is not None:  # an entry at 0 is how Azure removes a mirror
            mirrored = {k: int(mirror.get(k, 0)) for k in sorted(set(mirror) | set(mirrored))}
        check_split(endpoint, split, mirrored)  # a kept split must be one `start` can restore
        if kept is not None:  # stopped: the split waits for `start`
            ep.tags[STOPPED_TAG] = json.dumps({"traffic": split, "mirror": mirrored})
        else:
            ep.traffic, ep.mirror_traffic = split, mirrored
        self._update(ml, ep, f"traffic of endpoint {endpoint}")
        return self.get(endpoint)

    def delete_deployment(self, endpoint, deployment):
        ml = self._ml()
        share, stopped = traffic_share(self._endpoint(ml, endpoint), deployment)
        if share:
            kept = " when it starts (it is stopped)" if stopped else ""
            raise EndpointError(
                f"deployment {deployment} still takes {share}% of {endpoint}'s traffic{kept}; "
                "move its traffic first"
            )
        self._wait(
            lambda: ml.online_deployments.begin_delete(name=deployment, endpoint_name=endpoint),
            f"deleting deployment {deployment} of endpoint {endpoint}",
        )
        return self.get(endpoint)

    def _info(self, ml: Any, ep: Any) -> EndpointInfo:
        deployments = {d.name: d for d in ml.online_deployments.list(ep.name)}
        info = endpoint_info(ep, deployments)
        info.extra.update(kind=self.kind, workspace=self.workspace, max_workers=self.max_instances)
        return info

    def get(self, endpoint):
        ml = self._ml()
        return self._info(ml, self._endpoint(ml, endpoint))

    def list(self):
        ml = self._ml()
        return [self._info(ml, ep) for ep in sorted(ml.online_endpoints.list(), key=_name)]

    def get_keys(self, endpoint):
        keys = self._ml().online_endpoints.get_keys(endpoint)
        if not getattr(keys, "primary_key", None):
            raise EndpointError(f"endpoint {endpoint} does not use key auth")
        return {"primary": keys.primary_key, "secondary": keys.secondary_key}

    def regenerate_key(self, endpoint, slot):
        if slot not in KEY_SLOTS:
            raise EndpointError(f"key slot must be one of {KEY_SLOTS}, got {slot!r}")
        ml = self._ml()
        self._wait(
            lambda: ml.online_endpoints.begin_regenerate_keys(endpoint, key_type=slot),
            f"regenerating the {slot} key of endpoint {endpoint}",
        )
        return self.get_keys(endpoint)

    def start(self, endpoint: str) -> EndpointInfo:
        """Give the endpoint back the traffic split it had when it was stopped."""
        self._start(self._ml(), endpoint)
        return self.get(endpoint)

    def stop(self, endpoint):
        ml = self._ml()
        ep = self._endpoint(ml, endpoint)
        if STOPPED_TAG in (ep.tags or {}):
            return
        kept = {"traffic": dict(ep.traffic or {}), "mirror": dict(ep.mirror_traffic or {})}
        ep.tags = {**(ep.tags or {}), STOPPED_TAG: json.dumps(kept)}
        ep.traffic = {k: 0 for k in ep.traffic or {}}
        ep.mirror_traffic = {k: 0 for k in ep.mirror_traffic or {}}
        self._update(ml, ep, f"stopping endpoint {endpoint}")

    def delete_endpoint(self, endpoint: str) -> None:
        """Delete the endpoint and its deployments (what stops the billing)."""
        ml = self._ml()
        self._wait(lambda: ml.online_endpoints.begin_delete(endpoint), f"deleting {endpoint}")

    def scale(self, endpoint, workers):
        if not 1 <= workers <= self.max_instances:
            raise EndpointError(
                f"endpoint {endpoint} can run 1 to max_instances={self.max_instances} "
                f"instances, not {workers}"
            )
        ml = self._ml()
        ep = self._endpoint(ml, endpoint)
        live = live_deployment(ep, {d.name: d for d in ml.online_deployments.list(endpoint)})
        if live is None:
            raise EndpointError(f"endpoint {endpoint} has no deployment taking traffic to scale")
        dep = ml.online_deployments.get(live, endpoint)
        dep.instance_count = workers
        self._wait(
            lambda: ml.online_deployments.begin_create_or_update(dep),
            f"scaling deployment {live} of endpoint {endpoint} to {workers}",
        )
        return self.get(endpoint)

    def get_logs(
        self, endpoint: str, deployment: str, lines: int = 200, container: str | None = None
    ) -> str:
        """The last `lines` of a deployment's container logs: `container` is one of
        LOG_CONTAINERS (the SDK's names; None: the inference server)."""
        if container not in (None, *LOG_CONTAINERS):
            raise EndpointError(f"log container must be one of {LOG_CONTAINERS}, not {container!r}")
        return self._ml().online_deployments.get_logs(
            deployment, endpoint, lines, container_type=container
        )

    def process_stats(self, endpoint: str, interval_s: float = 0.5) -> dict[str, Any]:
        raise EndpointError(f"{endpoint}: no process stats on Azure. {NO_WORKER_VIEW}")

    def worker_metrics(self, endpoint: str) -> dict[str, str]:
        raise EndpointError(f"{endpoint}: no per-worker metrics on Azure. {NO_WORKER_VIEW}")


def _name(entity: Any) -> str:
    return entity.name
