"""`make demo`: the classical lifecycle end to end, headless, on embedded defaults.

Inner loop (land, validate, train, gate, register, stage), a scripted human
approval by a persona allowed to approve, the approval sensor's promotion run
(prod registry + blue/green production deployment), live requests against
the production endpoint, and one batch-scored day. Runs land in the Dagster
instance under DAGSTER_HOME and the stores under MLOPS_HOME, so `make dev`
afterwards shows every run, materialization, check and sensor.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import dagster as dg

DATA_RANGE = ("2013-01-01", "2013-06-30")
NEW_DAY = "2013-07-01"
APPROVER = "priya"  # project_lead in the RBAC policy: may approve in prod
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_job(defs: dg.Definitions, job: str, instance, run_config=None, **kwargs):
    started = time.monotonic()
    config = {**QUIET, **(run_config or {})}
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, raise_on_error=False, run_config=config, **kwargs
    )
    status = "succeeded" if result.success else "FAILED"
    print(f"   {job}: {status} in {time.monotonic() - started:.1f}s (run {result.run_id[:8]})")
    return result


def day_range(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def line(label: str, value: object) -> None:
    print(f"  {label:<22} {value}")


def meta(result, artifact: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key.path[-1] == artifact:
            return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    return {}


def main() -> int:
    # The demo prints its own progress; library warnings go to child processes too.
    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from mlops_assets.approve import record_decision
    from mlops_assets.definitions import build_defs
    from mlops_assets.endpoint_checks import azureml_payload
    from mlops_assets.scenarios.classical import SPEC
    from resources.env import current_env, mlops_home, resources_for

    if "DAGSTER_HOME" not in os.environ:
        print("DAGSTER_HOME is not set; run `make demo`", file=sys.stderr)
        return 2
    started = time.monotonic()
    env = current_env()
    defs, res = build_defs(env), resources_for(env)
    instance = dg.DagsterInstance.get()
    print(f"MLOps demo: stores in {mlops_home()}, Dagster instance in {os.environ['DAGSTER_HOME']}")

    print(f"1. data estate: land and validate {DATA_RANGE[0]}..{DATA_RANGE[1]}")
    data = run_job(defs, "classical_data_job", instance, tags=day_range(*DATA_RANGE))
    print("2. inner loop: training set -> candidate -> gates -> dev registry -> staging tests")
    train = run_job(defs, "classical_training_job", instance)
    reg, staged = meta(train, "registered_model"), meta(train, "staging_deployment")
    if not (data.success and train.success and staged.get("staging") == "passed"):
        print("the inner loop did not reach a staged model; see the runs in `make dev`")
        return 1
    version = str(reg["version"])

    print(f"3. approval: {APPROVER} (project_lead) approves v{version}, as `mlops approve` would")
    decision = record_decision(
        res["registry"], res["governance"], SPEC.model_name, version, APPROVER, "approve",
        "demo: holdout ROC AUC and per-airport slices reviewed",
    )  # fmt: skip
    print("4. approval sensor -> promotion run (prod registry, blue/green production)")
    sensor = defs.resolve_sensor_def("classical_approval_sensor")
    with dg.build_sensor_context(instance=instance, resources={"registry": res["registry"]}) as ctx:
        requests = getattr(sensor(ctx), "run_requests", None) or []
    promote = None
    for request in requests:
        print(f"   sensor requested run_key {request.run_key}")
        promote = run_job(
            defs, "classical_promotion_job", instance, run_config=request.run_config,
            tags=request.tags,
        )  # fmt: skip
    deployed = meta(promote, "production_deployment") if promote else {}

    print("5. live requests against the production endpoint")
    holdout = res["lake"].read_parquet(SPEC.holdout_path)
    statuses, answer = [], None
    for i in range(20):
        response = res["endpoints"].invoke(
            SPEC.online_endpoint, azureml_payload(SPEC.request_frame(holdout.iloc[i : i + 3]))
        )
        statuses.append(response.status_code)
        answer = answer or response
    print(f"6. batch endpoint: land {NEW_DAY} and score it with the champion")
    run_job(defs, "classical_data_job", instance, tags=day_range(NEW_DAY, NEW_DAY))
    batch = run_job(defs, "classical_batch_scoring_job", instance, partition_key=NEW_DAY)
    res["endpoints"].stop(SPEC.staging_endpoint)

    checks = [
        c
        for r in (data, train, promote, batch)
        if r is not None
        for c in r.get_asset_check_evaluations()
    ]
    cand, evaluation = meta(train, "candidate_model"), meta(train, "model_evaluation")
    raw = meta(data, "raw_flights")
    print("\nSummary")
    line("raw rows landed", f"{raw.get('row_count', 0):,} over {raw.get('partitions', 0)} days")
    line("checks passed", f"{sum(c.passed for c in checks)}/{len(checks)}")
    for c in checks:
        if not c.passed:
            line("  failed", f"{c.asset_key.to_user_string()}:{c.check_name} {c.description}")
    line("training rows", f"{cand['train_rows']:,} train / {cand['holdout_rows']:,} holdout")
    line(
        "holdout metrics",
        f"roc_auc {cand['roc_auc_holdout']:.3f}, accuracy {cand['accuracy_holdout']:.3f}, "
        f"f1 {cand['f1_holdout']:.3f}",
    )
    line("evaluation verdict", f"{evaluation['verdict']}: {evaluation['reason']}")
    line("registered", f"{reg['model_name']} v{version} alias 'challenger' (dev registry)")
    line(
        "staging", f"{staged['staging']}: p99 {staged['p99_ms']:.1f} ms, {staged['rps']:.0f} req/s"
    )
    line("approved by", f"{decision['by']} ({decision['persona']}): {decision['reason']}")
    if deployed:
        prom = meta(promote, "promoted_model")
        line("promoted", f"prod registry v{prom['prod_version']} alias 'champion'")
        line("production", f"{deployed['endpoint']} slot {deployed['slot']}, traffic "
             f"{deployed['traffic']}, rolled back: {deployed['rolled_back']}")  # fmt: skip
    line("live requests", f"{statuses.count(200)}/{len(statuses)} answered 200")
    if answer is not None:
        line(
            "  e.g.",
            f"{answer.text} from deployment {answer.headers.get('azureml-model-deployment')}",
        )
    line(
        "batch predictions",
        f"{meta(batch, 'batch_predictions').get('row_count', 0)} flights on {NEW_DAY}",
    )
    line("elapsed", f"{time.monotonic() - started:.0f}s")
    info = res["endpoints"].get(SPEC.online_endpoint)
    print(
        f"\nProduction endpoint still serving at {info.scoring_uri} (`mlops endpoint keys "
        f"{SPEC.online_endpoint}` for a key; `mlops endpoint serve --stop` stops it)."
    )
    print(
        "Next: `make dev` for the Dagster UI (http://127.0.0.1:3000), `make mlflow-ui` for MLflow"
    )
    ok = bool(deployed) and statuses.count(200) == len(statuses) and batch.success
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
