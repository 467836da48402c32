"""The model registry: MLflow tracking + registry, one store per environment (dev, prod).

MLOps v2 keeps a dev workspace, where candidates are tracked and registered,
apart from a prod registry that only receives promoted models. `ModelRegistry`
wraps `MlflowClient` (dagster-mlflow is weakly kept) and never touches MLflow's
process-global tracking URI, so dev and prod can be used side by side.

- `LocalMlflowRegistry`: SQLite stores and artifact folders under one root, or its
  stores in a database server (PostgreSQL) with the artifacts still under the root.
- `AzureMLRegistry`: the MLflow-compatible tracking URIs of two Azure ML
  workspaces (needs the `azureml-mlflow` plugin at run time).
"""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

import dagster as dg
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:  # mlflow costs ~2 s to import: only the processes that use it pay
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

Stage = Literal["dev", "prod"]
STAGES: tuple[Stage, ...] = ("dev", "prod")


class RegistryError(RuntimeError):
    """A registry operation that cannot proceed; the message says why."""


class ModelRegistry(dg.ConfigurableResource, ABC):
    """MLflow tracking and registry for the dev and prod environments."""

    ui_url: str | None = Field(
        default=None, description="Base URL of an MLflow UI on the dev store, for links."
    )
    prod_ui_url: str | None = Field(
        default=None, description="Base URL of an MLflow UI on the prod store, for links."
    )

    @abstractmethod
    def tracking_uri(self, stage: Stage = "dev") -> str: ...

    @abstractmethod
    def artifact_root(self, stage: Stage = "dev") -> str | None:
        """Where new experiments keep artifacts; None lets the server decide."""

    def client(self, stage: Stage = "dev") -> MlflowClient:
        if stage not in STAGES:
            raise RegistryError(f"unknown registry stage {stage!r}; use one of {STAGES}")
        from mlflow import MlflowClient

        uri = self.tracking_uri(stage)
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def ensure_experiment(self, name: str, stage: Stage = "dev") -> str:
        client = self.client(stage)
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        root = self.artifact_root(stage)
        location = f"{root}/{name}" if root else None
        return client.create_experiment(name, artifact_location=location)

    def register(
        self,
        name: str,
        model_uri: str,
        run_id: str,
        tags: dict[str, str],
        alias: str | None = None,
        stage: Stage = "dev",
        model_id: str | None = None,
    ) -> ModelVersion:
        """Create a new version of `name` (creating the model if needed) and move `alias` to it."""
        from mlflow.exceptions import MlflowException

        client = self.client(stage)
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(name)
        mv = client.create_model_version(
            name, source=model_uri, run_id=run_id, tags=tags, model_id=model_id
        )
        if alias:
            set_alias(client, name, alias, mv.version)
        return client.get_model_version(name, mv.version)

    def version_by_alias(self, name: str, alias: str, stage: Stage = "dev") -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        try:
            return self.client(stage).get_model_version_by_alias(name, alias)
        except MlflowException:
            return None

    def versions(self, name: str, stage: Stage = "dev") -> list[ModelVersion]:
        found = self.client(stage).search_model_versions(f"name = '{name}'")
        return sorted(found, key=lambda mv: int(mv.version))

    def download_model(self, name: str, version: str, stage: Stage = "dev") -> str:
        """A local folder holding the version's MLflow model (the one with `MLmodel`)."""
        uri = self.client(stage).get_model_version_download_uri(name, version)
        return self.download_artifacts(uri, stage)

    def download_artifacts(self, artifact_uri: str, stage: Stage = "dev") -> str:
        import mlflow.artifacts

        if artifact_uri.startswith("file://"):
            from urllib.parse import unquote, urlparse

            return unquote(urlparse(artifact_uri).path)
        dst = tempfile.mkdtemp(prefix="mlops-model-")
        return mlflow.artifacts.download_artifacts(
            artifact_uri=artifact_uri, dst_path=dst, tracking_uri=self.tracking_uri(stage)
        )

    def logged_model_uri(self, model_id: str, stage: Stage = "dev") -> str:
        """Artifact URI of an MLflow 3 logged model (`models:/m-...`)."""
        return self.client(stage).get_logged_model(model_id).artifact_location

    def _ui(self, stage: Stage) -> str | None:
        url = self.ui_url if stage == "dev" else self.prod_ui_url
        return url.rstrip("/") if url else None

    def run_url(self, experiment_id: str, run_id: str, stage: Stage = "dev") -> str | None:
        ui = self._ui(stage)
        return f"{ui}/#/experiments/{experiment_id}/runs/{run_id}" if ui else None

    def artifact_url(self, run_id: str, path: str, stage: Stage = "dev") -> str | None:
        """A run's artifact as MLflow's UI server sends it (a PNG opens in the browser)."""
        ui = self._ui(stage)
        return f"{ui}/get-artifact?path={quote(path)}&run_uuid={run_id}" if ui else None

    def version_url(self, name: str, version: str, stage: Stage = "dev") -> str | None:
        ui = self._ui(stage)
        return f"{ui}/#/models/{name}/versions/{version}" if ui else None

    def promote(
        self, name: str, dev_version: str, tags: dict[str, str], alias: str = "champion"
    ) -> ModelVersion:
        """Copy a dev version into the prod registry and move `alias` to the copy.

        The copy is a new prod version whose tags point back to the dev version;
        the alias moves only after the version exists, in one registry call.
        """
        dev = self.client("dev").get_model_version(name, dev_version)
        local = self.download_model(name, dev_version, "dev")
        prod = self.client("prod")
        exp_id = self.ensure_experiment(f"{name}-promotions", "prod")
        lineage = {
            "mlops.source_stage": "dev",
            "mlops.source_version": str(dev_version),  # a REST store refuses an int tag
            "mlops.source_run_id": dev.run_id or "",
            **{k: v for k, v in dev.tags.items() if k.startswith("mlops.")},
            **tags,
        }
        run = prod.create_run(exp_id, run_name=f"promote-{name}-v{dev_version}", tags=lineage)
        if dev.run_id:  # the evaluation travels with the model: prod shows what was approved
            self._copy_run_results(dev.run_id, run.info.run_id)
        prod.log_artifacts(run.info.run_id, local, artifact_path="model")
        prod.set_terminated(run.info.run_id)
        source = f"{run.info.artifact_uri}/model"
        return self.register(name, source, run.info.run_id, lineage, alias, stage="prod")

    def _copy_run_results(self, dev_run_id: str, prod_run_id: str) -> None:
        """The dev run's latest metrics and its params, onto the prod promotion run."""
        from mlflow.entities import Metric, Param

        source = self.client("dev").get_run(dev_run_id).data
        metrics = [Metric(k, v, 0, 0) for k, v in sorted(source.metrics.items())]
        params = [Param(k, v) for k, v in sorted(source.params.items())]
        for start in range(0, max(len(metrics), len(params)), 100):  # MLflow's batch limits
            self.client("prod").log_batch(
                prod_run_id,
                metrics=metrics[start : start + 100],
                params=params[start : start + 100],
            )


