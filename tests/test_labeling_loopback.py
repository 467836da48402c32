"""The labeling stage and the relabel loopback, generic over scenarios.

Protects: a spec with labeling gets labeling assets, their jobs and a labels
sensor from the factory, and one without gets none; labeling tasks pick the
most uncertain production items plus a random share and notify labelers in
the run, through the `labeling` resource, with the served prediction on each
item and the task's link in metadata; enough completed labels request exactly
one labeled-training run; the labeled set is a content-addressed version (same
labels, same version) with majority labels, per-item agreement, and the items
below the agreement threshold held out for review until a reviewer decides them.
"""

from __future__ import annotations

import dataclasses
import json

import dagster as dg
import numpy as np
import pandas as pd

from mlops_assets.factory import build_lifecycle_defs
from mlops_assets.monitoring.inference_log import inference_log_path
from mlops_assets.scenarios.classical import SPEC
from mlops_core.labeling import annotations_dir, review_path
from mlops_core.naming import labeled_training_job_name, labeling_job_name
from mlops_core.spec import LabelingSpec
from resources.env import local_resources
from resources.labeling import LocalLabelingProject
from resources.lake import LocalLake
from resources.notify import OutboxNotifier
from sensors.labels import build_labels_sensor

DAY = "2013-03-05"
TOY = dataclasses.replace(
    SPEC,
    name="toy",
    labeling=LabelingSpec(
        task_format="tabular",
        uncertainty=lambda rows: -np.abs(rows["score"].to_numpy() - 0.5),
        items_per_task=10,
        random_share=0.2,
        min_new_labels=5,
    ),
    loopback="relabel",
)


def logged_day(lake: LocalLake) -> pd.DataFrame:
    scores = np.linspace(0.0, 1.0, 41)
    frame = pd.DataFrame(
        {
            "request_id": [f"r{i // 4}" for i in range(len(scores))],
            "row": [i % 4 for i in range(len(scores))],
            "score": scores,
            "model_version": "1",
            "prediction": (scores >= 0.5).astype(int),
        }
    )
    lake.write_parquet(inference_log_path(TOY.name, DAY), frame)
    return frame


def asset(defs: dg.Definitions, artifact: str) -> dg.AssetsDefinition:
    return next(a for a in defs.assets if a.key == dg.AssetKey([TOY.name, artifact]))


def test_factory_adds_labeling_only_for_specs_with_labeling(tmp_path):
    @dg.asset(key=["toy", "training_set"])
    def toy_training_set() -> None:
        """The scenario's own training set asset (scenario-specific, so not from the factory)."""

    toy = dg.Definitions.merge(
        build_lifecycle_defs(TOY),
        dg.Definitions(assets=[toy_training_set], resources=local_resources(tmp_path)),
    )
    keys = {k.path[-1] for a in toy.assets for k in a.keys}
    assert {"labeling_tasks", "labeled_set"} <= keys
    assert toy.resolve_job_def(labeling_job_name(TOY.name))
    labeled = toy.resolve_job_def(labeled_training_job_name(TOY.name))
    assert {k.path[-1] for k in labeled.asset_layer.selected_asset_keys} >= {
        "labeled_set", "training_set", "candidate_model", "registered_model",
    }  # fmt: skip
    classical = build_lifecycle_defs(SPEC)
    assert not {k.path[-1] for a in classical.assets for k in a.keys} & {"labeling_tasks"}


