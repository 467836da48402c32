"""Text drift: embedding drift vs Evidently's embeddings method, and the NLP drift strategy.

Frames look like a text model's inference log (`text_frame`): chars, tokens, oov_rate,
confidence, prediction and an 8-dimensional embedding with unequal component scales (as PCA or
SVD components have). Sizes are a monitoring day's: reference 1000 rows, current 300. Evidently's
side is its default embeddings method (`model()`, what `EmbeddingsDriftMetric` runs without a
drift_method), called on the same rows; the metric itself adds only a t-SNE plot (~40 s).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from mlops_core.monitoring.drift import DriftReport, build_reference
from mlops_core.monitoring.embedding_drift import EmbeddingDriftMethod
from mlops_core.monitoring.text_drift import (
    EMBEDDING,
    TextDriftStrategy,
    TextReference,
    build_text_reference,
    embedding_columns,
    evidently_embedding_drift,
)
from tests.monitoring.evidently_compare import assert_same_as_evidently, evidently_drift

K = 8
COLUMNS = embedding_columns(K)
SCALES = np.linspace(2.0, 0.3, K)
STATS = ["chars", "tokens", "oov_rate", "confidence"]


def text_frame(
    n: int, seed: int, *, oov_shift: float = 0.0, emb_shift: float = 0.0, emb_scale: float = 1.0
) -> pd.DataFrame:
    """Logged texts; the shifts move oov_rate, and the first 3 embedding components."""
    rng = np.random.default_rng(seed)
    chars = np.minimum(rng.lognormal(5.0, 0.6, n).round(), 2000)
    tokens = np.maximum(1, (chars / 4.5 * rng.normal(1, 0.1, n)).round()).astype(np.int64)
    oov = np.where(rng.random(n) < 0.4, 0.0, rng.beta(1.2, 20, n) + oov_shift).clip(0, 1)
    frame = pd.DataFrame(
        {
            "chars": chars,
            "tokens": tokens,
            "oov_rate": oov,
            "confidence": 0.5 + 0.5 * rng.beta(8, 2, n),
            "prediction": np.where(rng.random(n) < 0.58, "fresh", "rotten"),
        }
    )
    emb = rng.normal(size=(n, K)) * SCALES
    emb[:, :3] = emb[:, :3] * emb_scale + emb_shift * SCALES[:3]
    return frame.join(pd.DataFrame(emb, columns=COLUMNS))


def evidently_model_verdict(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[float, bool]:
    """Evidently 0.7.23's default embeddings drift, straight from its own method."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently.legacy.metrics.data_drift.embedding_drift_methods import model

        method = model(bootstrap=len(reference) < 1000)  # EmbeddingsDriftMetric.calculate
        score, drifted, name = method(current[COLUMNS].copy(), reference[COLUMNS].copy())
    assert name == "model"
    return float(score), bool(drifted)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return text_frame(1000, seed=1)


@pytest.fixture(scope="module")
def days() -> dict[str, pd.DataFrame]:
    return {
        "unshifted": text_frame(300, seed=2),
        "shifted": text_frame(300, seed=3, oov_shift=0.05, emb_shift=1.0),
        "small_shift": text_frame(300, seed=4, emb_shift=0.3),
        "spread": text_frame(300, seed=5, emb_scale=1.5),
    }


@pytest.fixture(scope="module")
def stored(reference) -> str:
    return build_text_reference(reference)


def embeddings(frame: pd.DataFrame) -> np.ndarray:
    return frame[COLUMNS].to_numpy()


# -- the embedding test -----------------------------------------------------------------------


def test_unshifted_embeddings_do_not_drift(reference, days):
    result = EmbeddingDriftMethod().test(embeddings(reference), embeddings(days["unshifted"]))
    assert not result.drifted
    assert abs(result.score - 0.5) < 0.05
    assert 0.55 <= result.threshold < 0.6  # the 0.55 floor or the 99% no-drift quantile
    assert (result.n_reference, result.n_current) == (1000, 300)


