"""Segmentation scenario: nuclei in fluorescence microscopy tiles (stardist's sample, U-Net).

The second vision task, on the same generic lifecycle as the classifier: new tiles arrive
by day; the tiny U-Net trains on tiles of the source image, passes the gates and staging
(the server answers a base64 PNG mask and an object count per tile), and is promoted by a
human approval. The inference log keeps each tile's digest and statistics, the object
count (`prediction`) and the mask's foreground share, never the mask.

Loopback `relabel`: drift in the tile statistics sends the tiles whose masks look least
like nuclei (foreground share far from the training tiles') to labelers as a brush
segmentation task, never an automatic retrain: retraining on the same source tiles would
rebuild the same training set version and learn nothing about the new acquisition. New
masks (Label Studio's brush regions) build a labeled set version that `training_set`
adds to the source tiles. Production IoU is not monitored: the log has no masks.
"""

from __future__ import annotations

import dagster as dg

from mlops_assets.scenarios.landing import daily_landing_defs
from mlops_assets.scenarios.segmentation import data_assets, dataset, model
from mlops_core.codecs import segmentation_codec
from mlops_core.monitoring.strategies import ColumnDriftStrategy
from mlops_core.spec import DataSpec, LabelingSpec, ModelSpec, MonitoringSpec, ScenarioSpec

SPEC = ScenarioSpec(
    name=data_assets.SCENARIO,
    data=DataSpec(
        first_day=data_assets.FIRST_DAY,
        last_day=data_assets.LAST_DAY,
        training_set_artifact="training_set",
        batch_input_artifact="raw_tiles",
        training_set_root=data_assets.TRAINING_SET_ROOT,
        read_split=dataset.read_split,
        batch_items=data_assets.batch_tiles,
    ),
    model=ModelSpec(
        name="segmentation-nuclei-unet",
        kinds=("pytorch",),
        train_module="mlops_assets.scenarios.segmentation.train",
        code_version="segmentation-unet-v1",
        load=model.load,
        predict=model.predict,
        score=model.score,
        batch_predict=model.batch_predict,
        metric="iou",
        greater_is_better=True,
        tolerance=0.02,
        default_params=model.DEFAULT_PARAMS,
    ),
    codec=segmentation_codec(model.client_frame),
    monitoring=MonitoringSpec(
        # every column is numerical: the object count is a count, not a class
        drift=ColumnDriftStrategy(numerical=model.DRIFT_NUMERICAL, categorical=()),
        performance=model.log_performance,
        performance_metric="iou",
        max_drop=0.1,
    ),
    labeling=LabelingSpec(
        task_format="segmentation",
        uncertainty=model.uncertainty,
        classes=("nucleus",),
        items_per_task=24,
        random_share=0.25,
        min_new_labels=20,
    ),
    loopback="relabel",
)


def build_scenario_defs() -> dg.Definitions:
    """New tiles by day, and the training set built from source and human-labeled tiles."""
    return daily_landing_defs(
        SPEC.name, data_assets.raw_tiles, data_assets.training_set, "microscopy tiles"
    )
