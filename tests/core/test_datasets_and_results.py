"""Dataset versions and typed results, the two hand-off contracts between stages.

Protects: a dataset version is a pure function of its content (same rows, same
version; one changed value, another version), a stored version is never
rewritten; every typed result survives a round trip through Dagster's
metadata, and a reader fails naming the missing field; drift and performance
triggers fire exactly at their thresholds.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from mlops_core.datasets import content_version, read_manifest, write_version
from mlops_core.results import (
    DriftResult,
    EvaluationVerdict,
    PerformanceResult,
    ResultError,
    StagingResult,
)
from resources.lake import LocalLake


def frames(value: int = 1) -> dict[str, pd.DataFrame]:
    return {
        "train": pd.DataFrame({"a": [1, 2, value], "b": ["x", "y", "z"]}),
        "holdout": pd.DataFrame({"a": [4], "b": ["w"]}),
    }


def test_version_depends_on_content_only():
    assert content_version(frames()) == content_version(frames())
    assert content_version(frames()) != content_version(frames(value=9))
    swapped = {"train": frames()["holdout"], "holdout": frames()["train"]}
    assert content_version(swapped) != content_version(frames())
    as_float = {k: v.astype({"a": float}) for k, v in frames().items()}
    assert content_version(as_float) != content_version(frames())


def test_stored_version_is_written_once_and_never_overwritten(tmp_path):
    lake = LocalLake(root=str(tmp_path))
    first, written = write_version(lake, "sets", "demo", frames(), {"partition_range": "d1..d2"})
    assert written and first.root == f"sets/{first.version}"
    before = (tmp_path / first.path("train")).stat().st_mtime_ns
    again, written_again = write_version(lake, "sets", "demo", frames(), {"partition_range": "x"})
    assert again == first and not written_again
    assert (tmp_path / first.path("train")).stat().st_mtime_ns == before
    assert read_manifest(lake, first.root)["partition_range"] == "d1..d2"
    pd.testing.assert_frame_equal(lake.read_parquet(first.path("train")), frames()["train"])


def stored(metadata: dict) -> dict:
    """What a reader gets back from Dagster: each value wrapped in a MetadataValue."""
    return dict(dg.AssetMaterialization("x", metadata=metadata).metadata)


@pytest.mark.parametrize(
    "result",
    [
        EvaluationVerdict(
            verdict="approved", reason="first model", mlflow_run_id="r", model_id="m",
            metric="roc_auc", challenger_score=0.7, dataset_version="ds-1", partition_range="a..b",
            tolerance=0.01,
        ),
        StagingResult(
            model_name="m", version="3", outcome="failed", checks={"smoke": True, "bad": False},
            slo_p99_ms=250.0, load_requests=300, p50_ms=1.0, p99_ms=2.0, rps=100.0,
        ),
        DriftResult(
            day="2013-03-05", model_version="1", rows=10, share_of_drifted_features=0.5,
            drift_share_threshold=0.5, drifted_features=("dest", "distance"),
            prediction_drift=True, prediction_drift_score=0.01,
        ),
    ],
)  # fmt: skip
def test_results_round_trip_through_metadata(result):
    metadata = result.to_metadata()
    assert metadata["result_kind"] == result.kind
    assert type(result).from_metadata(stored(metadata)) == result


def test_reader_names_the_missing_field():
    metadata = StagingResult(
        model_name="m", version="1", outcome="passed", checks={}, slo_p99_ms=1.0,
        load_requests=1, p50_ms=1.0, p99_ms=1.0, rps=1.0,
    ).to_metadata()  # fmt: skip
    del metadata["slo_p99_ms"]
    with pytest.raises(ResultError, match="slo_p99_ms"):
        StagingResult.from_metadata(metadata)


def drift(share: float, prediction: bool = False) -> DriftResult:
    return DriftResult(
        day="d", model_version="1", rows=1, share_of_drifted_features=share,
        drift_share_threshold=0.5, drifted_features=(), prediction_drift=prediction,
        prediction_drift_score=0.01,
    )  # fmt: skip


def test_drift_trigger_thresholds():
    assert drift(0.5).trigger() and drift(0.5).dataset_drift
    assert drift(0.49).trigger() is None
    assert drift(0.2, prediction=True).trigger()  # prediction drift with a drifted feature
    assert drift(0.0, prediction=True).trigger() is None  # prediction alone: weather, calendar


def test_performance_trigger_thresholds():
    def perf(value: float | None) -> PerformanceResult:
        return PerformanceResult(
            day="d", rows=10, labeled_rows=10, metric="accuracy", max_drop=0.05,
            value=value, holdout_value=0.80,
        )  # fmt: skip

    assert perf(0.74).trigger() and perf(0.74).to_metadata()["accuracy_drop"] == pytest.approx(0.06)
    assert perf(0.76).trigger() is None
    assert perf(None).trigger() is None and "accuracy_drop" not in perf(None).to_metadata()


def test_settings_are_text_and_measurements_are_rounded():
    """A threshold is not plotted as a series (text), a measurement reads as a number."""
    result = StagingResult(
        model_name="m", version="1", outcome="passed", checks={}, slo_p99_ms=250.0,
        load_requests=300, p50_ms=1.23456789123, p99_ms=2.0, rps=1234.56789,
    )  # fmt: skip
    metadata = result.to_metadata()
    assert metadata["slo_p99_ms"] == "250.0"
    assert metadata["p50_ms"] == 1.23457 and metadata["rps"] == 1234.57
    back = StagingResult.from_metadata(stored(metadata))
    assert back.slo_p99_ms == 250.0 and back.p50_ms == 1.23457
    metadata["slo_p99_ms"] = "fast"
    with pytest.raises(ResultError, match="slo_p99_ms"):
        StagingResult.from_metadata(metadata)


def test_batch_workers_preload_what_a_model_declares_and_nothing_malformed(tmp_path):
    import yaml

    from mlops_core.batch import model_modules

    meta = {
        "flavors": {"python_function": {"loader_module": "mlflow.pyfunc.model"}},
        "metadata": {"mlops_preload": ["torch", "mlops_core.text_bert", "os; rm -rf", 42, ""]},
    }
    (tmp_path / "MLmodel").write_text(yaml.safe_dump(meta))
    assert model_modules(str(tmp_path)) == ("mlflow.pyfunc.model", "torch", "mlops_core.text_bert")
    assert model_modules(str(tmp_path / "missing")) == ()
