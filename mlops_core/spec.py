"""`ScenarioSpec`: what a scenario plugs into the generic lifecycle.

A spec is plain data plus entry points. The generic stages (candidate model,
evaluation, registration) read nothing scenario-specific except through it, so
vision and NLP add a spec and their own prep/train/evaluate modules, not
copies of the stages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# (model, holdout frame) -> {metric_name: value}, names like "roc_auc"
ScoreFn = Callable[[Any, pd.DataFrame], dict[str, float]]
# (model, holdout frame, column) -> {segment value: metric}
SliceFn = Callable[[Any, pd.DataFrame, str], dict[str, float]]
# (model, request frame) -> predictions exactly as the scoring server returns them
PredictFn = Callable[[Any, pd.DataFrame], list]


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    model_name: str
    kinds: tuple[str, ...]
    train_module: str
    """Module with `run(argv) -> dict` and `main()`; see resources/compute.py."""
    training_set_artifact: str
    train_path: str
    holdout_path: str
    manifest_path: str
    load_model: Callable[[str], Any]
    score: ScoreFn
    score_slices: SliceFn
    metric: str
    greater_is_better: bool
    tolerance: float
    slice_column: str
    max_slice_gap: float
    code_version: str
    predict: PredictFn
    request_frame: Callable[[pd.DataFrame], pd.DataFrame]
    """Holdout rows -> the columns a client sends to the endpoint."""
    batch_input_artifact: str
    """Daily-partitioned asset the batch endpoint scores."""
    partitions_def: Any
    batch_frame: Callable[[Any, str], pd.DataFrame]
    """(lake, day) -> rows to score, with identifying columns."""
    batch_predict: Callable[[Any, pd.DataFrame], pd.DataFrame]
    performance: Callable[[list, list], dict[str, float]]
    """(predictions, ground truth) -> metrics named like the holdout ones."""
    drift_numerical: tuple[str, ...]
    drift_categorical: tuple[str, ...]
    default_params: Mapping[str, float] = field(default_factory=dict)
    retrain_on_drift: bool = True
    """Classical retrains on drift; vision and NLP loop back to human labeling instead."""

    @property
    def staging_endpoint(self) -> str:
        return f"{self.name}-staging"

    @property
    def online_endpoint(self) -> str:
        return f"{self.name}-online"

    def better_or_close(self, challenger: float, champion: float, tolerance: float) -> bool:
        """True when the challenger is not worse than the champion by more than `tolerance`."""
        if self.greater_is_better:
            return challenger >= champion - tolerance
        return challenger <= champion + tolerance
