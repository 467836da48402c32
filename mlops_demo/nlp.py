"""`make demo`, NLP part: two model families, one gate, and the relabel loopback on text.

Review snippets land by day; the TF-IDF + logistic regression baseline trains, passes
the gates and staging, is approved and becomes the champion; the small BERT then
trains on the same training set and is judged against it at the same gate (across
model families). Production text (a clean day and a day of the simulated vocabulary
shift) goes to the online endpoint; monitoring finds the drift; the drift sensor asks
for labeling (never a retrain); simulated annotators (reading the held truth, named as
such) complete the task; the labels sensor requests the run that builds a new labeled
set version and trains on it: the new challenger is judged on held-out human-labeled
production text too and waits for a human approval.
"""

from __future__ import annotations

from mlops_demo.runs import run_job, tick
from mlops_demo.vision import LoopOutcome, day_range, meta, send_items

CLEAN_DAY, DRIFT_DAY = "2024-06-10", "2024-06-16"
TRAINING = {
    "nlp__training_set": {"config": {"base_texts": 5000, "holdout_texts": 1500}},
    "nlp__candidate_model": {"config": {"hyperparameters": {"epochs": 2}}},
}


def with_family(training: dict, family: str) -> dict:
    """The training ops config with the candidate's model family set."""
    candidate = training.get("nlp__candidate_model", {}).get("config", {})
    return {**training, "nlp__candidate_model": {"config": {**candidate, "family": family}}}


def train_and_judge(defs, instance, res, caller, out: LoopOutcome, ops: dict, family: str):
    """Train one family, report its gate; approve and promote it when staging passed."""
    from mlops_assets.scenarios.nlp import SPEC
    from mlops_core.governance.decisions import record_decision

    run = out.runs[f"train:{family}"] = run_job(
        defs, "nlp_training_job", instance, run_config={"ops": with_family(ops, family)}
    )
    cand, evaluation = meta(run, "candidate_model"), meta(run, "model_evaluation")
    staged = meta(run, "staging_deployment")
    if cand:
        out.add(f"nlp {family}", f"holdout accuracy {cand['accuracy_holdout']:.3f}, macro F1 "
                f"{cand['macro_f1_holdout']:.3f}")  # fmt: skip
    out.add(f"nlp {family} gate", f"{evaluation.get('verdict')}: {evaluation.get('reason')}")
    if not (run.success and staged.get("outcome") == "passed"):
        return None
    version = str(meta(run, "registered_model")["version"])
    record_decision(
        res["registry"], res["governance"], res["approvals"], caller, SPEC.model_name, version,
        "approve", f"demo: {family} holdout accuracy and staging checks reviewed",
    )  # fmt: skip
    promoted = tick(defs, "nlp_approval_sensor", instance, res)
    out.runs[f"promotion:{family}"] = promoted[-1][1] if promoted else None
    deployed = meta(out.runs[f"promotion:{family}"], "production_deployment")
    out.add(f"nlp production ({family})", f"{deployed.get('endpoint')} v{version} "
            f"slot {deployed.get('slot')}")  # fmt: skip
    return family if deployed else None


def run_nlp_loop(
    defs, instance, res: dict, caller, step: int, training: dict | None = None
) -> LoopOutcome:
    from mlops_assets.scenarios.nlp import SPEC
    from mlops_assets.scenarios.nlp.data_assets import FIRST_DAY, LAST_DAY, raw_path
    from mlops_core.naming import drift_sensor_name
    from mlops_demo.annotate import annotate_open_tasks

    out, ops = LoopOutcome(), training or TRAINING
    print(f"{step}. nlp: land review snippets {FIRST_DAY}..{LAST_DAY}; TF-IDF baseline, then "
          "the small BERT against it at the same gate")  # fmt: skip
    data = run_job(defs, "nlp_data_job", instance, tags=day_range(FIRST_DAY, LAST_DAY))
    champion = train_and_judge(defs, instance, res, caller, out, ops, "tfidf")
    if not (data.success and champion):
        out.add("nlp", "the TF-IDF baseline did not reach production; see `make dev`")
        return out
    champion = train_and_judge(defs, instance, res, caller, out, ops, "bert") or champion
    out.add("nlp champion", f"{champion} serves production")

    print(f"{step + 1}. nlp: texts of {CLEAN_DAY} and of {DRIFT_DAY} (simulated vocabulary "
          "shift) to the online endpoint; monitoring")  # fmt: skip
    sent = sum(
        send_items(res, SPEC, res["lake"].read_parquet(raw_path(day)), day, per_request=5)
        for day in (CLEAN_DAY, DRIFT_DAY)
    )
    for day in (CLEAN_DAY, DRIFT_DAY):
        run = out.runs[f"monitoring:{day}"] = run_job(
            defs, "nlp_monitoring_job", instance, partition_key=day
        )
        drift = meta(run, "data_drift")
        drifted = ", ".join(drift.get("drifted_features") or []) or "none"
        out.add(f"nlp drift {day}", f"dataset drift {drift.get('dataset_drift')}; "
                f"drifted: {drifted}")  # fmt: skip
    out.add("nlp requests", f"{sent} requests of 5 texts")

    print(f"{step + 2}. nlp: drift sensor -> labeling task (no retrain); simulated annotators; "
          "labels sensor -> new labeled set -> training on labeled production text")  # fmt: skip
    labeling = tick(defs, drift_sensor_name(SPEC.name, SPEC.loopback), instance, res)
    out.runs["labeling"] = [result for _, result in labeling]
    tasks = meta(labeling[-1][1], "labeling_tasks") if labeling else {}
    out.add("nlp labeling task", f"{tasks.get('items', 0)} texts ({tasks.get('uncertain_items', 0)}"
            f" uncertain, {tasks.get('random_items', 0)} random)")  # fmt: skip
    out.add("nlp simulated annotation", annotate_open_tasks(res, SPEC))
    retrains = tick(
        defs, "nlp_labels_sensor", instance, res,
        run_config={"ops": with_family(ops, champion)},
    )  # fmt: skip
    retrain = out.runs["retrain"] = retrains[-1][1] if retrains else None
    labeled = meta(retrain, "labeled_set")
    out.add("nlp labeled set", f"{labeled.get('version')}: {labeled.get('items')} texts, "
            f"agreement {labeled.get('agreement', float('nan')):.3f}")  # fmt: skip
    again = out.runs["monitoring:labeled"] = run_job(
        defs, "nlp_monitoring_job", instance, partition_key=DRIFT_DAY
    )
    perf = meta(again, "model_performance")
    if perf.get("labeled_rows"):
        holdout = perf.get("holdout_value", float("nan"))
        out.add(f"nlp accuracy {DRIFT_DAY}", f"{perf['accuracy']:.3f} on {perf['labeled_rows']} "
                f"human-labeled texts (holdout {holdout:.3f})")  # fmt: skip
    evaluation, staged = meta(retrain, "model_evaluation"), meta(retrain, "staging_deployment")
    out.add("nlp retrain", f"{evaluation.get('verdict')}: {evaluation.get('reason')}")
    out.add("nlp challenger", f"v{meta(retrain, 'registered_model').get('version')} staged: "
            f"{staged.get('outcome')}; waiting for approval")  # fmt: skip
    res["endpoints"].stop(SPEC.staging_endpoint)
    # a gate that rejects the retrained model is an outcome the demo shows, not a failure
    decided = evaluation.get("verdict") in ("approved", "rejected")
    out.ok = bool(tasks) and retrain is not None and (retrain.success or decided)
    return out
