"""The MLflow registry resource: dev and prod stores apart, aliases, promotion lineage."""

from __future__ import annotations

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from resources.registry import LocalMlflowRegistry, RegistryError


@pytest.fixture
def registry(tmp_path) -> LocalMlflowRegistry:
    return LocalMlflowRegistry(root=str(tmp_path / "mlflow"))


def _log_model(registry: LocalMlflowRegistry, tmp_path) -> tuple[str, str]:
    x = pd.DataFrame({"a": np.arange(20.0)})
    model = LogisticRegression().fit(x, (x["a"] > 9).astype(int))
    exp = registry.ensure_experiment("unit", "dev")
    client = registry.client("dev")
    run = client.create_run(exp)
    path = tmp_path / "model"
    mlflow.sklearn.save_model(model, path)
    client.log_artifacts(run.info.run_id, str(path), "model")
    client.log_metric(run.info.run_id, "roc_auc_holdout", 0.71)
    client.log_param(run.info.run_id, "learning_rate", "0.05")
    return run.info.run_id, f"{run.info.artifact_uri}/model"


def test_stores_are_separate_files(registry, tmp_path):
    assert registry.tracking_uri("dev") != registry.tracking_uri("prod")
    assert registry.tracking_uri("dev").endswith("mlflow-dev.db")
    with pytest.raises(RegistryError, match="staging"):
        registry.client("staging")


def test_ensure_experiment_is_idempotent(registry):
    assert registry.ensure_experiment("e1") == registry.ensure_experiment("e1")


def test_register_moves_alias_and_promote_copies_with_lineage(registry, tmp_path):
    run_id, uri = _log_model(registry, tmp_path)
    v1 = registry.register("m", uri, run_id, {"mlops.code_version": "c1"}, alias="challenger")
    v2 = registry.register("m", uri, run_id, {"mlops.code_version": "c2"}, alias="challenger")
    assert registry.version_by_alias("m", "challenger").version == v2.version
    assert registry.version_by_alias("m", "champion") is None
    assert registry.version_by_alias("m", "champion", "prod") is None

    prod = registry.promote("m", str(v1.version), tags={"mlops.approved_by": "lead"})
    assert prod.aliases == ["champion"]
    assert prod.tags["mlops.source_version"] == str(v1.version)
    assert prod.tags["mlops.code_version"] == "c1"
    assert prod.tags["mlops.approved_by"] == "lead"
    # what was evaluated in dev is readable on the prod version's run
    prod_run = registry.client("prod").get_run(prod.run_id).data
    assert prod_run.metrics == {"roc_auc_holdout": 0.71}
    assert prod_run.params == {"learning_rate": "0.05"}
    # the prod copy loads on its own, from the prod store's artifacts
    path = registry.download_model("m", str(prod.version), "prod")
    assert "artifacts-prod" in path
    loaded = mlflow.sklearn.load_model(path)
    assert loaded.predict(pd.DataFrame({"a": [0.0, 19.0]})).tolist() == [0, 1]
    # dev is untouched by promotion
    assert [str(v.version) for v in registry.versions("m", "dev")] == ["1", "2"]


def test_links_name_the_store_they_point_into(tmp_path):
    both = LocalMlflowRegistry(
        root=str(tmp_path), ui_url="http://h:5000/", prod_ui_url="http://h:5001"
    )
    assert both.version_url("m", "3") == "http://h:5000/#/models/m/versions/3"
    assert both.version_url("m", "2", "prod") == "http://h:5001/#/models/m/versions/2"
    assert both.artifact_url("r1", "roc curve.png") == (
        "http://h:5000/get-artifact?path=roc%20curve.png&run_uuid=r1"
    )
    assert LocalMlflowRegistry(root=str(tmp_path)).run_url("1", "r", "prod") is None
