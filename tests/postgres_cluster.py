"""Fixtures for tests on PostgreSQL: one throwaway cluster per test session (per xdist
worker), fresh databases per test.

The cluster is `resources.postgres_local.throwaway()`: initdb + pg_ctl as the `postgres`
OS user under root, on a free port of 127.0.0.1, socket and data in a temporary folder,
stopped and deleted at the end of the session. Without PostgreSQL's server binaries the
tests that ask for it are skipped, saying how to install them. tests/conftest.py imports
the fixtures.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from resources.postgres_local import LocalPostgres, pg_bin, throwaway

INSTANCE_YAML = Path(__file__).resolve().parents[1] / "deploy" / "dagster-postgres.yaml"
NO_SERVER = (
    "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: `.ci/run` installs "
    "the Debian package `postgresql`, or set MLOPS_PG_BIN to their folder"
)
_names = itertools.count(1)


@dataclass(frozen=True)
class PgStores:
    """Databases of one test: the Dagster instance's and the dev/prod MLflow registries'."""

    cluster: LocalPostgres
    dagster_db: str
    mlflow_prefix: str

    def mlflow_db(self, stage: str) -> str:
        return f"{self.mlflow_prefix}{stage}"

    def rows(self, database: str, sql: str, args: tuple = ()) -> list[tuple]:
        return self.cluster.query(database, sql, args)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[LocalPostgres]:
    if pg_bin() is None:
        pytest.skip(NO_SERVER)
    with throwaway() as cluster:
        yield cluster


@pytest.fixture
def pg_stores(pg_cluster: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> PgStores:
    """Fresh databases, and the environment that points deploy/dagster-postgres.yaml and
    `MLOPS_MLFLOW_DB_URL` at them (inherited by the processes a test starts)."""
    prefix = f"t{next(_names)}_"
    stores = PgStores(pg_cluster, f"{prefix}dagster", f"{prefix}mlflow_")
    pg_cluster.create_databases(
        [stores.dagster_db, stores.mlflow_db("dev"), stores.mlflow_db("prod")]
    )
    for key, value in pg_cluster.env(stores.dagster_db, stores.mlflow_prefix).items():
        monkeypatch.setenv(key, value)
    return stores
