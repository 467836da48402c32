"""Evidently's DataDriftPreset report of exactly the comparison a drift verdict made.

Purpose: a report people open next to the data_drift asset, which never contradicts the verdict
without saying so. It is built from the verdict's own inputs:
- reference: the stored `ReferenceProfile` the verdict used, rebuilt as rows (each column's
  values repeated by their counts; shorter columns padded with NaN, which Evidently drops per
  column exactly as `detect_drift` does). Exact wherever the profile is exact;
- current: the same rows the verdict tested, all of them;
- tests: each column's test and threshold as the verdict chose them (`per_column_method`), so
  Evidently's own choice cannot pick another test (except chi-square and z on a numerical
  column, which Evidently refuses by name; its default then makes the verdict's choice);
- dataset rule: the share of drifted features over the features only; the prediction column is
  a separate `ValueDrift`, as the asset reports it.
Evidently's verdict is then read back from its own snapshot and compared with ours: the
differences, if any, are listed, and `basis` (which the HTML carries at its top) states the
reference, the rows, the tests and whether the two agree.

Where they can differ: a numerical column the profile keeps as a sample (more than
`sample_size` distinct values) is rebuilt from that sample, as the verdict tests it, but the
verdict norms its Wasserstein distance by the full reference's std and Evidently by the
sample's; `basis` names those columns.

Cost: the rebuilt reference has as many rows as the profile's largest column (the training
rows; `sample_size` for a sampled number). Measured for the classical scenario (43,770
reference rows, 7 columns, a day of ~900 rows): about 2 s besides Evidently's import, and an
HTML page of ~4 MB, mostly Evidently's own scripts.

Constraints: no dagster import; pandas and evidently are imported inside the functions.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

import numpy as np

from mlops_core.monitoring.drift import MIN_WASSERSTEIN_NORM, DriftReport, ReferenceProfile

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd


@dataclass(frozen=True)
class EvidentlyDriftReport:
    html: str
    snapshot_json: str  # Evidently's own results (`Snapshot.json()`), machine-readable
    basis: str  # markdown: what the report compares, and whether it agrees with the verdict
    dataset_drift: bool  # Evidently's dataset verdict over the features
    drifted_columns: tuple[str, ...]  # Evidently's drifted columns, features and prediction
    differences: tuple[str, ...]  # where Evidently's verdict differs from ours; () if none

    @property
    def agrees(self) -> bool:
        return not self.differences


def reference_frame(profile: ReferenceProfile, columns: list[str]) -> pd.DataFrame:
    """The profile's reference as rows: values repeated by counts, NaN after a shorter column."""
    import pandas as pd

    data = {}
    for name in columns:
        col = profile.columns[name]
        dtype = "float64" if col.kind == "numerical" else object
        data[name] = pd.Series(np.repeat(col.values, col.counts), dtype=dtype)
    return pd.DataFrame(data)  # aligned on the index: shorter columns end in NaN


def evidently_verdict(snapshot: dict) -> tuple[dict[str, bool], float]:
    """Per-column drifted flags (from the failed drift tests) and the drifted share."""
    failed = {t["metric_config"]["metric_id"] for t in snapshot["tests"] if t["status"] == "FAIL"}
    drifted, share = {}, float("nan")
    for metric in snapshot["metrics"]:
        kind = metric["config"]["type"]
        if kind.endswith("ValueDrift"):
            drifted[metric["config"]["column"]] = metric["id"] in failed
        elif kind.endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    return drifted, share


def build_evidently_report(
    profile: ReferenceProfile,
    current: pd.DataFrame,
    verdict: DriftReport,
    prediction: str | None,
    *,
    reference_source: str,
    current_source: str,
) -> EvidentlyDriftReport:
    """Evidently's report on the verdict's reference, rows and tests, checked against it."""
    columns = [c.column for c in verdict.columns]
    features = [c for c in columns if c != prediction]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # evidently's deprecation and pandas/numpy warnings
        from evidently import DataDefinition, Dataset, Report
        from evidently.metrics import ValueDrift
        from evidently.presets import DataDriftPreset

        definition = DataDefinition(
            numerical_columns=[c for c in columns if profile.columns[c].kind == "numerical"],
            categorical_columns=[c for c in columns if profile.columns[c].kind == "categorical"],
        )
        method = {
            c.column: _method(profile.columns[c.column].kind, c.stattest) for c in verdict.columns
        }
        threshold = {c.column: c.threshold for c in verdict.columns}
        metrics: list = [
            DataDriftPreset(
                columns=features,
                drift_share=verdict.drift_share,
                per_column_method={c: method[c] for c in features if method[c]},
                per_column_threshold={c: threshold[c] for c in features},
            )
        ]
        if prediction is not None:
            metrics.append(
                ValueDrift(
                    column=prediction, method=method[prediction], threshold=threshold[prediction]
                )
            )
        datasets = [
            Dataset.from_pandas(frame, data_definition=definition)
            for frame in (current[columns].copy(), reference_frame(profile, columns))
        ]
        snapshot = Report(metrics, include_tests=True).run(*datasets)
        results = json.loads(snapshot.json())
        page = snapshot.get_html_str(as_iframe=False)
    drifted, share = evidently_verdict(results)
    differences = _differences(verdict, features, drifted, share)
    basis = report_basis(
        profile, verdict, prediction, len(current), reference_source, current_source, differences
    )
    return EvidentlyDriftReport(
        html=_with_banner(page, basis),
        snapshot_json=json.dumps(results),
        basis=basis,
        dataset_drift=share >= verdict.drift_share,
        drifted_columns=tuple(c for c in columns if drifted.get(c)),
        differences=differences,
    )


