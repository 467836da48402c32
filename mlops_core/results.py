"""Typed results that cross an asset boundary or are read by a sensor.

The asset that writes a result and every reader (downstream assets, sensors,
the CLI, the demo) use the same class: `to_metadata()` gives the plain values
Dagster stores as materialization metadata, `from_metadata()` reads them back
and fails with the missing field's name instead of a KeyError deep in a sensor.
Display-only extras (markdown tables, links) are added by the writer next to
these fields and are never read back.

Measured floats are stored to 6 significant digits (a page of 16-decimal numbers
helps nobody; MLflow keeps exact metrics). Fields named in a class's `settings`
(thresholds, tolerances, budgets: what a run was judged by, not what it measured)
are stored as text, so the UI does not plot a constant as a time series.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self


class ResultError(ValueError):
    """Stored metadata does not hold the result a reader expects."""


def plain(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Materialization metadata as plain values (Dagster wraps them in MetadataValue)."""
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def rounded(value: float) -> float:
    """6 significant digits: what a person reads, and no decision turns on the seventh."""
    return float(f"{value:.6g}")


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


@dataclass(frozen=True)
class Result:
    kind: ClassVar[str] = "result"
    settings: ClassVar[tuple[str, ...]] = ()

    def to_metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result_kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, float):
                value = None if math.isnan(value) else rounded(value)
            if value is not None and f.name in self.settings and isinstance(value, int | float):
                value = str(value)
            if value is not None:
                out[f.name] = value
        return out

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> Self:
        values = plain(metadata)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in values and values[f.name] is not None:
                value = values[f.name]
                if f.name in cls.settings and isinstance(value, str):
                    try:
                        value = _number(value)
                    except ValueError as err:
                        raise ResultError(f"{cls.__name__} '{f.name}' is not a number") from err
                kwargs[f.name] = tuple(value) if isinstance(value, list) else value
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ResultError(f"{cls.__name__} metadata lacks '{f.name}'")
        return cls(**kwargs)


@dataclass(frozen=True)
class DatasetVersion(Result):
    """An immutable, content-addressed training set version in the lake."""

    kind: ClassVar[str] = "dataset_version"
    name: str
    version: str
    root: str
    """Lake folder holding this version's splits and manifest."""
    partition_range: str
    train_rows: int
    holdout_rows: int

    def path(self, split: str) -> str:
        return f"{self.root}/{split}.parquet"


@dataclass(frozen=True)
class CandidateModel(Result):
    kind: ClassVar[str] = "candidate_model"
    mlflow_run_id: str
    model_id: str
    model_uri: str
    dataset_version: str
    dataset_root: str
    partition_range: str


@dataclass(frozen=True)
class EvaluationVerdict(Result):
    kind: ClassVar[str] = "evaluation_verdict"
    settings: ClassVar[tuple[str, ...]] = ("tolerance", "max_slice_gap")
    verdict: str
    """`approved` or `rejected`."""
    reason: str
    mlflow_run_id: str
    model_id: str
    metric: str
    challenger_score: float
    dataset_version: str
    partition_range: str
    tolerance: float
    champion_version: str = "none"
    champion_score: float | None = None
    slice_gap: float = 0.0
    max_slice_gap: float | None = None

    @property
    def approved(self) -> bool:
        return self.verdict == "approved"


@dataclass(frozen=True)
class RegisteredVersion(Result):
    """A dev registry version and the dataset version it was trained and evaluated on."""

    kind: ClassVar[str] = "registered_version"
    model_name: str
    version: str
    mlflow_run_id: str
    dataset_version: str
    dataset_root: str


@dataclass(frozen=True)
class StagingResult(Result):
    """A staged version's test outcome, with the thresholds it was judged by."""

    kind: ClassVar[str] = "staging_result"
    settings: ClassVar[tuple[str, ...]] = ("slo_p99_ms",)
    model_name: str
    version: str
    outcome: str
    """`passed` or `failed`."""
    checks: dict[str, bool]
    slo_p99_ms: float
    load_requests: int
    p50_ms: float
    p99_ms: float
    rps: float
    trained_on: str = ""
    """The training data's range (`base+<labeled set version>` where production labels joined)."""
    production_rows: int = 0
    """Held-out human-labeled production items the staging endpoint answered (0: none)."""
    production_score: float = float("nan")
    """The scenario's production metric on those items, from the endpoint's answers."""


@dataclass(frozen=True)
class DriftResult(Result):
    kind: ClassVar[str] = "drift_result"
    settings: ClassVar[tuple[str, ...]] = ("drift_share_threshold",)
    day: str
    model_version: str
    rows: int
    share_of_drifted_features: float
    drift_share_threshold: float
    drifted_features: tuple[str, ...]
    prediction_drift: bool
    prediction_drift_score: float

    @property
    def dataset_drift(self) -> bool:
        return self.share_of_drifted_features >= self.drift_share_threshold

    def trigger(self) -> str | None:
        """Why this result calls for the loopback, or None.

        Feature drift counts at Evidently's dataset rule (share of drifted features). A
        drifted prediction counts only together with a drifted feature: alone, it moves
        with what is deliberately not monitored per day (weather, calendar) and would
        loop back on every stormy day.
        """
        share = self.share_of_drifted_features
        if self.dataset_drift:
            return f"{share:.0%} of features drifted (threshold {self.drift_share_threshold:.0%})"
        if self.prediction_drift and share > 0:
            return (
                f"prediction drift (score {self.prediction_drift_score:.3g}) "
                f"with {share:.0%} of features drifted"
            )
        return None

    def to_metadata(self) -> dict[str, Any]:
        return {**super().to_metadata(), "dataset_drift": self.dataset_drift}


@dataclass(frozen=True)
class PerformanceResult(Result):
    kind: ClassVar[str] = "performance_result"
    settings: ClassVar[tuple[str, ...]] = ("max_drop",)
    day: str
    rows: int
    labeled_rows: int
    metric: str
    max_drop: float
    metrics: dict[str, float] = field(default_factory=dict)
    model_version: str | None = None
    value: float | None = None
    holdout_value: float | None = None

    @property
    def drop(self) -> float | None:
        if self.value is None or self.holdout_value is None:
            return None
        return self.holdout_value - self.value

    def trigger(self) -> str | None:
        drop = self.drop
        if drop is not None and drop > self.max_drop:
            return (
                f"{self.metric} {self.value:.3f} is {drop:.3f} below holdout "
                f"(max drop {self.max_drop})"
            )
        return None

    def to_metadata(self) -> dict[str, Any]:
        out = super().to_metadata()
        if self.drop is not None:
            out[f"{self.metric}_drop"] = rounded(self.drop)
        return out


@dataclass(frozen=True)
class EndpointHealth(Result):
    kind: ClassVar[str] = "endpoint_health"
    settings: ClassVar[tuple[str, ...]] = ("slo_p99_ms",)
    endpoint: str
    workers: int
    requests_per_minute: float
    rate_4xx: float
    rate_5xx: float
    p99_ms: float
    cpu_percent_per_worker: float
    slo_p99_ms: float
    breaches: tuple[str, ...] = ()
    underloaded: bool = False


@dataclass(frozen=True)
class CostSummary(Result):
    kind: ClassVar[str] = "cost_summary"
    settings: ClassVar[tuple[str, ...]] = ("monthly_budget",)
    month: str
    month_cost: float
    monthly_budget: float
    pct_of_budget: float
    currency: str
    thresholds: tuple[int, ...]
