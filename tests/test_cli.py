"""The `mlops` command line against real stores: an MLflow registry on SQLite, the audit
trail and a running scoring server, all under a temporary MLOPS_HOME.

Protects: the exit-code contract (0 ok, 1 refused/failed with the message on
stderr, 2 usage errors), RBAC refusals that name the persona and are audited,
the caller taken from the OS account (never from `--as`, which only narrows),
a swapped `$MLOPS_RBAC_POLICY` refused, the staging gate on approval, JSON
output that parses, the audit trail's verification, and a `--help` that starts
without MLflow or Dagster. The endpoint commands are in `test_cli_endpoints.py`.

Identity is injected where the product reads it: the test policy (bound in
code, as a deployment binds its policy) maps the OS account `<user>-os` to each
policy user, and `resources.identity.os_account` is replaced per test.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import resources.env
import resources.identity
from mlops_cli import main
from resources.approvals_store import LocalApprovalStore
from resources.registry import LocalMlflowRegistry
from tests.governance.helpers import governed, os_name, registration, staging, write_policy

MODEL = "cli-model"
LINEAGE = {"mlops.code_version": "c0ffee", "mlops.training_window": "2013-01-01/2013-02-28"}
X = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7})


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """MLOPS_HOME with one logged model registered four times (v1-v4), each test using its own."""
    root = tmp_path_factory.mktemp("mlops-home")
    y = (X["a"] > 19).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    # Explicit requirements skip MLflow's slow subprocess-based inference.
    signature = infer_signature(X, model.predict(X))
    mlflow.sklearn.save_model(
        model, root / "model", signature=signature, input_example=X.head(2),
        pip_requirements=["scikit-learn"],
    )  # fmt: skip
    registry = LocalMlflowRegistry(root=str(root / "mlflow"))  # where resources_for looks
    client = registry.client("dev")
    run = client.create_run(registry.ensure_experiment("cli", "dev"))
    client.log_metric(run.info.run_id, "roc_auc_test", 0.91)
    client.log_artifacts(run.info.run_id, str(root / "model"), "model")
    uri = f"{run.info.artifact_uri}/model"
    store = LocalApprovalStore(path=str(root / "governance" / "approvals.db"))  # resources_for's
    for version in ("1", "2", "3", "4"):
        tags = {**LINEAGE, "mlops.mlflow_run_id": run.info.run_id}
        registry.register(MODEL, uri, run.info.run_id, tags, alias="challenger")
        registration(store, MODEL, version, run.info.run_id)
        if version != "3":  # v3 never passed staging
            staging(store, MODEL, version)
            client.set_model_version_tag(MODEL, version, "mlops.staging", "passed")  # display
    client.set_model_version_tag(MODEL, "4", "mlops.verdict", "approved")
    return root


def as_os(monkeypatch, user: str) -> None:
    """The CLI's caller is now the OS account the test policy maps to `user`."""
    monkeypatch.setattr(resources.identity, "os_account", lambda: os_name(user))


@pytest.fixture(autouse=True)
def env(home, monkeypatch) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(home))
    for var in ("MLOPS_ENV", "MLOPS_RBAC_POLICY"):
        monkeypatch.delenv(var, raising=False)
    real = resources.env.local_resources
    monkeypatch.setattr(resources.env, "local_resources", lambda h: governed(real(h), h))
    as_os(monkeypatch, "nobody")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys, *argv: str):
    code, out, err = run(capsys, *argv, "-o", "json")
    assert code == 0, err
    return json.loads(out)


# -- start-up and usage -------------------------------------------------------------------
def test_help_runs_as_a_command_without_heavy_imports():
    mlops = Path(sys.executable).with_name("mlops")
    command = [str(mlops)] if mlops.exists() else [sys.executable, "-m", "mlops_cli"]
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "endpoint" in done.stdout and "approve" in done.stdout
    probe = "import sys, mlops_cli; print(sorted({'mlflow', 'dagster'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert loaded.stdout.strip() == "[]", loaded.stderr


@pytest.mark.parametrize(
    "path",
    [["approve"], ["reject"], ["model", "list"], ["model", "show"], ["model", "pending"],
     ["endpoint", "list"], ["endpoint", "show"], ["endpoint", "keys"],
     ["endpoint", "regenerate-key"], ["endpoint", "traffic"], ["endpoint", "serve"],
     ["audit"], ["policy", "show"], ["policy", "azure-roles"]],
)  # fmt: skip
def test_every_command_has_help_with_the_output_option(capsys, path):
    code, out, _ = run(capsys, *path, "--help")
    assert code == 0 and "--output" in out


def test_usage_errors_exit_2(capsys):
    assert run(capsys, "model")[0] == 2  # a group needs a command
    code, _, err = run(capsys, "approve", MODEL, "1")
    assert code == 2 and "--reason" in err
    code, _, err = run(capsys, "model", "list", "-o", "yaml")
    assert code == 2 and "invalid choice" in err


# -- approvals ----------------------------------------------------------------------------
def test_unauthorized_approve_names_the_persona_and_is_audited(capsys, monkeypatch):
    as_os(monkeypatch, "alice")
    code, out, err = run(capsys, "approve", MODEL, "1", "--reason", "looks good")
    assert code == 1 and out == ""
    assert "alice (data_scientist) may not approve_model in prod" in err
    assert "project_lead" in err  # says who may
    [record] = run_json(capsys, "audit", "--target", f"{MODEL}:1")
    assert (record["actor"], record["persona"], record["outcome"]) == (
        "alice", "data_scientist", "denied"
    )  # fmt: skip
    assert record["caller"] == "os:alice-os" and len(record["policy_hash"]) == 64


