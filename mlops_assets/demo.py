"""`make demo`: the classical lifecycle end to end, headless, on embedded defaults.

Runs land in the Dagster instance under DAGSTER_HOME and the stores under
MLOPS_HOME, so `make dev` afterwards shows every run, materialization and check.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import dagster as dg

DATA_RANGE = ("2013-01-01", "2013-06-30")


def _run(defs: dg.Definitions, job: str, instance: dg.DagsterInstance, **kwargs):
    started = time.monotonic()
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, raise_on_error=False, run_config=quiet, **kwargs
    )
    status = "succeeded" if result.success else "FAILED"
    print(f"  {job}: {status} in {time.monotonic() - started:.1f}s (run {result.run_id[:8]})")
    return result


def line(label: str, value: str) -> None:
    print(f"  {label:<22} {value}")


def _metadata(result, artifact: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key.path[-1] == artifact:
            return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    return {}


def main() -> int:
    # The demo prints its own progress; library warnings go to child processes' stderr too.
    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from mlops_assets.definitions import build_defs
    from mlops_assets.scenarios.classical import SPEC
    from resources.env import current_env, mlops_home

    if "DAGSTER_HOME" not in os.environ:
        print("DAGSTER_HOME is not set; run `make demo`", file=sys.stderr)
        return 2
    started = time.monotonic()
    defs = build_defs(current_env())
    instance = dg.DagsterInstance.get()
    print(f"MLOps demo: stores in {mlops_home()}, Dagster instance in {os.environ['DAGSTER_HOME']}")

    print(f"1. data estate: land and validate {DATA_RANGE[0]}..{DATA_RANGE[1]}")
    data = _run(
        defs,
        "classical_data_job",
        instance,
        tags={
            "dagster/asset_partition_range_start": DATA_RANGE[0],
            "dagster/asset_partition_range_end": DATA_RANGE[1],
        },
    )
    print("2. inner loop: training set -> candidate -> evaluation gates -> registry")
    train = _run(defs, "classical_training_job", instance)

    checks = [*data.get_asset_check_evaluations(), *train.get_asset_check_evaluations()]
    raw = _metadata(data, "raw_flights")
    cand = _metadata(train, "candidate_model")
    evaluation = _metadata(train, "model_evaluation")
    reg = _metadata(train, "registered_model")
    print("\nSummary")
    line("raw rows landed", f"{raw.get('row_count', 0):,} over {raw.get('partitions', 0)} days")
    line("checks passed", f"{sum(c.passed for c in checks)}/{len(checks)}")
    for c in checks:
        if not c.passed:
            line("  failed", f"{c.asset_key.to_user_string()}:{c.check_name} {c.description}")
    if cand:
        line("training rows", f"{cand['train_rows']:,} train / {cand['holdout_rows']:,} holdout")
        line(
            "holdout metrics",
            f"roc_auc {cand['roc_auc_holdout']:.3f}, accuracy {cand['accuracy_holdout']:.3f}, "
            f"f1 {cand['f1_holdout']:.3f}",
        )
    if evaluation:
        line("evaluation verdict", f"{evaluation['verdict']}: {evaluation['reason']}")
        line(
            "slice gap (origin)",
            f"{evaluation['slice_gap']:.3f} (max {evaluation['max_slice_gap']})",
        )
    if reg:
        line("registered", f"{reg['model_name']} v{reg['version']} alias '{reg['alias']}' (dev)")
        line("model uri", reg["model_uri"])
    line("elapsed", f"{time.monotonic() - started:.0f}s")
    print(
        "\nNext: `make dev` for the Dagster UI (http://127.0.0.1:3000), `make mlflow-ui` for MLflow"
    )
    ok = data.success and train.success and bool(reg)
    print(f"  model {SPEC.model_name}: {'registered' if ok else 'NOT registered'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
