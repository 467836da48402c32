"""`make demo`: the classical, vision and NLP lifecycles end to end, headless, on embedded defaults.

Inner loop (land, validate, train, gate, register, stage), a scripted human
approval by a persona allowed to approve, the approval sensor's promotion run
(prod registry + blue/green production deployment), live requests against
the production endpoint, and one batch-scored day. Runs land in the Dagster
instance under DAGSTER_HOME and the stores under MLOPS_HOME, so `make dev`
afterwards shows every run, materialization, check and sensor.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import dagster as dg

from mlops_core.results import plain
from mlops_demo.nlp import run_nlp_loop
from mlops_demo.runs import run_job, tick
from mlops_demo.traffic import CLEAN_DAY, DRIFT_DAY, simulate_traffic
from mlops_demo.vision import run_vision_loop

DATA_RANGE = ("2013-01-01", "2013-06-30")
NEW_DAY = "2013-07-01"


def day_range(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def line(label: str, value: object) -> None:
    print(f"  {label:<22} {value}")


def meta(result, artifact: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key.path[-1] == artifact:
            return plain(event.materialization.metadata)
    return {}


def prepare_dagster_home() -> Path:
    """DAGSTER_HOME made absolute (Dagster refuses a relative one) and created with the
    project's instance settings when missing, so `python -m mlops_demo` works like `make demo`."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    settings = home / "dagster.yaml"
    if not settings.exists():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml", settings)
        print(f"created the Dagster instance settings {settings}")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def main() -> int:
    # The demo prints its own progress; library warnings go to child processes too.
    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlops_assets.definitions import build_defs
    from mlops_assets.scenarios.classical import SPEC
    from mlops_core.governance.decisions import record_decision
    from mlops_core.probes import azureml_payload
    from mlops_demo.demo_policy import APPROVER, bind_demo_policy
    from resources.env import current_env, mlops_home, resources_for

    try:
        env = current_env()
        prepare_dagster_home()
    except (ValueError, OSError) as err:
        print(f"mlops demo: {err}", file=sys.stderr)
        return 2
    started = time.monotonic()
    res = resources_for(env)
    caller = bind_demo_policy(res, mlops_home())  # who approves: this account, as priya
    defs = build_defs(env, resources=res)
    instance = dg.DagsterInstance.get()
    print(f"MLOps demo: stores in {mlops_home()}, Dagster instance in {os.environ['DAGSTER_HOME']}")

    print(f"1. data estate: land and validate {DATA_RANGE[0]}..{DATA_RANGE[1]}")
    data = run_job(defs, "classical_data_job", instance, tags=day_range(*DATA_RANGE))
    print("2. inner loop: training set -> candidate -> gates -> dev registry -> staging tests")
    train = run_job(defs, "classical_training_job", instance)
    reg, staged = meta(train, "registered_model"), meta(train, "staging_deployment")
    if not (data.success and train.success and staged.get("outcome") == "passed"):
        print("the inner loop did not reach a staged model; see the runs in `make dev`")
        return 1
    version = str(reg["version"])

    print(f"3. approval: {caller.principal}, mapped to {APPROVER} (project_lead) by the demo "
          f"policy, approves v{version} as `mlops approve` would (separation of duties is off "
          "in the demo policy: one account plays every role)")  # fmt: skip
    decision = record_decision(
        res["registry"], res["governance"], res["approvals"], caller, SPEC.model_name, version,
        "approve", "demo: holdout ROC AUC and per-airport slices reviewed",
    )  # fmt: skip
    print("4. approval sensor -> promotion run (prod registry, blue/green production)")
    promotions = tick(defs, "classical_approval_sensor", instance, res)
    promote = promotions[-1][1] if promotions else None
    deployed = meta(promote, "production_deployment") if promote else {}

    print("5. live requests against the production endpoint")
    champion = res["registry"].version_by_alias(SPEC.model_name, "champion", "prod")
    holdout = res["lake"].read_parquet(f"{champion.tags['mlops.dataset_root']}/holdout.parquet")
    statuses, answer = [], None
    for i in range(20):
        response = res["endpoints"].invoke(
            SPEC.online_endpoint, azureml_payload(SPEC.codec.request_batch(holdout.iloc[i : i + 3]))
        )
        statuses.append(response.status_code)
        answer = answer or response
    print(f"6. batch endpoint: land {NEW_DAY} and score it with the champion")
    run_job(defs, "classical_data_job", instance, tags=day_range(NEW_DAY, NEW_DAY))
    batch = run_job(defs, "classical_batch_scoring_job", instance, partition_key=NEW_DAY)

    print(f"7. production traffic: {CLEAN_DAY} as it was, {DRIFT_DAY} shifted on purpose")
    traffic = simulate_traffic(res, SPEC)
    monitored = {}
    for day in (CLEAN_DAY, DRIFT_DAY):
        run = run_job(defs, "classical_monitoring_job", instance, partition_key=day)
        monitored[day] = (meta(run, "data_drift"), meta(run, "model_performance"))
    print("8. drift sensor -> retrain run (train, gates, register, stage; approval still human)")
    retrains = tick(defs, "classical_drift_retrain_sensor", instance, res)
    retrain = retrains[-1][1] if retrains else None
    res["endpoints"].stop(SPEC.staging_endpoint)  # staging tests are done; production stays up
    vision = run_vision_loop(defs, instance, res, caller, step=9)
    nlp = run_nlp_loop(defs, instance, res, caller, step=12)
    print("15. cost ledger and budget")
    ledger = meta(run_job(defs, "platform_monitoring_job", instance), "cost_ledger")

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
        "staging", f"{staged['outcome']}: p99 {staged['p99_ms']:.1f} ms, {staged['rps']:.0f} req/s"
    )
    line("approved by", f"{decision['user']} ({decision['persona']}, caller "
         f"{decision['caller']}): {decision['reason']}")  # fmt: skip
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
    line("traffic sent", traffic)
    for day, (drift, perf) in monitored.items():
        drifted = ", ".join(drift.get("drifted_features") or []) or "none"
        line(f"drift {day}", f"dataset drift {drift.get('dataset_drift')}; drifted: {drifted}")
        if perf.get("labeled_rows"):
            line(
                f"  performance {day}",
                f"accuracy {perf['accuracy']:.3f} on {perf['labeled_rows']} labeled rows "
                f"(drop vs holdout {perf.get('accuracy_drop', 0):.3f})",
            )
    line("retrain runs", f"{len(retrains)} requested by the drift sensor")
    if retrain is not None:
        new, staged_new = meta(retrain, "registered_model"), meta(retrain, "staging_deployment")
        line(
            "new challenger",
            f"v{new.get('version')} staged: {staged_new.get('outcome')}; waiting for approval "
            f"(`mlops model pending {SPEC.model_name}`)",
        )
    print("\nVision (Fashion-MNIST, relabel loopback)")
    for label, value in vision.lines:
        line(label, value)
    print("\nNLP (Rotten Tomatoes, two model families, relabel loopback)")
    for label, value in nlp.lines:
        line(label, value)
    line(
        "cost this month",
        f"{ledger['month_cost']:.3f} {ledger['currency']} = {ledger['pct_of_budget']:.1f}% "
        f"of {ledger['monthly_budget']}",
    )
    line("elapsed", f"{time.monotonic() - started:.0f}s")
    info = res["endpoints"].get(SPEC.online_endpoint)
    print(
        f"\nProduction endpoint still serving at {info.scoring_uri} (`mlops endpoint keys "
        f"{SPEC.online_endpoint}` for a key; `mlops endpoint serve --stop` stops it; both need "
        "your OS account mapped to platform_support under `os_users:` in the RBAC policy)."
    )
    print(
        "Next: `make dev` for the Dagster UI (http://127.0.0.1:3000), `make mlflow-ui` for MLflow"
    )
    ok = (
        bool(deployed)
        and statuses.count(200) == len(statuses)
        and batch.success
        and len(retrains) == 1
        and retrain is not None
        and retrain.success
        and vision.ok
        and nlp.ok
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
