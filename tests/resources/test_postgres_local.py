"""The local PostgreSQL cluster behind `make dev-postgres`, and the switch to MLflow on it.

Protects what the lifecycle tests take for granted: `MLOPS_MLFLOW_DB_URL` is refused with
a reason when it cannot name two stores or carries a password (the URL shows in the
Dagster UI); the cluster listens on 127.0.0.1 only, asks for its password, and keeps its
port, password and data across a stop and start, as a developer's cluster must.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import pytest

from resources.env import local_resources, mlflow_store_url
from resources.postgres_local import LocalPostgres, connection, main, pg_bin
from tests.postgres_cluster import NO_SERVER

URL = "postgresql+psycopg2://mlops@127.0.0.1:5433/mlflow_{stage}"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql+psycopg2://mlops@127.0.0.1:5433/mlflow", "has no `{stage}`"),
        ("mlflow_{stage}", "is not a URL"),
        ("postgresql+psycopg2://mlops:s3cret@h:5432/mlflow_{stage}", "carries a password"),
        ("postgresql+psycopg2://mlops@h:5432/mlflow_{stage}?password=s3cret", "carries a password"),
    ],
)
def test_bad_store_url_is_refused_naming_the_problem(monkeypatch, url, problem):
    monkeypatch.setenv("MLOPS_MLFLOW_DB_URL", url)
    with pytest.raises(ValueError, match=f"MLOPS_MLFLOW_DB_URL {problem}"):
        mlflow_store_url()


def test_store_url_moves_both_registries_and_keeps_artifacts_home(monkeypatch, tmp_path):
    monkeypatch.delenv("MLOPS_MLFLOW_DB_URL", raising=False)
    embedded = local_resources(tmp_path)["registry"]
    assert embedded.tracking_uri("dev").startswith("sqlite:///")
    monkeypatch.setenv("MLOPS_MLFLOW_DB_URL", URL)
    registry = local_resources(tmp_path)["registry"]
    assert registry.tracking_uri("dev") == URL.replace("{stage}", "dev")
    assert registry.tracking_uri("prod") == URL.replace("{stage}", "prod")
    assert registry.artifact_root("prod") == embedded.artifact_root("prod")


def _cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


@pytest.fixture
def cluster_root():
    if pg_bin() is None:
        pytest.skip(NO_SERVER)
    # not tmp_path: pytest makes its base folder 0700, and under root the server runs as
    # the `postgres` user, who has to reach the cluster's folder
    root = Path(tempfile.mkdtemp(prefix="mlops-pg-cli-"))
    yield root
    main(["stop", "--root", str(root)])
    shutil.rmtree(root, ignore_errors=True)


def test_cluster_survives_stop_and_start_on_loopback_with_a_password(cluster_root):
    code, exports = _cli("start", "--root", str(cluster_root))
    assert code == 0
    first = connection(cluster_root)
    assert f"export DAGSTER_PG_PORT='{first.port}'" in exports
    assert f"export PGPASSWORD='{first.password}'" in exports
    assert first.query("postgres", "SHOW listen_addresses") == [("127.0.0.1",)]
    assert first.query("postgres", "SHOW unix_socket_directories") == [
        (str(cluster_root.resolve() / "run"),)
    ]
    assert {"dagster", "mlflow_dev", "mlflow_prod"} <= {
        name for (name,) in first.query("postgres", "SELECT datname FROM pg_database")
    }
    first.query("dagster", "CREATE TABLE kept AS SELECT 42 AS answer")
    wrong = LocalPostgres(root=cluster_root, port=first.port, password="not-the-password")
    with pytest.raises(Exception, match="password authentication failed"):
        wrong.query("postgres", "SELECT 1")

    assert _cli("stop", "--root", str(cluster_root))[0] == 0
    assert _cli("status", "--root", str(cluster_root)) == (3, "stopped\n")
    assert _cli("start", "--root", str(cluster_root))[0] == 0
    assert connection(cluster_root) == first  # same port and password
    assert first.query("dagster", "SELECT answer FROM kept") == [(42,)]
    assert _cli("env", "--root", str(cluster_root))[1] == exports
