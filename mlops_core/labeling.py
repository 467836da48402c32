"""Choosing items for human labeling and turning annotations into a labeled set, no Dagster.

Selection is uncertainty sampling plus a random share: the most uncertain
items teach the model most, the random ones keep the labels an unbiased
measure of production performance.

Consolidation is per item: the majority label wins (ties go to the earliest
vote) and the item's agreement is the majority's share of its votes. An item
whose agreement is below the spec's `min_agreement` goes to review and is not
trained on until a reviewer's annotation (`reviewed: true`) decides it; the
reviewer's latest label then wins whatever the votes said.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import numpy as np
    import pandas as pd

ITEM_ID = "item_id"
ANNOTATION_FIELDS = (ITEM_ID, "label", "annotator")
TASK_FORMATS = ("tabular", "image", "text", "segmentation")
IMAGE_REF = "sha256:"
"""Image items carry `image: "sha256:<hex>"`; the lake holds the bytes (`image_path`)."""


# The local labeling project's layout in the lake: tasks are JSONL files of items (id, the
# item's logged columns, the served prediction, why it was chosen), each with a manifest
# (format, classes, backend link); annotations are JSONL lines {"item_id", "label",
# "annotator", "reviewed"?} from `mlops label`, the simulated annotator or a tool's export.
def tasks_dir(scenario: str) -> str:
    return f"labeling/{scenario}/tasks"


def manifests_dir(scenario: str) -> str:
    return f"labeling/{scenario}/manifests"


def annotations_dir(scenario: str) -> str:
    return f"labeling/{scenario}/annotations"


def review_path(scenario: str) -> str:
    """The review queue the latest labeled set left: items below the agreement threshold."""
    return f"labeling/{scenario}/review.json"


def labeled_set_root(scenario: str) -> str:
    return f"curated/{scenario}/labeled_set"


def image_path(scenario: str, ref: str) -> str:
    """Lake path of an image item's bytes, from its `sha256:<hex>` reference."""
    if not ref.startswith(IMAGE_REF) or not ref[len(IMAGE_REF) :].isalnum():
        raise ValueError(f"an image reference looks like 'sha256:<hex>', not {ref!r}")
    return f"monitoring/{scenario}/images/{ref[len(IMAGE_REF) :]}"


@dataclass(frozen=True)
class TaskRef:
    """One labeling task in a project, with its progress and where a person labels it."""

    scenario: str
    task_id: str
    task_format: str
    url: str
    items: int
    labeled_items: int = 0
    """Items with at least one completed annotation."""
    annotations: int = 0

    @property
    def done(self) -> bool:
        return self.labeled_items >= self.items

    def to_row(self) -> dict[str, Any]:
        return {
            "task": self.task_id,
            "format": self.task_format,
            "items": self.items,
            "labeled": self.labeled_items,
            "annotations": self.annotations,
            "status": "done" if self.done else "open",
            "url": self.url,
        }


class AnnotationTarget(Protocol):
    """What a labeler (a person at `mlops label`, the simulated annotator) works through."""

    def pending_items(
        self, scenario: str, annotator: str, task_id: str | None = None
    ) -> list[dict[str, Any]]: ...

    def annotate(self, scenario: str, annotations: list[dict[str, Any]]) -> int: ...


def item_ids(logged: pd.DataFrame) -> pd.Series:
    """A stable id per logged item: its request and its position in the request."""
    return logged["request_id"].astype(str) + ":" + logged["row"].astype(str)


def spread(order: Sequence[int], groups: Sequence[Any], count: int) -> list[int]:
    """`count` of `order` (most uncertain first) taken round-robin across `groups`: each
    group's most uncertain item, then each group's second, and so on."""
    queues: dict[Any, list[int]] = {}
    for i in order:
        queues.setdefault(groups[i], []).append(int(i))
    taken: list[int] = []
    for depth in range(max((len(q) for q in queues.values()), default=0)):
        taken += [q[depth] for q in queues.values() if depth < len(q)]
        if len(taken) >= count:
            break
    return taken[:count]


