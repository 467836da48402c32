"""Generic labeled set: completed human annotations as an immutable, versioned dataset.

Joins every completed annotation in the labeling project (local files, Label Studio
or the Azure ML export, through the `labeling` resource) with the task item it
labels, one label per item (`mlops_core.labeling.consolidate`): the majority, or a
reviewer's decision. Items whose annotators agree less than the spec's
`min_agreement` go to review: they are left out of the `train` split, listed in a
`review` split and in metadata, and queued for reviewers (`mlops label annotate
--review`) until a reviewer decides them. The result is written as a
content-addressed version, so the same annotations always give the same version and
a model trained on it names exactly what it learned from. Requested by the labeling
sensor when enough new labels are in (the relabel loopback's second run).
"""

import dagster as dg

from mlops_assets import naming
from mlops_core.datasets import write_version
from mlops_core.labeling import ITEM_ID, consolidate, labeled_set_root
from mlops_core.spec import ScenarioSpec
from resources.labeling import LabelingError, LabelingProject
from resources.lake import DataLake

REVIEW_PREVIEW = 20  # review items listed in metadata; the review split holds them all


def build_labeled_set(spec: ScenarioSpec) -> dg.AssetsDefinition:
    labeling_spec = spec.labeling
    assert labeling_spec is not None, "the factory adds labeling assets only with labeling"

    @dg.asset(
        # No edge from labeling_tasks: people close that gap and the labels sensor requests
        # this asset, and an edge would make the relabel loop a cycle in the graph (training
        # set -> ... -> inference log -> labeling tasks -> labeled set -> training set).
        key=naming.key(spec.name, "labeled_set"),
        group_name=naming.LABELING,
        kinds={"pandas", "parquet"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
    )
    def labeled_set(
        context: dg.AssetExecutionContext, lake: DataLake, labeling: LabelingProject
    ) -> dg.MaterializeResult:
        """Items with their human labels, annotators and agreement, as a dataset version."""
        import pandas as pd

        try:
            annotations = labeling.annotations(spec.name)
            items = pd.DataFrame(labeling.task_items(spec.name))
        except LabelingError as err:
            raise dg.Failure(str(err)) from err
        if annotations.empty:
            raise dg.Failure(f"no completed annotations in the {spec.name} labeling project")
        items = items.drop_duplicates(ITEM_ID, keep="last")
        unknown = sorted(set(annotations[ITEM_ID]) - set(items[ITEM_ID]))
        if unknown:
            raise dg.Failure(f"{len(unknown)} annotation(s) label items of no task: {unknown[:5]}")
        result = consolidate(annotations, labeling_spec.min_agreement)
        kept = items.drop(columns=["why", "uncertainty"], errors="ignore")
        frame = kept.merge(result.accepted.drop(columns=["votes"]), on=ITEM_ID, how="inner")
        frame = frame.sort_values(ITEM_ID).reset_index(drop=True)
        review = result.review.sort_values(ITEM_ID).reset_index(drop=True)
        splits = {"train": frame, **({"review": review} if len(review) else {})}
        manifest = {
            "partition_range": "human labels",
            "annotations": len(annotations),
            "min_agreement": result.min_agreement,
        }
        version, written = write_version(
            lake, labeled_set_root(spec.name), f"{spec.name}-labeled", splits, manifest
        )
        # Reviewers work from this queue; it names the items this version left out.
        queue = review[[ITEM_ID, "votes", "agreement"]].to_dict("records")
        labeling.set_review(spec.name, queue, result.min_agreement)
        context.log.info(
            f"labeled set {version.version}: {len(frame)} items, {len(review)} to review "
            f"({written=})"
        )
        return dg.MaterializeResult(
            metadata={
                **version.to_metadata(),
                "items": len(frame),
                "annotations": len(annotations),
                "annotators": annotations["annotator"].nunique(),
                "annotator_ids": dg.MetadataValue.json(sorted(annotations["annotator"].unique())),
                "agreement": float(result.agreement),  # NaN: no item had two votes
                "min_agreement": result.min_agreement,
                "items_in_review": len(review),
                "items_reviewed": int((frame["status"] == "reviewed").sum()),
                "review_items": dg.MetadataValue.json(
                    [str(i) for i in review[ITEM_ID].head(REVIEW_PREVIEW)]
                ),
                "newly_written": written,
                "label_counts": dg.MetadataValue.json(
                    {str(k): int(v) for k, v in frame["label"].value_counts().items()}
                ),
            }
        )

    return labeled_set