@pytest.mark.parametrize("case", ["shifted", "small_shift", "spread"])
def test_shifted_embeddings_drift(reference, days, case):
    result = EmbeddingDriftMethod().test(embeddings(reference), embeddings(days[case]))
    assert result.drifted
    assert result.p_value < 0.01


@pytest.mark.parametrize("case", ["unshifted", "shifted"])
def test_verdict_agrees_with_evidentlys_embeddings_method(reference, days, case):
    ours = EmbeddingDriftMethod().test(embeddings(reference), embeddings(days[case]))
    score, drifted = evidently_model_verdict(reference, days[case])
    assert ours.drifted == drifted == (case == "shifted")
    # the same scale: ROC AUC of a reference-vs-current classifier, 0.5 when indistinguishable
    if case == "shifted":
        assert score > 0.7 and ours.score > 0.7
    else:
        assert score < 0.55 and ours.score < 0.55
    # the report's wrapper runs the same method on the same rows
    assert evidently_embedding_drift(embeddings(reference), embeddings(days[case]), COLUMNS) == (
        score,
        drifted,
    )


def test_where_the_methods_differ_by_design(reference, days):
    """A small mean shift: Evidently's one noisy split misses it; a change of spread: its linear
    model cannot see it. Ours sees both (cross-validated, with squared components)."""
    method = EmbeddingDriftMethod()
    for case in ("small_shift", "spread"):
        assert method.test(embeddings(reference), embeddings(days[case])).drifted
        assert not evidently_model_verdict(reference, days[case])[1], case


def test_verdict_is_stable(reference, days):
    method = EmbeddingDriftMethod()
    first = method.test(embeddings(reference), embeddings(days["small_shift"]))
    assert method.test(embeddings(reference), embeddings(days["small_shift"])) == first


def test_no_false_alarms_on_unshifted_days(reference):
    """10 unshifted days: 0 false alarms. The threshold is at least the 99% no-drift quantile,
    so <= 1% is expected a day (1 in 200 days measured, docs/nlp-drift.md): seeded, so
    this holds for these 10; Evidently's single split gives ~3% on such days."""
    method = EmbeddingDriftMethod()
    results = [
        method.test(embeddings(reference), embeddings(text_frame(300, seed=100 + s)))
        for s in range(10)
    ]
    assert [r.drifted for r in results] == [False] * 10
    assert max(r.score for r in results) < 0.55


def test_small_days_get_a_higher_threshold(reference):
    """40 texts: the AUC's noise is large, so the permutation quantile replaces 0.55."""
    method = EmbeddingDriftMethod()
    small = [
        method.test(embeddings(reference), embeddings(text_frame(40, 200 + s))) for s in range(5)
    ]
    assert all(r.threshold > 0.6 and not r.drifted for r in small)
    shifted = method.test(embeddings(reference), embeddings(text_frame(40, 300, emb_shift=1.0)))
    assert shifted.drifted


def test_bounded_rows(reference):
    method = EmbeddingDriftMethod(max_rows=500)
    big_day = embeddings(text_frame(3000, seed=6))
    result = method.test(embeddings(reference), big_day)
    assert (result.n_reference, result.n_current) == (
        1000,
        500,
    )  # the reference is sampled at build
    assert not result.drifted


# -- the strategy ---------------------------------------------------------------------------------


def test_detect_unshifted_day(stored, days):
    report = TextDriftStrategy().detect(stored, days["unshifted"], "prediction")
    assert [c.column for c in report.columns] == [*STATS, EMBEDDING, "prediction"]
    assert report.drifted_columns == []
    embedding = report.column(EMBEDDING)
    assert (embedding.kind, embedding.stattest) == ("embedding", "domain_classifier")
    assert embedding.stattest_display_name == "domain classifier ROC AUC"
    assert (embedding.n_reference, embedding.n_current) == (1000, 300)
    assert embedding.threshold >= 0.55 and embedding.max_score_error > 0


