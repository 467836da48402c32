"""Batch scoring: where the batch endpoint's mini-batches run.

- `LocalBatchPool` (embedded default): worker processes on this machine
  (`mlops_core.batch_pool.run_batch`).
- `AzureMLBatchEndpoint`: an Azure ML batch endpoint. Each call creates the endpoint if
  needed, creates or updates the `ModelBatchDeployment` of the model version it scores
  (`<deployment>-v<version>`, built from the same `BatchSettings` by
  `mlops_core.batch_azure`, as an `azureml:` model), invokes that deployment by name with
  one manifest file per day (a local folder the SDK uploads), waits for the job and reads
  its summary output back. One deployment per version, not one updated in place: a run,
  or a promotion, while a job runs cannot make that job score with another model than the
  version its output is stamped with. Older version deployments are deleted beyond the
  newest `keep_deployments`, never the endpoint's default. A run that stops while its job
  runs (interrupt, timeout, polling error) cancels the job.

Both score the same `BatchJob` with the same settings, write each day's output at
`job.output_path(day)` in the lake, and return the same `BatchReport` (rows per day, in
day order), so the batch asset does not know which one ran. Failures differ in detail:
the pool raises `MiniBatchFailed` naming the day; Azure reports a failed job, so
`BatchScoringError` names the job (its logs name the mini-batch).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from mlops_core.batch import BatchJob, BatchReport, BatchSettings
from resources import azure_ml

Log = Callable[[str], None]
TERMINAL = ("Completed", "Failed", "Canceled", "NotResponding")


class BatchScoringError(RuntimeError):
    """A batch scoring run that failed as a whole; the message says where to look."""


class BatchScoring(dg.ConfigurableResource, ABC):
    """Scores a range of days with the batch endpoint's settings."""

    @abstractmethod
    def score(
        self,
        endpoint: str,
        job: BatchJob,
        partitions: Sequence[str],
        settings: BatchSettings,
        *,
        model_name: str,
        model_version: str,
        log: Log | None = None,
    ) -> BatchReport:
        """Score `partitions` (days); `endpoint` names the batch endpoint where there is one."""


class LocalBatchPool(BatchScoring):
    """Worker processes on this machine (one instance)."""

    start_method: Literal["forkserver", "spawn"] = Field(
        default="forkserver", description="How workers start; never fork (see batch_pool)."
    )

    def score(self, endpoint, job, partitions, settings, *, model_name, model_version, log=None):
        from mlops_core.batch_pool import run_batch

        return run_batch(
            job, partitions, settings, start_method=self.start_method, log=log or _quiet
        )