class LocalMlflowRegistry(ModelRegistry):
    """MLflow on SQLite: `<root>/mlflow-<stage>.db` with artifacts in `<root>/artifacts-<stage>`;
    with `store_url`, the tracking and registry tables live in that database instead."""

    root: str = Field(description="Folder for the SQLite stores and artifacts.")
    store_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the tracking+registry databases with `{stage}` for dev "
        "and prod (e.g. postgresql+psycopg2://mlops@host:5432/mlflow_{stage}); the password "
        "comes from PGPASSWORD or ~/.pgpass, never the URL. None: SQLite under `root`.",
    )

    def tracking_uri(self, stage: Stage = "dev") -> str:
        Path(self.root).mkdir(parents=True, exist_ok=True)
        if self.store_url:
            return self.store_url.replace("{stage}", stage)
        return f"sqlite:///{Path(self.root).resolve()}/mlflow-{stage}.db"

    def artifact_root(self, stage: Stage = "dev") -> str | None:
        return (Path(self.root).resolve() / f"artifacts-{stage}").as_uri()


class AzureMLRegistry(ModelRegistry):
    """Two Azure ML workspaces (dev, prod) through their MLflow tracking URIs."""

    subscription_id: str
    resource_group: str
    dev_workspace: str
    prod_workspace: str

    _uris: dict[str, str] = PrivateAttr(default_factory=dict)

    def tracking_uri(self, stage: Stage = "dev") -> str:
        """The workspace's MLflow tracking URI, asked once per resource instance (every
        registry call needs it; the workspace lookup is a management-plane request)."""
        from resources import azure_ml

        if stage not in STAGES:
            raise RegistryError(f"unknown registry stage {stage!r}; use one of {STAGES}")
        if stage not in self._uris:
            workspace = self.dev_workspace if stage == "dev" else self.prod_workspace
            ml = azure_ml.ml_client(self.subscription_id, self.resource_group, workspace)
            uri = ml.workspaces.get(workspace).mlflow_tracking_uri
            if not uri:
                raise RegistryError(f"workspace {workspace} reports no MLflow tracking URI")
            self._uris[stage] = uri
        return self._uris[stage]

    def artifact_root(self, stage: Stage = "dev") -> str | None:
        return None


def set_alias(client: MlflowClient, name: str, alias: str, version: str, attempts: int = 3) -> None:
    """Point `alias` at `version`. MLflow's SQL store inserts an alias after checking that it
    is absent, so two registrations at once can both insert and one fails on the unique key;
    the retry finds the alias there and moves it (the later registration holds it)."""
    from mlflow.exceptions import MlflowException

    for attempt in range(attempts):
        try:
            client.set_registered_model_alias(name, alias, version)
            return
        except MlflowException as err:
            if "unique constraint" not in str(err).lower() or attempt == attempts - 1:
                raise
