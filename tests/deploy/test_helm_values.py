"""The Dagster Helm values and the Job a training step gets, checked offline.

Protects: the run launcher keys we set are `K8sRunLauncher` config fields with valid
values (dagster-k8s's own schema decides, and a misspelt key fails); the user code
deployment serves this project's module under its location name, from the image the
Dockerfile builds; PostgreSQL comes from a secret, with a driver-qualified scheme that
dagster-postgres accepts and SQLAlchemy can load; the run coordinator's limits pass
Dagster's schema and limit on a tag our runs carry; the GPU training step, built
with dagster-k8s's own constructors from these values and the op tags of
`mlops_core.k8s_training`, is a valid Kubernetes Job on the GPU pool.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import uuid

import dagster as dg
import pytest
import yaml
from dagster_k8s import K8sRunLauncher
from dagster_postgres import PostgresRunStorage
from dagster_postgres.utils import get_conn_string
from kubernetes.utils import parse_quantity

from mlops_assets import naming
from mlops_assets.k8s_execution import (
    EXECUTOR_ENV,
    executor_for_env,
    run_launcher_config,
    step_job,
)
from mlops_core import k8s_manifests, k8s_scoring
from mlops_core.k8s_training import K8S_CONFIG_TAG, POOL_LABEL, training_op_tags
from tests.deploy.k8s_checks import (
    PYPROJECT,
    ROOT,
    config_errors,
    image_title,
    image_uid,
    schema_errors,
)

VALUES = yaml.safe_load((ROOT / "deploy" / "helm" / "dagster-values.yaml").read_text())
IMAGE = "mlopsregistry.azurecr.io/mlops-code-location:0.1.0"


def user_deployment() -> dict:
    (deployment,) = VALUES["dagster-user-deployments"]["deployments"]
    return deployment


def test_run_launcher_values_are_k8s_run_launcher_config():
    config = run_launcher_config(VALUES)
    assert config_errors(K8sRunLauncher.config_type(), config) is None
    assert config["env_secrets"] == ["mlops-env"]
    assert config["postgres_password_secret"] == VALUES["global"]["postgresqlSecretName"]


def test_a_misspelt_run_launcher_key_is_refused():
    values = copy.deepcopy(VALUES)
    values["runLauncher"]["config"]["k8sRunLauncher"]["jobNamepsace"] = "dagster"
    error = config_errors(K8sRunLauncher.config_type(), run_launcher_config(values))
    assert error is not None and "job_namepsace" in error


def test_user_deployment_serves_this_code_location_from_the_dockerfiles_image():
    deployment = user_deployment()
    args = deployment["dagsterApiGrpcArgs"]
    module = args[args.index("--module-name") + 1]
    assert module == PYPROJECT["tool"]["dagster"]["module_name"]
    assert importlib.util.find_spec(module) is not None
    assert deployment["name"] == PYPROJECT["tool"]["dagster"]["code_location_name"]
    image = deployment["image"]
    assert image["repository"].rsplit("/", 1)[1] == image_title("code-location")
    assert image["tag"] == PYPROJECT["project"]["version"]
    assert f"{image['repository']}:{image['tag']}" == IMAGE
    assert deployment["podSecurityContext"]["runAsUser"] == image_uid("code-location")


def test_code_server_and_run_pods_get_the_same_environment():
    deployment, launcher = user_deployment(), run_launcher_config(VALUES)
    server_env = {e["name"]: e["value"] for e in deployment["env"]}
    run_env = dict(item.split("=", 1) for item in launcher["env_vars"])
    assert server_env == run_env and run_env["MLOPS_EXECUTOR"] == "k8s"
    assert [s["name"] for s in deployment["envSecrets"]] == launcher["env_secrets"]
    assert deployment["volumes"] == launcher["volumes"]
    assert deployment["volumeMounts"] == launcher["volume_mounts"]
    mounts = {m["mountPath"] for m in launcher["volume_mounts"]}
    assert run_env["MLOPS_HOME"] in mounts
    # where scoring pods mount the same claim to read the registry's artifact files
    assert run_env["MLOPS_HOME"] == k8s_scoring.STORES_DIR


def test_postgres_connection_comes_from_a_secret_with_a_driver_scheme(monkeypatch):
    pg = VALUES["postgresql"]
    assert pg["enabled"] is False and VALUES["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in pg and VALUES["global"]["postgresqlSecretName"]
    # what the chart writes into dagster.yaml's storage, checked by dagster-postgres
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "from-the-secret")
    postgres_db = {
        "username": pg["postgresqlUsername"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": pg["postgresqlHost"],
        "db_name": pg["postgresqlDatabase"],
        "port": pg["service"]["port"],
        "params": pg["postgresqlParams"],
        "scheme": pg["postgresqlScheme"],
    }
    assert config_errors(PostgresRunStorage.config_type(), {"postgres_db": postgres_db}) is None
    from sqlalchemy.engine import make_url

    url = get_conn_string(
        username=pg["postgresqlUsername"],
        password="x",
        hostname=pg["postgresqlHost"],
        db_name=pg["postgresqlDatabase"],
        params=pg["postgresqlParams"],
        scheme=pg["postgresqlScheme"],
    )
    assert make_url(url).get_dialect().driver == "psycopg2"


def test_run_coordinator_limits_pass_dagsters_schema_and_use_our_run_tags():
    coordinator = VALUES["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    rendered = {  # the chart's run-coordinator template: same values, snake_case keys
        "max_concurrent_runs": queued["maxConcurrentRuns"],
        "tag_concurrency_limits": queued["tagConcurrencyLimits"],
    }
    assert config_errors(dg.QueuedRunCoordinator.config_type(), rendered) is None
    keys = {limit["key"] for limit in queued["tagConcurrencyLimits"]}
    assert set(naming.scenario_tags("classical")) <= keys


@pytest.mark.parametrize("pool", [None, "gpu"])
def test_training_step_job_passes_the_kubernetes_schemas(pool):
    @dg.asset(key=["vision", "candidate_model"], op_tags=training_op_tags(pool), pool=pool)
    def candidate_model() -> None: ...

    job = step_job(
        run_launcher_config(VALUES),
        candidate_model.op.tags,  # as Dagster stores them: the dict JSON-encoded
        image=IMAGE,
        run_id=str(uuid.uuid4()),
        step_key="vision__candidate_model",
        job_name="vision_training_job",
    )
    assert schema_errors(job) == []
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert pod["nodeSelector"] == {POOL_LABEL: "gpu" if pool else "cpu"}
    assert ("nvidia.com/gpu" in limits) == (pool == "gpu")
    if pool == "gpu":
        assert limits["nvidia.com/gpu"] == requests["nvidia.com/gpu"] == "1"
        assert pod["tolerations"][0].items() >= {"key": "sku", "value": "gpu"}.items()
    for quantity in (*limits.values(), *requests.values()):
        parse_quantity(quantity)  # raises on anything Kubernetes would refuse
    # the launcher's base config is still there under the step's tags
    assert container["image"] == IMAGE
    assert {"secretRef": {"name": "mlops-env"}} in container["envFrom"]
    assert {"mountPath": "/mnt/mlops", "name": "mlops-home"} in container["volumeMounts"]
    assert container["securityContext"]["runAsNonRoot"] is True
    password = next(e for e in container["env"] if e["name"] == "DAGSTER_PG_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"]["name"] == "dagster-postgresql-secret"


def test_a_bad_step_tag_or_job_field_is_refused():
    tags = {K8S_CONFIG_TAG: json.dumps({"pod_spec_config": {"node_selectr": {"a": "b"}}})}
    with pytest.raises(Exception, match="node_selectr"):  # dagster-k8s's model check
        step_job(
            run_launcher_config(VALUES), tags, image=IMAGE, run_id="r", step_key="s", job_name="j"
        )
    job = step_job(
        run_launcher_config(VALUES), {}, image=IMAGE, run_id="r", step_key="s", job_name="j"
    )
    job["spec"]["template"]["spec"]["nodeSelector"] = ["mlops/pool=gpu"]
    assert any("nodeSelector" in e for e in schema_errors(job))


def test_an_unknown_pool_is_refused_by_name():
    with pytest.raises(ValueError, match="'tpu'"):
        training_op_tags("tpu")


def test_executor_follows_the_environment(monkeypatch):
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert executor_for_env() is dg.in_process_executor
    monkeypatch.setenv(EXECUTOR_ENV, "k8s")

    @dg.asset
    def cheap() -> None: ...

    defs = dg.Definitions(assets=[cheap], executor=executor_for_env())
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "k8s"
    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    with pytest.raises(ValueError, match="celery"):
        executor_for_env()


def test_pod_users_agree_across_images_values_and_manifests():
    launcher = run_launcher_config(VALUES)
    uids = {
        image_uid("code-location"),
        image_uid("scoring"),
        launcher["security_context"]["runAsUser"],
        k8s_manifests.UID,
    }
    assert uids == {10001}
