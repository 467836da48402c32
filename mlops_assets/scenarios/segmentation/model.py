"""The segmentation model's functions for a ModelSpec and a MonitoringSpec.

Nothing heavy at import: torch, mlflow and pandas load inside the functions (through
`mlops_core.segmentation_model`), so a spec can name them while the code location stays
light. A batch is a tile table (`dataset.COLUMNS`): scoring reads only `image`, the
metrics also `mask`. Everything scores through the logged pyfunc, so holdout metrics see
exactly what the scoring server returns.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlops_assets.scenarios.segmentation.dataset import decode_masks

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_PARAMS: dict[str, float] = {
    "epochs": 10,
    "base_channels": 8,
    "learning_rate": 0.01,
    "batch_size": 8,
    "threshold": 0.5,
    "min_object_pixels": 12,  # drops specks; a whole nucleus here has about 400 pixels
    "max_train_tiles": 0,
    "seed": 42,
}
"""Demo settings (about 15 s on one core); `segmentation_model.PARAMS` names them all."""
DRIFT_NUMERICAL: tuple[str, ...] = (
    "width", "height", "brightness", "contrast", "sharpness", "prediction",
)  # fmt: skip
"""Drift reference columns, named as the inference log names them: the image statistics
`serving.scoring.images.decode` reports (its STAT_COLUMNS, spelled out so a spec loads
without serving) and `prediction`, the predicted object count (`codecs.mask_outputs`)."""
TYPICAL_FOREGROUND = 0.22
"""Foreground share of the training tiles' true masks (0.216; a test checks it)."""


def load(path: str) -> Any:
    """A model folder logged by the segmentation training run, as an MLflow pyfunc."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(path, suppress_warnings=True)  # checked at staging


def request_frame(tiles: pd.DataFrame) -> pd.DataFrame:
    """What a client sends: the `image` column only."""
    return tiles[["image"]].reset_index(drop=True)


def client_frame(tiles: pd.DataFrame) -> pd.DataFrame:
    """What a client sends over JSON: the `image` column as base64 text (the codec's batch)."""
    import pandas as pd

    return pd.DataFrame({"image": [_b64(v) for v in tiles["image"]]})


def _b64(value: Any) -> str:
    return value if isinstance(value, str) else base64.b64encode(value).decode()


def predict(model: Any, tiles: pd.DataFrame) -> list[dict[str, Any]]:
    """Per tile {"mask": base64 PNG, "objects": int}, as the scoring server returns them."""
    return list(model.predict(request_frame(tiles)))


def _truth_mask(item: Any) -> Any:
    return item["mask"] if isinstance(item, Mapping) else item


def performance(predictions: list, truth: list) -> dict[str, float]:
    """IoU, Dice, pixel accuracy and foreground rate (fractions) of served masks against
    true masks (PNG bytes, base64 text, or dicts with a `mask` like the predictions)."""
    from mlops_core.segmentation_model import mask_metrics

    if len(predictions) != len(truth):
        raise ValueError(f"{len(predictions)} predictions for {len(truth)} true masks")
    predicted = decode_masks([p["mask"] for p in predictions])
    return mask_metrics(predicted, decode_masks([_truth_mask(t) for t in truth]))


def score(model: Any, tiles: pd.DataFrame) -> dict[str, float]:
    """Holdout metrics; `iou` is the one the gates compare."""
    return performance(predict(model, tiles), list(tiles["mask"]))


def batch_predict(model: Any, tiles: pd.DataFrame) -> pd.DataFrame:
    """Batch-endpoint output: tile id, object count, foreground fraction and the mask."""
    import pandas as pd

    predictions = predict(model, tiles)
    masks = decode_masks([p["mask"] for p in predictions])
    return pd.DataFrame(
        {
            "tile_id": tiles["tile_id"].to_numpy(),
            "objects": [int(p["objects"]) for p in predictions],
            "foreground_fraction": masks.mean(axis=(1, 2)),
            "mask": [p["mask"] for p in predictions],
        }
    )


def uncertainty(logged: pd.DataFrame) -> Any:
    """How far each logged mask's foreground share is from the training tiles' typical share
    (|foreground_fraction - TYPICAL_FOREGROUND|; higher: more worth labeling). The server
    answers no pixel probabilities, so the inference log has no confidence: a mask far
    bigger or smaller than nuclei usually cover is the cheapest sign of a wrong one (the
    washed-out days' masks cover nearly the whole tile)."""
    return (logged["foreground_fraction"].astype(float) - TYPICAL_FOREGROUND).abs().to_numpy()


def log_performance(predictions: list, truth: list) -> dict[str, float]:
    """MonitoringSpec.performance: what the inference log allows. It keeps the object count
    (`prediction`), never the mask, so IoU cannot be computed from it: with true counts
    (or dicts with `objects`) this gives the count error and exact-count share, and no
    `iou`, so model_performance reports no value and never triggers on IoU."""
    import numpy as np

    if len(predictions) != len(truth):
        raise ValueError(f"{len(predictions)} predictions for {len(truth)} ground truths")
    counts = [t.get("objects") if isinstance(t, Mapping) else t for t in truth]
    if not counts or not all(isinstance(c, int | float) for c in counts):
        return {}
    predicted = np.asarray([float(p["objects"] if isinstance(p, Mapping) else p)
                            for p in predictions])  # fmt: skip
    errors = np.abs(predicted - np.asarray(counts, dtype=float))
    return {"objects_mae": float(errors.mean()), "objects_exact": float((errors == 0).mean())}
