"""`make demo`, vision part: the relabel loopback end to end on Fashion-MNIST.

New images land by day; the CNN trains, passes the gates, is staged, approved and
deployed; production images are sent to the online endpoint, a clean day and a
day from the simulated drift; monitoring finds the drift; the drift sensor asks
for labeling (never a retrain); simulated annotators (reading the held truth,
clearly named as such) complete the task; the labels sensor requests the run that
builds a new labeled set version and trains on it: a new challenger waits for a
human approval.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from mlops_core.naming import drift_sensor_name
from mlops_demo.runs import run_job, tick

CLEAN_DAY, DRIFT_DAY = "2024-06-10", "2024-06-16"
TRAINING = {"vision__training_set": {"config": {"base_images": 10_000, "holdout_images": 2_000}}}


@dataclass
class LoopOutcome:
    ok: bool = False
    lines: list[tuple[str, str]] = field(default_factory=list)
    runs: dict[str, Any] = field(default_factory=dict)
    """The runs by step: train, promotion, monitoring:<day>, labeling, retrain."""

    def add(self, label: str, value: object) -> None:
        self.lines.append((label, str(value)))


def day_range(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def meta(result, artifact: str) -> dict:
    from mlops_core.results import plain

    for event in result.get_asset_materialization_events() if result else []:
        if event.asset_key.path[-1] == artifact:
            return plain(event.materialization.metadata)
    return {}


def request_id(scenario: str, day: str, start: int) -> str:
    """Unique per request and the same in every run: the demo's (and its tests') labeling
    picks, and so what the retrain learns, do not change from one run to the next."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"mlops-demo/{scenario}/{day}/{start}").hex


def send_items(res: dict, spec, frame, day: str, per_request: int = 10) -> int:
    """A day's new items (`frame`, as landed: images or texts) to the production endpoint as
    a client sends them (the spec's codec), filed by that day; returns the number of requests."""
    import httpx

    endpoints = res["endpoints"]
    uri = endpoints.get(spec.online_endpoint).scoring_uri
    keys = endpoints.get_keys(spec.online_endpoint)
    sent = 0
    with httpx.Client(timeout=60) as client:
        for start in range(0, len(frame), per_request):
            batch = spec.codec.request_batch(frame.iloc[start : start + per_request])
            client.post(
                uri,
                json=spec.codec.payload(batch),
                headers={"Authorization": f"Bearer {keys['primary']}",
                         "x-request-id": request_id(spec.name, day, start),
                         "x-mlops-event-date": day,
                         "x-mlops-replay-key": keys["replay"]},
            ).raise_for_status()  # fmt: skip
            sent += 1
    return sent


