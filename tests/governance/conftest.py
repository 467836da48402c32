"""A governed world per test: local stores under tmp_path, the test policy bound in code, a
real MLflow registry on SQLite, the real approvals store, and one logged model to register."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlops_assets.scenarios.classical import SPEC
from resources.env import local_resources
from resources.registry import LocalMlflowRegistry
from tests.governance.helpers import governed, registration, staging


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> tuple[Path, str, str]:
    """Migrated dev and prod MLflow stores with one logged model, made once and copied per
    test (creating an MLflow SQLite store takes seconds): (root, run id, model uri)."""
    root = tmp_path_factory.mktemp("governance-mlflow")
    x = pd.DataFrame({"a": np.arange(20.0)})
    model = LogisticRegression().fit(x, (x["a"] > 9).astype(int))
    # Explicit requirements skip MLflow's slow subprocess-based inference.
    mlflow.sklearn.save_model(model, root / "model", pip_requirements=["scikit-learn"])
    registry = LocalMlflowRegistry(root=str(root / "mlflow"))
    registry.client("prod").search_registered_models()  # creates and migrates the prod store
    client = registry.client("dev")
    run = client.create_run(registry.ensure_experiment("governance", "dev"))
    client.log_artifacts(run.info.run_id, str(root / "model"), "model")
    return root / "mlflow", run.info.run_id, f"{run.info.artifact_uri}/model"


@dataclass
class World:
    resources: dict
    home: Path
    run_id: str
    uri: str
    name: str = SPEC.model_name

    @property
    def store(self):
        return self.resources["approvals"]

    @property
    def audit(self):
        return self.resources["governance"].audit()

    def register(
        self,
        trained_by: str = "os:trainer",
        registered_by: str = "os:dagster",
        staged: bool = True,
        alias: str | None = "challenger",
    ) -> str:
        """A new dev version with its registration record and (by default) a passed staging."""
        mv = self.resources["registry"].register(
            self.name, self.uri, self.run_id, {"mlops.verdict": "approved"}, alias=alias
        )
        version = str(mv.version)
        registration(self.store, self.name, version, self.run_id,
                     trained_by=trained_by, registered_by=registered_by)  # fmt: skip
        if staged:
            staging(self.store, self.name, version)
        return version

    def tags(self, version: str) -> dict[str, str]:
        client = self.resources["registry"].client("dev")
        return dict(client.get_model_version(self.name, version).tags)

    def audited(self, target_version: str) -> list[dict]:
        return self.audit.read(newest_first=False, target=f"{self.name}:{target_version}")


@pytest.fixture
def world(tmp_path, mlflow_template, monkeypatch) -> World:
    monkeypatch.delenv("MLOPS_RBAC_POLICY", raising=False)
    home = tmp_path / "mlops"
    template, run_id, uri = mlflow_template
    shutil.copytree(template, home / "mlflow")
    resources = governed(local_resources(home), home)
    return World(resources, home, run_id, uri)
