"""The segmentation scenario's source: stardist's sample image of nuclei, cut into tiles.

The stardist wheel ships one 512x512 fluorescence image (`stardist/data/images/img2d.tif`)
with its instance mask (`mask2d.tif`, 125 labelled nuclei, BSD-3). The files are read from
the installed distribution; stardist itself is never imported (its dependencies are absent).

- Grey levels are scaled once for the whole image (1st..99.8th percentile to [0, 1]), so
  every tile, production ones included, sees the same scaling.
- Tiles are TILE x TILE windows every STRIDE pixels, each fully inside its region.
- The split is by region, not by tile: the right quarter (x >= HOLDOUT_X) is the holdout
  and training tiles stop GUARD pixels short of it, so no pixel and, in this image, no
  nucleus is in both splits (a test checks the nuclei).
- Production traffic is simulated: holdout tiles rotated and flipped, chosen per day by a
  seed derived from the day; the drifted variant mimics a dimmer, flatter acquisition
  (contrast halved, brightness raised). Their masks are transformed alike, as ground truth.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np

TILE, STRIDE = 64, 32
HOLDOUT_X, GUARD = 384, 32
DRIFT_CONTRAST, DRIFT_BRIGHTNESS = 0.5, 0.3
SOURCE_FILES = ("stardist/data/images/img2d.tif", "stardist/data/images/mask2d.tif")


@dataclass(frozen=True)
class Tiles:
    """Tiles with their instance labels: images [N, H, W] float32 in [0, 1], labels int32."""

    ids: tuple[str, ...]
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def masks(self) -> np.ndarray:
        """Binary foreground: what the model learns."""
        return self.labels > 0

    def objects(self) -> np.ndarray:
        """Nuclei per tile, cut ones included (instance ids, so touching nuclei count apart)."""
        return np.array([np.count_nonzero(np.unique(t)) for t in self.labels], dtype=np.int64)


@cache
def load_image() -> tuple[np.ndarray, np.ndarray]:
    """(image scaled to [0, 1] as float32, instance labels as int32), both 512x512."""
    from importlib.metadata import PackageNotFoundError, distribution

    import tifffile

    try:
        dist = distribution("stardist")
    except PackageNotFoundError:
        raise FileNotFoundError("the stardist wheel (its sample data) is not installed") from None
    raw, labels = (tifffile.imread(dist.locate_file(name)) for name in SOURCE_FILES)
    low, high = np.percentile(raw, [1.0, 99.8])
    image = np.clip((raw - low) / (high - low), 0.0, 1.0).astype(np.float32)
    return image, labels.astype(np.int32)


def tile_origins(
    height: int, width: int, x_start: int, x_stop: int, tile: int = TILE, stride: int = STRIDE
) -> list[tuple[int, int]]:
    """(y, x) of every tile x tile window lying inside columns [x_start, x_stop)."""
    x_stop = min(x_stop, width)
    return [
        (y, x)
        for y in range(0, height - tile + 1, stride)
        for x in range(x_start, x_stop - tile + 1, stride)
    ]


def cut(
    image: np.ndarray, labels: np.ndarray, origins: list[tuple[int, int]], tile: int = TILE
) -> Tiles:
    windows = [(slice(y, y + tile), slice(x, x + tile)) for y, x in origins]
    return Tiles(
        ids=tuple(f"y{y:03d}x{x:03d}" for y, x in origins),
        images=np.stack([image[w] for w in windows]),
        labels=np.stack([labels[w] for w in windows]),
    )


def split_tiles() -> dict[str, Tiles]:
    """Training and holdout tiles of the source image, split by region (see module doc)."""
    image, labels = load_image()
    height, width = image.shape
    return {
        "train": cut(image, labels, tile_origins(height, width, 0, HOLDOUT_X - GUARD)),
        "holdout": cut(image, labels, tile_origins(height, width, HOLDOUT_X, width)),
    }


def drift(images: np.ndarray) -> np.ndarray:
    """The simulated acquisition change: lower contrast, higher brightness."""
    return np.clip(images * DRIFT_CONTRAST + DRIFT_BRIGHTNESS, 0.0, 1.0).astype(np.float32)


def production_tiles(day: str, count: int = 12, drifted: bool = False) -> Tiles:
    """A day's simulated production tiles: holdout tiles rotated and flipped, seeded by `day`."""
    holdout = split_tiles()["holdout"]
    rng = np.random.default_rng(zlib.crc32(day.encode()))
    picks = rng.choice(len(holdout), size=min(count, len(holdout)), replace=False)
    ids, images, labels = [], [], []
    for i, pick in enumerate(picks):
        turns, flip = int(rng.integers(4)), bool(rng.integers(2))
        image, label = np.rot90(holdout.images[pick], turns), np.rot90(holdout.labels[pick], turns)
        if flip:
            image, label = image[:, ::-1], label[:, ::-1]
        ids.append(f"{day}/{i:02d}/{holdout.ids[pick]}/r{turns}{'f' if flip else ''}")
        images.append(image)
        labels.append(label)
    stacked = np.ascontiguousarray(np.stack(images), dtype=np.float32)
    return Tiles(
        ids=tuple(f"{i}/drift" if drifted else i for i in ids),
        images=drift(stacked) if drifted else stacked,
        labels=np.ascontiguousarray(np.stack(labels)),
    )
