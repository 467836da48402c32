"""A real MLflow pyfunc image model for the scoring server tests, written to the image contract.

`BrightnessModel` answers per image, from the pixels the shared decoder gives it:
- classification: label "bright" when the mean pixel is above 0.5, else "dark", with
  probability = that mean;
- segmentation: the mask of pixels above 0.5 (a base64 PNG at the model's size) and
  the number of connected bright regions in it.

Its `predict` decodes the `image` column (bytes, or base64 text) with the same decoder
the scoring server uses, so `mlflow models serve` answers what the scoring server does.
No torch: these tests stay light.

The class is pickled by reference (`tests.serving.image_model.BrightnessModel`), so a
process that loads the model needs the repository root on `sys.path`: `python -m serving`
run from the root has it, `mlflow models serve` gets it through `PYTHONPATH`.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from serving.scoring.errors import InputError
from serving.scoring.images import decode, encode_png

GREY_CAP = 1000 * 1000  # max_pixels of the test models: small, so bombs are cheap to make


def as_bytes(value: Any, row: int) -> bytes:
    """An `image` cell: bytes (MLflow's server decoded the base64) or base64 text."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value.replace("\n", ""), validate=True)
        except ValueError:
            raise InputError("invalid_type", f"column 'image' row {row} is not base64") from None
    raise InputError("invalid_type", f"column 'image' row {row} is not an image")


class BrightnessModel(PythonModel):
    """Labels images bright or dark (or masks their bright parts) from decoded pixels."""

    def __init__(self, size: tuple[int, int], mode: str, max_pixels: int, task: str) -> None:
        self.size = size
        self.mode = mode
        self.max_pixels = max_pixels
        self.task = task

    def predict_pixels(self, pixels: np.ndarray) -> list[dict[str, Any]]:
        grey = pixels if pixels.ndim == 3 else pixels.mean(axis=-1)
        if self.task == "segmentation":
            from scipy import ndimage

            answers = []
            for image in grey:
                mask = image > 0.5
                png = encode_png(mask.astype(np.uint8) * 255)
                objects = int(ndimage.label(mask)[1])
                answers.append({"mask": base64.b64encode(png).decode(), "objects": objects})
            return answers
        means = pixels.reshape(len(pixels), -1).mean(axis=1, dtype=np.float64)
        return [
            {"label": "bright" if m > 0.5 else "dark", "probability": round(float(m), 6)}
            for m in means.tolist()
        ]

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        cells = list(model_input["image"])
        pixels = np.stack(
            [
                decode(as_bytes(cell, i), self.size, self.mode, self.max_pixels, f"row {i}")[0]
                for i, cell in enumerate(cells)
            ]
        )
        return self.predict_pixels(pixels)


def save_image_model(
    path: Path,
    size: tuple[int, int] = (28, 28),
    mode: str = "L",
    task: str = "classification",
    max_pixels: int = GREY_CAP,
    **metadata: Any,
) -> Path:
    """Write the model to `path` the way the platform logs image models; returns `path`."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    mlflow.pyfunc.save_model(
        str(path),
        python_model=BrightnessModel(size, mode, max_pixels, task),
        signature=ModelSignature(inputs=Schema([ColSpec("binary", "image")])),
        metadata={
            "mlops_input": "image",
            "image_height": size[0],
            "image_width": size[1],
            "image_mode": mode,
            "max_pixels": max_pixels,
            "task": task,
            **metadata,
        },
        pip_requirements=["mlflow", "numpy", "pillow", "scipy"],  # no inference subprocess
    )
    return path
