"""What a labeler sees of an item: grey images as terminal block art, fields as text.

Used by `mlops label annotate` (a terminal, no image viewer) and by the Label Studio
backend (which needs PNG bytes for its `data:` URIs). Image bytes are whatever the
lake holds for an item: any format Pillow reads, or a NumPy `.npy` array. Pillow and
NumPy are imported inside the functions: this module is imported by light code.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import numpy as np

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SHADES = " ░▒▓█"
"""Dark to bright: a bright pixel prints as a full block on a dark terminal."""
# Bookkeeping columns of a logged item: not what a labeler judges.
HIDDEN = frozenset(
    {
        "item_id",
        "why",
        "uncertainty",
        "prediction",
        "request_id",
        "row",
        "model_version",
        "model_name",
        "timestamp",
        "deployment",
        "latency_ms",
        "task_id",
        "task_format",
        "classes",
        "image",
        "votes",
        "agreement",
    }
)


def grey_pixels(data: bytes) -> np.ndarray:
    """An image's bytes as a 2-D uint8 grey array; ValueError naming what was found."""
    import numpy as np

    if data[:6] == b"\x93NUMPY":
        pixels = np.load(io.BytesIO(data), allow_pickle=False)
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
        except UnidentifiedImageError as err:
            raise ValueError(f"image bytes are neither an image nor .npy ({data[:8]!r})") from err
    pixels = np.squeeze(np.asarray(pixels))
    if pixels.ndim == 3:  # channels last: average them
        pixels = pixels.mean(axis=-1)
    if pixels.ndim != 2 or not pixels.size:
        raise ValueError(f"an image is a 2-D array, not shape {pixels.shape}")
    if pixels.dtype != np.uint8:  # floats in [0, 1] or any range: stretch to 0..255
        lo, hi = float(pixels.min()), float(pixels.max())
        pixels = ((pixels - lo) / (hi - lo or 1.0) * 255).round()
    return pixels.astype(np.uint8)


def png_bytes(data: bytes) -> bytes:
    """The image as PNG (unchanged when it already is one)."""
    if data.startswith(PNG_MAGIC):
        return data
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(grey_pixels(data), mode="L").save(out, format="PNG")
    return out.getvalue()


def block_art(data: bytes, width: int = 28) -> str:
    """The grey image as lines of shade blocks, `width` pixels across (two characters each,
    since a terminal cell is about twice as tall as it is wide)."""
    import numpy as np

    pixels = grey_pixels(data)
    h, w = pixels.shape
    cols = max(1, min(width, w))
    rows = max(1, round(h * cols / w))
    sampled = pixels[np.linspace(0, h - 1, rows).round().astype(int)][
        :, np.linspace(0, w - 1, cols).round().astype(int)
    ]
    levels = (sampled.astype(int) * len(SHADES)) // 256
    return "\n".join("".join(SHADES[v] * 2 for v in row) for row in levels)


def fields_text(item: dict[str, Any]) -> str:
    """An item's own fields (what a labeler judges), one `name: value` line each."""
    shown = {k: v for k, v in item.items() if k not in HIDDEN}
    pad = max((len(k) for k in shown), default=0)
    return "\n".join(f"{k.ljust(pad)}  {v}" for k, v in shown.items())
