"""Foreground segmentation: a tiny U-Net in plain torch, its training, metrics and MLflow model.

Imports torch and mlflow at the top: only training entry points, scoring steps and the
scoring server (unpickling the logged model) import this module, never a module the
Dagster code location loads (tests/scenarios/segmentation checks that).

- The network is fully convolutional (sides divisible by 4); the served contract fixes
  the input to the training tiles' size and `serving.scoring.images.decode` resizes to it.
- Training is reproducible on CPU: seeded torch and numpy, one thread, deterministic
  algorithms; the process-global torch settings are restored afterwards.
- Metrics pool all pixels of a batch (micro averages), so tiles without nuclei need no
  special case; two empty masks agree perfectly (IoU and Dice 1).
- Objects are the connected components of the predicted mask once components smaller than
  `min_object_pixels` are dropped from it; touching nuclei therefore count as one.
- Inference runs one image per forward pass (`probabilities`): a mask depends on its
  image only, never on the requests the server batched with it, so it is reproducible.
- The pyfunc model keeps its weights as numpy arrays in its own state (no artifact files)
  and rebuilds the torch module on first use.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

import mlflow.pyfunc
import numpy as np
import torch
from torch import nn

from serving.scoring.errors import InputError
from serving.scoring.images import DEFAULT_MAX_PIXELS, decode, encode_png

PARAMS = (
    "epochs", "base_channels", "learning_rate", "batch_size",
    "threshold", "min_object_pixels", "max_train_tiles", "seed",
)  # fmt: skip
"""Hyperparameters `train` takes, all required: a scenario owns their defaults (its spec
loads without torch); `max_train_tiles` 0 means every tile."""
PIP_PACKAGES = ("torch", "numpy", "pillow", "scipy", "mlflow")


def check_params(params: Mapping[str, float]) -> dict[str, float]:
    unknown, missing = set(params) - set(PARAMS), set(PARAMS) - set(params)
    if unknown or missing:
        raise ValueError(
            f"unknown hyperparameters {sorted(unknown)}, missing {sorted(missing)}; "
            f"known: {list(PARAMS)}"
        )
    return dict(params)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )  # fmt: skip


class TinyUNet(nn.Module):
    """Two 2x down-samplings with skip connections: one grey channel in, one logit out."""

    def __init__(self, base: int = 8) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.enc1 = _block(1, base)
        self.enc2 = _block(base, 2 * base)
        self.mid = _block(2 * base, 4 * base)
        self.up2 = nn.ConvTranspose2d(4 * base, 2 * base, 2, stride=2)
        self.dec2 = _block(4 * base, 2 * base)
        self.up1 = nn.ConvTranspose2d(2 * base, base, 2, stride=2)
        self.dec1 = _block(2 * base, base)
        self.head = nn.Conv2d(base, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        mid = self.mid(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(mid), e2], dim=1))
        return self.head(self.dec1(torch.cat([self.up1(d2), e1], dim=1)))


def _soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    prob = torch.sigmoid(logits)
    return 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)


def train(pixels: np.ndarray, masks: np.ndarray, params: Mapping[str, float]) -> SegmentationModel:
    """Fit a TinyUNet on tiles (pixels float32 [N, H, W] in [0, 1], masks bool [N, H, W])."""
    p = check_params(params)
    if pixels.ndim != 3 or pixels.shape != masks.shape or len(pixels) == 0:
        raise ValueError(
            f"need matching [N, H, W] pixels and masks, got {pixels.shape}, {masks.shape}"
        )
    seed, limit = int(p["seed"]), int(p["max_train_tiles"])
    rng = np.random.default_rng(seed)
    if 0 < limit < len(pixels):  # a seeded subset, for quick test runs
        keep = np.sort(rng.choice(len(pixels), size=limit, replace=False))
        pixels, masks = pixels[keep], masks[keep]
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)  # one core per training process; also makes sums reproducible
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(seed)
        net = TinyUNet(int(p["base_channels"]))
        opt = torch.optim.Adam(net.parameters(), lr=float(p["learning_rate"]))
        x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))[:, None]
        y = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32))[:, None]
        bce, size = nn.BCEWithLogitsLoss(), int(p["batch_size"])
        net.train()
        for _ in range(int(p["epochs"])):
            order = torch.from_numpy(rng.permutation(len(x)))
            for start in range(0, len(x), size):
                idx = order[start : start + size]
                turns, flip = int(rng.integers(4)), bool(rng.integers(2))  # dihedral augmentation
                xb, yb = (torch.rot90(t[idx], turns, dims=(2, 3)) for t in (x, y))
                if flip:
                    xb, yb = xb.flip(3), yb.flip(3)
                logits = net(xb)
                loss = bce(logits, yb) + _soft_dice_loss(logits, yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    state = {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}
    return SegmentationModel(
        state,
        base_channels=int(p["base_channels"]),
        size=(pixels.shape[1], pixels.shape[2]),
        threshold=float(p["threshold"]),
        min_object_pixels=int(p["min_object_pixels"]),
    )


# -- masks and metrics -------------------------------------------------------------------


def clean_mask(mask: np.ndarray, min_pixels: int) -> tuple[np.ndarray, int]:
    """(mask without components smaller than `min_pixels`, number of components left)."""
    from scipy import ndimage

    labels, count = ndimage.label(mask)
    if count == 0 or min_pixels <= 1:
        return mask.astype(bool), int(count)
    keep = np.bincount(labels.ravel()) >= min_pixels
    keep[0] = False
    return keep[labels], int(keep.sum())


def encode_mask(mask: np.ndarray) -> str:
    """Base64 PNG of a 0/255 mask, as the model returns it."""
    return base64.b64encode(encode_png(mask.astype(np.uint8) * 255)).decode()


def mask_metrics(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """IoU, Dice, pixel accuracy and the truth's foreground rate, pooled over all pixels."""
    pred, true = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    if pred.shape != true.shape or pred.size == 0:
        raise ValueError(f"masks must have one non-empty shape, got {pred.shape} and {true.shape}")
    inter = int(np.logical_and(pred, true).sum())
    union = int(np.logical_or(pred, true).sum())
    total = int(pred.sum()) + int(true.sum())
    return {
        "iou": inter / union if union else 1.0,
        "dice": 2 * inter / total if total else 1.0,
        "pixel_accuracy": float((pred == true).mean()),
        "foreground_rate": float(true.mean()),
    }