def run_vision_loop(
    defs: dg.Definitions, instance, res: dict, caller, step: int, training: dict | None = None
) -> LoopOutcome:
    from mlops_assets.scenarios.vision import SPEC
    from mlops_assets.scenarios.vision.data_assets import FIRST_DAY, LAST_DAY, raw_path
    from mlops_core.governance.decisions import record_decision
    from mlops_demo.annotate import annotate_open_tasks

    out = LoopOutcome()
    print(f"{step}. vision: land new images {FIRST_DAY}..{LAST_DAY}, train the CNN, gate, stage")
    data = run_job(defs, "vision_data_job", instance, tags=day_range(FIRST_DAY, LAST_DAY))
    ops = training or TRAINING
    train = run_job(defs, "vision_training_job", instance, run_config={"ops": ops})
    out.runs["train"] = train
    staged, cand = meta(train, "staging_deployment"), meta(train, "candidate_model")
    if not (data.success and train.success and staged.get("outcome") == "passed"):
        out.add("vision", "the inner loop did not reach a staged model; see `make dev`")
        return out
    version = str(meta(train, "registered_model")["version"])
    out.add("vision model", f"{SPEC.model_name} v{version}: holdout accuracy "
            f"{cand['accuracy_holdout']:.3f}, macro F1 {cand['macro_f1_holdout']:.3f}")  # fmt: skip
    record_decision(
        res["registry"], res["governance"], res["approvals"], caller, SPEC.model_name, version,
        "approve", "demo: holdout accuracy and confusion matrix reviewed",
    )  # fmt: skip
    promoted = tick(defs, "vision_approval_sensor", instance, res)
    out.runs["promotion"] = promoted[-1][1] if promoted else None
    deployed = meta(out.runs["promotion"], "production_deployment")
    out.add("vision production", f"{deployed.get('endpoint')} slot {deployed.get('slot')}")

    print(f"{step + 1}. vision: images of {CLEAN_DAY} and of {DRIFT_DAY} (simulated washed-out "
          "camera) to the online endpoint; monitoring")  # fmt: skip
    sent = sum(
        send_items(res, SPEC, res["lake"].read_parquet(raw_path(day)), day)
        for day in (CLEAN_DAY, DRIFT_DAY)
    )
    drift = {}
    for day in (CLEAN_DAY, DRIFT_DAY):
        run = run_job(defs, "vision_monitoring_job", instance, partition_key=day)
        out.runs[f"monitoring:{day}"] = run
        drift[day] = meta(run, "data_drift")
        drifted = ", ".join(drift[day].get("drifted_features") or []) or "none"
        out.add(f"vision drift {day}", f"dataset drift {drift[day].get('dataset_drift')}; "
                f"drifted: {drifted}")  # fmt: skip
    out.add("vision requests", f"{sent} requests of 10 images")

    print(f"{step + 2}. vision: drift sensor -> labeling task (no retrain); simulated "
          "annotators label it; labels sensor -> new labeled set -> training")  # fmt: skip
    labeling = tick(defs, drift_sensor_name(SPEC.name, SPEC.loopback), instance, res)
    out.runs["labeling"] = [result for _, result in labeling]
    tasks = meta(labeling[-1][1], "labeling_tasks") if labeling else {}
    out.add("labeling task", f"{tasks.get('items', 0)} images ({tasks.get('uncertain_items', 0)} "
            f"uncertain, {tasks.get('random_items', 0)} random)")  # fmt: skip
    annotations = annotate_open_tasks(res, SPEC)
    out.add("simulated annotation", annotations)
    retrains = tick(defs, "vision_labels_sensor", instance, res, run_config={"ops": ops})
    retrain = out.runs["retrain"] = retrains[-1][1] if retrains else None
    labeled = meta(retrain, "labeled_set")
    out.add("labeled set", f"{labeled.get('version')}: {labeled.get('items')} images, "
            f"agreement {labeled.get('agreement', float('nan')):.3f}, "
            f"{labeled.get('items_in_review', 0)} in review")  # fmt: skip
    # the drifted day again: its performance now has ground truth, the accepted human labels
    again = out.runs["monitoring:labeled"] = run_job(
        defs, "vision_monitoring_job", instance, partition_key=DRIFT_DAY
    )
    perf = meta(again, "model_performance")
    if perf.get("labeled_rows"):
        out.add(f"vision accuracy {DRIFT_DAY}", f"{perf['accuracy']:.3f} on "
                f"{perf['labeled_rows']} human-labeled images (holdout "
                f"{perf.get('holdout_value', float('nan')):.3f})")  # fmt: skip
    new, evaluation = meta(retrain, "registered_model"), meta(retrain, "model_evaluation")
    out.add("vision retrain", f"{evaluation.get('verdict')}: {evaluation.get('reason')}")
    outcome = meta(retrain, "staging_deployment").get("outcome")
    out.add("vision challenger", f"v{new.get('version')} staged: {outcome}; waiting for approval")
    res["endpoints"].stop(SPEC.staging_endpoint)
    out.ok = bool(deployed) and bool(tasks) and retrain is not None and retrain.success
    return out
