"""Training entry point of the NLP scenario (review sentiment: a small BERT or TF-IDF).

Run as `python -m mlops_assets.scenarios.nlp.train --help`. Same arguments as
every scenario's entry point (URIs, never Python objects), so it runs as a
Pipes subprocess locally or as an Azure ML command job. The train and holdout
parquet files hold `text` and `label` (fresh or rotten; `text_id` is carried
but not needed). `params["family"]` picks `bert` (default) or `tfidf`. Logs an
MLflow pyfunc with the scoring server's text contract, the holdout metrics, a
confusion matrix and the drift reference of text statistics, embeddings and
confidence.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlops_assets.scenarios.nlp import model as nlp
from mlops_assets.scenarios.nlp.source import CLASSES
from mlops_core.training_io import (
    entry_point_args,
    figure_png_b64,
    read_frame,
    report_through_pipes,
    tracking_run,
)

# At most 1,000 reference texts: above that Evidently's rules (ours follow them) test a
# numerical column by normed Wasserstein distance >= 0.1, which a 250-text day of the same
# distribution exceeds by sampling noise alone (text length: 0.13 on a clean day); up to
# 1,000 it is the K-S test, calibrated for a day this small.
REFERENCE_TEXTS = 1000


def reference_frame(classifier: Any, frame: Any) -> Any:
    """What the server logs for each text (chars, tokens, oov_rate, emb_*, prediction,
    confidence), computed for a sample of `frame` (the held-out texts)."""
    import pandas as pd

    sample = nlp.texts(frame.sample(n=min(len(frame), REFERENCE_TEXTS), random_state=0))
    answers, columns = classifier.score_texts(sample)
    out = pd.DataFrame({"chars": [len(t) for t in sample], **columns})
    out["prediction"] = [r["label"] for r in answers]
    out["confidence"] = [r["probability"] for r in answers]
    return out


def confusion_figure(classifier: Any, holdout: Any) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    predicted = [r["label"] for r in nlp.predict(classifier, holdout)]
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ConfusionMatrixDisplay.from_predictions(
        holdout["label"], predicted, labels=list(classifier.classes), ax=ax, colorbar=False
    )
    ax.set_title("holdout confusion matrix")
    return fig


def check_frames(train: Any, holdout: Any) -> None:
    for name, frame in (("train", train), ("holdout", holdout)):
        missing = {"text", "label"} - set(frame.columns)
        if missing:
            raise ValueError(f"the {name} set lacks columns {sorted(missing)}")
        if frame.empty:
            raise ValueError(f"the {name} set is empty")
    unknown = sorted((set(train["label"]) | set(holdout["label"])) - set(CLASSES))
    if unknown:
        raise ValueError(f"labels {unknown} are not classes of the model {list(CLASSES)}")


def run(argv: list[str]) -> dict[str, Any]:
    import mlflow
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from mlops_core.image_models import quiet_pyfunc_notices

    quiet_pyfunc_notices()  # before the model classes are defined: MLflow's notices fire then
    from mlops_core import text_models
    from mlops_core.monitoring.text_drift import build_text_reference

    text_models.set_threads()
    args = entry_point_args(argv, __doc__, "nlp-train")
    params = nlp.family_params({**nlp.DEFAULT_PARAMS, **json.loads(args.params)})
    family = params["family"]
    train, holdout = read_frame(args.train_uri), read_frame(args.holdout_uri)
    check_frames(train, holdout)
    started = time.perf_counter()
    classifier = text_models.fit(
        family, nlp.texts(train), train["label"].tolist(), list(CLASSES), params,
        progress=lambda e, loss: print(f"epoch {e}: loss {loss:.4f}", flush=True),
    )  # fmt: skip
    train_seconds = round(time.perf_counter() - started, 1)
    metrics = {f"{k}_holdout": v for k, v in nlp.score(classifier, holdout).items()}
    metrics["accuracy_train"] = nlp.score(classifier, train.head(5000))["accuracy"]
    with tempfile.TemporaryDirectory() as tmp, tracking_run(
        args.tracking_uri, args.experiment_id, args.run_name, json.loads(args.tags)
    ) as r:  # fmt: skip
        mlflow.set_tag("mlops.model_family", family)
        mlflow.log_params({**params, "train_rows": len(train), "holdout_rows": len(holdout)})
        mlflow.log_metrics({**metrics, "train_seconds": train_seconds})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=classifier,  # pickles its configuration; the weights are artifacts
            artifacts=classifier.save_artifacts(Path(tmp) / "files"),
            signature=ModelSignature(
                inputs=Schema([ColSpec("string", "text")]),
                outputs=Schema([ColSpec("string", "label"), ColSpec("double", "probability")]),
            ),
            metadata=text_models.metadata(
                max_length=classifier.max_length,
                embedding_dims=classifier.embedding_dims,
                preload=text_models.PRELOAD[family],
            ),
            pip_requirements=text_models.pip_requirements(family),
        )
        # held-out texts: every training word is in the vocabulary, so a reference of training
        # texts would have an out-of-vocabulary rate of 0 and flag every production day
        reference = reference_frame(classifier, holdout)
        mlflow.log_text(build_text_reference(reference), "drift_reference.json")
        figure = confusion_figure(classifier, holdout)
        mlflow.log_figure(figure, "confusion_matrix.png")
        png = figure_png_b64(figure)
    return {
        "mlflow_run_id": r.info.run_id,
        "mlflow_experiment_id": args.experiment_id,
        "model_id": info.model_id,
        "model_uri": info.model_uri,
        "family": family,
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "train_seconds": train_seconds,
        "params": params,
        **metrics,
        "plots": {"confusion_matrix.png": png},
    }


def main() -> None:
    report_through_pipes(run, sys.argv[1:])


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
