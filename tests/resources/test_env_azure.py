"""`MLOPS_ENV=azure` binds no local implementation for anything that has an Azure one.

The check is generic: every module under resources/ is imported, and for each resource
key the abstract interface of its local implementation is looked up; if any concrete
subclass of that interface is an Azure one (Azure… or Entra… by name), the azure
environment must bind one of those. A new Azure implementation that env.py forgets to
bind fails here. The endpoint and batch resources also resolve from their variables.
"""

import importlib
import inspect
import pkgutil

import pytest

import resources
from resources.batch_scoring import AzureMLBatchEndpoint
from resources.endpoint_azure import AzureMLOnlineEndpoints
from resources.env import azure_endpoints, local_resources, resources_for

AZURE_VARS = {
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "AZURE_RESOURCE_GROUP": "rg-mlops",
    "AZUREML_PROD_WORKSPACE": "mlw-prod",
    "AZUREML_COMPUTE": "cpu-cluster",
    "AZUREML_ENVIRONMENT": "mlops-train:3",
}


def all_subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= all_subclasses(sub)
    return found


def interface(resource: object) -> type | None:
    """The nearest abstract ancestor of our own: what assets annotate."""
    ours = (c for c in type(resource).__mro__[1:] if c.__module__.startswith("resources."))
    return next((c for c in ours if inspect.isabstract(c)), None)


def test_azure_binds_an_azure_implementation_wherever_one_exists(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    monkeypatch.delenv("MLOPS_LABELING", raising=False)
    for module in pkgutil.iter_modules(resources.__path__):
        importlib.import_module(f"resources.{module.name}")
    local, azure = local_resources(tmp_path), resources_for("azure")
    assert set(azure) == set(local)
    checked = set()
    for key, resource in local.items():
        base = interface(resource)
        if base is None:
            continue
        remote = {
            c
            for c in all_subclasses(base)
            if not inspect.isabstract(c) and c.__name__.startswith(("Azure", "Entra"))
        }
        if remote:
            assert type(azure[key]) in remote, f"{key}: azure binds {type(azure[key]).__name__}"
            checked.add(key)
    expected = {"lake", "registry", "compute", "endpoints", "batch", "approvals", "labeling",
                "identity"}  # fmt: skip
    assert expected <= checked


@pytest.mark.parametrize("kind", ["managed", "kubernetes"])
def test_endpoints_and_batch_resolve_from_their_variables(kind, monkeypatch):
    for name, value in {**AZURE_VARS, "AZUREML_KUBERNETES_COMPUTE": "arc-aks"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AZUREML_ENDPOINT_KIND", kind)
    monkeypatch.setenv("AZUREML_MAX_INSTANCES", "6")
    endpoints = azure_endpoints().process_config_and_initialize()
    assert isinstance(endpoints, AzureMLOnlineEndpoints)
    assert (endpoints.workspace, endpoints.kind, endpoints.max_instances) == ("mlw-prod", kind, 6)
    assert endpoints.kubernetes_compute == ("arc-aks" if kind == "kubernetes" else None)
    assert endpoints.scoring_script is None  # no environment: a no-code MLflow deployment
    monkeypatch.setenv("AZUREML_SCORING_ENVIRONMENT", "mlops-serving:2")
    scripted = azure_endpoints().process_config_and_initialize()
    assert scripted.scoring_script == "serving/azureml/score.py"
    assert scripted.environment == "mlops-serving:2"
    batch = resources_for("azure")["batch"].process_config_and_initialize()
    assert isinstance(batch, AzureMLBatchEndpoint)
    assert (batch.workspace, batch.compute, batch.environment) == (
        "mlw-prod", "cpu-cluster", "mlops-train:3",
    )  # fmt: skip


def test_an_unknown_endpoint_kind_is_an_error(monkeypatch):
    monkeypatch.setenv("AZUREML_ENDPOINT_KIND", "serverless")
    with pytest.raises(ValueError, match="AZUREML_ENDPOINT_KIND='serverless'"):
        azure_endpoints()
