"""The segmentation model's functions for a ModelSpec and a MonitoringSpec.

Nothing heavy at import: torch, mlflow and pandas load inside the functions (through
`mlops_core.segmentation_model`), so a spec can name them while the code location stays
light. A batch is a tile table (`dataset.COLUMNS`): scoring reads only `image`, the
metrics also `mask`. Everything scores through the logged pyfunc, so holdout metrics see
exactly what the scoring server returns.
"""

from __future__ import annotations

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
    "width", "height", "brightness", "contrast", "sharpness", "objects",
)  # fmt: skip
"""Drift reference columns: the image statistics `serving.scoring.images.decode` reports
(its STAT_COLUMNS, spelled out so a spec loads without serving) and the predicted count."""


def load(path: str) -> Any:
    """A model folder logged by the segmentation training run, as an MLflow pyfunc."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(path)


def request_frame(tiles: pd.DataFrame) -> pd.DataFrame:
    """What a client sends: the `image` column only."""
    return tiles[["image"]].reset_index(drop=True)


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