# -- the MLflow model --------------------------------------------------------------------


def _image_bytes(value: Any, where: str) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):  # JSON clients send binary columns base64-encoded
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise InputError("not_an_image", f"image is not valid base64 ({where})") from None
    raise InputError("not_an_image", f"image must be bytes or base64 text ({where})")


class SegmentationModel(mlflow.pyfunc.PythonModel):
    """Foreground masks and object counts for grey images, behind MLflow's pyfunc."""

    def __init__(
        self,
        state: dict[str, np.ndarray],
        base_channels: int,
        size: tuple[int, int],
        threshold: float = 0.5,
        min_object_pixels: int = 1,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.state, self.base_channels, self.size = state, base_channels, tuple(size)
        self.threshold, self.min_object_pixels = threshold, min_object_pixels
        self.max_pixels = max_pixels
        self._net: TinyUNet | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_net": None}  # the weights travel as numpy arrays

    def network(self) -> TinyUNet:
        if self._net is None:
            net = TinyUNet(self.base_channels)
            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.state.items()})
            self._net = net.eval()
        return self._net

    def load_context(self, context: Any) -> None:
        self.network()

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """Foreground probability per pixel, [N, H, W] float32, one image per forward pass:
        a batched convolution may take other kernels and move the last float bits, enough
        to flip a pixel on the threshold, so an image's mask would depend on the images the
        server's micro-batcher happened to score with it. Alone, it depends on the image
        only, and staging compares served masks with in-process ones exactly."""
        net, x = self.network(), np.ascontiguousarray(pixels, dtype=np.float32)
        with torch.no_grad():
            parts = [
                torch.sigmoid(net(torch.from_numpy(x[i : i + 1])[:, None]))[:, 0].numpy()
                for i in range(len(x))
            ]
        return np.concatenate(parts) if parts else np.zeros((0, *x.shape[1:]), np.float32)

    def predict_masks(self, pixels: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """(cleaned bool masks [N, H, W], objects per image)."""
        cleaned = [
            clean_mask(m, self.min_object_pixels)
            for m in self.probabilities(pixels) >= self.threshold
        ]
        masks = np.stack([m for m, _ in cleaned]) if cleaned else np.zeros((0, *self.size), bool)
        return masks, [n for _, n in cleaned]

    def predict_pixels(self, pixels: np.ndarray) -> list[dict[str, Any]]:
        """Per image: `mask` (base64 PNG, 0/255) and `objects` (connected components)."""
        masks, counts = self.predict_masks(pixels)
        return [{"mask": encode_mask(m), "objects": n} for m, n in zip(masks, counts, strict=True)]

    # `model_input` stays unannotated: MLflow reads predict's type hints as an input schema.
    def predict(self, context, model_input, params: dict[str, Any] | None = None) -> list:
        if "image" not in getattr(model_input, "columns", ()):
            raise InputError("missing_column", "the input needs an `image` column")
        pixels = [self._pixels(v, f"row {i}") for i, v in enumerate(model_input["image"])]
        return self.predict_pixels(np.stack(pixels)) if pixels else []

    def _pixels(self, value: Any, where: str) -> np.ndarray:
        return decode(_image_bytes(value, where), self.size, "L", self.max_pixels, where)[0]


def pip_requirements() -> list[str]:
    """Pinned scoring-time packages; torch's local label (+cpu) is left to the index."""
    return [f"{pkg}=={version(pkg).split('+')[0]}" for pkg in PIP_PACKAGES]


def log_model(model: SegmentationModel, input_example: Any = None) -> Any:
    """Log `model` as `model` in the active run with the serving contract; returns ModelInfo."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    height, width = model.size
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=model,
        signature=ModelSignature(inputs=Schema([ColSpec(DataType.binary, "image")])),
        input_example=input_example,
        metadata={
            "mlops_input": "image",
            "image_height": height,
            "image_width": width,
            "image_mode": "L",
            "max_pixels": model.max_pixels,
            "task": "segmentation",
        },
        pip_requirements=pip_requirements(),
    )
