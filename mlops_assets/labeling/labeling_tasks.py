"""Generic labeling tasks: uncertain production items sent to human labelers.

The relabel loopback's first run: the drift sensor requests it for the days
that drifted. Items come from those days' inference logs; the scenario's
labeling spec scores their uncertainty; the most uncertain ones plus a random
share become one task in the labeling project, and labelers are notified in
this run (never in a sensor tick).
"""

import dagster as dg

from mlops_assets import naming
from mlops_assets.monitoring.inference_log import inference_log_path
from mlops_core.labeling import ITEM_ID, item_ids, select_items, tasks_dir
from mlops_core.spec import ScenarioSpec
from resources.lake import DataLake
from resources.notify import Notifier


class LabelingTaskConfig(dg.Config):
    days: list[str]
    """Monitoring days whose production items are candidates for labeling."""
    reason: str = "requested by hand"
    seed: int = 0


def build_labeling_tasks(spec: ScenarioSpec) -> dg.AssetsDefinition:
    labeling = spec.labeling
    assert labeling is not None, "the factory adds labeling assets only for specs with labeling"

    @dg.asset(
        key=naming.key(spec.name, "labeling_tasks"),
        deps=[naming.key(spec.name, "inference_log")],
        group_name=naming.LABELING,
        kinds={"pandas"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
    )
    def labeling_tasks(
        context: dg.AssetExecutionContext,
        config: LabelingTaskConfig,
        lake: DataLake,
        notifier: Notifier,
    ) -> dg.MaterializeResult:
        """Production items chosen for human labeling, one task per run, with why each was."""
        import pandas as pd

        missing = [d for d in config.days if not lake.exists(inference_log_path(spec.name, d))]
        if not config.days or missing:
            raise dg.Failure(
                f"no inference log for {missing or 'any day'}: materialize inference_log first"
            )
        logged = pd.concat(
            [lake.read_parquet(inference_log_path(spec.name, d)) for d in config.days],
            ignore_index=True,
        )
        if logged.empty:
            raise dg.Failure(f"no scored items on {config.days}: nothing to label")
        logged.insert(0, ITEM_ID, item_ids(logged))
        picked = select_items(
            logged, labeling.uncertainty(logged), labeling.items_per_task,
            labeling.random_share, config.seed,
        )  # fmt: skip
        task_id = f"{config.days[0]}-{context.run.run_id[:8]}"
        path = f"{tasks_dir(spec.name)}/{task_id}.jsonl"
        lake.write_bytes(path, picked.to_json(orient="records", lines=True).encode())
        notifier.notify(
            topic="labeling",
            severity="info",
            title=f"{spec.name}: {len(picked)} items to label ({task_id})",
            text=f"{config.reason}. Label them with `mlops label` or the labeling tool.",
            facts={"task": task_id, "items": len(picked), "days": ",".join(config.days)},
            audience="labelers",
        )
        counts = picked["why"].value_counts().to_dict()
        return dg.MaterializeResult(
            metadata={
                "task_id": task_id,
                "items": len(picked),
                "uncertain_items": int(counts.get("uncertain", 0)),
                "random_items": int(counts.get("random", 0)),
                "candidates": len(logged),
                "days": dg.MetadataValue.json(config.days),
                "reason": config.reason,
                "task_path": dg.MetadataValue.path(lake.uri(path)),
            }
        )

    return labeling_tasks
