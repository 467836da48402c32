"""Which stores the `mlops` CLI reads, and that reading them never creates one.

Protects: from any folder inside a project the CLI finds the project's `.mlops/`
(as git finds `.git`); with none above and MLOPS_HOME unset it refuses, naming
what it looked for and how to set MLOPS_HOME, and writes nothing. A read of a
registry or approvals store that does not exist yet says so and leaves it
missing (MLflow's SQLite store creates its database on connect). `-v` names the
stores. `model show` points to the registry holding an alias it did not find,
shows `models:/<name>/<version>` with the logged-model id apart, and a prod
version's registry, lineage (`prod v1 (from dev v2)`), run metrics and params.

Discovery runs the installed `mlops` script in a subprocess with its working
directory set, as a user runs it; the other tests call `main` in-process after
`chdir`. MLOPS_CEILING_DIRECTORIES keeps every walk up inside the test's folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_cli import main
from resources.registry import LocalMlflowRegistry

MODEL = "t-model"


def tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """`<root>/proj/.mlops` with dev v1, v2 (v2 a logged model, `challenger`) and prod v1
    promoted from dev v2 (`champion`), its run carrying metrics and params; no approvals store.
    `<root>/proj/src/deep` is a folder inside the project, `<root>/elsewhere` one outside."""
    root = tmp_path_factory.mktemp("stores")
    for folder in ("proj/src/deep", "elsewhere", "model"):
        (root / folder).mkdir(parents=True)
    (root / "model" / "MLmodel").write_text("artifact_path: model\nflavors: {}\n")
    registry = LocalMlflowRegistry(root=str(root / "proj" / ".mlops" / "mlflow"))
    dev = registry.client("dev")
    experiment = registry.ensure_experiment("t", "dev")
    run_id = dev.create_run(experiment).info.run_id
    dev.log_metric(run_id, "roc_auc_test", 0.91)
    dev.log_param(run_id, "C", "1.0")
    dev.log_artifacts(run_id, str(root / "model"), "model")
    registry.register(MODEL, f"{dev.get_run(run_id).info.artifact_uri}/model", run_id, {})
    logged = dev.create_logged_model(experiment, source_run_id=run_id)
    dev.log_model_artifacts(logged.model_id, str(root / "model"))
    registry.register(MODEL, logged.artifact_location, run_id, {"mlops.code_version": "c0ffee"},
                      alias="challenger", model_id=logged.model_id)  # fmt: skip
    promoted = registry.promote(MODEL, "2", tags={"mlops.approval_id": "a-1"})
    prod = registry.client("prod")  # metrics and params as the promotion run carries them
    prod.log_metric(promoted.run_id, "roc_auc_test", 0.91)
    prod.log_param(promoted.run_id, "C", "1.0")
    return root


def mlops(cwd: Path, root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """The installed `mlops` script, run in `cwd` with MLOPS_HOME unset."""
    script = Path(sys.executable).with_name("mlops")
    command = [str(script)] if script.exists() else [sys.executable, "-c",
               "import sys; from mlops_cli import main; sys.exit(main())"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_HOME", "MLOPS_ENV")}
    env["MLOPS_CEILING_DIRECTORIES"] = str(root)
    return subprocess.run([*command, *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@pytest.fixture
def inside(project, monkeypatch) -> Path:
    """In-process runs from `proj/src/deep`, MLOPS_HOME unset."""
    monkeypatch.delenv("MLOPS_HOME", raising=False)
    monkeypatch.delenv("MLOPS_ENV", raising=False)
    monkeypatch.setenv("MLOPS_CEILING_DIRECTORIES", str(project))
    monkeypatch.chdir(project / "proj" / "src" / "deep")
    return project


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- discovery ----------------------------------------------------------------------------
def test_from_a_subfolder_the_cli_finds_the_projects_stores_and_names_them(project):
    before = tree(project)
    deep, home = project / "proj" / "src" / "deep", project / "proj" / ".mlops"
    done = mlops(deep, project, "model", "list", "-v", "-o", "json")
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert (row["registry"], row["name"], row["latest"]) == ("dev", MODEL, "dev v2")
    assert f"stores: {home} (MLOPS_HOME unset; found by walking up from {deep})" in done.stderr
    assert f"dev registry: {home / 'mlflow' / 'mlflow-dev.db'}" in done.stderr
    assert tree(project) == before


def test_with_no_stores_above_the_cli_refuses_and_writes_nothing(project):
    before, elsewhere = tree(project), project / "elsewhere"
    done = mlops(elsewhere, project, "model", "list")
    assert done.returncode == 1 and done.stdout == ""
    looked = f"MLOPS_HOME is unset and there is no .mlops/ folder in {elsewhere} or any folder"
    assert "no MLOps stores found" in done.stderr and looked in done.stderr
    assert "set MLOPS_HOME" in done.stderr
    assert tree(project) == before
    policy = mlops(elsewhere, project, "policy", "show", "-o", "json")  # reads no store
    assert policy.returncode == 0 and json.loads(policy.stdout), policy.stderr
    assert tree(project) == before


def test_stores_found_above_but_owned_by_someone_else_are_refused(capsys, tmp_path, monkeypatch):
    """As git refuses a repository of dubious ownership: a `.mlops/` another user put in a
    shared folder above the working directory must not answer for this project."""
    if os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root (CI and this machine run as root)")
    shared = tmp_path / "shared"
    (shared / ".mlops").mkdir(parents=True)
    (shared / "work").mkdir()
    os.chown(shared / ".mlops", 65534, 65534)
    monkeypatch.delenv("MLOPS_HOME", raising=False)
    monkeypatch.delenv("MLOPS_ENV", raising=False)
    monkeypatch.setenv("MLOPS_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(shared / "work")
    code, out, err = run(capsys, "model", "list")
    assert code == 1 and out == ""
    assert f"{shared / '.mlops'} was found by walking up" in err and "uid 65534" in err
    monkeypatch.setenv("MLOPS_HOME", str(shared / ".mlops"))  # an explicit choice is honoured
    assert run(capsys, "model", "list")[0] == 0


# -- reads never create a store -----------------------------------------------------------
def test_reading_missing_stores_says_so_and_creates_nothing(capsys, tmp_path, monkeypatch):
    (tmp_path / "p" / ".mlops").mkdir(parents=True)  # a project whose stores are all missing
    monkeypatch.delenv("MLOPS_HOME", raising=False)
    monkeypatch.setenv("MLOPS_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(tmp_path / "p")
    before, db = tree(tmp_path), tmp_path / "p" / ".mlops" / "mlflow" / "mlflow-prod.db"
    code, out, err = run(capsys, "model", "list", "--registry", "prod", "-o", "json")
    assert (code, json.loads(out)) == (0, [])
    assert f"the prod registry does not exist yet: there is no {db}" in err
    code, out, err = run(capsys, "model", "show", MODEL, "--alias", "x", "--registry", "prod")
    assert code == 1 and out == "" and "the prod registry does not exist yet" in err
    code, out, err = run(capsys, "model", "pending", MODEL, "-o", "json")
    assert (code, json.loads(out)) == (0, []) and "the dev registry does not exist yet" in err
    for argv in (["audit"], ["endpoint", "list"]):
        code, out, _ = run(capsys, *argv, "-o", "json")
        assert (code, json.loads(out)) == (0, [])
    assert tree(tmp_path) == before


def test_reading_dev_versions_leaves_the_missing_approvals_store_missing(capsys, inside):
    before = tree(inside)
    code, out, err = run(capsys, "model", "show", MODEL, "-o", "json", "-v")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["staging"], shown["approval"]) == ("not run", "undecided")
    assert "approvals.db does not exist yet (no records)" in err
    code, out, err = run(capsys, "model", "pending", MODEL, "-o", "json")
    assert code == 0, err
    assert [(r["registry"], r["version"]) for r in json.loads(out)] == [("dev", "2")]
    assert tree(inside) == before


# -- where a version is -------------------------------------------------------------------
def test_an_alias_missing_here_points_to_the_registry_that_has_it(capsys, inside):
    code, _, err = run(capsys, "model", "show", MODEL, "--alias", "champion")
    hint = f"mlops model show {MODEL} --alias champion --registry prod"
    assert code == 1
    said = f"{MODEL} has no alias 'champion' in the dev registry; the prod registry has it"
    assert f"{said} (v1): {hint}" in err
    code, _, err = run(capsys, *hint.split()[1:], "-o", "json")  # the suggestion works
    assert code == 0, err
    code, _, err = run(capsys, "model", "show", MODEL, "--alias", "challenger", "--registry",
                       "prod")  # fmt: skip
    assert code == 1 and "--alias challenger --registry dev" in err
    code, _, err = run(capsys, "model", "show", MODEL, "--alias", "nowhere")
    assert code == 1 and err.strip().endswith("has no alias 'nowhere' in the dev registry")


def test_a_prod_version_shows_its_lineage_run_metrics_and_params(capsys, inside):
    code, out, err = run(capsys, "model", "show", MODEL, "--alias", "champion", "--registry",
                         "prod", "-o", "json")  # fmt: skip
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["registry"], shown["version"], shown["aliases"]) == ("prod", "1", ["champion"])
    assert shown["registry_version"] == "prod v1 (from dev v2)"
    assert shown["model_uri"] == f"models:/{MODEL}/1"
    assert shown["promoted_from"]["registry"] == "dev"
    assert shown["promoted_from"]["version"] == "2" and shown["promoted_from"]["run_id"]
    assert shown["metrics"] == {"roc_auc_test": 0.91} and shown["params"] == {"C": "1.0"}
    code, out, _ = run(capsys, "model", "list", "--registry", "prod")
    assert code == 0 and "prod v1 (from dev v2)" in out and "champion=1" in out


def test_a_dev_version_shows_its_registry_uri_and_logged_model_apart(capsys, inside):
    code, out, err = run(capsys, "model", "show", MODEL, "--alias", "challenger", "-o", "json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["model_uri"] == f"models:/{MODEL}/2" and shown["registry_version"] == "dev v2"
    assert shown["logged_model_id"].startswith("m-")
    assert shown["logged_model_id"] in shown["source"] and shown["source"].startswith("file:")
    assert shown["promoted_from"] is None and shown["params"] == {"C": "1.0"}
    code, out, err = run(capsys, "model", "show", MODEL, "--version", "1", "-o", "json")
    assert code == 0 and json.loads(out)["logged_model_id"] is None, err
