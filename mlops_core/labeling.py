"""Choosing items for human labeling and turning annotations into a labeled set, no Dagster.

Selection is uncertainty sampling plus a random share: the most uncertain
items teach the model most, the random ones keep the labels an unbiased
measure of production performance. Agreement is the share of items labeled by
more than one annotator on which all of them agree.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import numpy as np
    import pandas as pd

ITEM_ID = "item_id"


# The local labeling project's layout in the lake: tasks are JSONL files of items (id, the
# item's logged columns, the served prediction, why it was chosen); annotations are JSONL
# lines {"item_id", "label", "annotator"} from `mlops label` or a labeling tool's export.
def tasks_dir(scenario: str) -> str:
    return f"labeling/{scenario}/tasks"


def annotations_dir(scenario: str) -> str:
    return f"labeling/{scenario}/annotations"


def labeled_set_root(scenario: str) -> str:
    return f"curated/{scenario}/labeled_set"


def item_ids(logged: pd.DataFrame) -> pd.Series:
    """A stable id per logged item: its request and its position in the request."""
    return logged["request_id"].astype(str) + ":" + logged["row"].astype(str)


def select_items(
    logged: pd.DataFrame, uncertainty: np.ndarray, count: int, random_share: float, seed: int
) -> pd.DataFrame:
    """`count` items: the most uncertain ones, and `random_share` of them drawn at random."""
    import numpy as np

    if len(uncertainty) != len(logged):
        raise ValueError(f"{len(uncertainty)} uncertainty scores for {len(logged)} logged items")
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random_share must be within [0, 1], not {random_share}")
    count = min(count, len(logged))
    n_random = round(count * random_share)
    order = np.argsort(-np.asarray(uncertainty, dtype=float), kind="stable")
    chosen = list(order[: count - n_random])
    rest = np.setdiff1d(np.arange(len(logged)), chosen)
    rng = np.random.default_rng(seed)
    drawn = rng.choice(rest, size=min(n_random, len(rest)), replace=False) if len(rest) else []
    picked = logged.iloc[[*chosen, *drawn]].copy()
    picked["why"] = ["uncertain"] * len(chosen) + ["random"] * len(drawn)
    picked["uncertainty"] = np.asarray(uncertainty, dtype=float)[[*chosen, *drawn]]
    return picked.reset_index(drop=True)


def consolidate(annotations: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """One label per item (the majority; ties go to the earliest) and the agreement rate."""
    import pandas as pd

    if annotations.empty:
        return pd.DataFrame(columns=[ITEM_ID, "label", "annotators"]), float("nan")
    rows, agreed, multi = [], 0, 0
    for item, group in annotations.groupby(ITEM_ID, sort=True):
        labels = group["label"].tolist()
        votes = Counter(str(v) for v in labels)
        best = max(votes.values())
        label = next(v for v in labels if votes[str(v)] == best)
        if len(group) > 1:
            multi += 1
            agreed += int(len(votes) == 1)
        rows.append(
            {ITEM_ID: item, "label": label, "annotators": ",".join(sorted(set(group["annotator"])))}
        )
    return pd.DataFrame(rows), (agreed / multi if multi else float("nan"))
