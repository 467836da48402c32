"""Training compute: where a scenario's training entry point runs.

A training entry point is a module with `run(argv) -> dict` (pure: inputs are
URIs and flags, the result is JSON-able metadata) and `main()` (the Dagster
Pipes wrapper that reports that metadata). Because it takes only arguments,
the same module runs:

- `SubprocessCompute` (default): its own process via `PipesSubprocessClient`;
  a crash or memory blow-up cannot take the Dagster run worker with it.
- `InProcessCompute`: calls `run(argv)` directly (fast unit tests).
- `AzureMLCompute`: an Azure ML command job via `PipesAzureMLClient`, with
  Pipes messages exchanged through a blob container. Its `MLClient` comes from
  `resources.azure_ml` (where tests put the control-plane stand-in).
"""

from __future__ import annotations

import importlib
import os
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from mlops_core.results import plain

# Tells the entry point which Pipes transport to open (see scenarios' train modules).
PIPES_TRANSPORT_ENV = "MLOPS_PIPES_TRANSPORT"
# The job uploads the project as its code snapshot.
REPO_ROOT = Path(__file__).resolve().parents[1]


class TrainingCompute(dg.ConfigurableResource, ABC):
    """Runs a training entry point and returns the metadata it reported."""

    @abstractmethod
    def run(
        self,
        context: dg.AssetExecutionContext,
        module: str,
        argv: list[str],
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]: ...


class SubprocessCompute(TrainingCompute):
    """`python -m <module> <argv>` in a child process, reporting through Pipes."""

    python: str = Field(default="", description="Interpreter; empty means this one.")
    omp_num_threads: int = Field(
        default=1, description="OMP/MKL threads for the child; 1 avoids thrashing on small hosts."
    )

    def run(self, context, module, argv, env=None):
        child_env = {
            **os.environ,
            "OMP_NUM_THREADS": str(self.omp_num_threads),
            "MKL_NUM_THREADS": str(self.omp_num_threads),
            **(env or {}),
        }
        completed = dg.PipesSubprocessClient(env=child_env).run(
            context=context,
            command=[self.python or sys.executable, "-m", module, *argv],
        )
        results = completed.get_results()
        if not results:
            raise dg.Failure(f"training entry point {module} reported no result through Pipes")
        return plain(dict(results[-1].metadata or {}))


class InProcessCompute(TrainingCompute):
    """Calls the entry point's `run(argv)` in this process (tests, debugging)."""

    def run(self, context, module, argv, env=None):
        saved = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        try:
            return importlib.import_module(module).run(argv)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


class AzureMLCompute(TrainingCompute):
    """An Azure ML command job on a compute cluster, driven by `PipesAzureMLClient`."""

    subscription_id: str
    resource_group: str
    workspace: str
    compute: str = Field(description="Azure ML compute cluster name.")
    environment: str = Field(description="Azure ML environment with this project installed.")
    pipes_container: str = Field(description="Blob container for Pipes context and messages.")
    storage_account_url: str = Field(description="https://<account>.blob.core.windows.net")
    storage_connection_string: str | None = Field(
        default=None,
        description="Connection string for the Pipes container instead of Entra ID (Azurite); "
        "the job itself always authenticates with the compute's identity.",
    )
    poll_interval_s: float = Field(default=5.0, description="Seconds between job status polls.")

    def build_command(
        self, display_name: str, module: str, argv: list[str], env: dict[str, str] | None = None
    ):
        """The Azure ML command job for an entry point (an `azure.ai.ml.entities.Command`).

        Its environment variables are saved in the job definition, readable by anyone who
        can read the workspace's jobs: lake storage options that may be secrets (a
        connection string, an account key) are refused; the job reaches the lake with the
        compute's identity."""
        import json
        import shlex

        from azure.ai.ml import command

        from mlops_core.lake_fs import shareable_storage_options
        from mlops_core.training_io import STORAGE_OPTIONS_ENV

        if env and STORAGE_OPTIONS_ENV in env:
            try:
                options = json.loads(env[STORAGE_OPTIONS_ENV])
                shareable_storage_options(options, f"the Azure ML job definition {display_name}")
            except ValueError as err:  # json.JSONDecodeError is a ValueError too
                raise dg.Failure(f"{STORAGE_OPTIONS_ENV}: {err}") from err

        return command(
            code=str(REPO_ROOT),
            command=shlex.join(["python", "-m", module, *argv]),
            environment=self.environment,
            compute=self.compute,
            environment_variables={
                PIPES_TRANSPORT_ENV: "azure_blob",
                "MLOPS_PIPES_ACCOUNT_URL": self.storage_account_url,
                "OMP_NUM_THREADS": "1",
                **(env or {}),
            },
            display_name=display_name,
            experiment_name="mlops-training",
        )

    def _blobs(self):
        from azure.storage.blob import BlobServiceClient

        if self.storage_connection_string:
            return BlobServiceClient.from_connection_string(self.storage_connection_string)
        from azure.identity import DefaultAzureCredential

        return BlobServiceClient(self.storage_account_url, credential=DefaultAzureCredential())

    def run(self, context, module, argv, env=None):
        from dagster_azure.pipes import (
            PipesAzureBlobStorageContextInjector,
            PipesAzureBlobStorageMessageReader,
            PipesAzureMLClient,
        )

        from resources import azure_ml

        blobs = self._blobs()
        client = PipesAzureMLClient(
            client=azure_ml.ml_client(self.subscription_id, self.resource_group, self.workspace),
            context_injector=PipesAzureBlobStorageContextInjector(
                container=self.pipes_container, client=blobs
            ),
            message_reader=PipesAzureBlobStorageMessageReader(
                container=self.pipes_container, client=blobs, interval=self.poll_interval_s
            ),
            poll_interval_seconds=self.poll_interval_s,
        )
        name = f"{context.asset_key.to_user_string().replace('/', '-')}-{context.run.run_id[:8]}"
        job = self.build_command(name, module, argv, env)
        results = client.run(context=context, command=job).get_results()
        if not results:
            raise dg.Failure(f"Azure ML job for {module} reported no result through Pipes")
        return plain(dict(results[-1].metadata or {}))
