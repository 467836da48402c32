"""Generic model performance: the day's predictions scored against ground truth dropped later.

Ground truth lands in `landing/<scenario>/labels/*.jsonl` as
`{"request_id", "labels"}` (one label per item of the request, in order), or, for
scenarios labeled by people (vision, NLP), comes from the labeling project: the
accepted human label of a production item (its id is `<request_id>:<row>`). The
result is a `PerformanceResult`: the scenario's production metrics, and the
one its monitoring spec compares with the served model's holdout value; the
drift sensor reads it typed.
"""

import json

import dagster as dg

from mlops_assets import naming
from mlops_assets.monitoring.inference_log import PREDICTION, inference_log_path, monitoring_days
from mlops_core.results import PerformanceResult
from mlops_core.spec import ScenarioSpec
from resources.labeling import LabelingProject
from resources.lake import DataLake
from resources.registry import ModelRegistry


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


def human_labels(labeling: LabelingProject, spec: ScenarioSpec) -> dict[str, object]:
    """item id (request:row) -> accepted human label, for scenarios labeled by people: items
    annotators agree on or a reviewer decided; disputed ones are no ground truth yet."""
    from mlops_core.labeling import ITEM_ID, consolidate

    if spec.labeling is None:
        return {}
    annotations = labeling.annotations(spec.name)
    if annotations.empty:
        return {}
    accepted = consolidate(annotations, spec.labeling.min_agreement).accepted
    return dict(zip(accepted[ITEM_ID].astype(str), accepted["label"], strict=True))


def holdout_metrics(registry: ModelRegistry, spec: ScenarioSpec, prod_version: str) -> dict:
    """Holdout metrics of the dev run behind a prod version (the served model)."""
    from mlflow.exceptions import MlflowException

    try:
        mv = registry.client("prod").get_model_version(spec.model_name, prod_version)
    except MlflowException:
        return {}  # an unknown version leaves the drop unreported, not the asset failed
    run_id = (mv.tags or {}).get("mlops.source_run_id", "")
    return dict(registry.client("dev").get_run(run_id).data.metrics) if run_id else {}


def build_model_performance(spec: ScenarioSpec) -> dg.AssetsDefinition:
    watched = spec.monitoring.performance_metric

    @dg.asset(
        key=naming.key(spec.name, "model_performance"),
        deps=[naming.key(spec.name, "inference_log")],
        group_name=naming.MONITORING,
        partitions_def=monitoring_days(spec),
        kinds={"pandas"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
    )
    def model_performance(
        context: dg.AssetExecutionContext,
        lake: DataLake,
        registry: ModelRegistry,
        labeling: LabelingProject,
    ) -> dg.MaterializeResult:
        """The task's metrics on the day's predictions that have ground truth (daily): labels
        dropped by a source system, or (scenarios with labeling) accepted human labels."""
        day = context.partition_key
        frame = lake.read_parquet(inference_log_path(spec.name, day))
        labels, human = read_labels(lake, spec.name), human_labels(labeling, spec)
        truth = [
            labels[rid][row]
            if rid in labels and row < len(labels[rid])
            else human.get(f"{rid}:{row}")
            for rid, row in zip(frame.get("request_id", []), frame.get("row", []), strict=True)
        ]
        labeled = frame.assign(label=truth).dropna(subset=["label"]) if len(frame) else frame
        result = PerformanceResult(
            day=day, rows=len(frame), labeled_rows=len(labeled), metric=watched,
            max_drop=spec.monitoring.max_drop,
        )  # fmt: skip
        if len(labeled):
            metrics = spec.monitoring.performance(
                labeled[PREDICTION].tolist(), labeled["label"].tolist()
            )
            version = str(labeled["model_version"].mode().iloc[0])
            baseline = holdout_metrics(registry, spec, version)
            result = PerformanceResult(
                day=day, rows=len(frame), labeled_rows=len(labeled), metric=watched,
                max_drop=spec.monitoring.max_drop, metrics=metrics, model_version=version,
                value=metrics.get(watched), holdout_value=baseline.get(f"{watched}_holdout"),
            )  # fmt: skip
        context.log.info(f"{day}: {len(labeled)} of {len(frame)} rows have ground truth")
        return dg.MaterializeResult(metadata={**result.to_metadata(), **result.metrics})

    return model_performance