def test_detect_shifted_day(stored, reference, days):
    report = TextDriftStrategy().detect(stored, days["shifted"], "prediction")
    assert report.drifted_columns == ["oov_rate", EMBEDDING]
    assert report.column(EMBEDDING).score > 0.8
    assert report.column("oov_rate").stattest == "ks"  # 1000 reference rows: Evidently's K-S
    # the stats columns are Evidently's DataDriftPreset verdicts, to rounding
    stats = DriftReport(tuple(c for c in report.columns if c.column != EMBEDDING))
    expected = evidently_drift(reference, days["shifted"], STATS, ["prediction"])
    assert_same_as_evidently(stats, expected)


def test_detect_is_stable(stored, days):
    strategy = TextDriftStrategy()
    assert strategy.detect(stored, days["shifted"], "prediction") == strategy.detect(
        stored, days["shifted"], "prediction"
    )


@pytest.mark.parametrize("case", ["unshifted", "shifted"])
def test_report_agrees_and_explains_the_embedding(stored, days, case):
    strategy = TextDriftStrategy()
    verdict = strategy.detect(stored, days[case], "prediction")
    rendered = strategy.report(
        stored, days[case], verdict, "prediction",
        reference_source="the training texts", current_source="a test day",
    )  # fmt: skip
    assert rendered.agrees, rendered.differences
    assert (EMBEDDING in rendered.drifted_columns) == (case == "shifted")
    assert "domain classifier ROC AUC" in rendered.basis
    assert "Evidently's embeddings method on the same rows" in rendered.basis
    assert rendered.html.count("Report basis") == 1  # the banner replaced, not repeated
    assert "emb_0 .. emb_7 together" in rendered.html
    assert json.loads(rendered.snapshot_json)["metrics"]


# -- the reference artifact -----------------------------------------------------------------------


def test_reference_round_trip():
    frame = text_frame(2500, seed=7)
    stored = build_text_reference(frame, method=EmbeddingDriftMethod(permutations=100))
    ref = TextReference.from_json(stored)
    assert list(ref.profile.columns) == [*STATS, "prediction"]
    assert ref.columns == tuple(COLUMNS)
    assert ref.embeddings.shape == (1000, K) and ref.n_embedding_rows == 2500
    assert ref.method == EmbeddingDriftMethod(permutations=100)
    assert ref.to_json() == stored
    rows = set(map(tuple, frame[COLUMNS].to_numpy(dtype=np.float32)))
    assert set(map(tuple, ref.embeddings)) <= rows  # a sample of the reference's own rows
    assert build_text_reference(frame, method=EmbeddingDriftMethod(permutations=100)) == stored


def test_reference_refuses_incomplete_frames(reference):
    with pytest.raises(
        ValueError, match=r"missing from the reference frame: \['oov_rate', 'emb_0'\]"
    ):
        build_text_reference(reference.drop(columns=["oov_rate", *COLUMNS]))
    with pytest.raises(
        ValueError, match=r"must be emb_0 \.\. emb_\{k-1\}, found \['emb_0', 'emb_2'"
    ):
        build_text_reference(reference.drop(columns=["emb_1"]))
    with pytest.raises(ValueError, match="embedding columns are empty in the reference frame"):
        build_text_reference(reference.assign(emb_3=np.nan))


def test_detect_refuses_bad_inputs(stored, reference, days):
    strategy = TextDriftStrategy()
    with pytest.raises(ValueError, match=r"missing from the current frame: \['emb_7'\]"):
        strategy.detect(stored, days["unshifted"].drop(columns=["emb_7"]), "prediction")
    tabular = build_reference(reference, STATS, ["prediction"]).to_json()
    with pytest.raises(ValueError, match="not a text drift reference"):
        strategy.detect(tabular, days["unshifted"], "prediction")
