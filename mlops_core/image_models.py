"""A small image classifier in plain PyTorch and its MLflow pyfunc, no Dagster.

The network is a two-block CNN (about 0.1M parameters): Fashion-MNIST at 28x28
trains in seconds per epoch on one core. The pyfunc follows the scoring
server's image contract (serving/scoring/images.py, docs/serving-clients.md):
one `image` column of MLflow type `binary`, MLmodel metadata naming the input
size and mode, and `predict_pixels` for callers that decoded the images
already (the scoring server, batch scoring), so every caller sees the same
pixels and the same answers. torch loads with the model, never at import.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import torch

try:  # the pyfunc base class when MLflow is there (training, serving); plain object if not
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover - MLflow is a dependency of every process that logs
    PythonModel = object  # type: ignore[assignment,misc]

MAX_PIXELS = 4096 * 4096
CHUNK = 1024


def build_network(classes: int) -> torch.nn.Module:
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, classes),
    )  # fmt: skip


def fit(
    pixels: np.ndarray,
    labels: np.ndarray,
    classes: int,
    *,
    epochs: int = 3,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    progress: Any = None,
) -> torch.nn.Module:
    """Train the CNN on [N, 28, 28] float pixels in [0, 1]; `progress(epoch, loss)` per epoch."""
    import torch

    torch.manual_seed(seed)
    net = build_network(classes)
    optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate)
    x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).unsqueeze(1)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for epoch in range(epochs):
        order, total = torch.randperm(len(x), generator=generator), 0.0
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        if progress:
            progress(epoch + 1, total / len(x))
    return net.eval()


def probabilities(net: torch.nn.Module, pixels: np.ndarray) -> np.ndarray:
    """Softmax class probabilities [N, classes] for [N, H, W] pixels, in chunks."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(pixels), CHUNK):
            chunk = np.ascontiguousarray(pixels[start : start + CHUNK], dtype=np.float32)
            logits = net(torch.from_numpy(chunk).unsqueeze(1))
            out.append(torch.softmax(logits, dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def as_bytes(value: Any, row: int) -> bytes:
    """A cell of the `image` column: bytes, or base64 text (what JSON carries)."""
    from serving.scoring.errors import InputError

    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        try:
            # MLflow's own payload helper wraps base64 in lines: whitespace is not data
            return base64.b64decode("".join(value.split()), validate=True)
        except ValueError:
            raise InputError("invalid_type", f"column 'image' row {row} is not base64") from None
    raise InputError("invalid_type", f"column 'image' row {row} is not an image")


class ImageClassifier(PythonModel):
    """The pyfunc: `predict` decodes the `image` column; `predict_pixels` takes pixels."""

    def __init__(self, classes: list[str], size: tuple[int, int] = (28, 28), mode: str = "L"):
        self.classes = list(classes)
        self.size = tuple(size)
        self.mode = mode
        self.net: Any = None

    def load_context(self, context: Any) -> None:
        import torch

        self.net = build_network(len(self.classes))
        state = torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)
        self.net.eval()

    def predict_proba_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return probabilities(self.net, pixels)

    def predict_pixels(self, pixels: np.ndarray) -> list[dict[str, Any]]:
        """Per image its label and that label's probability."""
        proba = self.predict_proba_pixels(pixels)
        best = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=int)
        return [
            # rounded: an answer must not depend on how requests were batched together
            {"label": self.classes[i], "probability": round(float(p), 6)}
            for i, p in zip(best.tolist(), proba[np.arange(len(best)), best].tolist(), strict=True)
        ]

    def decode(self, images: list[Any]) -> np.ndarray:
        from serving.scoring.images import load_pixels

        height, width = self.size
        return np.stack(
            [
                load_pixels(as_bytes(v, i), (height, width), self.mode, MAX_PIXELS, f"row {i}")
                for i, v in enumerate(images)
            ]
        ) if images else np.zeros((0, height, width), dtype=np.float32)  # fmt: skip

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        import pandas as pd

        rows = self.predict_pixels(self.decode(list(model_input["image"])))
        return pd.DataFrame(rows, columns=["label", "probability"])


def metadata(size: tuple[int, int], mode: str, task: str) -> dict[str, Any]:
    """The MLmodel metadata the scoring server reads to decode requests for the model."""
    return {
        "mlops_input": "image",
        "image_height": int(size[0]),
        "image_width": int(size[1]),
        "image_mode": mode,
        "max_pixels": MAX_PIXELS,
        "task": task,
    }


def pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("torch", "numpy", "pandas", "pillow", "mlflow")]


def quiet_pyfunc_notices() -> None:
    """Silence MLflow's notices that do not apply to these pyfuncs, so logs show real news:
    type hints (the input is a DataFrame of image bytes, which MLflow's hint validation does
    not cover; the signature checks it), CloudPickle (the class is pickled by reference to
    this installed package, its weights are a plain state-dict artifact) and the missing
    input example (an image example would bloat every model folder)."""
    import logging
    import warnings

    logging.getLogger("mlflow.models.signature").setLevel(logging.WARNING)
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    for message in ("Add type hints", "An input example was not provided"):
        warnings.filterwarnings("ignore", message=f".*{message}")
