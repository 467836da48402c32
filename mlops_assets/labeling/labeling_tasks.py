"""Generic labeling tasks: uncertain production items sent to human labelers.

The relabel loopback's first run: the drift sensor requests it for the days
that drifted. Items come from those days' inference logs; the scenario's
labeling spec scores their uncertainty; the most uncertain ones plus a random
share become one task in the labeling project (the `labeling` resource: lake
files, Label Studio or Azure ML), each item with the served prediction as the
suggested label, and labelers are notified with the task's link in this run
(never in a sensor tick). The classes offered are those the model predicted
among the candidates.
"""

import json

import dagster as dg

from mlops_assets import naming
from mlops_assets.monitoring.inference_log import PREDICTION, inference_log_path
from mlops_core.labeling import ITEM_ID, item_ids, select_items, tasks_dir
from mlops_core.spec import ScenarioSpec
from resources.labeling import LabelingError, LabelingProject
from resources.lake import DataLake
from resources.notify import Notifier


class LabelingTaskConfig(dg.Config):
    days: list[str]
    """Monitoring days whose production items are candidates for labeling."""
    reason: str = "requested by hand"
    seed: int = 0


def _link(url: str) -> dg.MetadataValue:
    """A tool's page as a clickable URL; the local task file as a path."""
    return dg.MetadataValue.url(url) if url.startswith("http") else dg.MetadataValue.path(url)


def build_labeling_tasks(spec: ScenarioSpec) -> dg.AssetsDefinition:
    labeling_spec = spec.labeling
    assert labeling_spec is not None, "the factory adds labeling assets only with labeling"

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
        labeling: LabelingProject,
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
        # The log's row order depends on which server process wrote a row and when; the
        # selection (ties, the random share) must depend only on the rows themselves.
        logged = logged.sort_values(ITEM_ID, kind="stable", ignore_index=True)
        spread_by = labeling_spec.spread_by
        if spread_by is not None and spread_by not in logged:
            raise dg.Failure(f"the {spec.name} inference log has no {spread_by!r} column")
        picked = select_items(
            logged,
            labeling_spec.uncertainty(logged),
            labeling_spec.items_per_task,
            labeling_spec.random_share,
            config.seed,
            spread_by=logged[spread_by].tolist() if spread_by else None,
        )
        if PREDICTION not in picked:
            raise dg.Failure(f"the {spec.name} inference log has no {PREDICTION!r} column")
        task_id = f"{config.days[0]}-{context.run.run_id[:8]}"
        items = json.loads(picked.to_json(orient="records"))  # plain JSON types
        predicted = json.loads(logged[PREDICTION].to_json(orient="values"))
        classes = list(labeling_spec.classes) or sorted(
            {v for v in predicted if isinstance(v, str | int | float)}, key=str
        )
        try:
            task = labeling.create_task(
                spec.name, task_id, items, labeling_spec.task_format, classes
            )
        except LabelingError as err:
            raise dg.Failure(str(err)) from err
        notifier.notify(
            topic="labeling",
            severity="info",
            title=f"{spec.name}: {len(picked)} items to label ({task_id})",
            text=f"{config.reason}. Label them at {task.url} or with "
            f"`mlops label annotate {spec.name} --task {task_id}`.",
            facts={
                "task": task_id,
                "items": len(picked),
                "days": ",".join(config.days),
                "url": task.url,
            },
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
                "classes": dg.MetadataValue.json(classes),
                "task_url": _link(task.url),
                "task_path": dg.MetadataValue.path(
                    lake.uri(f"{tasks_dir(spec.name)}/{task_id}.jsonl")
                ),
            }
        )

    return labeling_tasks
