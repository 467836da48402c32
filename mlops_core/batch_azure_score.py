"""Scoring script of the Azure ML batch deployment (`init()` / `run(mini_batch)`).

Azure ML's batch driver calls `init()` once per worker process and `run(files)` for each
mini-batch of input files. Each file is a manifest (`mlops_core.batch_azure.job_manifest`)
naming one day and the job; `run` scores those days with `score_mini_batch`, the same
function the local pool's workers run, so every day's output lands in the lake at the
same path, written atomically. It returns one JSON line per day (`append_row` collects
them into the job's summary file). A failure raises: with `error_threshold: 0` Azure
retries the mini-batch and then fails the job.

The model is the deployment's (`AZUREML_MODEL_DIR`); it is loaded once per process, on
the first mini-batch, because the loader comes with the manifest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

_loaded: dict[tuple[str, str], Any] = {}


def model_dir() -> str:
    """The MLflow model folder under AZUREML_MODEL_DIR (Azure mounts the registered folder
    one or two levels below it); the variable's folder itself when none holds `MLmodel`."""
    root = Path(os.environ["AZUREML_MODEL_DIR"])
    for depth in ("MLmodel", "*/MLmodel", "*/*/MLmodel"):
        found = sorted(root.glob(depth))
        if found:
            return str(found[0].parent)
    return str(root)


def init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def run(mini_batch: list[str]) -> list[str]:
    from mlops_core.batch import score_mini_batch
    from mlops_core.batch_azure import job_from_manifest

    manifests = [json.loads(Path(path).read_text()) for path in mini_batch]
    if not manifests:
        return []
    job = job_from_manifest(manifests[0], model_dir())
    key = (manifests[0]["load"], job.model_dir)
    if key not in _loaded:
        _loaded[key] = job.load(job.model_dir)
    rows = score_mini_batch(job, _loaded[key], [m["partition"] for m in manifests])
    return [json.dumps({"partition": day, "rows": count}) for day, count in rows.items()]