def select_items(
    logged: pd.DataFrame,
    uncertainty: np.ndarray,
    count: int,
    random_share: float,
    seed: int,
    spread_by: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """`count` items: the most uncertain ones, and `random_share` of them drawn at random.
    With `spread_by` (e.g. the served label per item), the uncertain picks are spread
    round-robin across its values, most uncertain first within each."""
    import numpy as np

    if len(uncertainty) != len(logged):
        raise ValueError(f"{len(uncertainty)} uncertainty scores for {len(logged)} logged items")
    if spread_by is not None and len(spread_by) != len(logged):
        raise ValueError(f"{len(spread_by)} spread_by values for {len(logged)} logged items")
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random_share must be within [0, 1], not {random_share}")
    count = min(count, len(logged))
    n_random = round(count * random_share)
    order = np.argsort(-np.asarray(uncertainty, dtype=float), kind="stable")
    if spread_by is None:
        chosen = list(order[: count - n_random])
    else:
        chosen = spread(order, list(spread_by), count - n_random)
    rest = np.setdiff1d(np.arange(len(logged)), chosen)
    rng = np.random.default_rng(seed)
    drawn = rng.choice(rest, size=min(n_random, len(rest)), replace=False) if len(rest) else []
    picked = logged.iloc[[*chosen, *drawn]].copy()
    picked["why"] = ["uncertain"] * len(chosen) + ["random"] * len(drawn)
    picked["uncertainty"] = np.asarray(uncertainty, dtype=float)[[*chosen, *drawn]]
    return picked.reset_index(drop=True)


def pending_for(
    items: list[dict[str, Any]], annotations: pd.DataFrame, annotator: str
) -> list[dict[str, Any]]:
    """The items `annotator` has not annotated yet, in task order."""
    done: set[str] = set()
    if not annotations.empty:
        mine = annotations[annotations["annotator"] == annotator]
        done = set(mine[ITEM_ID].astype(str))
    return [item for item in items if str(item[ITEM_ID]) not in done]


@dataclass(frozen=True)
class Consolidation:
    """Per-item labels with their votes and agreement, and which items wait for review."""

    labels: pd.DataFrame
    """item_id, label, annotators, votes, agreement, status (agreed | reviewed | review)."""
    agreement: float
    """Mean agreement over items with two or more votes (nan when there are none)."""
    min_agreement: float

    @property
    def accepted(self) -> pd.DataFrame:
        """Items whose label may be trained on: agreed, or decided by a reviewer."""
        return self.labels[self.labels["status"] != "review"].reset_index(drop=True)

    @property
    def review(self) -> pd.DataFrame:
        return self.labels[self.labels["status"] == "review"].reset_index(drop=True)


def _is_review(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def consolidate(annotations: pd.DataFrame, min_agreement: float) -> Consolidation:
    """One label per item: the majority (ties go to the earliest vote), or the reviewer's."""
    import pandas as pd

    if not 0.0 <= min_agreement <= 1.0:
        raise ValueError(f"min_agreement must be within [0, 1], not {min_agreement}")
    columns = [ITEM_ID, "label", "annotators", "votes", "agreement", "status"]
    if annotations.empty:
        return Consolidation(pd.DataFrame(columns=columns), float("nan"), min_agreement)
    reviewed = annotations.get("reviewed", pd.Series(False, index=annotations.index))
    rows, multi = [], []
    for item, group in annotations.groupby(ITEM_ID, sort=True):
        is_review = reviewed.loc[group.index].map(_is_review)
        votes_of = group[~is_review]
        labels = votes_of["label"].tolist()
        votes = Counter(str(v) for v in labels)
        best = max(votes.values(), default=0)
        agreement = best / len(labels) if labels else float("nan")
        if len(labels) > 1:
            multi.append(agreement)
        if is_review.any():
            label, status = group[is_review]["label"].iloc[-1], "reviewed"
        else:
            label = next(v for v in labels if votes[str(v)] == best)
            status = "agreed" if agreement >= min_agreement else "review"
        rows.append(
            {
                ITEM_ID: item,
                "label": label,
                "annotators": ",".join(sorted(set(group["annotator"].astype(str)))),
                "votes": ",".join(f"{k}={n}" for k, n in votes.most_common()),
                "agreement": agreement,
                "status": status,
            }
        )
    mean = sum(multi) / len(multi) if multi else float("nan")
    return Consolidation(pd.DataFrame(rows, columns=columns), mean, min_agreement)


def held_out(item_id: str, share: float) -> bool:
    """Whether a human-labeled item goes to a training set's holdout: by a hash of its id,
    so an item stays on its side in every later version of the set."""
    return int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share
