"""The demo's labelers: simulated annotators who read the held truth of new images.

Named as what they are: a person at `mlops label` or in Label Studio would give the
labels here. Two annotators label every item, each wrong 5% of the time (at random),
so the labeled set shows real agreement and items that go to review.
"""

from __future__ import annotations

SIMULATED = ("simulated-annotator-1", "simulated-annotator-2")


def held_truth(lake, scenario: str) -> dict[str, str]:
    """digest -> true class of every landed new image (only simulated annotators read this)."""
    import pandas as pd

    paths = lake.list(f"landing/{scenario}/held_truth")
    frame = pd.concat([lake.read_parquet(p) for p in paths], ignore_index=True)
    return dict(zip(frame["digest"], frame["label"], strict=True))


def annotate_open_tasks(res: dict, spec, noise: float = 0.05) -> str:
    from mlops_core.labeling_sim import SimulatedAnnotator

    truth = held_truth(res["lake"], spec.name)
    annotator = SimulatedAnnotator(lambda item: truth[item["image"]], SIMULATED, noise, seed=7)
    done = annotator.complete(res["labeling"], spec.name)
    return f"{done} annotations by {len(SIMULATED)} simulated annotators (noise {noise:.0%})"
