"""`SimulatedAnnotator`: labelers played by code, so demos and tests can close the loop.

It works through a labeling project exactly as a person at `mlops label` does: it
asks for the items each annotator has not labeled yet (`pending_items`) and records
their answers (`annotate`), so every backend sees ordinary annotations. The answer is
the truth (a lookup the caller gives: item -> true label); with `noise`, an annotator
answers a wrong class that often. Each annotator draws from its own generator seeded
by (`seed`, annotator id), so runs are reproducible and annotators err independently.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mlops_core.labeling import ITEM_ID, AnnotationTarget


@dataclass(frozen=True)
class SimulatedAnnotator:
    """Annotators `annotators` who label by `truth`, wrong with probability `noise`."""

    truth: Callable[[dict[str, Any]], Any]
    annotators: Sequence[str]
    noise: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.annotators:
            raise ValueError("a simulated annotator needs at least one annotator id")
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"noise must be within [0, 1], not {self.noise}")

    def answer(self, item: dict[str, Any], rng: random.Random) -> Any:
        label = self.truth(item)
        if rng.random() >= self.noise:
            return label
        wrong = [c for c in item.get("classes") or [] if str(c) != str(label)]
        return rng.choice(wrong) if wrong else label

    def complete(self, project: AnnotationTarget, scenario: str, task_id: str | None = None) -> int:
        """Every annotator labels every item it has not labeled yet; returns how many."""
        done = 0
        for annotator in self.annotators:
            rng = random.Random(f"{self.seed}:{annotator}")
            answers = [
                {ITEM_ID: item[ITEM_ID], "label": self.answer(item, rng), "annotator": annotator}
                for item in project.pending_items(scenario, annotator, task_id)
            ]
            done += project.annotate(scenario, answers)
        return done
