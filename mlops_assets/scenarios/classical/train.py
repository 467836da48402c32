"""Training entry point of the classical scenario.

Run as `python -m mlops_assets.scenarios.classical.train --help`.

Takes only arguments and URIs (never Python objects) so the same module runs
as a local subprocess through Dagster Pipes, in-process in tests, or as an
Azure ML command job. It trains, logs an MLflow run (params, metrics, model
with signature and input example, plots) and reports the run back.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pandas as pd

from mlops_assets.scenarios.classical.features import (
    DRIFT_CATEGORICAL,
    DRIFT_NUMERICAL,
    FEATURES,
    LABEL,
)
from mlops_assets.scenarios.classical.model import (
    SKOPS_TRUSTED_TYPES,
    build_pipeline,
    pip_requirements,
    score,
)
from mlops_core.monitoring.drift import build_reference
from mlops_core.training_io import (
    entry_point_args,
    figure_png_b64,
    read_frame,
    report_through_pipes,
    tracking_run,
)


def parse_args(argv: list[str]) -> Any:
    return entry_point_args(argv, __doc__, "classical-train")


def _plots(model, holdout: pd.DataFrame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

    y = holdout[LABEL]
    cm, ax = plt.subplots(figsize=(4, 3.5))
    ConfusionMatrixDisplay.from_estimator(model, holdout[FEATURES], y, ax=ax, colorbar=False)
    ax.set_title("holdout confusion matrix")
    roc, ax = plt.subplots(figsize=(4, 3.5))
    RocCurveDisplay.from_estimator(model, holdout[FEATURES], y, ax=ax)
    ax.set_title("holdout ROC")
    return {"confusion_matrix.png": cm, "roc_curve.png": roc}


def run(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    params = json.loads(args.params)
    train, holdout = read_frame(args.train_uri), read_frame(args.holdout_uri)
    for name, frame in (("train", train), ("holdout", holdout)):
        missing = sorted(set([*FEATURES, LABEL]) - set(frame.columns))
        if missing:
            raise ValueError(f"{name} set at {args.train_uri} lacks columns {missing}")
    model = build_pipeline(params).fit(train[FEATURES], train[LABEL])
    metrics = {f"{k}_holdout": v for k, v in score(model, holdout).items()}
    metrics["roc_auc_train"] = score(model, train)["roc_auc"]

    import mlflow
    import mlflow.data
    import mlflow.sklearn
    from mlflow.models import infer_signature

    example = holdout[FEATURES].head(5)
    with tracking_run(
        args.tracking_uri, args.experiment_id, args.run_name, json.loads(args.tags)
    ) as r:
        mlflow.log_params({**params, "train_rows": len(train), "holdout_rows": len(holdout)})
        mlflow.log_metrics(metrics)
        if args.dataset_name:
            # The dataset version as MLflow dataset inputs: the run page names its data.
            for split, frame, uri in (("train", train, args.train_uri),
                                      ("holdout", holdout, args.holdout_uri)):  # fmt: skip
                dataset = mlflow.data.from_pandas(
                    frame, source=uri, name=f"{args.dataset_name}:{split}", targets=LABEL
                )
                mlflow.log_input(dataset, context="training" if split == "train" else "eval")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            # Inferred from all training rows so that columns with gaps (weather) are
            # optional: the scoring server then accepts nulls there, as the model does.
            signature=infer_signature(train[FEATURES], model.predict(example)),
            input_example=example,
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            pip_requirements=pip_requirements(),
        )
        # Drift reference, computed once from the training data and kept with the run.
        reference = train[FEATURES].assign(prediction=model.predict(train[FEATURES]))
        profile = build_reference(reference, DRIFT_NUMERICAL, [*DRIFT_CATEGORICAL, "prediction"])
        mlflow.log_text(profile.to_json(), "drift_reference.json")
        pngs = {}
        for fname, fig in _plots(model, holdout).items():
            mlflow.log_figure(fig, fname)
            pngs[fname] = figure_png_b64(fig)
    return {
        "mlflow_run_id": r.info.run_id,
        "mlflow_experiment_id": args.experiment_id,
        "model_id": info.model_id,
        "model_uri": info.model_uri,
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "params": {**params},
        **metrics,
        "plots": pngs,
    }


def main() -> None:
    report_through_pipes(run, sys.argv[1:])


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
