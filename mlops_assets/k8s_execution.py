"""Dagster on Kubernetes: the executor switch and the Job a step gets from dagster-k8s.

- `executor_for_env()`: `MLOPS_EXECUTOR=k8s` selects dagster-k8s's `k8s_job_executor`
  (one pod per step, shaped by the `dagster-k8s/config` op tags of
  `mlops_core.k8s_training`); anything else keeps the in-process executor. The
  Helm values (deploy/helm/dagster-values.yaml) set it on the run pods.
- `run_launcher_config(values)`: the `K8sRunLauncher` config the official Dagster chart
  writes into dagster.yaml from our values (it mirrors the chart's run-launcher
  template for the keys we use, so the launcher's own config schema can check them).
- `step_job(...)`: the Kubernetes Job the executor would create for one step, built
  with dagster-k8s's own `K8sContainerContext`, `DagsterK8sJobConfig` and
  `construct_dagster_k8s_job` in the executor's order (launcher config, then the step's
  op tags), as a camelCase manifest that `kubectl apply --dry-run` or a schema accepts.

dagster_k8s and kubernetes are imported inside the functions: loading the code location
must not pay for them unless the Kubernetes executor is chosen.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import dagster as dg

EXECUTOR_ENV = "MLOPS_EXECUTOR"
EXECUTORS = ("in_process", "k8s")


def executor_for_env() -> dg.ExecutorDefinition:
    """`in_process_executor` unless `MLOPS_EXECUTOR=k8s`; an unknown value is an error."""
    value = os.environ.get(EXECUTOR_ENV, "in_process").strip().lower()
    if value == "in_process":
        return dg.in_process_executor
    if value == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    raise ValueError(f"{EXECUTOR_ENV}={value!r} is not a known executor; use one of {EXECUTORS}")


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def run_launcher_config(
    values: Mapping[str, Any], release: str = "dagster", namespace: str = "dagster"
) -> dict[str, Any]:
    """dagster.yaml's `run_launcher.config` as the chart renders it for release `release`.

    Names the chart derives (instance ConfigMap, service account, run env ConfigMap)
    follow its defaults for a release whose name contains "dagster".
    """
    launcher = values.get("runLauncher", {})
    if launcher.get("type") != "K8sRunLauncher":
        raise ValueError(f"runLauncher.type is {launcher.get('type')!r}, not K8sRunLauncher")
    given = dict(launcher.get("config", {}).get("k8sRunLauncher", {}))
    glob = values.get("global", {})
    config: dict[str, Any] = {
        "load_incluster_config": True,
        "job_namespace": namespace,
        "service_account_name": glob.get("serviceAccountName") or release,
        "dagster_home": glob.get("dagsterHome", "/opt/dagster/dagster_home"),
        "instance_config_map": f"{release}-instance",
        "postgres_password_secret": glob.get(
            "postgresqlSecretName", f"{release}-postgresql-secret"
        ),
        "env_config_maps": [f"{release}-pipeline-env"],
    }
    image = given.pop("image", None)
    if image:
        config["job_image"] = f"{image['repository']}:{image['tag']}"
    for key in ("envConfigMaps", "envSecrets"):  # lists of {name: ...} in the chart
        names = [item["name"] for item in given.pop(key, []) if item.get("name")]
        config[_snake(key)] = config.get(_snake(key), []) + names
    for key, value in given.items():  # the rest keeps its value under the snake_case name
        if value not in (None, "", [], {}):
            config[_snake(key)] = value
    return config


def step_job(
    launcher: Mapping[str, Any],
    step_tags: Mapping[str, str],
    *,
    image: str,
    run_id: str,
    step_key: str,
    job_name: str,
) -> dict[str, Any]:
    """The Job manifest `k8s_job_executor` would launch for `step_key` (tags as Dagster
    stores them on the step: `AssetsDefinition.op.tags`)."""
    from dagster_k8s import DagsterK8sJobConfig, construct_dagster_k8s_job
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import (
        UserDefinedDagsterK8sConfig,
        get_k8s_job_name,
        get_user_defined_k8s_config,
    )
    from kubernetes.client import ApiClient

    fields = (
        "image_pull_policy", "image_pull_secrets", "service_account_name", "env_config_maps",
        "env_secrets", "env_vars", "volume_mounts", "volumes", "labels", "resources",
        "scheduler_name", "security_context",
    )  # fmt: skip
    context = K8sContainerContext(
        **{f: launcher[f] for f in fields if f in launcher},
        namespace=launcher["job_namespace"],
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(launcher.get("run_k8s_config", {})),
    ).merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(step_tags)))
    job_config = DagsterK8sJobConfig(
        job_image=launcher.get("job_image") or image,
        dagster_home=launcher["dagster_home"],
        instance_config_map=launcher["instance_config_map"],
        postgres_password_secret=launcher.get("postgres_password_secret"),
    )
    name = f"dagster-step-{get_k8s_job_name(run_id, step_key)}"
    job = construct_dagster_k8s_job(
        job_config=job_config,
        args=["dagster", "api", "execute_step"],  # the executor adds the serialized step
        job_name=name,
        pod_name=name,
        component="step_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": job_name, "dagster/op": step_key, "dagster/run-id": run_id},
        env_vars=[
            {"name": "DAGSTER_RUN_JOB_NAME", "value": job_name},
            {"name": "DAGSTER_RUN_STEP_KEY", "value": step_key},
        ],
    )
    manifest = ApiClient().sanitize_for_serialization(job)
    manifest["metadata"]["namespace"] = context.namespace
    return manifest
