"""Vision scenario: which clothing is in a 28x28 grey image? (Fashion-MNIST, PyTorch).

The seed's computer-vision loop: new images arrive by day; drift in image
statistics or a drop in accuracy on newly labeled images sends the most
uncertain images to human labelers (no automatic retrain), and enough new
labels request a labeled set version and the training run.
"""

from __future__ import annotations

import dagster as dg

from mlops_assets.scenarios.landing import daily_landing_defs
from mlops_assets.scenarios.vision import data_assets, model, source
from mlops_core.codecs import image_codec
from mlops_core.monitoring.strategies import ColumnDriftStrategy
from mlops_core.spec import DataSpec, LabelingSpec, ModelSpec, MonitoringSpec, ScenarioSpec

SPEC = ScenarioSpec(
    name=data_assets.SCENARIO,
    data=DataSpec(
        first_day=data_assets.FIRST_DAY,
        last_day=data_assets.LAST_DAY,
        training_set_artifact="training_set",
        batch_input_artifact="raw_images",
        training_set_root=data_assets.TRAINING_SET_ROOT,
        read_split=data_assets.read_split,
        batch_items=data_assets.batch_images,
    ),
    model=ModelSpec(
        name="vision-fashion-classifier",
        kinds=("pytorch",),
        train_module="mlops_assets.scenarios.vision.train",
        pool="gpu",  # a GPU node pool on Kubernetes (mlops_core/k8s_training.py)
        code_version="vision-cnn-v1",
        load=model.load_model,
        predict=model.predict,
        score=model.score,
        batch_predict=model.batch_predict,
        metric="accuracy",
        greater_is_better=True,
        tolerance=0.01,
        default_params=model.DEFAULT_PARAMS,
    ),
    codec=image_codec(model.request_frame),
    monitoring=MonitoringSpec(
        drift=ColumnDriftStrategy(
            numerical=("width", "height", "brightness", "contrast", "sharpness", "confidence"),
            categorical=("prediction",),
        ),
        performance=model.performance,
        performance_metric="accuracy",
        max_drop=0.1,
    ),
    labeling=LabelingSpec(
        task_format="image",
        uncertainty=model.uncertainty,
        spread_by="prediction",
        classes=source.classes(),
        items_per_task=120,
        random_share=0.2,
        min_new_labels=100,
    ),
    loopback="relabel",
)


def build_scenario_defs() -> dg.Definitions:
    """New images by day, and the training set built from base and human-labeled images."""
    return daily_landing_defs(SPEC.name, data_assets.raw_images, data_assets.training_set, "images")
