"""Fashion-MNIST from the Debian package `dataset-fashion-mnist`, read offline, no Dagster.

70,000 28x28 grey images of 10 clothing classes (MIT licence, Zalando Research).
`make install` installs the package where apt exists; where it does not, the
same functions serve scikit-learn's bundled 8x8 digits scaled to 28x28 (1,797
images), so every code path runs on any machine. The test split plays the
production images that arrive day by day; a drifted period is simulated.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FASHION_DIR = Path(os.environ.get("MLOPS_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
DIGIT_CLASSES = tuple(str(d) for d in range(10))
SIZE = 28


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray
    """uint8 [N, 28, 28]"""
    labels: np.ndarray
    """int64 [N], indexes into `classes`"""
    classes: tuple[str, ...]
    source: str


def _idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format): big-endian dims after a 4-byte magic number."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4)
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_available(folder: Path = FASHION_DIR) -> bool:
    return (folder / "t10k-images-idx3-ubyte.gz").exists()


def classes(folder: Path = FASHION_DIR) -> tuple[str, ...]:
    """The class names of whichever source this machine has."""
    return FASHION_CLASSES if fashion_available(folder) else DIGIT_CLASSES


def load(split: str, folder: Path = FASHION_DIR) -> ImageSet:
    """`train` (60,000) or `test` (10,000) Fashion-MNIST images, or the digits fallback."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    prefix = "train" if split == "train" else "t10k"
    if fashion_available(folder):
        images = _idx(folder / f"{prefix}-images-idx3-ubyte.gz")
        labels = _idx(folder / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
        return ImageSet(images, labels, FASHION_CLASSES, f"fashion-mnist:{folder}")
    return _digits(split)


def _digits(split: str) -> ImageSet:
    """scikit-learn's digits as 28x28 uint8: the first 70% train, the rest test."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    cut = int(len(digits.images) * 0.7)
    part = slice(0, cut) if split == "train" else slice(cut, None)
    small = (digits.images[part] * (255 / 16)).astype(np.uint8)
    images = np.stack(
        [
            np.asarray(Image.fromarray(im).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
            for im in small
        ]
    )
    return ImageSet(images, digits.target[part].astype(np.int64), DIGIT_CLASSES, "sklearn-digits")


def drift(images: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """The simulated drift of new images: a washed-out camera (brighter, less contrast)."""
    x = images.astype(np.float32) / 255.0
    shifted = x * (1.0 - 0.55 * strength) + 0.4 * strength
    return np.clip(shifted * 255.0 + 0.5, 0, 255).astype(np.uint8)
