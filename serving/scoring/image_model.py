"""Image models behind the scoring server: the MLmodel contract and request decoding.

The contract a model author writes to (docs/serving-clients.md, "Images"):
- an MLflow pyfunc (`python_function` flavor, a `PythonModel`) whose signature
  inputs are one column `image` of MLflow type `binary`;
- MLmodel `metadata` (`mlflow.pyfunc.log_model(..., metadata=...)`): `mlops_input:
  image`, `image_height`, `image_width`, `image_mode` ("L" or "RGB"), `max_pixels`
  (the decode cap per image), `task` ("classification" or "segmentation"), and
  optionally `max_images` (images per request; default: as many as fit
  `REQUEST_PIXEL_BYTES` of decoded float32 pixels);
- the unwrapped python model has `predict_pixels(pixels)`: float32 [N, H, W] (L) or
  [N, H, W, 3] (RGB) in [0, 1] -> one JSON-able answer per image.

Design constraints:
- Decoding costs CPU and memory in proportion to the pixels an image declares, not
  to its encoded size, so the server runs `ServedModel.decode_images` on a worker
  thread, never on the event loop.
- Bounded memory per request: the image count is checked before any base64 or image
  decoding, each image's pixel count from its header (`serving.scoring.images`), and
  the pixels go straight into one preallocated [N, H, W(, 3)] array.
- The inference log keeps a digest and statistics per image; the distinct bytes
  travel with the row to the log writer, which stores them by content address.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.scoring.errors import InputError
from serving.scoring.images import STAT_COLUMNS, decode, digest
from serving.scoring.schema import InputSchema

IMAGE_INPUT = "image"
MODES = {"L": 1, "RGB": 3}
TASKS = ("classification", "segmentation")
REQUEST_PIXEL_BYTES = 64 << 20  # default bound of one request's decoded pixels


def _positive_int(metadata: Mapping[str, Any], key: str) -> int:
    value = metadata.get(key)
    if type(value) is not int or value <= 0:  # bool is an int subclass: refused too
        raise ValueError(f"MLmodel metadata '{key}' must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """What an image model takes: one binary column, decoded to this size and mode."""

    column: str
    height: int
    width: int
    mode: str
    max_pixels: int
    task: str
    max_images: int

    @property
    def shape(self) -> tuple[int, ...]:
        """One image's pixel array shape: (H, W) grey, (H, W, 3) colour."""
        return (self.height, self.width) if self.mode == "L" else (self.height, self.width, 3)

    @classmethod
    def from_mlmodel(cls, meta: Mapping[str, Any], schema: InputSchema) -> ImageSpec | None:
        """The image input an MLmodel declares: None if tabular, ValueError if malformed."""
        metadata = meta.get("metadata")
        if not isinstance(metadata, dict) or metadata.get("mlops_input") != IMAGE_INPUT:
            return None
        columns = schema.columns
        if len(columns) != 1 or columns[0].type != "binary":
            raise ValueError(
                "an image model's signature takes one binary column "
                f"'{IMAGE_INPUT}', not {schema.to_dict()}"
            )
        mode, task = metadata.get("image_mode"), metadata.get("task")
        if mode not in MODES:
            raise ValueError(f"MLmodel metadata 'image_mode' must be one of {list(MODES)}")
        if task not in TASKS:
            raise ValueError(f"MLmodel metadata 'task' must be one of {list(TASKS)}")
        height = _positive_int(metadata, "image_height")
        width = _positive_int(metadata, "image_width")
        if "max_images" in metadata:
            max_images = _positive_int(metadata, "max_images")
        else:
            max_images = max(1, REQUEST_PIXEL_BYTES // (4 * height * width * MODES[mode]))
        return cls(
            columns[0].name,
            height,
            width,
            mode,
            _positive_int(metadata, "max_pixels"),
            task,
            max_images,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "height": self.height,
            "width": self.width,
            "mode": self.mode,
            "max_pixels": self.max_pixels,
            "max_images": self.max_images,
            "task": self.task,
        }

    def check_count(self, nrows: int) -> None:
        if nrows > self.max_images:
            raise InputError(
                "too_many_images",
                f"{nrows} images in one request; this model takes at most {self.max_images} "
                f"({self.height}x{self.width} {self.mode}) per request",
            )


@dataclass(slots=True)
class ImageBatch:
    """One request's images: pixels for the model, and what the inference log keeps."""

    spec: ImageSpec  # what they were decoded for (size, mode, caps)
    pixels: np.ndarray  # float32 [N, H, W] or [N, H, W, 3] in [0, 1]
    log: dict[str, Any]  # {"columns": [column, *STAT_COLUMNS], "data": [[digest, ...], ...]}
    blobs: dict[str, bytes]  # sha256 hex -> bytes, each distinct image once


def decode_images(spec: ImageSpec, cells: Sequence[Any]) -> ImageBatch:
    """Decode a binary column's cells (bytes) for the model (raises InputError per row)."""
    spec.check_count(len(cells))
    pixels = np.empty((len(cells), *spec.shape), dtype=np.float32)
    rows: list[list[Any]] = []
    blobs: dict[str, bytes] = {}
    size = (spec.height, spec.width)
    for i, cell in enumerate(cells):
        if type(cell) is not bytes:  # None: a signature that marks the column optional
            raise InputError(
                "null_value", f"column '{spec.column}' row {i} is null; send a PNG or JPEG"
            )
        pixels[i], stats = decode(cell, size, spec.mode, spec.max_pixels, f"row {i}")
        address = digest(cell)
        blobs.setdefault(address.removeprefix("sha256:"), cell)
        rows.append([address, *(stats[name] for name in STAT_COLUMNS)])
    log = {"columns": [spec.column, *STAT_COLUMNS], "data": rows}
    return ImageBatch(spec, pixels, log, blobs)


def load_pixel_predictor(path: Path) -> Callable[[np.ndarray], Any]:
    """The `predict_pixels` of the pyfunc at `path` (its module imports torch, if it uses it)."""
    import mlflow.pyfunc

    # suppress_warnings skips MLflow's scan of every installed package against the model's
    # requirements (seconds per start); staging checked them against the allowlist
    model = mlflow.pyfunc.load_model(str(path), suppress_warnings=True).unwrap_python_model()
    predict = getattr(model, "predict_pixels", None)
    if not callable(predict):
        raise TypeError(
            f"{type(model).__name__} has no predict_pixels(pixels); "
            "an image model must provide it (docs/serving-clients.md, Images)"
        )
    return predict
