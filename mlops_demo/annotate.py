"""The demo's labelers: simulated annotators who read the held truth of new items.

Named as what they are: a person at `mlops label` or in Label Studio would give the
labels here. An item is looked up by its digest: an image's is in the inference log;
a text's is the digest of the text as logged (`truth_key`). Two annotators label every
item, each wrong 5% of the time (at random), so the labeled set shows real agreement
and items that go to review.
"""

from __future__ import annotations

SIMULATED = ("simulated-annotator-1", "simulated-annotator-2")


def held_truth(lake, scenario: str) -> dict[str, str]:
    """digest -> true class of every landed new item (only simulated annotators read this)."""
    import pandas as pd

    paths = lake.list(f"landing/{scenario}/held_truth")
    frame = pd.concat([lake.read_parquet(p) for p in paths], ignore_index=True)
    return dict(zip(frame["digest"], frame["label"], strict=True))


def truth_key(item: dict) -> str:
    """The held-truth digest of a task item: an image's own, or its text's."""
    if "image" in item:
        return item["image"]
    from mlops_assets.scenarios.nlp.data_assets import text_digest

    return text_digest(item["text"])


def annotate_open_tasks(res: dict, spec, noise: float = 0.05) -> str:
    from mlops_core.labeling_sim import SimulatedAnnotator

    truth = held_truth(res["lake"], spec.name)
    annotator = SimulatedAnnotator(lambda item: truth[truth_key(item)], SIMULATED, noise, seed=7)
    done = annotator.complete(res["labeling"], spec.name)
    return f"{done} annotations by {len(SIMULATED)} simulated annotators (noise {noise:.0%})"
