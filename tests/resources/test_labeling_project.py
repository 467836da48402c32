"""The labeling project interface on its local backend, agreement and review, the simulator.

Protects: a task keeps its items, format and classes, and refuses bad ids, formats
and duplicates; annotations are checked against the tasks (known items, labels among
the classes, "1" read as the class 1); progress, pending items per annotator and
`count_completed` agree with what was written; per-item agreement sends items below
the threshold to review and a reviewer's annotation decides them; the simulated
annotator labels through the interface, reproducibly, with its noise rate.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mlops_core.labeling import consolidate
from mlops_core.labeling_sim import SimulatedAnnotator
from resources.labeling import LabelingError, LocalLabelingProject
from resources.lake import LocalLake

TRUTH = {f"i{n}": ("cat" if n % 3 else "dog") for n in range(30)}


@pytest.fixture
def project(tmp_path) -> LocalLabelingProject:
    return LocalLabelingProject(lake=LocalLake(root=str(tmp_path / "lake")))


def items(n: int, start: int = 0) -> list[dict]:
    return [
        {"item_id": f"i{k}", "text": f"item {k}", "prediction": "cat", "why": "uncertain"}
        for k in range(start, start + n)
    ]


def votes(*rows: tuple[str, object, str, bool]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item_id", "label", "annotator", "reviewed"])


@pytest.mark.parametrize(
    ("labels", "threshold", "label", "agreement", "status"),
    [
        (["cat"], 0.67, "cat", 1.0, "agreed"),  # one vote: nothing to disagree with
        (["cat", "cat", "dog"], 0.6, "cat", 2 / 3, "agreed"),
        (["cat", "cat", "dog"], 0.67, "cat", 2 / 3, "review"),  # 0.667 < 0.67
        (["dog", "cat"], 0.5, "dog", 0.5, "agreed"),  # a tie goes to the earliest vote
        (["dog", "cat"], 0.67, "dog", 0.5, "review"),
    ],
)
def test_per_item_agreement_against_the_threshold(labels, threshold, label, agreement, status):
    frame = votes(*[("x", v, f"a{n}", False) for n, v in enumerate(labels)])
    row = consolidate(frame, threshold).labels.iloc[0]
    assert (row["label"], row["status"]) == (label, status)
    assert math.isclose(row["agreement"], agreement)


def test_review_holds_items_out_until_a_reviewer_decides():
    frame = votes(
        ("a", "cat", "ana", False),
        ("a", "dog", "ben", False),
        ("b", "cat", "ana", False),
        ("b", "cat", "ben", False),
    )
    first = consolidate(frame, 0.67)
    assert first.accepted["item_id"].tolist() == ["b"] and first.review["item_id"].tolist() == ["a"]
    assert first.agreement == 0.75
    decided = pd.concat([frame, votes(("a", "dog", "rita", True))], ignore_index=True)
    second = consolidate(decided, 0.67)
    row = second.labels.set_index("item_id").loc["a"]
    assert (row["label"], row["status"], row["annotators"]) == ("dog", "reviewed", "ana,ben,rita")
    assert second.review.empty and second.agreement == 0.75  # the decision is not a vote
    assert consolidate(frame.iloc[:0], 0.67).labels.empty
    with pytest.raises(ValueError, match="min_agreement"):
        consolidate(frame, 1.5)


def test_a_task_keeps_its_items_and_refuses_bad_input(project):
    ref = project.create_task("toy", "t1", items(3), "text", ["cat", "dog"])
    assert (ref.items, ref.labeled_items, ref.done) == (3, 0, False)
    assert ref.url == project.task_url("toy", "t1") and ref.url.endswith("t1.jsonl")
    assert [i["item_id"] for i in project.task_items("toy", "t1")] == ["i0", "i1", "i2"]
    assert project.manifest("toy", "t1")["classes"] == ["cat", "dog"]
    for task_id, batch, fmt, match in [
        ("t1", items(1, 5), "text", "already has a task t1"),
        ("../x", items(1), "text", "task id"),
        ("t2", items(1), "video", "task format"),
        ("t2", items(1) + items(1), "text", "distinct"),
    ]:
        with pytest.raises(LabelingError, match=match):
            project.create_task("toy", task_id, batch, fmt, ["cat"])
    with pytest.raises(LabelingError, match="no labeling task 'nope'"):
        project.task_items("toy", "nope")


def test_annotations_are_checked_and_counted(project):
    project.create_task("toy", "t1", items(3), "text", [0, 1])
    assert project.annotate("toy", [{"item_id": "i0", "label": "1", "annotator": "ana"}]) == 1
    frame = project.annotations("toy")
    assert frame.to_dict("records") == [
        {"item_id": "i0", "label": 1, "annotator": "ana", "reviewed": False}
    ]  # "1" typed at a prompt is the class 1
    for bad, match in [
        ({"item_id": "zz", "label": 1, "annotator": "ana"}, "no task item 'zz'"),
        ({"item_id": "i1", "label": 7, "annotator": "ana"}, "not one of the task's classes"),
        ({"item_id": "i1", "label": 1}, "lacks"),
    ]:
        with pytest.raises(LabelingError, match=match):
            project.annotate("toy", [bad])
    assert project.count_completed("toy") == 1
    assert [i["item_id"] for i in project.pending_items("toy", "ana")] == ["i1", "i2"]
    assert len(project.pending_items("toy", "ben")) == 3
    (ref,) = project.tasks("toy")
    assert (ref.labeled_items, ref.annotations) == (1, 1)


def test_simulated_annotators_label_every_item_through_the_interface(project):
    project.create_task("toy", "t1", items(30), "text", ["cat", "dog"])
    sim = SimulatedAnnotator(
        lambda item: TRUTH[item["item_id"]], ["ana", "ben", "cy"], noise=0.2, seed=7
    )
    assert sim.complete(project, "toy") == 90
    assert sim.complete(project, "toy") == 0  # nothing pending any more
    frame = project.annotations("toy")
    assert project.count_completed("toy") == 90 and set(frame["annotator"]) == {"ana", "ben", "cy"}
    wrong = (frame["label"] != frame["item_id"].map(TRUTH)).mean()
    assert 0.08 < wrong < 0.35  # about the noise rate
    result = consolidate(frame, 0.67)
    assert len(result.review) == (result.labels["agreement"] < 0.67).sum() > 0
    assert (result.accepted["label"] == result.accepted["item_id"].map(TRUTH)).mean() > 0.9
    (ref,) = project.tasks("toy")
    assert ref.done and ref.annotations == 90


def test_simulated_annotator_is_reproducible_and_validated(tmp_path):
    def run(seed: int) -> list:
        lake = LocalLake(root=str(tmp_path / f"lake{seed}-{len(list(tmp_path.iterdir()))}"))
        project = LocalLabelingProject(lake=lake)
        project.create_task("toy", "t1", items(20), "text", ["cat", "dog"])
        SimulatedAnnotator(lambda i: TRUTH[i["item_id"]], ["ana"], noise=0.5, seed=seed).complete(
            project, "toy"
        )
        return project.annotations("toy").sort_values("item_id")["label"].tolist()

    assert run(1) == run(1) != run(2)
    with pytest.raises(ValueError, match="noise"):
        SimulatedAnnotator(lambda i: "cat", ["ana"], noise=2.0)
    with pytest.raises(ValueError, match="at least one"):
        SimulatedAnnotator(lambda i: "cat", [])


def test_uncertain_picks_spread_across_the_served_labels():
    import numpy as np
    import pandas as pd

    from mlops_core.labeling import select_items

    # the model says "Bag" for most items and is least sure about them: without spreading
    # the task is all bags; spread, each served label gives its most uncertain item in turn
    served = ["Bag"] * 8 + ["Coat", "Coat", "Shirt"]
    uncertainty = np.array([0.9, 0.89, 0.88, 0.87, 0.86, 0.85, 0.84, 0.83, 0.5, 0.4, 0.1])
    logged = pd.DataFrame({"item_id": [f"r:{i}" for i in range(11)], "prediction": served})
    plain = select_items(logged, uncertainty, 4, 0.0, seed=0)
    assert plain["prediction"].tolist() == ["Bag"] * 4
    spread = select_items(logged, uncertainty, 5, 0.0, seed=0, spread_by=served)
    assert spread["item_id"].tolist() == ["r:0", "r:8", "r:10", "r:1", "r:9"]
    assert (spread["why"] == "uncertain").all()
    with pytest.raises(ValueError, match="spread_by"):
        select_items(logged, uncertainty, 4, 0.0, seed=0, spread_by=served[:3])
