"""One training run in its own process, for tests/test_concurrent_training.py.

Usage: python -m tests.concurrent_training_run <mlops_home> <start> <end>; uses the
Dagster instance in $DAGSTER_HOME and prints the run id. Dagster's in-process
execution is not thread-safe (its log handlers deadlock), and two processes on
one instance are what the run coordinator really does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg

from resources.compute import InProcessCompute
from resources.env import local_resources
from tests.helpers import QUIET, defs_with

UP_TO_REGISTRY = [
    dg.AssetKey(["classical", a])
    for a in ("training_set", "candidate_model", "model_evaluation", "registered_model")
]


def run_config(start: str, end: str) -> dict:
    return {
        **QUIET,
        "ops": {
            "classical__training_set": {
                "config": {"start_date": start, "end_date": end, "holdout_days": 5}
            },
            "classical__model_evaluation": {"config": {"max_slice_gap": 1.0, "tolerance": 1.0}},
        },
    }


def main(home: str, start: str, end: str) -> None:
    resources = {**local_resources(Path(home)), "compute": InProcessCompute()}
    job = defs_with(resources).resolve_job_def("classical_training_job")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, run_config=run_config(start, end), asset_selection=UP_TO_REGISTRY
        )
    print(result.run_id)
    sys.exit(0 if result.success else 1)


if __name__ == "__main__":
    main(*sys.argv[1:4])
