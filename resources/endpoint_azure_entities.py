"""azure-ai-ml entities for `AzureMLOnlineEndpoints`, and what it reads back from them.

Builders (`new_endpoint`, `build_deployment`) make the entities the resource sends;
`endpoint_info` maps an endpoint and its deployments to our `EndpointInfo`. A deployment's
model identity travels in its tags (`mlops.model_name`, `mlops.model_version`,
`mlops.registry`, `mlops.source_version`), as the local server keeps it in its config, so
`mlops endpoint list` and the blue/green assets read the same fields on both backends.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from resources.endpoint import EndpointError, EndpointInfo, deployment_view

Kind = Literal["managed", "kubernetes"]
STOPPED_TAG = "mlops.stopped_traffic"
DEFAULT_INSTANCE_TYPE = {"managed": "Standard_DS3_v2", "kubernetes": "defaultinstancetype"}


class AzureExtra(dict):
    """`EndpointInfo.extra` of an Azure endpoint. Reading a key only the local server has
    (`inference_log_dir`, `pids`, `admin_urls`, `port`) raises `EndpointError` saying why,
    which the assets that read them report as a failure naming the reason."""

    def __missing__(self, key: str) -> Any:
        if key == "inference_log_dir":
            raise EndpointError(
                "an Azure ML endpoint's requests and responses go to Azure ML model data "
                "collection (the workspace's blob datastore), not to an inference log folder; "
                "reading them into inference_log is not built yet (docs/azure.md)"
            )
        raise EndpointError(f"Azure ML endpoints have no {key!r} (a local scoring-server detail)")


def new_endpoint(name: str, kind: Kind, compute: str | None) -> Any:
    """A key-auth online endpoint: managed, or on the attached Kubernetes `compute`."""
    from azure.ai.ml.entities import KubernetesOnlineEndpoint, ManagedOnlineEndpoint

    tags = {"mlops.managed_by": "dagster"}
    if kind == "kubernetes":
        return KubernetesOnlineEndpoint(name=name, auth_mode="key", compute=compute, tags=tags)
    return ManagedOnlineEndpoint(name=name, auth_mode="key", tags=tags)


def build_deployment(
    kind: Kind,
    endpoint: str,
    name: str,
    model: str,
    count: int,
    tags: dict[str, str],
    instance_type: str | None,
    code: tuple[str | None, str | None, str | None] = (None, None, None),
) -> Any:
    """An online deployment of `model` (`azureml:<name>:<version>`). `code` is (folder,
    scoring script, environment); without a script it is a no-code MLflow deployment."""
    from azure.ai.ml.entities import (
        CodeConfiguration,
        KubernetesOnlineDeployment,
        ManagedOnlineDeployment,
    )

    folder, script, environment = code
    spec: dict[str, Any] = {
        "name": name, "endpoint_name": endpoint, "model": model, "tags": tags,
        "instance_count": count, "app_insights_enabled": True,
        "instance_type": instance_type or DEFAULT_INSTANCE_TYPE[kind],
    }  # fmt: skip
    if script:
        if not environment:
            raise EndpointError("scoring_script needs an environment to run in")
        from resources.compute import REPO_ROOT

        spec["code_configuration"] = CodeConfiguration(folder or str(REPO_ROOT), script)
        spec["environment"] = environment
    cls = KubernetesOnlineDeployment if kind == "kubernetes" else ManagedOnlineDeployment
    return cls(**spec)


def live_deployment(endpoint: Any, deployments: dict[str, Any]) -> str | None:
    """The deployment taking most live traffic; None when none takes any."""
    traffic = {k: v for k, v in (endpoint.traffic or {}).items() if k in deployments and v}
    return max(traffic, key=traffic.get) if traffic else None


def stopped_split(endpoint: Any) -> dict[str, dict[str, int]] | None:
    """The traffic and mirror split `stop` kept, or None when the endpoint is not stopped."""
    return json.loads((endpoint.tags or {}).get(STOPPED_TAG, "null"))


def check_split(endpoint: str, traffic: dict[str, int], mirror: dict[str, int]) -> None:
    """Refuse a split Azure would refuse, before it is sent or kept for `start`: live
    traffic sums to 100 or 0; mirror traffic goes to one deployment, at most 50%, that
    takes no live traffic."""
    total = sum(traffic.values())
    if total not in (0, 100):
        raise EndpointError(f"traffic of endpoint {endpoint} must sum to 100 or 0, got {total}")
    mirrored = {k: v for k, v in mirror.items() if v}
    if len(mirrored) > 1 or any(not 0 < v <= 50 for v in mirrored.values()):
        raise EndpointError(
            f"mirror traffic of endpoint {endpoint} goes to one deployment, at most 50%, "
            f"got {mirrored}"
        )
    live = sorted(k for k in mirrored if traffic.get(k, 0) > 0)
    if live:
        raise EndpointError(
            f"deployment {live[0]} of endpoint {endpoint} takes live traffic and cannot be "
            "mirrored to"
        )


def traffic_share(endpoint: Any, deployment: str) -> tuple[int, bool]:
    """The live plus mirror traffic `deployment` takes, and whether that share is the split
    a stopped endpoint keeps for `start` (its live traffic is then all 0)."""
    kept = stopped_split(endpoint)
    if kept is None:
        traffic, mirror = endpoint.traffic or {}, endpoint.mirror_traffic or {}
    else:
        traffic, mirror = kept["traffic"], kept["mirror"]
    return int(traffic.get(deployment, 0)) + int(mirror.get(deployment, 0)), kept is not None


def endpoint_info(endpoint: Any, deployments: dict[str, Any]) -> EndpointInfo:
    """What the endpoint is and does now. `running`: provisioned and some deployment takes
    traffic; `workers`: the live deployment's instances."""
    live = live_deployment(endpoint, deployments)
    views = {}
    for name, d in deployments.items():
        tags = d.tags or {}
        views[name] = deployment_view({
            **{k.removeprefix("mlops."): v for k, v in tags.items() if k.startswith("mlops.")},
            "model": str(d.model), "instance_type": d.instance_type,
            "instance_count": d.instance_count, "provisioning_state": d.provisioning_state,
        })  # fmt: skip
    running = str(endpoint.provisioning_state or "").lower() == "succeeded" and live is not None
    stopped = stopped_split(endpoint) is not None
    return EndpointInfo(
        name=endpoint.name,
        scoring_uri=endpoint.scoring_uri,
        traffic={n: int((endpoint.traffic or {}).get(n, 0)) for n in deployments},
        mirror_traffic={k: int(v) for k, v in (endpoint.mirror_traffic or {}).items() if v},
        deployments=views,
        running=running,
        workers=deployments[live].instance_count if live else 0,
        extra=AzureExtra(
            state="running" if running else "stopped" if stopped else "down",
            provisioning_state=endpoint.provisioning_state,
            started=None,
        ),
    )
