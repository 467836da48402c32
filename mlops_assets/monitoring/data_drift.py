"""Generic data drift: a day of production inputs and predictions vs the training reference.

The reference is the artifact the served model's training run stored (its
name comes from the scenario's drift strategy); the comparison is the
strategy's (per-column tests for tabular data, image statistics or
embeddings for vision and NLP). The result is a `DriftResult` that the
sensors read typed; they never recompute statistics.
"""

import dagster as dg

from mlops_assets import naming
from mlops_assets.monitoring.inference_log import (
    FRESHNESS,
    PREDICTION,
    inference_log_path,
    monitoring_days,
)
from mlops_core.results import DriftResult
from mlops_core.spec import ScenarioSpec
from resources.lake import DataLake
from resources.registry import ModelRegistry


def drift_report_path(scenario: str, day: str) -> str:
    return f"monitoring/{scenario}/drift/{day}.html"


def served_run(registry: ModelRegistry, spec: ScenarioSpec, prod_version: str):
    """The dev training run behind a prod version, with its tags (dataset root)."""
    mv = registry.client("prod").get_model_version(spec.model_name, prod_version)
    run_id = (mv.tags or {}).get("mlops.source_run_id")
    if not run_id:
        raise dg.Failure(f"prod v{prod_version} has no mlops.source_run_id: no drift reference")
    return registry.client("dev").get_run(run_id)


def drift_markdown(report) -> str:
    import pandas as pd

    rows = [
        (c.column, c.stattest, f"{c.score:.4g}", c.threshold, "**yes**" if c.drifted else "no")
        for c in report.columns
    ]
    frame = pd.DataFrame(rows, columns=["column", "test", "score", "threshold", "drifted"])
    return frame.to_markdown(index=False)


class DriftConfig(dg.Config):
    html_report: bool = True
    html_max_rows: int = 5000


def build_data_drift(spec: ScenarioSpec) -> dg.AssetsDefinition:
    strategy = spec.monitoring.drift

    @dg.asset(
        key=naming.key(spec.name, "data_drift"),
        deps=[naming.key(spec.name, "inference_log")],
        group_name=naming.MONITORING,
        partitions_def=monitoring_days(spec),
        kinds={"pandas"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
        freshness_policy=FRESHNESS,
    )
    def data_drift(
        context: dg.AssetExecutionContext,
        config: DriftConfig,
        lake: DataLake,
        registry: ModelRegistry,
    ) -> dg.MaterializeResult:
        """Feature and prediction drift of the day vs the served model's training reference."""
        day = context.partition_key
        frame = lake.read_parquet(inference_log_path(spec.name, day))
        if frame.empty:
            raise dg.Failure(f"no scored requests on {day}: nothing to test for drift")
        version = str(frame["model_version"].mode().iloc[0])
        current = frame[frame["model_version"].astype(str) == version]
        run = served_run(registry, spec, version)
        path = registry.client("dev").download_artifacts(
            run.info.run_id, strategy.reference_artifact
        )
        with open(path) as fh:
            report = strategy.detect(fh.read(), current, PREDICTION)
        features = [c for c in report.columns if c.column != PREDICTION]
        drifted = tuple(c.column for c in features if c.drifted)
        prediction = report.column(PREDICTION)
        result = DriftResult(
            day=day,
            model_version=version,
            rows=len(current),
            # Evidently's dataset rule over the features; the prediction is reported apart.
            share_of_drifted_features=len(drifted) / max(len(features), 1),
            drift_share_threshold=report.drift_share,
            drifted_features=drifted,
            prediction_drift=bool(prediction.drifted),
            prediction_drift_score=float(prediction.score),
        )
        meta = {**result.to_metadata(), "columns": dg.MetadataValue.md(drift_markdown(report))}
        dataset_root = run.data.tags.get("mlops.dataset_root", "")
        if config.html_report and dataset_root:
            reference = spec.data.read_split(lake, f"{dataset_root}/train.parquet")
            html = strategy.report_html(reference, current, config.html_max_rows)
            if html is not None:
                lake.write_bytes(drift_report_path(spec.name, day), html)
                meta["evidently_report"] = dg.MetadataValue.path(
                    lake.uri(drift_report_path(spec.name, day))
                )
        context.log.info(
            f"{day}: drifted features {list(drifted)}, prediction {prediction.drifted}"
        )
        return dg.MaterializeResult(metadata=meta)

    return data_drift
