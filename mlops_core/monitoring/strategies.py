"""Drift strategies a scenario's `MonitoringSpec` plugs in.

`ColumnDriftStrategy` tests named tabular columns and the prediction against
the reference profile stored with the training run (Evidently's default tests,
see drift.py). Image statistics or text embeddings implement the same
`detect`/`report_html` pair and reuse the same drift asset and sensors.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_core.monitoring.drift import DRIFT_SHARE, DriftReport, ReferenceProfile, detect_drift

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd


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

    def report_html(
        self, reference_rows: pd.DataFrame, logged: pd.DataFrame, max_rows: int
    ) -> bytes | None:
        """Evidently's own HTML report over the same columns (a sample of `max_rows`)."""
        from mlops_core.monitoring.drift_report import evidently_html

        with tempfile.TemporaryDirectory() as tmp:
            html = Path(tmp) / "report.html"
            evidently_html(
                reference_rows, logged, list(self.numerical), list(self.categorical),
                str(html), max_rows=max_rows,
            )  # fmt: skip
            return html.read_bytes()
