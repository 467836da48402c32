"""NLP scenario: is a movie review snippet fresh or rotten? (Rotten Tomatoes, transformers).

The seed's NLP loop: new review snippets arrive by day; a small BERT (a WordPiece
vocabulary trained on the training text, a 2-layer model built from a config) must
beat the TF-IDF + logistic regression champion at the same gate; the scoring server
tokenizes inside its process, batched with the model. Drift in text statistics,
confidence or the model's sentence embeddings, or a drop in accuracy on newly
labeled text, sends the most uncertain texts to human labelers (no automatic
retrain); enough new labels request a labeled set version and the training run,
which trains on the human-labeled production text and is judged on a held-out
share of it.
"""

from __future__ import annotations

import dagster as dg

from mlops_assets.scenarios.landing import daily_landing_defs
from mlops_assets.scenarios.nlp import data_assets, model
from mlops_core.codecs import text_codec
from mlops_core.monitoring.text_drift import TextDriftStrategy
from mlops_core.spec import DataSpec, LabelingSpec, ModelSpec, MonitoringSpec, ScenarioSpec

SPEC = ScenarioSpec(
    name=data_assets.SCENARIO,
    data=DataSpec(
        first_day=data_assets.FIRST_DAY,
        last_day=data_assets.LAST_DAY,
        training_set_artifact="training_set",
        batch_input_artifact="raw_texts",
        training_set_root=data_assets.TRAINING_SET_ROOT,
        read_split=data_assets.read_split,
        batch_items=data_assets.batch_texts,
    ),
    model=ModelSpec(
        name="nlp-review-sentiment",
        kinds=("pytorch", "sklearn"),
        train_module="mlops_assets.scenarios.nlp.train",
        pool="gpu",  # a GPU node pool on Kubernetes (mlops_core/k8s_training.py)
        code_version="nlp-text-v1",
        load=model.load_model,
        predict=model.predict,
        score=model.score,
        batch_predict=model.batch_predict,
        metric="accuracy",
        greater_is_better=True,
        tolerance=0.01,
        default_params=model.DEFAULT_PARAMS,
        families=("bert", "tfidf"),
    ),
    codec=text_codec(model.request_frame),
    monitoring=MonitoringSpec(
        drift=TextDriftStrategy(),
        performance=model.performance,
        performance_metric="accuracy",
        max_drop=0.08,
    ),
    labeling=LabelingSpec(
        task_format="text",
        uncertainty=model.uncertainty,
        spread_by="prediction",
        classes=("fresh", "rotten"),
        items_per_task=120,
        random_share=0.2,
        min_new_labels=100,
    ),
    loopback="relabel",
)


def build_scenario_defs() -> dg.Definitions:
    """New texts by day, and the training set built from base and human-labeled texts."""
    return daily_landing_defs(
        SPEC.name, data_assets.raw_texts, data_assets.training_set, "review snippets"
    )
