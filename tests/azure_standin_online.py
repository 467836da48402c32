"""Online endpoints and deployments of the `RecordingMLClient` STAND-IN (tests/azure_standin.py).

Refuses what the service refuses: endpoint and deployment names breaking Azure's rules,
traffic to unknown deployments or not summing to 100 or 0, mirror traffic to a deployment
that takes live traffic (or over 50%, or to two), deployments of unregistered models or
onto a missing endpoint, deleting a deployment that still takes traffic.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from tests.azure_standin import Group, Poller, RecordingMLClient, check_name, rejected, roundtrip


class OnlineEndpointOps(Group):
    name = "online_endpoints"

    def __init__(self, client: RecordingMLClient) -> None:
        super().__init__(client)
        self.endpoints: dict[str, Any] = {}
        self.keys: dict[str, dict[str, str]] = {}

    def begin_create_or_update(self, endpoint: Any) -> Poller:
        from azure.ai.ml import load_online_endpoint

        check_name(endpoint.name)
        body, loaded = roundtrip(endpoint, load_online_endpoint)
        self.record("begin_create_or_update", name=endpoint.name, body=body)
        self.check_traffic(loaded)
        loaded._provisioning_state = "Succeeded"
        loaded._scoring_uri = self.client.scoring_uri(loaded.name)
        loaded.traffic = {k: v for k, v in (loaded.traffic or {}).items() if v}
        loaded.mirror_traffic = {k: v for k, v in (loaded.mirror_traffic or {}).items() if v}
        self.endpoints[loaded.name] = loaded
        self.keys.setdefault(loaded.name, {s: secrets.token_urlsafe(16) for s in ("p", "s")})
        return self.lro(loaded)

    def check_traffic(self, endpoint: Any) -> None:
        deployments = self.client.online_deployments.names(endpoint.name)
        traffic, mirror = endpoint.traffic or {}, endpoint.mirror_traffic or {}
        unknown = sorted((set(traffic) | set(mirror)) - deployments)
        if unknown:
            raise rejected(f"deployments {unknown} do not exist on endpoint {endpoint.name}")
        if sum(traffic.values()) not in (0, 100):
            raise rejected(f"traffic must sum to 100 or 0, got {sum(traffic.values())}")
        mirrored = {k: v for k, v in mirror.items() if v}
        if len(mirrored) > 1 or any(v > 50 for v in mirrored.values()):
            raise rejected("mirror traffic goes to one deployment, at most 50%")
        live = [k for k in mirrored if traffic.get(k, 0) > 0]
        if live:
            raise rejected(f"deployment {live[0]} takes live traffic and cannot be mirrored to")

    def get(self, name: str) -> Any:
        self.record("get", name=name)
        if name not in self.endpoints:
            raise ResourceNotFoundError(message=f"online endpoint {name} not found")
        return self.endpoints[name]

    def list(self) -> list[Any]:
        self.record("list")
        return list(self.endpoints.values())

    def get_keys(self, name: str) -> Any:
        from azure.ai.ml.entities import EndpointAuthKeys

        self.get(name)
        keys = self.keys[name]
        return EndpointAuthKeys(primary_key=keys["p"], secondary_key=keys["s"])

    def begin_regenerate_keys(self, name: str, *, key_type: str = "primary") -> Poller:
        self.get(name)
        self.record("begin_regenerate_keys", name=name, key_type=key_type)
        if key_type not in ("primary", "secondary"):
            raise rejected(f"key_type must be primary or secondary, got {key_type!r}")
        self.keys[name][key_type[0]] = secrets.token_urlsafe(16)
        return self.lro(None)

    def begin_delete(self, name: str) -> Poller:
        self.get(name)
        self.record("begin_delete", name=name)
        del self.endpoints[name]
        self.client.online_deployments.drop_endpoint(name)
        return self.lro(None)


class OnlineDeploymentOps(Group):
    name = "online_deployments"

    def __init__(self, client: RecordingMLClient) -> None:
        super().__init__(client)
        self.deployments: dict[tuple[str, str], Any] = {}
        self.logs: dict[tuple[str, str], list[str]] = {}

    def names(self, endpoint: str) -> set[str]:
        return {name for (e, name) in self.deployments if e == endpoint}

    def drop_endpoint(self, endpoint: str) -> None:
        for key in [k for k in self.deployments if k[0] == endpoint]:
            del self.deployments[key]

    def begin_create_or_update(self, deployment: Any, **_: Any) -> Poller:
        from azure.ai.ml import load_online_deployment

        check_name(deployment.name, deployment=True)
        body, loaded = roundtrip(deployment, load_online_deployment)
        self.record("begin_create_or_update", name=deployment.name, body=body)
        endpoint = self.client.online_endpoints.endpoints.get(loaded.endpoint_name)
        if endpoint is None:
            raise rejected(f"endpoint {loaded.endpoint_name} does not exist")
        kind = "kubernetes" if type(loaded).__name__.startswith("Kubernetes") else "managed"
        if kind == "kubernetes" and not getattr(endpoint, "compute", None):
            raise rejected("a Kubernetes deployment needs a Kubernetes endpoint (compute)")
        self.client.models.require(str(loaded.model))
        code = loaded.code_configuration
        if (code is None) != (loaded.environment is None):
            raise rejected("code_configuration and environment go together")
        if code is not None and not (Path(code.code) / code.scoring_script).is_file():
            raise rejected(f"no scoring script {code.scoring_script} in {code.code}")
        loaded._provisioning_state = "Succeeded"
        key = (loaded.endpoint_name, loaded.name)
        self.deployments[key] = loaded
        self.logs.setdefault(key, []).append(
            f"{kind} deployment {loaded.name}: model {loaded.model}, "
            f"{loaded.instance_count} x {loaded.instance_type}"
        )
        return self.lro(loaded)

    def get(self, name: str, endpoint_name: str) -> Any:
        self.record("get", name=name, endpoint_name=endpoint_name)
        if (endpoint_name, name) not in self.deployments:
            raise ResourceNotFoundError(message=f"deployment {name} of {endpoint_name} not found")
        return self.deployments[(endpoint_name, name)]

    def list(self, endpoint_name: str) -> list[Any]:
        self.record("list", endpoint_name=endpoint_name)
        return [d for (e, _), d in sorted(self.deployments.items()) if e == endpoint_name]

    def get_logs(
        self, name: str, endpoint_name: str, lines: int, *, container_type: str | None = None
    ) -> str:
        self.get(name, endpoint_name)
        from azure.ai.ml.operations import OnlineDeploymentOperations

        self.record("get_logs", name=name, lines=lines, container_type=container_type)
        if container_type is not None:  # the SDK's own check (it sends the REST name)
            OnlineDeploymentOperations._validate_deployment_log_container_type(self, container_type)
        return "\n".join(self.logs[(endpoint_name, name)][-lines:])

    def begin_delete(self, name: str, endpoint_name: str) -> Poller:
        self.get(name, endpoint_name)
        self.record("begin_delete", name=name, endpoint_name=endpoint_name)
        endpoint = self.client.online_endpoints.endpoints[endpoint_name]
        share = (endpoint.traffic or {}).get(name, 0) + (endpoint.mirror_traffic or {}).get(name, 0)
        if share:
            raise rejected(f"deployment {name} still takes traffic ({share}%); move it first")
        del self.deployments[(endpoint_name, name)]
        return self.lro(None)
