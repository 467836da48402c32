"""The tile table of training sets and production batches: one parquet row per tile.

Columns: `tile_id` (str), `image` (PNG bytes, 8-bit grey, exactly what a client sends),
`mask` (PNG bytes, 0/255 foreground), `objects` (int64, nuclei in the tile by instance id).
Images go through PNG both ways, so training reads the same 8-bit pixels the scoring
server decodes, and a split is a DataFrame that `mlops_core.datasets.write_version`
stores and hashes unchanged. Production batches have the same columns; their masks are
the simulated ground truth.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_assets.scenarios.segmentation import source

if TYPE_CHECKING:  # pandas (also behind `serving.scoring`) loads in steps, not at import
    import pandas as pd

COLUMNS = ("tile_id", "image", "mask", "objects")


def to_frame(tiles: source.Tiles) -> pd.DataFrame:
    import pandas as pd

    from serving.scoring.images import encode_png

    return pd.DataFrame(
        {
            "tile_id": list(tiles.ids),
            "image": [encode_png(image) for image in tiles.images],
            "mask": [encode_png(mask.astype(np.uint8) * 255) for mask in tiles.masks],
            "objects": tiles.objects(),
        },
        columns=list(COLUMNS),
    )


def training_splits() -> dict[str, pd.DataFrame]:
    """{"train", "holdout"} tile tables of the source image, for `write_version`."""
    return {name: to_frame(tiles) for name, tiles in source.split_tiles().items()}


def production_frame(day: str, count: int = 12, drifted: bool = False) -> pd.DataFrame:
    """One simulated day of production tiles (see `source.production_tiles`)."""
    return to_frame(source.production_tiles(day, count=count, drifted=drifted))


def write_splits(folder: str | Path) -> dict[str, str]:
    """Write `train.parquet` and `holdout.parquet` under `folder`; returns their paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in training_splits().items():
        frame.to_parquet(out / f"{name}.parquet", index=False)
        paths[name] = str(out / f"{name}.parquet")
    return paths


def read_split(lake: Any, path: str) -> pd.DataFrame:
    """DataSpec.read_split: a split of a training set version."""
    return lake.read_parquet(path)


def require_columns(frame: pd.DataFrame, where: str, columns: tuple[str, ...] = COLUMNS) -> None:
    missing = sorted(set(columns) - set(frame.columns))
    if missing:
        raise ValueError(f"{where} lacks tile columns {missing}")


def decode_images(
    values: Any, size: tuple[int, int] = (source.TILE, source.TILE)
) -> tuple[np.ndarray, pd.DataFrame]:
    """(float32 [N, H, W] pixels in [0, 1], per-image statistics) from PNG bytes, through
    the scoring server's decoder, so the statistics are the ones it logs for drift."""
    import pandas as pd

    from serving.scoring.images import STAT_COLUMNS, decode

    decoded = [decode(v, size, "L", where=f"row {i}") for i, v in enumerate(values)]
    pixels = np.stack([p for p, _ in decoded]) if decoded else np.zeros((0, *size), np.float32)
    return pixels, pd.DataFrame([s for _, s in decoded], columns=list(STAT_COLUMNS))


def decode_masks(values: Any) -> np.ndarray:
    """Mask PNGs (bytes, or base64 text as the model returns them) -> bool [N, H, W]."""
    from serving.scoring.images import open_image

    masks = [
        np.asarray(open_image(base64.b64decode(v) if isinstance(v, str) else v).convert("L")) > 127
        for v in values
    ]
    return np.stack(masks) if masks else np.zeros((0, source.TILE, source.TILE), bool)
