"""The one place that builds azure-ai-ml's `MLClient`, and waits on its long-running operations.

Compute, registry, online endpoints and batch scoring all reach an Azure ML workspace
through `ml_client(subscription, resource group, workspace)`. Callers look it up on
this module at call time (`azure_ml.ml_client(...)`), never `from ... import` it, so a
test swaps the whole control plane in one place (`monkeypatch.setattr(azure_ml,
"ml_client", ...)` with the stand-in in tests/azure_standin.py). Authentication is
`DefaultAzureCredential` (managed identity, workload identity or `az login`).

`wait(poller, what)` turns a failed or timed-out LRO into one error that names the
resource, instead of an SDK traceback several frames away from the call that caused it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # azure-ai-ml costs seconds to import: only the steps that use it pay
    from azure.ai.ml import MLClient

T = TypeVar("T")

DEFAULT_LRO_TIMEOUT_S = 3600.0  # a managed deployment's first provisioning takes 5-15 minutes


class AzureMLError(RuntimeError):
    """An Azure ML control-plane operation that failed; the message names the resource."""


def ml_client(subscription_id: str, resource_group: str, workspace: str) -> MLClient:
    """An `MLClient` for one workspace, authenticated with `DefaultAzureCredential`."""
    missing = [
        name
        for name, value in (
            ("subscription_id", subscription_id),
            ("resource_group", resource_group),
            ("workspace", workspace),
        )
        if not value
    ]
    if missing:
        raise AzureMLError(f"cannot reach an Azure ML workspace without {', '.join(missing)}")
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(DefaultAzureCredential(), subscription_id, resource_group, workspace)


def wait(
    start: Any,
    what: str,
    timeout_s: float | None = DEFAULT_LRO_TIMEOUT_S,
    error: type[Exception] = AzureMLError,
) -> Any:
    """The result of a long-running operation: `start` is its poller, or a callable that
    begins it (so a request the service refuses at once fails the same way). Raises
    `error` naming `what` (e.g. "deployment blue of endpoint x") when the operation is
    refused, fails, or is still running after `timeout_s`."""
    try:
        poller = start() if callable(start) else start
        result = poller.result(timeout=timeout_s)
    except Exception as err:
        raise error(f"Azure ML: {what} failed: {err}") from err
    done = getattr(poller, "done", None)
    if callable(done) and not done():
        raise error(f"Azure ML: {what} still running after {timeout_s:.0f}s")
    return result


def model_reference(
    ml: Any,
    *,
    name: str,
    version: str,
    model_dir: str,
    registry: str | None,
    workspace_registry: str,
    tags: dict[str, str] | None = None,
) -> str:
    """`azureml:<name>:<version>` of a model version, registered in `ml`'s workspace if needed.

    A workspace's MLflow registry is its model registry: a version of `workspace_registry`
    (the registry that lives in this workspace) is referenced as it is. A version from
    another registry (dev models on a staging endpoint in the prod workspace) is
    registered from `model_dir` as `<name>-<registry>` with the same version number, so it
    never adds versions to the workspace's own `<name>` (which only receives promotions);
    as an MLflow model when the folder has `MLmodel`, else as a custom model.
    """
    if registry == workspace_registry and get_or_none(ml.models.get, name, version) is not None:
        return f"azureml:{name}:{version}"
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Model

    copy = f"{name}-{registry or 'external'}"
    if get_or_none(ml.models.get, copy, version) is None:
        mlflow = (Path(model_dir) / "MLmodel").is_file()
        kind = AssetTypes.MLFLOW_MODEL if mlflow else AssetTypes.CUSTOM_MODEL
        model = Model(name=copy, version=version, path=model_dir, type=kind, tags=tags)
        ml.models.create_or_update(model)
    return f"azureml:{copy}:{version}"


def not_found(err: BaseException) -> bool:
    """Whether an SDK error means "no such resource"."""
    from azure.core.exceptions import ResourceNotFoundError

    return isinstance(err, ResourceNotFoundError)


def get_or_none(getter: Any, *args: Any, **kwargs: Any) -> Any:
    """`getter(*args)`, or None where the resource does not exist; other errors propagate."""
    try:
        return getter(*args, **kwargs)
    except Exception as err:
        if not_found(err):
            return None
        raise
