"""`RecordingMLClient`: a STAND-IN for azure-ai-ml's `MLClient`, for offline tests.

Azure ML's control plane cannot run here, so this class answers the operation groups our
resources call (`online_endpoints`, `online_deployments`, `batch_endpoints`,
`batch_deployments`, `jobs`, `workspaces`, `models`) from memory. It is not a mock that
accepts anything:

- every entity sent is serialized with its own `_to_dict()` and loaded back with
  azure-ai-ml's loaders (`load_online_endpoint`, `load_online_deployment`,
  `load_batch_endpoint`, `load_job`, `load_model`; a `ModelBatchDeployment` through its
  own marshmallow schema, since `load_batch_deployment` only reads the flat schema), and
  the loaded copy is what it stores and returns;
- it refuses what the service refuses (`HttpResponseError`, as a 400 would surface):
  names breaking the endpoint/deployment name rules (the SDK's own validator), traffic
  to unknown deployments or not summing to 100 or 0, mirror traffic to a deployment with
  live traffic (or over 50%, or to two), deleting a deployment that takes traffic
  (or a batch endpoint's default),
  deployments of unregistered models or onto missing endpoints;
- long-running operations return a `Poller` with `.result()`, and `fail_next` makes the
  next one of a group fail as a provisioning failure would: the entity stays, Failed;
- `calls` records every call with the validated body, for assertions.

Online endpoints are in tests/azure_standin_online.py; jobs and batch invocations
really run (locally, as subprocesses): see tests/azure_standin_jobs.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError


@dataclass
class Call:
    group: str
    method: str
    args: dict[str, Any] = field(default_factory=dict)


class Poller:
    """Stand-in for `azure.core.polling.LROPoller`: already finished."""

    def __init__(self, value: Any = None, error: Exception | None = None) -> None:
        self._value, self._error = value, error

    def result(self, timeout: float | None = None) -> Any:
        if self._error is not None:
            raise self._error
        return self._value

    def done(self) -> bool:
        return True

    def status(self) -> str:
        return "Failed" if self._error else "Succeeded"


def rejected(message: str) -> HttpResponseError:
    """What a 400 from the service looks like to a caller of the SDK."""
    return HttpResponseError(message=f"(BadRequest) {message}")


def roundtrip(entity: Any, loader: Callable[..., Any]) -> tuple[dict[str, Any], Any]:
    """The entity as its YAML (`_to_dict`), and that YAML loaded back by azure-ai-ml."""
    body = json.loads(json.dumps(entity._to_dict(), default=str))
    return body, loader(io.StringIO(yaml.safe_dump(body)))


def check_name(name: str | None, deployment: bool = False) -> None:
    from azure.ai.ml.entities._endpoint._endpoint_helpers import (
        validate_endpoint_or_deployment_name,
    )

    try:
        validate_endpoint_or_deployment_name(name, is_deployment=deployment)
    except Exception as err:
        raise rejected(str(err)) from err


class Group:
    """An operation group: records its calls on the client."""

    name = ""

    def __init__(self, client: RecordingMLClient) -> None:
        self.client = client

    def record(self, method: str, **args: Any) -> None:
        self.client.calls.append(Call(self.name, method, args))

    def lro(self, value: Any) -> Poller:
        """A finished operation on `value`; after `fail_next`, a failed one that leaves
        `value` (already stored) in the Failed provisioning state, as Azure does."""
        error = self.client.pending_failure.pop(self.name, None)
        if not error:
            return Poller(value)
        if hasattr(value, "_provisioning_state"):
            value._provisioning_state = "Failed"
        return Poller(None, HttpResponseError(message=error))


class ModelOps(Group):
    name = "models"

    def __init__(self, client: RecordingMLClient) -> None:
        super().__init__(client)
        self.models: dict[tuple[str, str], Any] = {}

    def create_or_update(self, model: Any) -> Any:
        from azure.ai.ml import load_model

        body, loaded = roundtrip(model, load_model)
        self.record("create_or_update", name=model.name, body=body)
        if not loaded.version:
            known = [int(v) for (n, v) in self.models if n == loaded.name and v.isdigit()]
            loaded.version = str(max(known, default=0) + 1)
        self.models[(loaded.name, str(loaded.version))] = loaded
        return loaded

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        self.record("get", name=name, version=version)
        if (name, str(version)) not in self.models:
            raise ResourceNotFoundError(message=f"model {name}:{version} not found")
        return self.models[(name, str(version))]

    def list(self, name: str | None = None) -> list[Any]:
        return [m for (n, _), m in sorted(self.models.items()) if name in (None, n)]

    def require(self, reference: str) -> Any:
        """The model an `azureml:<name>:<version>` reference names; refused if unregistered."""
        name, _, version = reference.removeprefix("azureml:").partition(":")
        if (name, version) not in self.models:
            raise rejected(f"model {reference} is not registered in the workspace")
        return self.models[(name, version)]


class WorkspaceOps(Group):
    name = "workspaces"

    def __init__(self, client: RecordingMLClient, workspaces: dict[str, str]) -> None:
        super().__init__(client)
        self.tracking_uris = workspaces

    def get(self, name: str | None = None) -> Any:
        from azure.ai.ml.entities import Workspace

        name = name or self.client.workspace_name
        self.record("get", name=name)
        if name not in self.tracking_uris:
            raise ResourceNotFoundError(message=f"workspace {name} not found")
        return Workspace(name=name, mlflow_tracking_uri=self.tracking_uris[name])


class RecordingMLClient:
    """STAND-IN for `azure.ai.ml.MLClient` (see the module docstring); one per workspace
    or shared by several (`factory` returns it for any workspace and records which)."""

    def __init__(
        self,
        workspaces: dict[str, str] | None = None,
        scoring_uri: Callable[[str], str] | None = None,
        job_env: dict[str, str] | None = None,
    ) -> None:
        self.calls: list[Call] = []
        self.pending_failure: dict[str, str] = {}
        self.workspace_name: str | None = None
        self.opened: list[tuple[str, str, str]] = []
        self.scoring_uri = scoring_uri or (
            lambda name: f"https://{name}.westeurope.inference.ml.azure.com/score"
        )
        from tests.azure_standin_jobs import BatchDeploymentOps, BatchEndpointOps, JobOps
        from tests.azure_standin_online import OnlineDeploymentOps, OnlineEndpointOps

        self.online_endpoints = OnlineEndpointOps(self)
        self.online_deployments = OnlineDeploymentOps(self)
        self.models = ModelOps(self)
        self.workspaces = WorkspaceOps(self, dict(workspaces or {}))
        self.jobs = JobOps(self, job_env or {})
        self.batch_endpoints = BatchEndpointOps(self)
        self.batch_deployments = BatchDeploymentOps(self)

    def factory(self, subscription_id: str, resource_group: str, workspace: str) -> Any:
        """Drop-in for `resources.azure_ml.ml_client`."""
        self.opened.append((subscription_id, resource_group, workspace))
        self.workspace_name = workspace
        return self

    def fail_next(self, group: str, message: str) -> None:
        """The next LRO of `group` fails in `.result()`, as a failed provisioning does."""
        self.pending_failure[group] = message

    def create_or_update(self, entity: Any) -> Any:
        """`MLClient.create_or_update`: jobs and models (what PipesAzureMLClient calls)."""
        from azure.ai.ml.entities import Model

        if isinstance(entity, Model):
            return self.models.create_or_update(entity)
        return self.jobs.create_or_update(entity)

    def methods(self, group: str) -> list[str]:
        return [c.method for c in self.calls if c.group == group]
