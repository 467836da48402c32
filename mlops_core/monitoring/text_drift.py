"""Text drift: per-column tests on text statistics and the model's output, plus embedding drift.

Purpose: the NLP scenario's `DriftStrategy`. The inference log of a text model holds, per text,
`chars`, `tokens`, `oov_rate` (TEXT_STATS), the model's `confidence` and `prediction`, and a
k-dimensional sentence embedding `emb_0 .. emb_{k-1}`. `build_text_reference` summarises the
same columns for the training texts once, as the artifact `drift_reference.json`:
- the stats, confidence and prediction as a `ReferenceProfile` (`drift_profile`): tested by
  `detect_drift` with Evidently's default test for each column, exactly as tabular features;
- a seeded sample of at most `max_rows` reference embeddings, and the embedding test's
  parameters (`embedding_drift.EmbeddingDriftMethod`), so a stored reference is always tested
  the way it was meant to be.
`TextDriftStrategy.detect` returns one `DriftReport`: the per-column verdicts plus one column
named `embedding` (all emb_* together: a domain classifier's held-out ROC AUC, see
`embedding_drift`). The data_drift asset counts `embedding` as one feature among the stats.
`report` renders Evidently's report of the per-column tests (`drift_report`) and compares the
embedding verdict with Evidently's own embeddings method run on the same rows, in `basis`.

Constraints: no dagster import; like `strategies`, it imports the drift modules (numpy) at the
top, and pandas, scipy and evidently where used, so loading the code location stays light.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from mlops_core.monitoring.drift import (
    DEFAULT_SAMPLE_SIZE,
    DRIFT_SHARE,
    ColumnDrift,
    DriftReport,
    ReferenceProfile,
    build_reference,
    detect_drift,
    require_columns,
)
from mlops_core.monitoring.drift_profile import _pack, _unpack  # the profile's array encoding
from mlops_core.monitoring.embedding_drift import (
    DISPLAY_NAME,
    EVIDENTLY_BOOTSTRAP_ROWS,
    EVIDENTLY_THRESHOLD,
    STATTEST,
    EmbeddingDriftMethod,
)

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

    from mlops_core.monitoring.drift_report import EvidentlyDriftReport

TEXT_STATS = ("chars", "tokens", "oov_rate")
CONFIDENCE = "confidence"
PREDICTION = "prediction"
EMBEDDING = "embedding"  # the verdict's column for all emb_* together
REFERENCE_FORMAT = 1
DEFAULT_METHOD = EmbeddingDriftMethod()
_EMB = re.compile(r"emb_(\d+)")


def embedding_columns(k: int) -> list[str]:
    return [f"emb_{i}" for i in range(k)]


def frame_embedding_columns(frame: pd.DataFrame) -> list[str]:
    """The frame's emb_0 .. emb_{k-1}; an error if there are none or one is missing."""
    found = sorted(int(m[1]) for c in frame.columns if (m := _EMB.fullmatch(str(c))))
    expected = embedding_columns(len(found))
    if not found or found != list(range(len(found))):
        raise ValueError(
            f"embedding columns must be emb_0 .. emb_{{k-1}}, found {[f'emb_{i}' for i in found]}"
        )
    return expected


def finite_embeddings(frame: pd.DataFrame, columns: list[str], side: str) -> np.ndarray:
    """The embedding as float64 [rows, k], without rows holding NaN or +-inf."""
    require_columns(frame, columns, side)
    values = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    values = values[np.isfinite(values).all(axis=1)]
    if len(values) == 0:
        raise ValueError(f"the embedding columns are empty in the {side} frame (after NaN drop)")
    return values


