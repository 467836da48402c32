"""Evidently's own DataDriftPreset HTML report, for people to read next to our verdicts.

The verdicts come from `drift.detect_drift`; this renders the same comparison with Evidently
(new 0.7 API: `Report`, `Dataset`, `DataDefinition`) on seeded samples of at most `max_rows`
rows per side, since Evidently's report time and HTML size grow with the rows. Evidently is
imported inside the function so importing this module stays cheap.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

SEED = 0


def sample_rows(frame: pd.DataFrame, max_rows: int, seed: int = SEED) -> pd.DataFrame:
    """At most `max_rows` rows, drawn without replacement with a fixed seed."""
    return frame if len(frame) <= max_rows else frame.sample(n=max_rows, random_state=seed)


def evidently_html(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    path: str,
    max_rows: int = 20_000,
) -> str:
    """Save Evidently's DataDriftPreset report over the declared columns to `path`."""
    columns = [*numerical, *categorical]
    missing = [c for c in columns if c not in reference or c not in current]
    if missing:
        raise ValueError(f"columns missing from the reference or current frame: {missing}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # evidently's deprecation and pandas/numpy warnings
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
        datasets = [
            Dataset.from_pandas(sample_rows(frame[columns], max_rows), data_definition=definition)
            for frame in (current, reference)
        ]
        snapshot = Report([DataDriftPreset()]).run(*datasets)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(path)
    return path
