"""The one place that maps an environment to its backends.

`MLOPS_ENV` picks the environment: `local` (default: everything embedded under
`MLOPS_HOME`, a folder) or `azure` (Blob/ADLS lake, Azure ML workspaces and
compute). Both environments span the dev and prod registries, as MLOps v2's
dev and prod workspaces; the environment only chooses where they live.
`MLOPS_LABELING` picks the labeling project in either (`labeling_for`);
`MLOPS_MLFLOW_DB_URL` moves the local registries into PostgreSQL (`mlflow_store_url`).
Secrets and Azure names come from environment variables through `dg.EnvVar`,
resolved when a run starts, so loading definitions needs none of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import dagster as dg

from resources.approvals_store import LocalApprovalStore
from resources.approvals_store_azure import AzureBlobApprovalStore
from resources.batch_scoring import AzureMLBatchEndpoint, LocalBatchPool
from resources.clock import Clock
from resources.compute import AzureMLCompute, SubprocessCompute
from resources.endpoint_azure import AzureMLOnlineEndpoints
from resources.endpoint_local import LocalOnlineEndpoints
from resources.governance import Governance
from resources.identity import EntraIdentity, LocalIdentity
from resources.labeling import LabelingProject, LocalLabelingProject
from resources.labeling_azure import AzureMLLabelingExport
from resources.labeling_studio import LabelStudioProject
from resources.lake import AzureBlobLake, DataLake, LocalLake
from resources.notify import Notifier, OutboxNotifier, WebhookNotifier
from resources.registry import AzureMLRegistry, LocalMlflowRegistry

Env = Literal["local", "azure"]
ENVS: tuple[Env, ...] = ("local", "azure")
LABELING_BACKENDS = ("local", "label-studio", "azureml")


def current_env() -> Env:
    """`MLOPS_ENV`, defaulting to local; any other value is an error, not a silent fallback."""
    value = os.environ.get("MLOPS_ENV", "local").strip().lower()
    if value not in ENVS:
        raise ValueError(f"MLOPS_ENV={value!r} is not a known environment; use one of {ENVS}")
    return value  # type: ignore[return-value]


MLOPS_DIR = ".mlops"  # the embedded stores' folder in a project, as `.git` is a repository's


def mlops_home() -> Path:
    """Root of the embedded stores (lake, MLflow); `MLOPS_HOME` or ./.mlops.

    For the Dagster code location and the demo, which run from the project root;
    the `mlops` CLI runs anywhere and finds the stores with `find_mlops_home`."""
    return Path(os.environ.get("MLOPS_HOME", MLOPS_DIR)).resolve()


def find_mlops_home(start: Path, ceilings: Iterable[Path] = ()) -> Path | None:
    """The `.mlops/` folder in `start` or the nearest folder above it, as git finds `.git`;
    None when there is none. The walk never goes up into a folder in `ceilings` (the
    role of GIT_CEILING_DIRECTORIES), though it does look in `start` itself."""
    here = start.resolve()
    stops = {Path(ceiling).resolve() for ceiling in ceilings}
    for folder in (here, *here.parents):
        if folder in stops and folder != here:
            return None
        if (folder / MLOPS_DIR).is_dir():
            return folder / MLOPS_DIR
    return None


def notifier_for(home: Path) -> Notifier:
    """Outbox by default; a webhook too when MLOPS_WEBHOOK_URL is set (read at run time)."""
    outbox = str(home / "notifications" / "outbox.jsonl")
    if os.environ.get("MLOPS_WEBHOOK_URL"):
        return WebhookNotifier(url=dg.EnvVar("MLOPS_WEBHOOK_URL"), outbox_path=outbox)
    return OutboxNotifier(outbox_path=outbox)


def labeling_for(env: Env, lake: DataLake) -> LabelingProject:
    """`MLOPS_LABELING`: `local` (lake files, the default locally), `label-studio` (needs
    MLOPS_LABEL_STUDIO_URL and MLOPS_LABEL_STUDIO_TOKEN at run time) or `azureml` (the
    Azure ML labeling export, the default on azure)."""
    default = "azureml" if env == "azure" else "local"
    choice = os.environ.get("MLOPS_LABELING", default).strip().lower()
    if choice == "local":
        return LocalLabelingProject(lake=lake)
    if choice == "label-studio":
        return LabelStudioProject(
            lake=lake,
            url=dg.EnvVar("MLOPS_LABEL_STUDIO_URL"),
            token=dg.EnvVar("MLOPS_LABEL_STUDIO_TOKEN"),
        )
    if choice == "azureml":
        return AzureMLLabelingExport(
            lake=lake,
            subscription_id=dg.EnvVar("AZURE_SUBSCRIPTION_ID"),
            resource_group=dg.EnvVar("AZURE_RESOURCE_GROUP"),
            workspace=dg.EnvVar("AZUREML_DEV_WORKSPACE"),
            data_name=os.environ.get("MLOPS_AZUREML_LABELS_DATA", "{scenario}-labels"),
            export_path=os.environ.get("MLOPS_AZUREML_LABELS_EXPORT"),
        )
    raise ValueError(f"MLOPS_LABELING={choice!r} is not a labeling backend; use one of "
                     f"{LABELING_BACKENDS}")  # fmt: skip


def _has_password(url: str) -> bool:
    """In the user part or as a query parameter (SQLAlchemy hands those to the driver)."""
    parts = urlsplit(url)
    return bool(parts.password) or "password" in {k.lower() for k in parse_qs(parts.query)}


def mlflow_store_url() -> str | None:
    """`MLOPS_MLFLOW_DB_URL`: one database server for both local registries instead of SQLite
    files, `{stage}` naming the dev and prod databases, e.g.
    `postgresql+psycopg2://mlops@127.0.0.1:5433/mlflow_{stage}`. The URL shows in the Dagster
    UI, so the password comes from PGPASSWORD or ~/.pgpass; None when unset."""
    url = os.environ.get("MLOPS_MLFLOW_DB_URL", "").strip()
    if not url:
        return None
    problem = (
        "has no `{stage}` (dev and prod need a database each)" if "{stage}" not in url
        else "is not a URL (dialect+driver://user@host:port/db)" if "://" not in url
        else "carries a password: set PGPASSWORD or use ~/.pgpass instead"
        if _has_password(url.replace("{stage}", "dev")) else None
    )  # fmt: skip
    if problem:
        raise ValueError(f"MLOPS_MLFLOW_DB_URL {problem}")
    return url


def local_resources(home: Path) -> dict[str, Any]:
    lake = LocalLake(root=str(home / "lake"))
    return {
        "lake": lake,
        "labeling": labeling_for("local", lake),
        "registry": LocalMlflowRegistry(
            root=str(home / "mlflow"),
            store_url=mlflow_store_url(),
            ui_url=os.environ.get("MLOPS_MLFLOW_UI_URL"),
            prod_ui_url=os.environ.get("MLOPS_MLFLOW_PROD_UI_URL"),
        ),
        "compute": SubprocessCompute(),
        "endpoints": LocalOnlineEndpoints(root=str(home / "endpoints")),
        "batch": LocalBatchPool(),
        "governance": Governance(
            audit_path=str(home / "governance" / "audit.jsonl"),
            anchor_path=str(home / "mlflow" / "audit-anchors.db"),  # next to mlflow-prod.db
        ),
        "notifier": notifier_for(home),
        "clock": Clock(),
        "approvals": LocalApprovalStore(path=str(home / "governance" / "approvals.db")),
        "identity": LocalIdentity(),
    }


SCORE_PY = "serving/azureml/score.py"  # the Azure ML inference server entry script


def azure_endpoints() -> AzureMLOnlineEndpoints:
    """Online endpoints in the prod workspace. `AZUREML_ENDPOINT_KIND` (managed, the default,
    or kubernetes with `AZUREML_KUBERNETES_COMPUTE`), `AZUREML_INSTANCE_TYPE`,
    `AZUREML_INSTANCE_COUNT`, `AZUREML_MAX_INSTANCES`, and `AZUREML_SCORING_ENVIRONMENT`
    (deployments then run `AZUREML_SCORING_SCRIPT`, default serving/azureml/score.py) are
    choices, not secrets: read when definitions load, with defaults."""
    kind = os.environ.get("AZUREML_ENDPOINT_KIND", "managed").strip().lower()
    # with an environment, deployments run our score.py (the scoring contract's 4xx
    # answers); without one, they are Azure's no-code MLflow deployments
    scoring_env = os.environ.get("AZUREML_SCORING_ENVIRONMENT") or None
    script = (os.environ.get("AZUREML_SCORING_SCRIPT") or SCORE_PY) if scoring_env else None
    if kind not in ("managed", "kubernetes"):
        raise ValueError(f"AZUREML_ENDPOINT_KIND={kind!r}: use managed or kubernetes")
    return AzureMLOnlineEndpoints(
        subscription_id=dg.EnvVar("AZURE_SUBSCRIPTION_ID"),
        resource_group=dg.EnvVar("AZURE_RESOURCE_GROUP"),
        workspace=dg.EnvVar("AZUREML_PROD_WORKSPACE"),
        kind=kind,
        kubernetes_compute=(
            dg.EnvVar("AZUREML_KUBERNETES_COMPUTE") if kind == "kubernetes" else None
        ),
        instance_type=os.environ.get("AZUREML_INSTANCE_TYPE") or None,
        instance_count=int(os.environ.get("AZUREML_INSTANCE_COUNT", "1")),
        max_instances=int(os.environ.get("AZUREML_MAX_INSTANCES", "4")),
        scoring_script=script,
        environment=scoring_env,
    )


def azure_resources() -> dict[str, Any]:
    lake = AzureBlobLake(
        container=dg.EnvVar("MLOPS_LAKE_CONTAINER"),
        account_url=dg.EnvVar("MLOPS_LAKE_ACCOUNT_URL"),
    )
    return {
        "lake": lake,
        "labeling": labeling_for("azure", lake),
        "registry": AzureMLRegistry(
            subscription_id=dg.EnvVar("AZURE_SUBSCRIPTION_ID"),
            resource_group=dg.EnvVar("AZURE_RESOURCE_GROUP"),
            dev_workspace=dg.EnvVar("AZUREML_DEV_WORKSPACE"),
            prod_workspace=dg.EnvVar("AZUREML_PROD_WORKSPACE"),
        ),
        "compute": AzureMLCompute(
            subscription_id=dg.EnvVar("AZURE_SUBSCRIPTION_ID"),
            resource_group=dg.EnvVar("AZURE_RESOURCE_GROUP"),
            workspace=dg.EnvVar("AZUREML_DEV_WORKSPACE"),
            compute=dg.EnvVar("AZUREML_COMPUTE"),
            environment=dg.EnvVar("AZUREML_ENVIRONMENT"),
            pipes_container=dg.EnvVar("MLOPS_PIPES_CONTAINER"),
            storage_account_url=dg.EnvVar("MLOPS_LAKE_ACCOUNT_URL"),
        ),
        "endpoints": azure_endpoints(),
        "batch": AzureMLBatchEndpoint(
            subscription_id=dg.EnvVar("AZURE_SUBSCRIPTION_ID"),
            resource_group=dg.EnvVar("AZURE_RESOURCE_GROUP"),
            workspace=dg.EnvVar("AZUREML_PROD_WORKSPACE"),
            compute=dg.EnvVar("AZUREML_COMPUTE"),
            environment=dg.EnvVar("AZUREML_ENVIRONMENT"),
            cores_per_instance=int(os.environ.get("AZUREML_BATCH_CORES_PER_INSTANCE", "4")),
        ),
        "governance": Governance(
            audit_path=str(mlops_home() / "governance" / "audit.jsonl"),
            anchor_path=str(mlops_home() / "mlflow" / "audit-anchors.db"),
            anchor_container=dg.EnvVar("MLOPS_AUDIT_ANCHOR_CONTAINER"),  # immutability policy
            anchor_account_url=dg.EnvVar("MLOPS_LAKE_ACCOUNT_URL"),
        ),
        "notifier": notifier_for(mlops_home()),
        "clock": Clock(),
        "approvals": AzureBlobApprovalStore(
            container=dg.EnvVar("MLOPS_GOVERNANCE_CONTAINER"),
            account_url=dg.EnvVar("MLOPS_LAKE_ACCOUNT_URL"),
        ),
        "identity": EntraIdentity(),
    }


def resources_for(env: Env) -> dict[str, Any]:
    if env == "local":
        return local_resources(mlops_home())
    if env == "azure":
        return azure_resources()
    raise ValueError(f"unknown environment {env!r}; use one of {ENVS}")
