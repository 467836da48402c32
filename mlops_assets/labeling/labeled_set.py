"""Generic labeled set: completed human annotations as an immutable, versioned dataset.

Joins every completed annotation with the task item it labels (one label per
item: the majority vote), and writes the result as a content-addressed
version, so the same annotations always give the same version and a model
trained on it names exactly what it learned from. Requested by the labeling
sensor when enough new labels are in (the relabel loopback's second run).
"""

import json
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets import naming
from mlops_core.datasets import write_version
from mlops_core.labeling import (
    ITEM_ID,
    annotations_dir,
    consolidate,
    labeled_set_root,
    tasks_dir,
)
from mlops_core.spec import ScenarioSpec
from resources.lake import DataLake

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

ANNOTATION_FIELDS = (ITEM_ID, "label", "annotator")


def read_jsonl(lake: DataLake, folder: str, required: tuple[str, ...] = ()) -> "pd.DataFrame":
    """Every JSONL line under `folder`; a line missing a required field fails, naming it."""
    import pandas as pd

    rows = []
    for path in lake.list(folder):
        for n, line in enumerate(lake.read_bytes(path).decode().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as err:
                raise dg.Failure(f"{path} line {n} is not JSON: {err}") from err
            absent = [f for f in required if f not in row]
            if absent:
                raise dg.Failure(f"{path} line {n} lacks {absent}")
            rows.append(row)
    return pd.DataFrame(rows)


def build_labeled_set(spec: ScenarioSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=naming.key(spec.name, "labeled_set"),
        deps=[naming.key(spec.name, "labeling_tasks")],
        group_name=naming.LABELING,
        kinds={"pandas", "parquet"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
    )
    def labeled_set(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
        """Items with their human labels, annotators and agreement, as a dataset version."""
        annotations = read_jsonl(lake, annotations_dir(spec.name), ANNOTATION_FIELDS)
        if annotations.empty:
            raise dg.Failure(f"no completed annotations under {annotations_dir(spec.name)}")
        items = read_jsonl(lake, tasks_dir(spec.name), (ITEM_ID,))
        items = items.drop_duplicates(ITEM_ID, keep="last")
        unknown = sorted(set(annotations[ITEM_ID]) - set(items[ITEM_ID]))
        if unknown:
            raise dg.Failure(f"{len(unknown)} annotation(s) label items of no task: {unknown[:5]}")
        labels, agreement = consolidate(annotations)
        frame = items.drop(columns=["why", "uncertainty"], errors="ignore").merge(
            labels, on=ITEM_ID, how="inner"
        )
        frame = frame.sort_values(ITEM_ID).reset_index(drop=True)
        manifest = {"partition_range": "human labels", "annotations": len(annotations)}
        version, written = write_version(
            lake, labeled_set_root(spec.name), f"{spec.name}-labeled", {"train": frame}, manifest
        )
        context.log.info(f"labeled set {version.version}: {len(frame)} items ({written=})")
        return dg.MaterializeResult(
            metadata={
                **version.to_metadata(),
                "items": len(frame),
                "annotations": len(annotations),
                "annotators": annotations["annotator"].nunique(),
                "agreement": agreement,
                "newly_written": written,
                "label_counts": dg.MetadataValue.json(
                    {str(k): int(v) for k, v in frame["label"].value_counts().items()}
                ),
            }
        )

    return labeled_set
