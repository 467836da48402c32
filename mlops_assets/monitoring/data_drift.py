"""Generic data drift: a day of production inputs and predictions vs the training reference.

The reference is the artifact the served model's training run stored (its
name comes from the scenario's drift strategy); the comparison is the
strategy's (per-column tests for tabular data, image statistics or
embeddings for vision and NLP). The result is a `DriftResult` that the
sensors read typed; they never recompute statistics.

The strategy's human-readable report (Evidently's, for tabular data) is built
from the same reference and the same rows as the verdict, and is logged as an
artifact of a monitoring run in the dev tracking store, so the asset links to
it in the MLflow UI; `report_basis` states what it compares and whether it
agrees with the verdict.
"""

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

import dagster as dg

from mlops_assets import naming
from mlops_assets.monitoring.inference_log import (
    FRESHNESS,
    PREDICTION,
    inference_log_path,
    monitoring_days,
)
from mlops_core.naming import drift_sensor_name, labeling_job_name, training_job_name
from mlops_core.results import DriftResult
from mlops_core.spec import ScenarioSpec
from resources.lake import DataLake
from resources.registry import ModelRegistry

if TYPE_CHECKING:  # mlflow and the report's libraries load in the step, not with definitions
    from mlflow.entities import Run

    from mlops_core.monitoring.drift import DriftReport
    from mlops_core.monitoring.drift_report import EvidentlyDriftReport

REPORT_HTML = "drift_report.html"
REPORT_SNAPSHOT = "evidently_snapshot.json"


def served_run(registry: ModelRegistry, spec: ScenarioSpec, prod_version: str) -> "Run":
    """The dev training run behind a prod version, with its tags (dataset root)."""
    mv = registry.client("prod").get_model_version(spec.model_name, prod_version)
    run_id = (mv.tags or {}).get("mlops.source_run_id")
    if not run_id:
        raise dg.Failure(f"prod v{prod_version} has no mlops.source_run_id: no drift reference")
    return registry.client("dev").get_run(run_id)


def drift_markdown(report: "DriftReport", only_drifted: bool = False) -> str:
    """Per-column verdicts as a markdown table (scores to 4 significant digits)."""
    rows = [
        f"| `{c.column}` | {c.stattest_display_name} | {c.score:.4g} | {c.threshold:g} | "
        + ("**yes**" if c.drifted else "no")
        + " |"
        for c in report.columns
        if c.drifted or not only_drifted
    ]
    if not rows:
        return "No column drifted."
    head = "| column | test | score | threshold | drifted |\n|---|---|---|---|---|"
    return "\n".join([head, *rows])


def watch_note(spec: ScenarioSpec, result: DriftResult) -> str:
    """What watches this asset and what it does next, in one paragraph."""
    sensor = drift_sensor_name(spec.name, spec.loopback)
    if spec.loopback == "relabel":
        job = labeling_job_name(spec.name)
        action = "sends uncertain production items to labelers (relabel; no automatic retrain)"
    else:
        job = training_job_name(spec.name)
        action = "retrains: train, gates, register, stage; promotion still waits for approval"
    why = result.trigger()
    now = f"This day triggers it: {why}." if why else "This day does not trigger it."
    return (
        f"Watched by `{sensor}`. When the share of drifted features reaches "
        f"{result.drift_share_threshold:.0%}, or the prediction drifts together with a drifted "
        f"feature, it requests `{job}`, which {action}. At most one run per "
        f"{spec.monitoring.cooldown_seconds / 3600:g} h (later triggers wait, then one run "
        f"serves them); held while training automation is paused. {now}"
    )


def log_report(
    registry: ModelRegistry,
    spec: ScenarioSpec,
    result: DriftResult,
    rendered: "EvidentlyDriftReport",
    tags: dict[str, str],
) -> dict:
    """The report as artifacts of a monitoring run in the dev store; metadata linking it."""
    client = registry.client("dev")
    experiment_id = registry.ensure_experiment(f"{spec.model_name}-monitoring", "dev")
    run = client.create_run(
        experiment_id,
        run_name=f"{spec.name}-data-drift-{result.day}",
        tags={**tags, "mlflow.note.content": rendered.basis},
    )
    run_id = run.info.run_id
    client.log_text(run_id, rendered.html, REPORT_HTML)
    client.log_text(run_id, rendered.snapshot_json, REPORT_SNAPSHOT)
    client.log_metric(run_id, "share_of_drifted_features", result.share_of_drifted_features)
    client.log_metric(run_id, "prediction_drift_score", result.prediction_drift_score)
    client.log_param(run_id, "drift_share_threshold", result.drift_share_threshold)
    client.set_terminated(run_id)
    meta: dict = {
        "report_basis": dg.MetadataValue.md(rendered.basis),
        "report_agrees": rendered.agrees,
        "report_run_id": dg.MetadataValue.text(run_id),
    }
    url = registry.run_url(experiment_id, run_id)
    if url:
        meta["evidently_report"] = dg.MetadataValue.url(f"{url}/artifactPath/{REPORT_HTML}")
        return meta
    artifact = f"{run.info.artifact_uri}/{REPORT_HTML}"
    if artifact.startswith("file:"):
        artifact = unquote(urlparse(artifact).path)
    meta["evidently_report"] = dg.MetadataValue.path(artifact)
    meta["evidently_report_note"] = dg.MetadataValue.text(
        "No MLflow UI URL is configured (the registry's ui_url, MLOPS_MLFLOW_UI_URL locally), "
        f"so this is the report's path in the dev tracking store, not a link: open it as a "
        f"file, or start the MLflow UI on that store (`make mlflow-ui`) and open run {run_id}."
    )
    return meta


class DriftConfig(dg.Config):
    html_report: bool = True


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
            reference = fh.read()
        report = strategy.detect(reference, current, PREDICTION)
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
        meta = {
            **result.to_metadata(),
            "watched_by": dg.MetadataValue.md(watch_note(spec, result)),
            "drifted_columns": dg.MetadataValue.md(drift_markdown(report, only_drifted=True)),
            "columns": dg.MetadataValue.md(drift_markdown(report)),
        }
        if config.html_report:
            rendered = strategy.report(
                reference, current, report, PREDICTION,
                reference_source=f"the drift profile `{strategy.reference_artifact}` of "
                f"training run `{run.info.run_id}` (served as prod v{version})",
                current_source=f"the inference log of {day}, rows scored by prod v{version}",
            )  # fmt: skip
            if rendered is not None:
                tags = {
                    "mlops.scenario": spec.name,
                    "mlops.monitor": "data_drift",
                    "mlops.day": day,
                    "mlops.model_version": version,
                    "mlops.reference_run_id": run.info.run_id,
                    "mlops.dagster_run_id": context.run.run_id,
                }
                meta.update(log_report(registry, spec, result, rendered, tags))
                if not rendered.agrees:
                    context.log.warning(f"report differs from the verdict: {rendered.differences}")
        context.log.info(
            f"{day}: drifted features {list(drifted)}, prediction {prediction.drifted}"
        )
        return dg.MaterializeResult(metadata=meta)

    return data_drift