class AzureMLBatchEndpoint(BatchScoring):
    """Azure ML batch endpoints in one workspace (MLOps v2: prod), on a compute cluster."""

    subscription_id: str
    resource_group: str
    workspace: str = Field(description="Workspace of the batch endpoints.")
    compute: str = Field(description="Compute cluster the batch jobs run on.")
    environment: str = Field(description="Environment (`name:version`) with this project.")
    cores_per_instance: int = Field(
        default=4, description="vCPUs of a cluster node: max_concurrency_per_instance=0's value."
    )
    deployment: str = Field(
        default="scoring", description="Deployment name prefix: `<prefix>-v<model version>`."
    )
    keep_deployments: int = Field(
        default=3, ge=1, description="Newest version deployments kept; older ones are deleted."
    )
    code_path: str | None = Field(default=None, description="Code snapshot; None: this repo.")
    registry_stage: str = Field(default="prod", description="This workspace's own registry.")
    poll_interval_s: float = Field(default=15.0, description="Seconds between job polls.")
    timeout_s: float = Field(default=6 * 3600.0, description="Longest a batch job may run.")

    def score(self, endpoint, job, partitions, settings, *, model_name, model_version, log=None):
        from mlops_core.batch_azure import build_batch_deployment

        if not job.lake.remote:
            raise BatchScoringError(
                f"Azure ML batch jobs cannot read the local lake {job.lake.root}; "
                "use the Blob lake (MLOPS_ENV=azure)"
            )
        log = log or _quiet
        ml = azure_ml.ml_client(self.subscription_id, self.resource_group, self.workspace)
        batch_endpoint = self._ensure_endpoint(ml, endpoint)
        name = self.deployment_name(model_version)
        model = azure_ml.model_reference(
            ml, name=model_name, version=str(model_version), model_dir=job.model_dir,
            registry="prod", workspace_registry=self.registry_stage,
            tags={"mlops.model_version": str(model_version), "mlops.registry": "prod"},
        )  # fmt: skip
        args = self._deployment_args(endpoint, name, model)
        deployment = build_batch_deployment(settings, **args)
        azure_ml.wait(
            lambda: ml.batch_deployments.begin_create_or_update(deployment),
            f"batch deployment {name} of endpoint {endpoint}",
            error=BatchScoringError,
        )
        self._prune(ml, batch_endpoint, name, log)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="mlops-batch-") as tmp:
            rows = self._invoke(ml, endpoint, name, job, partitions, Path(tmp), log)
        missing = [p for p in partitions if p not in rows]
        if missing:
            raise BatchScoringError(f"the batch job on {endpoint} reported no rows for {missing}")
        concurrency = settings.max_concurrency_per_instance or self.cores_per_instance
        return BatchReport(
            rows={p: rows[p] for p in partitions},
            workers=settings.instance_count * concurrency,
            mini_batches=math.ceil(len(partitions) / settings.mini_batch_size),
            retries=0,  # Azure retries inside the job; its logs count them
            seconds=time.monotonic() - started,
        )

    def deployment_name(self, model_version: str) -> str:
        """The deployment serving `model_version` (Azure refuses names it cannot take)."""
        return f"{self.deployment}-v{model_version}"

    def _deployment_args(self, endpoint: str, name: str, model: str) -> dict:
        from mlops_core.batch_azure import SCORING_SCRIPT, SUMMARY_FILE_NAME
        from resources.compute import REPO_ROOT

        return {
            "name": name, "endpoint_name": endpoint, "model": model,
            "compute": self.compute, "cores_per_instance": self.cores_per_instance,
            "environment": self.environment, "code_path": self.code_path or str(REPO_ROOT),
            "scoring_script": SCORING_SCRIPT, "output_file_name": SUMMARY_FILE_NAME,
        }  # fmt: skip

    def _ensure_endpoint(self, ml, endpoint: str):
        found = azure_ml.get_or_none(ml.batch_endpoints.get, endpoint)
        if found is not None:
            return found
        from azure.ai.ml.entities import BatchEndpoint

        new = BatchEndpoint(name=endpoint, tags={"mlops.managed_by": "dagster"})
        return azure_ml.wait(
            lambda: ml.batch_endpoints.begin_create_or_update(new),
            f"creating batch endpoint {endpoint}",
            error=BatchScoringError,
        )

    def _prune(self, ml, endpoint, current: str, log: Log) -> None:
        """Delete version deployments older than the newest `keep_deployments`, except
        `current` and the endpoint's default. Housekeeping: a refusal is logged, not raised."""
        prefix = f"{self.deployment}-v"
        default = (endpoint.defaults or {}).get("deployment_name")
        found = [d.name for d in ml.batch_deployments.list(endpoint.name)]
        versions = sorted(
            (int(n.removeprefix(prefix)), n)
            for n in found
            if n.startswith(prefix) and n.removeprefix(prefix).isdigit()
        )
        for _, name in versions[: -self.keep_deployments]:
            if name in (current, default):
                continue
            try:
                azure_ml.wait(
                    lambda n=name: ml.batch_deployments.begin_delete(n, endpoint.name),
                    f"deleting batch deployment {name} of endpoint {endpoint.name}",
                    error=BatchScoringError,
                )
            except BatchScoringError as err:
                log(f"kept old batch deployment {name}: {err}")

    def _invoke(
        self, ml, endpoint, deployment, job, partitions, tmp: Path, log: Log
    ) -> dict[str, int]:
        """One job over all days: manifests in, rows per day out."""
        from azure.ai.ml import Input

        from mlops_core.batch_azure import SUMMARY_FILE_NAME, job_manifest

        inputs = tmp / "inputs"
        inputs.mkdir()
        for day in partitions:
            (inputs / f"{day}.json").write_text(json.dumps(job_manifest(job, day)))
        invoked = ml.batch_endpoints.invoke(
            endpoint_name=endpoint,
            deployment_name=deployment,
            inputs={"input": Input(type="uri_folder", path=str(inputs))},
        )
        status = self._await(ml, invoked.name, endpoint, log)
        if status != "Completed":
            raise BatchScoringError(
                f"Azure ML batch job {invoked.name} on endpoint {endpoint} ended {status}; its "
                f"logs name the failing mini-batch (`az ml job stream -n {invoked.name}`)"
            )
        ml.jobs.download(invoked.name, download_path=str(tmp / "out"), output_name="score")
        rows: dict[str, int] = {}
        for summary in sorted((tmp / "out").rglob(SUMMARY_FILE_NAME)):
            for line in summary.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    rows[record["partition"]] = int(record["rows"])
        return rows

    def _await(self, ml, name: str, endpoint: str, log: Log) -> str:
        """The job's terminal status. If waiting ends any other way (timeout, a polling
        error, the run interrupted), the job is canceled: nothing would read its output."""
        deadline, seen = time.monotonic() + self.timeout_s, None
        try:
            while True:
                status = ml.jobs.get(name).status
                if status != seen:
                    log(f"Azure ML batch job {name} on {endpoint}: {status}")
                    seen = status
                if status in TERMINAL:
                    return status
                if time.monotonic() > deadline:
                    raise BatchScoringError(f"batch job {name} ran past {self.timeout_s:.0f}s")
                time.sleep(self.poll_interval_s)
        except BaseException as err:  # an interrupt is canceled too, and goes on as it was
            self._cancel(ml, name, log)
            if isinstance(err, Exception) and not isinstance(err, BatchScoringError):
                raise BatchScoringError(
                    f"waiting on Azure ML batch job {name} on endpoint {endpoint} failed: {err}"
                ) from err
            raise

    def _cancel(self, ml, name: str, log: Log) -> None:
        try:
            azure_ml.wait(
                lambda: ml.jobs.begin_cancel(name), f"canceling batch job {name}",
                error=BatchScoringError,
            )  # fmt: skip
            log(f"canceled Azure ML batch job {name}")
        except BatchScoringError as err:  # the error that stopped the wait matters more
            log(f"{err}; cancel it with `az ml job cancel -n {name}`")


def _quiet(_: str) -> None:
    return None
