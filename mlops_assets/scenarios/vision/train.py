"""Training entry point of the vision scenario (a small CNN on Fashion-MNIST).

Run as `python -m mlops_assets.scenarios.vision.train --help`. Same arguments
as every scenario's entry point (URIs, never Python objects), so it runs as a
Pipes subprocess locally or as an Azure ML command job. Logs an MLflow pyfunc
with the scoring server's image contract, the holdout metrics, a confusion
matrix and the drift reference of image statistics and confidence.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlops_assets.scenarios.vision import model as vision
from mlops_assets.scenarios.vision.source import load
from mlops_core.training_io import (
    entry_point_args,
    figure_png_b64,
    read_frame,
    report_through_pipes,
    tracking_run,
)

STATS = ("width", "height", "brightness", "contrast", "sharpness")


def reference_frame(net_model: Any, frame: Any) -> Any:
    """Image statistics as the server logs them, with the model's label and confidence."""
    import pandas as pd

    from serving.scoring.images import decode

    sample = frame.sample(n=min(len(frame), 5000), random_state=0)
    stats = [decode(p, net_model.size, net_model.mode)[1] for p in sample["png"]]
    rows = vision.predict(net_model, sample)
    out = pd.DataFrame(stats, columns=list(STATS))
    out["prediction"] = [r["label"] for r in rows]
    out["confidence"] = [r["probability"] for r in rows]
    return out


def confusion_figure(net_model: Any, holdout: Any) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    predicted = [r["label"] for r in vision.predict(net_model, holdout)]
    fig, ax = plt.subplots(figsize=(6, 5))
    ConfusionMatrixDisplay.from_predictions(
        holdout["label"], predicted, ax=ax, colorbar=False, xticks_rotation=90
    )
    ax.set_title("holdout confusion matrix")
    return fig


def run(argv: list[str]) -> dict[str, Any]:
    import mlflow
    import mlflow.pyfunc
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from mlops_core import image_models
    from mlops_core.monitoring.drift import build_reference

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    image_models.quiet_pyfunc_notices()
    args = entry_point_args(argv, __doc__, "vision-train")
    params = {**vision.DEFAULT_PARAMS, **json.loads(args.params)}
    train, holdout = read_frame(args.train_uri), read_frame(args.holdout_uri)
    classes = list(load("test").classes)
    unknown = sorted(set(train["label"]) - set(classes))
    if unknown:
        raise ValueError(f"training labels {unknown} are not classes of the model {classes}")
    index = {c: i for i, c in enumerate(classes)}
    net = image_models.fit(
        vision.pixels(train), train["label"].map(index).to_numpy(), len(classes),
        epochs=int(params["epochs"]), batch_size=int(params["batch_size"]),
        learning_rate=float(params["learning_rate"]),
        progress=lambda e, loss: print(f"epoch {e}: loss {loss:.4f}", flush=True),
    )  # fmt: skip
    classifier = image_models.ImageClassifier(classes)
    classifier.net = net
    metrics = {f"{k}_holdout": v for k, v in vision.score(classifier, holdout).items()}
    metrics["accuracy_train"] = vision.score(classifier, train.head(5000))["accuracy"]
    with tempfile.TemporaryDirectory() as tmp, tracking_run(
        args.tracking_uri, args.experiment_id, args.run_name, json.loads(args.tags)
    ) as r:  # fmt: skip
        weights = Path(tmp) / "weights.pt"
        torch.save(net.state_dict(), weights)
        mlflow.log_params({**params, "train_rows": len(train), "holdout_rows": len(holdout)})
        mlflow.log_metrics(metrics)
        classifier.net = None  # the weights travel as an artifact, not in the pickle
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=classifier,
            artifacts={"weights": str(weights)},
            signature=ModelSignature(
                inputs=Schema([ColSpec("binary", "image")]),
                outputs=Schema([ColSpec("string", "label"), ColSpec("double", "probability")]),
            ),
            metadata=image_models.metadata(classifier.size, classifier.mode, "classification"),
            pip_requirements=image_models.pip_requirements(),
        )
        classifier.net = net
        reference = reference_frame(classifier, train)
        profile = build_reference(reference, [*STATS, "confidence"], ["prediction"])
        mlflow.log_text(profile.to_json(), "drift_reference.json")
        figure = confusion_figure(classifier, holdout)
        mlflow.log_figure(figure, "confusion_matrix.png")
        png = figure_png_b64(figure)
    return {
        "mlflow_run_id": r.info.run_id,
        "mlflow_experiment_id": args.experiment_id,
        "model_id": info.model_id,
        "model_uri": info.model_uri,
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "params": params,
        **metrics,
        "plots": {"confusion_matrix.png": png},
    }


def main() -> None:
    report_through_pipes(run, sys.argv[1:])


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
