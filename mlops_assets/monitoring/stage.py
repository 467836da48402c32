"""Generic monitoring stage: inference log, ground-truth performance and drift, per day.

- `inference_log`: the online endpoint's data collection for one day (files
  the scoring server wrote, by event day), flattened to one row per scored
  input row with request id, deployment, model version, latency and output.
- `model_performance`: the day's predictions joined with ground-truth labels
  dropped later in `landing/<scenario>/labels/*.jsonl` ({"request_id", "labels"}),
  compared with the served model's holdout metrics.
- `data_drift`: each feature and the prediction, the day vs the reference
  profile computed when the served model was trained (Evidently's default
  tests and thresholds, vectorized), with Evidently's HTML report on a sample.
Sensors read these results; they never recompute statistics.
"""

import json
import tempfile
from datetime import timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from mlops_assets import naming
from mlops_core.spec import ScenarioSpec
from resources.endpoint import EndpointError, OnlineEndpoints
from resources.lake import DataLake
from resources.registry import ModelRegistry

MONITORING_DAYS = dg.DailyPartitionsDefinition(start_date="2013-01-01")
FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(days=2), warn_window=timedelta(days=1)
)
PREDICTION = "prediction"


def inference_log_path(scenario: str, day: str) -> str:
    return f"monitoring/{scenario}/inference_log/{day}.parquet"


def drift_report_path(scenario: str, day: str) -> str:
    return f"monitoring/{scenario}/drift/{day}.html"


