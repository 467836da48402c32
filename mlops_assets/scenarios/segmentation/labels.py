"""Human mask labels as boolean masks: what a labeled set's `label` column can hold.

A segmentation task's annotations reach the labeled set as text, one per item:
- Label Studio's brush region (`resources/labeling_studio.py` keeps the region's `value`
  as JSON): `{"format": "rle", "rle": [...], "brushlabels": [...]}`, Label Studio's own
  run-length code of the RGBA canvas at the image's size; the mask is its alpha channel.
- A PNG mask (0/255 grey, any mode), base64 text or a `data:image/png;base64,` URI.

Anything else (a class name, as the local and Azure ML backends record for segmentation
tasks, since they carry no masks) is refused with a `ValueError` that says what it got.
numpy at import only; PIL loads where a PNG is decoded.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

DATA_URI = "data:image/png;base64,"


def decode_brush_rle(rle: list[int]) -> np.ndarray:
    """Label Studio's brush RLE (a bit stream in bytes) -> the flat uint8 RGBA values.

    Header: 32 bits value count, 5 bits word size - 1, four 4-bit run-length widths - 1.
    Then runs: 1 bit kind, 2 bits width choice, that many bits length - 1; a kind-1 run
    repeats one word, a kind-0 run lists its words (as label-studio-converter decodes)."""
    if not rle or any(type(b) is not int or not 0 <= b <= 255 for b in rle):
        raise ValueError("a brush RLE is a non-empty list of byte values (0..255)")
    bits, pos = "".join(f"{b:08b}" for b in rle), 0

    def read(size: int) -> int:
        nonlocal pos
        if pos + size > len(bits):
            raise ValueError("the brush RLE ends in the middle of a run")
        pos += size
        return int(bits[pos - size : pos], 2)

    count, word = read(32), read(5) + 1
    widths = [read(4) + 1 for _ in range(4)]
    out, i = np.zeros(count, dtype=np.uint8), 0
    while i < count:
        repeated = read(1)
        j = min(count, i + 1 + read(widths[read(2)]))
        if repeated:
            out[i:j] = read(word)
        else:
            out[i:j] = [read(word) for _ in range(j - i)]
        i = j
    return out


def _png_mask(text: str) -> np.ndarray:
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        raw = base64.b64decode(text.removeprefix(DATA_URI), validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            return np.asarray(image.convert("L")) > 127
    except (ValueError, UnidentifiedImageError, OSError):
        raise ValueError("the label is neither a brush region nor a base64 PNG mask") from None


def mask_from_label(label: Any, shape: tuple[int, int]) -> np.ndarray:
    """The bool [H, W] mask a label draws on an image of `shape` (ValueError if it is none)."""
    value = label
    if isinstance(label, str) and label.lstrip().startswith("{"):
        try:
            value = json.loads(label)
        except ValueError:
            raise ValueError("the label looks like JSON but does not parse") from None
    if isinstance(value, Mapping) and isinstance(value.get("regions"), list):
        if not value["regions"]:
            raise ValueError("a brush label with no regions draws no mask")
        masks = [mask_from_label(region, shape) for region in value["regions"]]
        return np.logical_or.reduce(masks)  # every region the annotator painted
    if isinstance(value, Mapping):
        if value.get("format") != "rle" or not isinstance(value.get("rle"), list):
            raise ValueError(f"a brush label needs format 'rle' and an rle list: {sorted(value)}")
        flat = decode_brush_rle(value["rle"])
        if flat.size != shape[0] * shape[1] * 4:
            raise ValueError(
                f"the brush canvas has {flat.size // 4} pixels, the image {shape[0] * shape[1]}"
            )
        return flat.reshape(*shape, 4)[:, :, 3] > 127
    if not isinstance(value, str):
        raise ValueError(f"a mask label is text, not {type(value).__name__}")
    mask = _png_mask(value)
    if mask.shape != tuple(shape):
        raise ValueError(f"the mask is {mask.shape}, the image {tuple(shape)}")
    return mask