def _method(kind: str, stattest: str) -> str | None:
    """The verdict's test by name, or None where Evidently refuses the name for the kind.

    Evidently's default picks chi-square or z for a numerical column of <= 5 values and <= 1000
    reference rows, but refuses them by name for a numerical column; left to its default, it
    makes the same choice as the verdict (same non-NaN reference rows, same values).
    """
    return None if kind == "numerical" and stattest in ("chisquare", "z") else stattest


def _differences(
    verdict: DriftReport, features: list[str], drifted: dict[str, bool], share: float
) -> tuple[str, ...]:
    def word(flag: bool | None) -> str:
        return "missing" if flag is None else "drifted" if flag else "not drifted"

    out = [
        f"`{c.column}`: asset {word(c.drifted)}, report {word(drifted.get(c.column))}"
        for c in verdict.columns
        if drifted.get(c.column) != c.drifted
    ]
    ours = sum(c.drifted for c in verdict.columns if c.column in features) / max(len(features), 1)
    if (ours >= verdict.drift_share) != (share >= verdict.drift_share):
        out.append(f"dataset drift: asset share {ours:.3g}, report share {share:.3g}")
    return tuple(out)


def report_basis(
    profile: ReferenceProfile,
    verdict: DriftReport,
    prediction: str | None,
    n_current: int,
    reference_source: str,
    current_source: str,
    differences: tuple[str, ...] = (),
) -> str:
    """Markdown: the report's reference, rows, tests and rule, and where it differs, if anywhere."""
    rows = max(int(c.counts.sum()) for c in profile.columns.values())
    sampled = [c for c in profile.columns.values() if not c.exact]
    lines = [
        f"Reference: {reference_source}, rebuilt from its stored value counts "
        f"({rows:,} rows); the same reference the verdict used.",
        f"Current: {current_source}, all {n_current:,} rows the verdict tested "
        "(NaN dropped per column, as in the verdict).",
        "Tests: the verdict's, per column: "
        + "; ".join(
            f"`{c.column}` {c.stattest_display_name} ({c.threshold:g})" for c in verdict.columns
        )
        + ".",
    ]
    features = [c.column for c in verdict.columns if c.column != prediction]
    rule = (
        f"Dataset drift: share of drifted features among {len(features)} >= {verdict.drift_share:g}"
    )
    lines.append(
        rule + (f"; the prediction column `{prediction}` is tested apart." if prediction else ".")
    )
    for c in sampled:
        error = c.sample_error / max(c.std or 0.0, MIN_WASSERSTEIN_NORM)
        lines.append(
            f"`{c.name}` is rebuilt from the profile's {int(c.counts.sum()):,}-value sample of "
            f"its {c.n_reference:,} reference values, the values the verdict tests (its score "
            f"is within {error:.2g} of the full reference's); the report norms the distance by "
            "the sample's std, the verdict by the full reference's."
        )
    if differences:
        lines.append(
            "The report's verdict differs from the asset's: " + "; ".join(differences) + "."
        )
    else:
        lines.append("The report's verdicts equal the asset's: dataset drift and every column.")
    return "\n".join(f"- {line}" for line in lines)


def _with_banner(page: str, basis: str) -> str:
    """The basis as a box at the top of Evidently's page."""
    items = "".join(f"<li>{escape(line[2:].replace('`', ''))}</li>" for line in basis.splitlines())
    banner = (
        '<div style="font-family:sans-serif;margin:12px 24px;padding:8px 16px;'
        'border:1px solid #999;background:#f7f7f7"><b>Report basis</b>'
        f"<ul>{items}</ul></div>"
    )
    head, sep, rest = page.partition("<body>")
    if not sep:
        return banner + page
    return head + sep + banner + rest
