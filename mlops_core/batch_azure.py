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
deployment is `MLClient.batch_deployments.begin_create_or_update(entity)`
(`resources/batch_scoring.py`).

Our deployment runs a scoring script (`mlops_core/batch_azure_score.py`), not a no-code
MLflow deployment: a scenario's batch input is whatever its `batch_items(lake, day)` reads
(frames, images, texts), so each input file of an invocation is a small manifest naming
one day and the `BatchJob` (`job_manifest`), and the script scores that day exactly as a
local pool worker does, writing the same per-day output into the lake. The job's own
append-row output (`SUMMARY_FILE_NAME`) then holds one JSON line per day: its row count.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

from mlops_core.batch import BatchJob, BatchSettings
from mlops_core.lake_fs import FsLake, secret_option_keys
from mlops_core.training_io import STORAGE_OPTIONS_ENV

SUMMARY_FILE_NAME = "partitions.jsonl"
SCORING_SCRIPT = "mlops_core/batch_azure_score.py"


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
    output_file_name: str | None = None,
) -> Any:
    """An `azure.ai.ml.entities.ModelBatchDeployment` for `settings`.

    `model` is an Azure ML model reference (`azureml:<name>:<version>`); an MLflow
    model needs no environment or scoring script. `cores_per_instance` (the
    compute's vCPUs) stands in for `max_concurrency_per_instance=0` ("all cores").
    `output_file_name` overrides the settings' (a scripted deployment's summary file).
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
            output_file_name=output_file_name or settings.output_file_name,
            retry_settings=BatchRetrySettings(
                max_retries=settings.max_retries, timeout=settings.retry_timeout
            ),
            error_threshold=0,
            environment_variables={"OMP_NUM_THREADS": "1"},
            logging_level="info",
        ),
    )


def _ref(fn: Any) -> str:
    name = f"{fn.__module__}:{fn.__qualname__}"
    if "<" in name:  # a lambda or a nested function cannot be imported on the node
        raise ValueError(f"{name} is not a module-level function; Azure ML cannot import it")
    return name


def _resolve(ref: str) -> Any:
    module, _, qualname = ref.partition(":")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def job_manifest(job: BatchJob, partition: str) -> dict[str, Any]:
    """One input file of an invocation: the day, and the job by reference (JSON)."""
    # a manifest is uploaded to the workspace's datastore: options that may be secrets stay
    # here, and the scoring environment supplies them in STORAGE_OPTIONS_ENV
    options = dict(job.lake.storage_options)
    secret = bool(secret_option_keys(options))
    return {
        "partition": partition,
        "load": _ref(job.load),
        "batch_items": _ref(job.batch_items),
        "batch_predict": _ref(job.batch_predict),
        "lake_root": job.lake.root,
        "storage_options": None if secret else options,
        "output": job.output,
        "constants": dict(job.constants),
        "run_token": job.run_token,
    }


def job_from_manifest(manifest: dict[str, Any], model_dir: str) -> BatchJob:
    """The `BatchJob` a manifest names, on the node: the model is the deployment's."""
    options = manifest["storage_options"]
    if options is None:
        if STORAGE_OPTIONS_ENV not in os.environ:
            raise RuntimeError(
                f"the lake's storage options are secret and {STORAGE_OPTIONS_ENV} is not set "
                "on the compute; use an identity-based lake (account_url) instead"
            )
        options = json.loads(os.environ[STORAGE_OPTIONS_ENV])
    return BatchJob(
        load=_resolve(manifest["load"]),
        batch_items=_resolve(manifest["batch_items"]),
        batch_predict=_resolve(manifest["batch_predict"]),
        model_dir=model_dir,
        lake=FsLake(root=manifest["lake_root"], storage_options=options),
        output=manifest["output"],
        constants=manifest["constants"],
        run_token=manifest["run_token"],
    )