@dataclass(frozen=True)
class TextReference:
    profile: ReferenceProfile  # TEXT_STATS and confidence numerical, prediction categorical
    columns: tuple[str, ...]  # emb_0 .. emb_{k-1}
    embeddings: np.ndarray  # float32 [<= method.max_rows, k], seeded sample of the reference
    n_embedding_rows: int  # reference rows with a finite embedding, before sampling
    method: EmbeddingDriftMethod

    def to_json(self) -> str:
        embedding = {
            "columns": list(self.columns),
            "n_rows": self.n_embedding_rows,
            "sample": _pack(self.embeddings),
        }
        raw = {"format": REFERENCE_FORMAT, "kind": "text"}
        raw |= {"profile": json.loads(self.profile.to_json()), "embedding": embedding}
        return json.dumps({**raw, "method": self.method.to_dict()}, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> TextReference:
        raw = json.loads(text)
        if raw.get("kind") != "text" or raw.get("format") != REFERENCE_FORMAT:
            found = (raw.get("kind"), raw.get("format"))
            raise ValueError(f"not a text drift reference of format {REFERENCE_FORMAT}: {found}")
        emb = raw["embedding"]
        columns = tuple(emb["columns"])
        return cls(
            profile=ReferenceProfile.from_json(json.dumps(raw["profile"])),
            columns=columns,
            embeddings=_unpack(emb["sample"]).reshape(-1, len(columns)),
            n_embedding_rows=int(emb["n_rows"]),
            method=EmbeddingDriftMethod.from_dict(raw["method"]),
        )


def build_text_reference(
    frame: pd.DataFrame,
    *,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    method: EmbeddingDriftMethod = DEFAULT_METHOD,
) -> str:
    """The `drift_reference.json` of a text model, from its training texts as the server logs
    them (TEXT_STATS, confidence, prediction, emb_*). `sample_size`: see `build_reference`."""
    missing = [c for c in (*TEXT_STATS, CONFIDENCE, PREDICTION) if c not in frame.columns]
    if not any(_EMB.fullmatch(str(c)) for c in frame.columns):
        missing.append("emb_0")
    require_columns(frame, missing, "reference")  # one message naming every missing column
    columns = frame_embedding_columns(frame)
    profile = build_reference(frame, [*TEXT_STATS, CONFIDENCE], [PREDICTION], sample_size)
    values = finite_embeddings(frame, columns, "reference")
    sample = method.sample(values, "reference").astype(np.float32)
    return TextReference(profile, tuple(columns), sample, len(values), method).to_json()


def embedding_verdict(reference: TextReference, logged: pd.DataFrame) -> ColumnDrift:
    """The `embedding` column's verdict: all emb_* of the logged rows vs the reference sample."""
    current = finite_embeddings(logged, list(reference.columns), "current")
    result = reference.method.test(reference.embeddings, current)
    return ColumnDrift(
        column=EMBEDDING,
        kind="embedding",
        stattest=STATTEST,
        stattest_display_name=DISPLAY_NAME,
        score=result.score,
        statistic=result.z,  # standard deviations above the no-drift mean
        threshold=result.threshold,
        drifted=result.drifted,
        n_reference=result.n_reference,
        n_current=result.n_current,
        # a sampled, cross-validated score: its no-drift std is its noise, never 0
        max_score_error=result.null_std,
    )


def evidently_embedding_drift(
    reference: np.ndarray, current: np.ndarray, columns: list[str]
) -> tuple[float, bool]:
    """Evidently's default embeddings drift (EmbeddingsDriftMetric without a drift_method),
    called directly to skip the metric's t-SNE plot (~40 s for 1,300 rows)."""
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # evidently's deprecation and pandas/numpy warnings
        from evidently.legacy.metrics.data_drift.embedding_drift_methods import model

        method = model(bootstrap=len(reference) < EVIDENTLY_BOOTSTRAP_ROWS)
        frames = [pd.DataFrame(v, columns=columns) for v in (current, reference)]  # it mutates
        score, drifted, _ = method(*frames)
    return float(score), bool(drifted)


@dataclass(frozen=True)
class TextDriftStrategy:
    reference_artifact: str = "drift_reference.json"
    drift_share: float = DRIFT_SHARE

    def detect(self, reference: str, logged: pd.DataFrame, prediction_column: str) -> DriftReport:
        """Per-column verdicts of the day's logged texts, and `embedding` before the prediction."""
        ref = TextReference.from_json(reference)
        stats = detect_drift(ref.profile, logged, drift_share=self.drift_share).columns
        at = next((i for i, c in enumerate(stats) if c.column == prediction_column), len(stats))
        columns = (*stats[:at], embedding_verdict(ref, logged), *stats[at:])
        return DriftReport(columns=columns, drift_share=self.drift_share)

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
        """Evidently's report of the per-column tests `detect` made, and Evidently's embeddings
        method on the rows the `embedding` verdict used; `basis` says where they differ."""
        from mlops_core.monitoring.drift_report import (
            _with_banner,  # the tabular report's banner, so both read the same
            build_evidently_report,
            report_basis,
        )

        ref = TextReference.from_json(reference)
        prediction = prediction_column if prediction_column in ref.profile.columns else None
        stats = DriftReport(
            tuple(c for c in verdict.columns if c.column != EMBEDDING), verdict.drift_share
        )
        rendered = build_evidently_report(
            ref.profile, logged, stats, prediction,
            reference_source=reference_source, current_source=current_source,
        )  # fmt: skip
        current = finite_embeddings(logged, list(ref.columns), "current")
        score, drifted = evidently_embedding_drift(
            ref.embeddings, ref.method.sample(current, "current"), list(ref.columns)
        )
        theirs = {*rendered.drifted_columns, *([EMBEDDING] if drifted else [])}
        features = [c.column for c in verdict.columns if c.column != prediction]
        share = len(theirs & set(features)) / max(len(features), 1)
        differences = _differences(verdict, features, rendered.differences, drifted, share)
        lines = report_basis(
            ref.profile, verdict, prediction, len(logged),
            reference_source, current_source, differences,
        ).splitlines()  # fmt: skip
        lines.insert(-1, "- " + _embedding_line(ref, verdict.column(EMBEDDING), score, drifted))
        basis = "\n".join(lines)
        page = rendered.html.replace(_with_banner("", rendered.basis), "", 1)  # its old banner
        return replace(
            rendered,
            html=_with_banner(page, basis),
            basis=basis,
            dataset_drift=share >= verdict.drift_share,
            drifted_columns=tuple(c.column for c in verdict.columns if c.column in theirs),
            differences=differences,
        )


def _word(flag: bool) -> str:
    return "drifted" if flag else "not drifted"


def _differences(
    verdict: DriftReport, features: list[str], stats: tuple[str, ...], drifted: bool, share: float
) -> tuple[str, ...]:
    """The stats report's column differences, the embedding's, and the dataset rule's over all
    features (the stats report's own dataset line left out: it did not count the embedding)."""
    out = [d for d in stats if not d.startswith("dataset drift")]
    ours = verdict.column(EMBEDDING).drifted
    if drifted != ours:
        out.append(f"`{EMBEDDING}`: asset {_word(ours)}, report {_word(drifted)}")
    ours_share = sum(c.drifted for c in verdict.columns if c.column in features)
    ours_share /= max(len(features), 1)
    if (ours_share >= verdict.drift_share) != (share >= verdict.drift_share):
        out.append(f"dataset drift: asset share {ours_share:.3g}, report share {share:.3g}")
    return tuple(out)


def _embedding_line(ref: TextReference, ours: ColumnDrift, score: float, drifted: bool) -> str:
    k, method = len(ref.columns), ref.method
    rule = (
        f"ROC AUC > {EVIDENTLY_THRESHOLD:g}"
        if len(ref.embeddings) >= EVIDENTLY_BOOTSTRAP_ROWS
        else "ROC AUC > the 95% quantile of random scores' (its bootstrap, < 1,000 rows)"
    )
    return (
        f"`{EMBEDDING}` (emb_0 .. emb_{k - 1} together) is tested by the verdict's own method, "
        f"which Evidently's page does not show: the held-out ROC AUC of a linear classifier "
        f"telling current from reference rows (components and their squares, {method.folds}-fold "
        f"cross-validation), on a seeded sample of "
        f"{ours.n_reference:,} of the {ref.n_embedding_rows:,} reference embeddings and "
        f"{ours.n_current:,} current rows: {ours.score:.3f} vs threshold {ours.threshold:.3f} "
        f"(the larger of {method.threshold:g} and the no-drift {1 - method.alpha:.0%} quantile "
        f"over {method.permutations} permutations), {_word(ours.drifted)}. Evidently's "
        f"embeddings method on the same rows (its default `model`: one classifier on one 50% "
        f"split, {rule}): {score:.3f}, {_word(drifted)}."
    )