def test_as_names_only_yourself_and_refusals_are_audited(capsys, monkeypatch):
    as_os(monkeypatch, "alice")
    code, _, err = run(capsys, "approve", MODEL, "1", "--as", "priya", "--reason", "mine now")
    assert code == 1 and "never name someone else" in err
    code, _, err = run(capsys, "approve", MODEL, "1", "--as", "", "--reason", "nobody")
    assert code == 1 and "empty --as" in err
    records = run_json(capsys, "audit", "--target", f"{MODEL}:1", "--limit", "2")
    assert [(r["actor"], r["caller"], r["details"]["requested_as"]) for r in records] == [
        ("os:alice-os", "os:alice-os", ""), ("os:alice-os", "os:alice-os", "priya")
    ]  # fmt: skip
    assert {r["outcome"] for r in records} == {"denied"}


def test_a_swapped_policy_is_refused_and_audited(capsys, monkeypatch, tmp_path):
    monkeypatch.undo()  # the packaged policy, as a deployment without code-bound policy has
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    own = write_policy(tmp_path / "own.yaml", lambda r: r["users"].update(mallory="project_lead"))
    monkeypatch.setenv("MLOPS_RBAC_POLICY", str(own))
    code, _, err = run(capsys, "approve", MODEL, "1", "--reason", "mine")
    assert code == 1 and "allow_policy_override: false" in err
    [record] = run_json(capsys, "audit")
    assert record["outcome"] == "denied"
    assert record["policy_hash"] == hashlib.sha256(own.read_bytes()).hexdigest()


def test_authorized_approve_tags_the_version(capsys, home, monkeypatch):
    as_os(monkeypatch, "priya")
    record = run_json(capsys, "approve", MODEL, "2", "--reason", "AUC up")
    assert record["decision"] == "approved" and record["persona"] == "project_lead"
    assert record["caller"] == "os:priya-os"
    client = LocalMlflowRegistry(root=str(home / "mlflow")).client("dev")
    assert client.get_model_version(MODEL, "2").tags["mlops.approval"] == "approved"

    shown = run_json(capsys, "model", "show", MODEL, "--version", "2")
    assert shown["approval"] == "approved" and shown["staging"] == "passed"
    assert shown["tags"]["mlops.approval_by"] == "priya"
    assert LINEAGE.items() <= shown["tags"].items()
    # one decision per version: a second one is refused
    as_os(monkeypatch, "olivia")
    code, _, err = run(capsys, "reject", MODEL, "2", "--reason", "no")
    assert code == 1 and "already approved by priya" in err


def test_approve_without_staging_is_refused(capsys, monkeypatch):
    as_os(monkeypatch, "priya")
    code, _, err = run(capsys, "approve", MODEL, "3", "--reason", "ship it")
    assert code == 1 and "has not passed staging" in err and "staging_deployment" in err
    [record] = run_json(capsys, "audit", "--target", f"{MODEL}:3", "--action", "approve")
    assert record["outcome"] == "denied"


# -- models -------------------------------------------------------------------------------
def test_model_list_and_show(capsys):
    [row] = run_json(capsys, "model", "list")
    assert row == {"registry": "dev", "name": MODEL, "latest": "dev v4", "latest_version": "4",
                   "aliases": {"challenger": "4"}, "versions": 4}  # fmt: skip
    shown = run_json(capsys, "model", "show", MODEL, "--alias", "challenger")
    assert shown["version"] == "4" and shown["aliases"] == ["challenger"]
    assert shown["registry"] == "dev" and shown["model_uri"] == f"models:/{MODEL}/4"
    assert shown["metrics"] == {"roc_auc_test": 0.91} and shown["run_id"]
    assert [col["name"] for col in shown["signature"]["inputs"]] == ["a", "b"]
    assert shown["input_example"]["columns"] == ["a", "b"]
    code, out, _ = run(capsys, "model", "show", MODEL)  # table: the latest version
    assert code == 0 and "a: double" in out and "mlops.code_version=c0ffee" in out


def test_model_show_unknown_version_says_which_exist(capsys):
    code, _, err = run(capsys, "model", "show", MODEL, "--version", "99")
    assert code == 1 and "versions: 1, 2, 3, 4" in err


def test_model_pending_lists_undecided_candidates(capsys):
    rows = run_json(capsys, "model", "pending", MODEL)
    assert [(r["registry"], r["version"]) for r in rows] == [("dev", "4")]


# -- audit and policy -----------------------------------------------------------------------
def test_audit_verify_passes_on_the_real_trail(capsys):
    result = run_json(capsys, "audit", "--verify")
    assert result["intact"] and result["problems"] == []


def test_audit_verify_fails_on_an_edited_trail(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    trail = resources.env.local_resources(tmp_path)["governance"].audit()  # anchored, as the CLI's
    for actor in ("sam", "priya"):
        trail.record("deploy", actor, "m:1", "prod", "succeeded")
    trail.path.write_text(trail.path.read_text().replace('"priya"', '"mallory"'))
    code, out, err = run(capsys, "audit", "--verify", "-o", "json")
    assert code == 1 and "1 problem(s)" in err
    assert json.loads(out)["problems"] == ["line 2: hash mismatch: the record was edited"]


def test_policy_show_and_azure_roles(capsys):
    personas = run_json(capsys, "policy", "show")
    assert len(personas) == 11
    lead = next(p for p in personas if p["persona"] == "project_lead")
    assert lead["users"] == ["priya"] and "approve_model" in lead["permissions"]["prod"]
    roles = run_json(capsys, "policy", "azure-roles")
    assert {"assignee", "role", "scope", "persona", "environment"} <= set(roles[0])
    code, out, _ = run(capsys, "policy", "show")
    assert code == 0 and "platform_support" in out
