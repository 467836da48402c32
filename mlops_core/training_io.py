"""Plumbing shared by training entry points; importable without Dagster.

Entry points run in a child process or on Azure ML, where only `dagster-pipes`
is installed, so nothing here imports `dagster`.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd


# JSON fsspec storage options for abfs:// URIs (set by the asset from the lake resource).
STORAGE_OPTIONS_ENV = "MLOPS_LAKE_STORAGE_OPTIONS"


def read_frame(uri: str) -> pd.DataFrame:
    """Read a parquet file from a local path or an fsspec URI (abfs://, az://)."""
    import pandas as pd

    options = json.loads(os.environ.get(STORAGE_OPTIONS_ENV, "{}"))
    if "://" in uri and not uri.startswith("file://"):
        return pd.read_parquet(uri, storage_options=options)
    return pd.read_parquet(uri.removeprefix("file://"))


@contextmanager
def tracking_run(
    tracking_uri: str, experiment_id: str, run_name: str, tags: dict[str, str]
) -> Iterator[Any]:
    """An MLflow run on `tracking_uri`, restoring the process-global URI afterwards."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
            yield run
    finally:
        mlflow.set_tracking_uri(previous)


def figure_png_b64(fig: Any, dpi: int = 80) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def open_pipes():
    """Open Dagster Pipes with the transport the launcher chose.

    Locally the subprocess client passes context and messages through files;
    on Azure ML (`MLOPS_PIPES_TRANSPORT=azure_blob`) both go through a blob
    container, as `PipesAzureMLClient` expects.
    """
    from dagster_pipes import open_dagster_pipes

    if os.environ.get("MLOPS_PIPES_TRANSPORT") != "azure_blob":
        return open_dagster_pipes()
    from azure.storage.blob import BlobServiceClient
    from dagster_pipes import (
        PipesAzureBlobStorageContextLoader,
        PipesAzureBlobStorageMessageWriter,
    )

    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if conn:
        blobs = BlobServiceClient.from_connection_string(conn)
    else:
        from azure.identity import DefaultAzureCredential

        blobs = BlobServiceClient(
            os.environ["MLOPS_PIPES_ACCOUNT_URL"], credential=DefaultAzureCredential()
        )
    return open_dagster_pipes(
        context_loader=PipesAzureBlobStorageContextLoader(client=blobs),
        message_writer=PipesAzureBlobStorageMessageWriter(client=blobs),
    )


def entry_point_args(argv: list[str], description: str | None, run_name: str) -> Any:
    """The arguments every training entry point takes: URIs and JSON, never Python objects,
    so one module runs as a Pipes subprocess, in-process in tests, or as an Azure ML job."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--train-uri", required=True)
    parser.add_argument("--holdout-uri", required=True)
    parser.add_argument("--dataset-name", default="", help="dataset version, logged as input")
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--experiment-id", required=True)
    parser.add_argument("--run-name", default=run_name)
    parser.add_argument("--params", default="{}", help="hyperparameters as JSON")
    parser.add_argument("--tags", default="{}", help="MLflow run tags as JSON (lineage)")
    return parser.parse_args(argv)


def pipes_metadata(result: dict[str, Any]) -> dict[str, Any]:
    """Pipes metadata must be JSON scalars or dicts; keep it flat where it can be."""
    return {
        k: ({"raw_value": v, "type": "json"} if isinstance(v, dict) else v)
        for k, v in result.items()
    }


def report_through_pipes(run: Any, argv: list[str]) -> None:
    """An entry point's `main`: run it and report the result as the asset's materialization."""
    with open_pipes() as pipes:
        result = run(argv)
        pipes.report_asset_materialization(metadata=pipes_metadata(result))