def test_uncertain_items_become_a_task_then_labels_a_versioned_set(tmp_path, instance):
    lake = LocalLake(root=str(tmp_path / "lake"))
    labeling = LocalLabelingProject(lake=lake)
    notifier = OutboxNotifier(outbox_path=str(tmp_path / "outbox.jsonl"))
    logged_day(lake)
    defs = build_lifecycle_defs(TOY)
    resources = {"lake": lake, "labeling": labeling, "notifier": notifier}
    run = dg.materialize(
        [asset(defs, "labeling_tasks")],
        instance=instance,
        resources=resources,
        run_config={"ops": {"toy__labeling_tasks": {"config": {"days": [DAY], "reason": "drift"}}}},
    )
    meta = {k: v.value for k, v in run.asset_materializations_for_node("toy__labeling_tasks")[0]
            .metadata.items()}  # fmt: skip
    assert (meta["items"], meta["uncertain_items"], meta["random_items"]) == (10, 8, 2)
    task = pd.read_json(tmp_path / "lake" / meta["task_path"].split("/lake/", 1)[1], lines=True)
    uncertain = task[task["why"] == "uncertain"]
    assert uncertain["score"].sub(0.5).abs().max() <= 0.1  # the 8 closest to the boundary
    assert set(task["prediction"]) <= {0, 1}  # the suggestion a labeler sees
    assert meta["classes"] == [0, 1] and meta["task_url"] == labeling.task_url(
        "toy", meta["task_id"]
    )
    sent = [n for n in notifier.read_outbox() if n["topic"] == "labeling"]
    assert len(sent) == 1 and sent[0]["facts"]["url"] == meta["task_url"]

    sensor = build_labels_sensor(TOY)
    with dg.build_sensor_context(instance=instance, resources={"labeling": labeling}) as ctx:
        assert isinstance(sensor(ctx), dg.SkipReason)  # no labels yet
    ids = task["item_id"].tolist()
    lines = [{"item_id": i, "label": n % 2, "annotator": "ana"} for n, i in enumerate(ids[:6])]
    lines += [{"item_id": ids[0], "label": 1, "annotator": "ben"}]  # disagrees with ana
    lines += [{"item_id": ids[1], "label": 1, "annotator": "ben"}]  # agrees with ana
    lake.write_bytes(
        f"{annotations_dir(TOY.name)}/batch1.jsonl",
        "\n".join(json.dumps(line) for line in lines).encode(),
    )
    with dg.build_sensor_context(instance=instance, resources={"labeling": labeling}) as ctx:
        result = sensor(ctx)
    assert [r.run_key for r in result.run_requests] == ["labels-toy-8"]
    with dg.build_sensor_context(instance=instance, cursor=result.cursor,
                                 resources={"labeling": labeling}) as ctx:  # fmt: skip
        assert isinstance(sensor(ctx), dg.SkipReason)  # the same labels never request twice

    def labeled() -> dict:
        done = dg.materialize([asset(defs, "labeled_set")], instance=instance, resources=resources)
        node = done.asset_materializations_for_node("toy__labeled_set")[0]
        return {k: v.value for k, v in node.metadata.items()}

    first = labeled()
    assert (first["items"], first["annotations"], first["annotators"]) == (5, 8, 2)
    assert first["agreement"] == 0.75  # ids[0]: 1 of 2 agree (0.5), ids[1]: 2 of 2
    assert (first["items_in_review"], first["review_items"]) == (1, [ids[0]])
    assert first["newly_written"] is True
    items = lake.read_parquet(f"{first['root']}/train.parquet")
    assert items.set_index("item_id").loc[ids[1], "label"] == 1
    assert ids[0] not in set(items["item_id"])  # not trained on until reviewed
    assert lake.read_parquet(f"{first['root']}/review.parquet")["item_id"].tolist() == [ids[0]]
    assert [r["item_id"] for r in lake.read_json(review_path("toy"))["items"]] == [ids[0]]
    second = labeled()
    assert second["version"] == first["version"] and second["newly_written"] is False

    # a reviewer decides the disputed item: it joins the set with the reviewer's label
    assert [i["item_id"] for i in labeling.review_items("toy")] == [ids[0]]
    labeling.annotate(
        "toy", [{"item_id": ids[0], "label": 1, "annotator": "rita", "reviewed": True}]
    )
    assert labeling.review_items("toy") == []
    third = labeled()
    assert (third["items"], third["items_in_review"], third["items_reviewed"]) == (6, 0, 1)
    assert third["version"] != first["version"]
    items = lake.read_parquet(f"{third['root']}/train.parquet").set_index("item_id")
    assert (items.loc[ids[0], "label"], items.loc[ids[0], "status"]) == (1, "reviewed")
