"""The Azure ML batch deployment that serves the same settings as the local batch pool.

`BatchSettings` fields carry azure-ai-ml's names, so the mapping is one to one:

| ours | `ModelBatchDeployment.settings` |
|---|---|
| mini_batch_size (days = input files) | mini_batch_size (files per mini-batch) |
| max_concurrency_per_instance (0: all cores) | max_concurrency_per_instance (the node's cores) |
| instance_count | instance_count |
| max_retries, retry_timeout | retry_settings = BatchRetrySettings(max_retries, timeout) |
| output_file_name | output_file_name (output_action append_row) |
| a failed mini-batch fails the run | error_threshold = 0 |
| one OpenMP thread per worker | environment_variables OMP_NUM_THREADS=1 |

The entity is built in code: `load_batch_deployment` only reads the flat
(pre-`ModelBatchDeployment`) YAML schema. Nothing here calls Azure; creating the
deployment is `MLClient.batch_deployments.begin_create_or_update(entity)`.
"""

from __future__ import annotations

from typing import Any

from mlops_core.batch import BatchSettings


def build_batch_deployment(
    settings: BatchSettings,
    *,
    name: str,
    endpoint_name: str,
    model: str,
    compute: str,
    cores_per_instance: int | None = None,
    environment: str | None = None,
    code_path: str | None = None,
    scoring_script: str | None = None,
) -> Any:
    """An `azure.ai.ml.entities.ModelBatchDeployment` for `settings`.

    `model` is an Azure ML model reference (`azureml:<name>:<version>`); an MLflow
    model needs no environment or scoring script. `cores_per_instance` (the
    compute's vCPUs) stands in for `max_concurrency_per_instance=0` ("all cores").
    """
    from azure.ai.ml.constants import BatchDeploymentOutputAction
    from azure.ai.ml.entities import (
        BatchRetrySettings,
        ModelBatchDeployment,
        ModelBatchDeploymentSettings,
    )

    concurrency = settings.max_concurrency_per_instance or cores_per_instance
    if not concurrency:
        raise ValueError("max_concurrency_per_instance=0 (all cores) needs cores_per_instance")
    return ModelBatchDeployment(
        name=name,
        endpoint_name=endpoint_name,
        model=model,
        compute=compute,
        environment=environment,
        code_path=code_path,
        scoring_script=scoring_script,
        settings=ModelBatchDeploymentSettings(
            mini_batch_size=settings.mini_batch_size,
            instance_count=settings.instance_count,
            max_concurrency_per_instance=concurrency,
            output_action=BatchDeploymentOutputAction.APPEND_ROW,
            output_file_name=settings.output_file_name,
            retry_settings=BatchRetrySettings(
                max_retries=settings.max_retries, timeout=settings.retry_timeout
            ),
            error_threshold=0,
            environment_variables={"OMP_NUM_THREADS": "1"},
            logging_level="info",
        ),
    )
