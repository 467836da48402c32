"""The classical lifecycle with two runs at once, on PostgreSQL (issue 12, part 1).

Protects the scale-out stores: deploy/dagster-postgres.yaml as shipped (credentials from
the environment) keeps runs and events in PostgreSQL, and `MLOPS_MLFLOW_DB_URL` puts
both MLflow registries there, artifacts still under MLOPS_HOME. The test body is
test_concurrent_training's, run on a throwaway cluster (tests/postgres_cluster.py); then
the rows are read back with psycopg2, so a silent fallback to SQLite files fails here.
"""

from __future__ import annotations

from mlops_assets.scenarios.classical import SPEC
from resources.env import local_resources
from tests.postgres_cluster import INSTANCE_YAML, PgStores
from tests.test_concurrent_training import concurrent_lineage


def test_two_runs_at_once_on_postgres(tmp_path, landed, pg_stores: PgStores):
    run_ids = concurrent_lineage(tmp_path, landed[0], instance_yaml=INSTANCE_YAML.read_text())

    # Dagster: the two concurrent runs and the rerun are rows of PostgreSQL, with their events
    runs = dict(pg_stores.rows(pg_stores.dagster_db, "SELECT run_id, status FROM runs"))
    assert len(runs) == 3
    assert all(runs[run_id] == "SUCCESS" for run_id in run_ids.values())
    materialized = pg_stores.rows(
        pg_stores.dagster_db,
        "SELECT run_id, count(*) FROM event_logs WHERE dagster_event_type = "
        "'ASSET_MATERIALIZATION' AND run_id = ANY(%s) GROUP BY run_id",
        (list(run_ids.values()),),
    )
    assert sorted(count for _, count in materialized) == [4, 4]  # training set .. registry
    assert not list((tmp_path / "dagster_home").rglob("*.db")), "a SQLite store was written"

    # MLflow dev registry: one version per run, tagged with its run, in PostgreSQL
    versions = pg_stores.rows(
        pg_stores.mlflow_db("dev"),
        "SELECT v.version, t.value FROM model_versions v JOIN model_version_tags t "
        "ON t.name = v.name AND t.version = v.version "
        "WHERE v.name = %s AND t.key = 'mlops.dagster_run_id' ORDER BY v.version",
        (SPEC.model_name,),
    )
    assert [v for v, _ in versions] == [1, 2]
    assert {run for _, run in versions} == set(run_ids.values())
    mlflow_home = tmp_path / "mlops" / "mlflow"
    assert not list(mlflow_home.glob("*.db"))
    (location,) = pg_stores.rows(
        pg_stores.mlflow_db("dev"),
        "SELECT artifact_location FROM experiments WHERE name = %s",
        (SPEC.model_name,),
    )[0]
    assert location.startswith((mlflow_home / "artifacts-dev").as_uri())

    # MLflow prod registry: a promotion copies the version and moves the champion alias
    registry = local_resources(tmp_path / "mlops")["registry"]
    promoted = registry.promote(SPEC.model_name, "2", {"mlops.approval": "pg-test"})
    prod = pg_stores.mlflow_db("prod")
    assert pg_stores.rows(prod, "SELECT name, version FROM model_versions") == [
        (SPEC.model_name, 1)
    ]
    assert pg_stores.rows(prod, "SELECT alias, version FROM registered_model_aliases") == [
        ("champion", 1)
    ]
    model_dir = registry.download_model(SPEC.model_name, promoted.version, "prod")
    assert model_dir.startswith(str(mlflow_home / "artifacts-prod"))
