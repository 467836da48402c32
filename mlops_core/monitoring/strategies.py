"""Drift strategies a scenario's `MonitoringSpec` plugs in.

`ColumnDriftStrategy` tests named tabular columns and the prediction against
the reference profile stored with the training run (Evidently's default tests,
see drift.py), and renders Evidently's report of that same comparison (same
reference, same rows, same tests; see drift_report.py). Image statistics or
text embeddings implement the same `detect`/`report` pair and reuse the same
drift asset and sensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_core.monitoring.drift import DRIFT_SHARE, DriftReport, ReferenceProfile, detect_drift

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

    from mlops_core.monitoring.drift_report import EvidentlyDriftReport


@dataclass(frozen=True)
class ColumnDriftStrategy:
    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    reference_artifact: str = "drift_reference.json"
    drift_share: float = DRIFT_SHARE

    def detect(self, reference: str, logged: pd.DataFrame, prediction_column: str) -> DriftReport:
        """Each profiled column of the day's logged rows vs the training reference."""
        profile = ReferenceProfile.from_json(reference)
        return detect_drift(profile, logged, drift_share=self.drift_share)

    def report(
        self,
        reference: str,
        logged: pd.DataFrame,
        verdict: DriftReport,
        prediction_column: str,
        *,
        reference_source: str,
        current_source: str,
    ) -> EvidentlyDriftReport:
        """Evidently's HTML report of the comparison `detect` made, checked against `verdict`.

        `reference` and `logged` are what `detect` got; the sources name them in the report.
        """
        from mlops_core.monitoring.drift_report import build_evidently_report

        profile = ReferenceProfile.from_json(reference)
        prediction = prediction_column if prediction_column in profile.columns else None
        return build_evidently_report(
            profile, logged, verdict, prediction,
            reference_source=reference_source, current_source=current_source,
        )  # fmt: skip
