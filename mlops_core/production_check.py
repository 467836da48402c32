"""Staging's test on production data: the staged model on held-out human-labeled items.

For scenarios whose training sets take human-labeled production items (vision, NLP:
`origin == "labeled"` in the training set version), the candidate was retrained on
recent labeled production data; staging then asks the *staging endpoint* (the live
server, not the model in-process) about the held-out share of those items and scores
its answers against the human labels with the scenario's production metric. A training
set without labeled items yields no check: there is nothing from production to test on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_core.probes import _headers

if TYPE_CHECKING:
    import pandas as pd

    from mlops_core.spec import ScenarioSpec

LABELED_ORIGIN = "labeled"
REQUEST_ITEMS = 32


@dataclass(frozen=True)
class ProductionCheck:
    rows: int
    metric: str
    value: float
    failed_requests: int


def labeled_items(holdout: pd.DataFrame) -> pd.DataFrame:
    """The holdout's human-labeled production items (none for a base-only version)."""
    if "origin" not in holdout:
        return holdout.iloc[0:0]
    return holdout[holdout["origin"] == LABELED_ORIGIN]


def score_labeled_production(
    spec: ScenarioSpec, holdout: pd.DataFrame, base_url: str, key: str, deployment: str
) -> ProductionCheck | None:
    """The endpoint's answers on the labeled production items vs their human labels."""
    import httpx

    items = labeled_items(holdout)
    if items.empty:
        return None
    answers: list[Any] = []
    failed = 0
    with httpx.Client(timeout=60, headers=_headers(key, deployment)) as client:
        for start in range(0, len(items), REQUEST_ITEMS):
            part = items.iloc[start : start + REQUEST_ITEMS]
            payload = spec.codec.payload(spec.codec.request_batch(part))
            response = client.post(f"{base_url}/score", json=payload)
            if response.status_code != 200:
                failed += 1
                answers += [None] * len(part)
                continue
            answers += response.json()
    metric = spec.monitoring.performance_metric
    scored = spec.monitoring.performance(answers, items["label"].tolist())
    return ProductionCheck(len(items), metric, float(scored[metric]), failed)
