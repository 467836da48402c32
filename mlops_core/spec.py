"""`ScenarioSpec`: what a scenario plugs into the generic lifecycle, composed of small parts.

A generic stage reads only the part it needs, and handles items as an opaque
`Batch` (a DataFrame of rows for tabular models, an array of images, a list of
texts), so vision and NLP fill a spec instead of copying stages:

- `DataSpec`: partitions, where the training set versions and batch inputs live.
- `ModelSpec`: train entry point, load/predict/score over a batch, the metric
  and its direction, the gates' thresholds, the compute pool.
- `ServingCodec`: how a batch becomes a request and a logged request becomes
  rows again, and the client mistakes the staging check sends.
- `MonitoringSpec`: the drift strategy and the performance metric the sensors compare.
- `LabelingSpec` (optional): how uncertain items are chosen and labels become a labeled set.
- `loopback`: `retrain` (classical: drift requests training) or `relabel`
  (vision, NLP: drift requests labeling tasks; new labels request training).

Plain data and callables only: no Dagster, so sensors, the CLI and training
entry points can read a spec without importing assets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Batch = Any
"""Items a model scores, in the scenario's own representation."""
Loopback = Literal["retrain", "relabel"]
LOOPBACKS: tuple[str, ...] = ("retrain", "relabel")


@dataclass(frozen=True)
class DataSpec:
    first_day: str
    """First daily partition (ISO date); the monitoring and batch partitions start here too."""
    last_day: str | None
    training_set_artifact: str
    batch_input_artifact: str
    """Daily-partitioned asset the batch endpoint scores."""
    training_set_root: str
    """Lake prefix under which immutable training set versions are written."""
    read_split: Callable[[Any, str], Batch]
    """(lake, path) -> a split of a training set version (train or holdout)."""
    batch_items: Callable[[Any, str], Batch]
    """(lake, day) -> the items to score that day, with their identifiers."""


@dataclass(frozen=True)
class SliceGate:
    """Responsible-AI gate: the metric's gap across the segments of one attribute."""

    attribute: str
    max_gap: float
    score_slices: Callable[[Any, Batch, str], dict[str, float]]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    """Registered model name, the same in the dev and prod registries."""
    kinds: tuple[str, ...]
    train_module: str
    """Module with `run(argv) -> dict` and `main()`; see resources/compute.py."""
    code_version: str
    load: Callable[[str], Any]
    """Model folder (an MLflow model) -> a loaded model."""
    predict: Callable[[Any, Batch], list]
    """Predictions exactly as the scoring server returns them."""
    score: Callable[[Any, Batch], dict[str, float]]
    """Holdout metrics, fractions, named like `roc_auc`."""
    batch_predict: Callable[[Any, Batch], Any]
    """Batch-endpoint output table (a DataFrame with the items' identifiers)."""
    metric: str
    greater_is_better: bool
    tolerance: float
    slices: SliceGate | None = None
    default_params: Mapping[str, float] = field(default_factory=dict)
    pool: str | None = None
    """Dagster concurrency pool for training (e.g. `gpu`); None runs anywhere."""
    families: tuple[str, ...] = ()
    """Model families the entry point trains (`params["family"]`; the first is the
    default): a gate then compares across families (NLP: a transformer vs TF-IDF)."""

    def better_or_close(self, challenger: float, champion: float, tolerance: float) -> bool:
        """True when the challenger is not worse than the champion by more than `tolerance`."""
        if self.greater_is_better:
            return challenger >= champion - tolerance
        return challenger <= champion + tolerance


@dataclass(frozen=True)
class ServingCodec:
    kind: str
    """`tabular`, `image` or `text`: what a request carries."""
    request_batch: Callable[[Batch], Batch]
    """Holdout items -> exactly what a client sends (no labels, no identifiers)."""
    payload: Callable[[Batch], dict[str, Any]]
    """A batch as an Azure ML request body ({"input_data": ...})."""
    log_rows: Callable[[dict[str, Any]], Any]
    """A logged request's `inputs` -> one DataFrame row per scored item."""
    bad_inputs: Callable[[Batch], dict[str, tuple[bytes, str]]]
    """Named client mistakes (body, content type) built from a valid batch; each must get a 4xx."""
    log_outputs: Callable[[list], dict[str, list]] = field(default=lambda out: {"prediction": out})
    """A logged request's `outputs` -> columns of the inference log (`prediction` at least):
    an image classifier's {label, probability} answers become `prediction` and `confidence`."""


class DriftStrategy(Protocol):
    """How a day of production inputs is compared with the training reference."""

    reference_artifact: str
    """MLflow artifact of the training run holding the reference (written by training)."""

    def detect(self, reference: str, logged: Any, prediction_column: str) -> Any:
        """(reference artifact text, the day's logged rows, prediction column) -> DriftReport."""
        ...

    def report(
        self,
        reference: str,
        logged: Any,
        verdict: Any,
        prediction_column: str,
        *,
        reference_source: str,
        current_source: str,
    ) -> Any | None:
        """A human-readable report of the comparison `detect` made (same reference, same rows):
        an object with `html`, `snapshot_json`, `basis`, `agrees`, `differences`; or None."""
        ...


DEFAULT_COOLDOWN_SECONDS = 6 * 3600


@dataclass(frozen=True)
class MonitoringSpec:
    drift: DriftStrategy
    performance: Callable[[list, list], dict[str, float]]
    """(predictions, ground truth) -> production metrics named like the holdout ones."""
    performance_metric: str
    """The production metric the sensors compare with the holdout value."""
    max_drop: float
    """A drop of the performance metric beyond this triggers the loopback."""
    cooldown_seconds: int = DEFAULT_COOLDOWN_SECONDS
    """At most one loopback request per this many seconds; later triggers wait for it."""


@dataclass(frozen=True)
class LabelingSpec:
    task_format: str
    """What a labeler sees: `tabular`, `image`, `text`."""
    uncertainty: Callable[[Any], Any]
    """Logged rows -> an uncertainty score per row (higher: more worth labeling)."""
    items_per_task: int = 50
    random_share: float = 0.2
    """Share of each task drawn at random, so labels also measure the confident items."""
    min_new_labels: int = 20
    """Completed labels that make a new labeled set worth training on."""
    spread_by: str | None = None
    """A logged column (e.g. `prediction`) whose values share the uncertain picks round-robin:
    a drift that pushes the model to one class would otherwise fill a task with that class."""
    classes: tuple[str, ...] = ()
    """What labelers choose from; empty: the classes the model predicted among the items."""
    min_agreement: float = 0.6
    """Items whose annotators agree less than this (majority share) go to review: two of
    three agreeing (0.67) is accepted, a 1-1 split (0.5) is not."""


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    data: DataSpec
    model: ModelSpec
    codec: ServingCodec
    monitoring: MonitoringSpec
    labeling: LabelingSpec | None = None
    loopback: Loopback = "retrain"

    def __post_init__(self) -> None:
        if self.loopback not in LOOPBACKS:
            raise ValueError(f"{self.name}: loopback {self.loopback!r} is not one of {LOOPBACKS}")
        if self.loopback == "relabel" and self.labeling is None:
            raise ValueError(f"{self.name}: loopback 'relabel' needs a LabelingSpec")

    @property
    def model_name(self) -> str:
        return self.model.name

    @property
    def staging_endpoint(self) -> str:
        return f"{self.name}-staging"

    @property
    def online_endpoint(self) -> str:
        return f"{self.name}-online"