def flatten_records(records: list[dict]) -> pd.DataFrame:
    """One row per scored input row; mirrored copies and failed requests are left out."""
    frames = []
    for r in records:
        if r.get("mirror") or r.get("status") != 200:
            continue
        inputs = r["inputs"]
        frame = pd.DataFrame(inputs["data"], columns=inputs["columns"])
        frame.insert(0, "row", np.arange(len(frame)))
        frame.insert(0, "request_id", r["request_id"])
        for col in ("timestamp", "deployment", "model_name", "model_version", "latency_ms"):
            frame[col] = r[col]
        frame[PREDICTION] = r["outputs"]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_labels(lake: DataLake, scenario: str) -> dict[str, list]:
    """Ground truth by request id from every file in the labels drop folder."""
    labels: dict[str, list] = {}
    for path in lake.list(f"landing/{scenario}/labels"):
        for n, line in enumerate(lake.read_bytes(path).decode().splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                labels[str(item["request_id"])] = list(item["labels"])
            except (ValueError, KeyError, TypeError) as err:
                raise dg.Failure(f"{path} line {n} is not {{request_id, labels}}: {err}") from err
    return labels


def build_inference_log(spec: ScenarioSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=naming.key(spec.name, "inference_log"),
        deps=[naming.key(spec.name, "production_deployment")],
        group_name=naming.MONITORING,
        partitions_def=MONITORING_DAYS,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"pandas", "parquet"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
        freshness_policy=FRESHNESS,
    )
    def inference_log(
        context: dg.AssetExecutionContext, lake: DataLake, endpoints: OnlineEndpoints
    ) -> dg.MaterializeResult:
        """Requests and responses of the online endpoint, one row per scored row (daily)."""
        from serving.scoring.inference_log import iter_records

        try:
            log_dir = endpoints.get(spec.online_endpoint).extra["inference_log_dir"]
        except EndpointError as err:
            raise dg.Failure(f"no online endpoint to collect from: {err}") from err
        rows = requests = 0
        latencies: list[float] = []
        for day in context.partition_keys:
            frame = flatten_records(list(iter_records(log_dir, day=day)))
            lake.write_parquet(inference_log_path(spec.name, day), frame)
            rows += len(frame)
            if len(frame):
                per_request = frame.drop_duplicates("request_id")
                requests += len(per_request)
                latencies += per_request["latency_ms"].tolist()
        lat = np.array(latencies) if latencies else np.array([np.nan])
        return dg.MaterializeResult(
            metadata={
                "requests": requests,
                "row_count": rows,
                "p50_latency_ms": float(np.nanpercentile(lat, 50)) if latencies else 0.0,
                "p99_latency_ms": float(np.nanpercentile(lat, 99)) if latencies else 0.0,
                "path": dg.MetadataValue.path(
                    lake.uri(inference_log_path(spec.name, context.partition_keys[0]))
                ),
            }
        )

    return inference_log


def build_model_performance(spec: ScenarioSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=naming.key(spec.name, "model_performance"),
        deps=[naming.key(spec.name, "inference_log")],
        group_name=naming.MONITORING,
        partitions_def=MONITORING_DAYS,
        kinds={"pandas"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
    )
    def model_performance(
        context: dg.AssetExecutionContext, lake: DataLake, registry: ModelRegistry
    ) -> dg.MaterializeResult:
        """The task's metrics on the day's predictions that have ground truth (daily)."""
        day = context.partition_key
        frame = lake.read_parquet(inference_log_path(spec.name, day))
        labels = read_labels(lake, spec.name)
        truth = [
            labels[rid][row] if rid in labels and row < len(labels[rid]) else None
            for rid, row in zip(frame.get("request_id", []), frame.get("row", []), strict=True)
        ]
        labeled = frame.assign(label=truth).dropna(subset=["label"]) if len(frame) else frame
        meta: dict = {"rows": len(frame), "labeled_rows": len(labeled)}
        if len(labeled):
            metrics = spec.performance(labeled[PREDICTION].tolist(), labeled["label"].tolist())
            meta.update(metrics)
            version = str(labeled["model_version"].mode().iloc[0])
            baseline = _holdout_metrics(registry, spec, version)
            for name, value in metrics.items():
                if f"{name}_holdout" in baseline:
                    meta[f"{name}_drop"] = baseline[f"{name}_holdout"] - value
            meta["model_version"] = version
        context.log.info(f"{day}: {len(labeled)} of {len(frame)} rows have ground truth")
        return dg.MaterializeResult(metadata=meta)

    return model_performance


def _holdout_metrics(registry: ModelRegistry, spec: ScenarioSpec, prod_version: str) -> dict:
    """Holdout metrics of the dev run behind a prod version (the served model)."""
    try:
        mv = registry.client("prod").get_model_version(spec.model_name, prod_version)
        run_id = mv.tags.get("mlops.source_run_id", "")
        return dict(registry.client("dev").get_run(run_id).data.metrics) if run_id else {}
    except Exception:  # an unknown version leaves the drop unreported, not the asset failed
        return {}


def reference_profile(registry: ModelRegistry, spec: ScenarioSpec, prod_version: str):
    """The drift reference stored with the dev training run of a prod version."""
    from mlops_core.monitoring.drift import ReferenceProfile

    mv = registry.client("prod").get_model_version(spec.model_name, prod_version)
    run_id = (mv.tags or {}).get("mlops.source_run_id")
    if not run_id:
        raise dg.Failure(f"prod v{prod_version} has no mlops.source_run_id: no drift reference")
    path = registry.client("dev").download_artifacts(run_id, "drift_reference.json")
    with open(path) as fh:
        return ReferenceProfile.from_json(fh.read())


def drift_markdown(report) -> str:
    lines = ["| column | test | score | threshold | drifted |", "|---|---|---|---|---|"]
    lines += [
        f"| {c.column} | {c.stattest} | {c.score:.4g} | {c.threshold} | "
        f"{'**yes**' if c.drifted else 'no'} |"
        for c in report.columns
    ]
    return "\n".join(lines)


class DriftConfig(dg.Config):
    html_report: bool = True
    html_max_rows: int = 5000


def build_data_drift(spec: ScenarioSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=naming.key(spec.name, "data_drift"),
        deps=[naming.key(spec.name, "inference_log")],
        group_name=naming.MONITORING,
        partitions_def=MONITORING_DAYS,
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
        from mlops_core.monitoring.drift import detect_drift

        day = context.partition_key
        frame = lake.read_parquet(inference_log_path(spec.name, day))
        if frame.empty:
            raise dg.Failure(f"no scored requests on {day}: nothing to test for drift")
        version = str(frame["model_version"].mode().iloc[0])
        current = frame[frame["model_version"].astype(str) == version]
        report = detect_drift(reference_profile(registry, spec, version), current)
        features = [c for c in report.columns if c.column != PREDICTION]
        feature_drift = [c.column for c in features if c.drifted]
        share = len(feature_drift) / max(len(features), 1)
        prediction = report.column(PREDICTION)
        meta = {
            "model_version": version,
            "rows": len(current),
            # Evidently's dataset rule over the features; the prediction is reported apart.
            "dataset_drift": share >= report.drift_share,
            "share_of_drifted_features": share,
            "drift_share_threshold": report.drift_share,
            "drifted_features": dg.MetadataValue.json(feature_drift),
            "prediction_drift": bool(prediction.drifted),
            "prediction_drift_score": float(prediction.score),
            "columns": dg.MetadataValue.md(drift_markdown(report)),
        }
        if config.html_report:
            from mlops_core.monitoring.drift_report import evidently_html

            reference = lake.read_parquet(spec.train_path)
            with tempfile.TemporaryDirectory() as tmp:
                html = Path(tmp) / "report.html"
                evidently_html(
                    reference, current, list(spec.drift_numerical), list(spec.drift_categorical),
                    str(html), max_rows=config.html_max_rows,
                )  # fmt: skip
                lake.write_bytes(drift_report_path(spec.name, day), html.read_bytes())
            meta["evidently_report"] = dg.MetadataValue.path(
                lake.uri(drift_report_path(spec.name, day))
            )
        context.log.info(
            f"{day}: drifted features {feature_drift}, prediction {prediction.drifted}"
        )
        return dg.MaterializeResult(metadata=meta)

    return data_drift
