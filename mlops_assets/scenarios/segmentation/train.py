"""Training entry point of the segmentation scenario.

Run as `python -m mlops_assets.scenarios.segmentation.train --help`.

Same contract as the classical entry point: arguments and URIs only (never Python
objects), so it runs as a Dagster Pipes subprocess, in-process in tests, or as an Azure
ML command job. The splits are tile tables (`dataset.COLUMNS`) in parquet. It trains the
tiny U-Net on one core, logs an MLflow run (params, metrics, the pyfunc model, a figure
of holdout tiles, the drift reference) and reports the run back.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_assets.scenarios.segmentation.dataset import (
    decode_images,
    decode_masks,
    require_columns,
)
from mlops_assets.scenarios.segmentation.model import DEFAULT_PARAMS, DRIFT_NUMERICAL
from mlops_core.training_io import (
    entry_point_args,
    figure_png_b64,
    read_frame,
    report_through_pipes,
    tracking_run,
)

if TYPE_CHECKING:
    import pandas as pd

    from mlops_core.monitoring.drift import ReferenceProfile

FIGURE_TILES = 4


def parse_args(argv: list[str]) -> Any:
    return entry_point_args(argv, __doc__, "segmentation-train")


def drift_reference(stats: pd.DataFrame, objects: list[int]) -> ReferenceProfile:
    """The reference the drift strategy compares production with: training tiles' image
    statistics (as `decode` reports them) and the model's object count on each, named
    `prediction` as the inference log names the served count."""
    from mlops_core.monitoring.drift import build_reference

    frame = stats.assign(prediction=np.asarray(objects, dtype=float))
    return build_reference(frame, list(DRIFT_NUMERICAL), [])


def tiles_figure(pixels: np.ndarray, truth: np.ndarray, predicted: np.ndarray, ids: list[str]):
    """Image, true mask and predicted mask (rows) of the first holdout tiles (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = min(FIGURE_TILES, len(pixels))
    fig, axes = plt.subplots(3, count, figsize=(2 * count, 6.2), squeeze=False)
    for col in range(count):
        for row, (title, image) in enumerate(
            (("image", pixels[col]), ("truth", truth[col]), ("prediction", predicted[col]))
        ):
            ax = axes[row][col]
            ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(f"{title}\n{ids[col]}" if row == 0 else title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


def run(argv: list[str]) -> dict[str, Any]:
    from mlops_core.image_models import quiet_pyfunc_notices

    quiet_pyfunc_notices()
    args = parse_args(argv)
    params = {**DEFAULT_PARAMS, **json.loads(args.params)}
    train, holdout = read_frame(args.train_uri), read_frame(args.holdout_uri)
    require_columns(train, f"train set {args.train_uri}")
    require_columns(holdout, f"holdout set {args.holdout_uri}")
    train_pixels, train_stats = decode_images(train["image"])
    holdout_pixels, _ = decode_images(holdout["image"])
    train_masks, holdout_masks = decode_masks(train["mask"]), decode_masks(holdout["mask"])

    from mlops_core import segmentation_model as seg

    started = time.perf_counter()
    model = seg.train(train_pixels, train_masks, params)
    seconds = time.perf_counter() - started
    holdout_pred, holdout_counts = model.predict_masks(holdout_pixels)
    train_pred, train_counts = model.predict_masks(train_pixels)
    metrics = {f"{k}_holdout": v for k, v in seg.mask_metrics(holdout_pred, holdout_masks).items()}
    metrics["iou_train"] = seg.mask_metrics(train_pred, train_masks)["iou"]
    errors = np.abs(np.asarray(holdout_counts) - holdout["objects"].to_numpy())
    metrics["objects_mae_holdout"] = float(errors.mean())  # in nuclei per tile, not a fraction
    metrics["training_seconds"] = seconds

    import mlflow
    import mlflow.data

    with tracking_run(
        args.tracking_uri, args.experiment_id, args.run_name, json.loads(args.tags)
    ) as r:
        mlflow.log_params({**params, "train_rows": len(train), "holdout_rows": len(holdout)})
        mlflow.log_metrics(metrics)
        if args.dataset_name:
            for split, frame, uri in (("train", train, args.train_uri),
                                      ("holdout", holdout, args.holdout_uri)):  # fmt: skip
                dataset = mlflow.data.from_pandas(
                    frame, source=uri, name=f"{args.dataset_name}:{split}", targets="mask"
                )
                mlflow.log_input(dataset, context="training" if split == "train" else "eval")
        info = seg.log_model(model, input_example=holdout[["image"]].head(2))
        profile = drift_reference(train_stats, train_counts)
        mlflow.log_text(profile.to_json(), "drift_reference.json")
        fig = tiles_figure(holdout_pixels, holdout_masks, holdout_pred, list(holdout["tile_id"]))
        mlflow.log_figure(fig, "holdout_tiles.png")
        pngs = {"holdout_tiles.png": figure_png_b64(fig)}
    return {
        "mlflow_run_id": r.info.run_id,
        "mlflow_experiment_id": args.experiment_id,
        "model_id": info.model_id,
        "model_uri": info.model_uri,
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "params": params,
        **metrics,
        "plots": pngs,
    }


def main() -> None:
    report_through_pipes(run, sys.argv[1:])


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads (it loads in run)
    main()
