"""Helpers for running the real jobs against test instances and stores."""

from __future__ import annotations

import dagster as dg

from mlops_assets.definitions import build_defs
from mlops_core.results import plain

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Staging's latency SLO in tests that are not about latency: the loosest the RBAC policy's
# staging minimums accept for promotion (500 ms), so a machine loaded by other work fails
# no lineage or promotion test; the latency gate itself is tested with its own thresholds.
LOADED_MACHINE_SLO = {"config": {"slo_p99_ms": 500.0}}


def defs_with(resources: dict) -> dg.Definitions:
    return build_defs("local", resources=resources)


def land_days(defs: dg.Definitions, instance, start: str, end: str):
    return defs.resolve_job_def("classical_data_job").execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config=QUIET,
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
    )


def train(
    defs: dg.Definitions,
    instance,
    start: str = "2013-01-01",
    end: str = "2013-02-28",
    hyperparameters: dict | None = None,
    max_slice_gap: float = 0.25,
):
    ops = {
        "classical__training_set": {
            "config": {"start_date": start, "end_date": end, "holdout_days": 7}
        },
        "classical__candidate_model": {"config": {"hyperparameters": hyperparameters or {}}},
        "classical__model_evaluation": {"config": {"max_slice_gap": max_slice_gap}},
        "classical__staging_deployment": LOADED_MACHINE_SLO,
    }
    return defs.resolve_job_def("classical_training_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config={**QUIET, "ops": ops}
    )


def materialized(result, artifact: str) -> list:
    return [
        e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == artifact
    ]


def metadata(result, artifact: str) -> dict:
    events = materialized(result, artifact)
    assert events, f"{artifact} was not materialized"
    return plain(events[-1].materialization.metadata)


def champion_holdout(resources: dict, model_name: str):
    """The holdout split of the dataset version the prod champion was trained on."""
    champion = resources["registry"].version_by_alias(model_name, "champion", "prod")
    return resources["lake"].read_parquet(f"{champion.tags['mlops.dataset_root']}/holdout.parquet")
