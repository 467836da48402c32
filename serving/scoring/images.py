"""Images in scoring requests: decode, check, describe and reference them, framework-free.

One decoder for every place an image enters a model (the scoring server, the
MLflow pyfunc under `mlflow models serve`, batch scoring, training), so a model
sees the same pixels wherever it runs. Client mistakes raise `InputError` with
a code a client can match: `not_an_image`, `truncated_image`, `image_too_large`.

Design constraints:
- The pixel count is checked from the header before any pixel is decoded, so a
  decompression bomb (a tiny PNG declaring 50k x 50k pixels) costs nothing.
- Pillow's own bomb guard only warns below twice its limit; the cap here is ours.
- Grey or colour, any reasonable size: converted to the model's mode and size
  (bilinear), as float32 in [0, 1]; 16-bit grey PNGs are scaled, not clipped.
- Only Pillow's PNG and JPEG parsers see the bytes; a PNG or JPEG whose header is
  cut short is `truncated_image`, anything else unreadable `not_an_image`.
- The inference log keeps `digest(bytes)` (content address) and a few statistics,
  never the bytes themselves: those are stored once per content in the lake.
"""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING

import numpy as np

from serving.scoring.errors import InputError

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_MAX_PIXELS = 4096 * 4096
STAT_COLUMNS = ("width", "height", "brightness", "contrast", "sharpness")
ACCEPTED_FORMATS = ("PNG", "JPEG")
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
_OTHER_FORMATS = ((b"GIF8", "GIF"), (b"BM", "BMP"), (b"RIFF", "WebP"), (b"II*\x00", "TIFF"),
                  (b"MM\x00*", "TIFF"), (b"\x00\x00\x00\x0cjP", "JPEG 2000"))  # fmt: skip
_WIDE_GREY = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})  # 16-bit PNG grey


def digest(data: bytes) -> str:
    """The content address of an image's bytes: `sha256:<hex>`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _sniff(data: bytes) -> str:
    """What a refused body looks like, for the error message."""
    for magic, name in _OTHER_FORMATS:
        if data.startswith(magic):
            return f"a {name} image"
    return "the data"


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, where: str = "") -> Image.Image:
    """A fully decoded Pillow image; raises InputError naming `where` (e.g. "row 3")."""
    from PIL import Image, UnidentifiedImageError

    at = f" ({where})" if where else ""
    if not data:
        raise InputError("not_an_image", f"empty image{at}")
    try:
        # Only the two parsers we accept ever see client bytes (no GIF, TIFF, EPS, ...).
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:  # Pillow's own cap, far above ours
        raise InputError("image_too_large", f"image too large{at}: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        if data.startswith(_SIGNATURES):  # a PNG or JPEG cut short (or broken) in its header
            raise InputError(
                "truncated_image", f"image header is truncated or corrupt{at}"
            ) from None
        if isinstance(exc, UnidentifiedImageError):
            raise InputError(
                "not_an_image", f"{_sniff(data)} is not a PNG or JPEG image{at}"
            ) from None
        raise InputError("not_an_image", f"unreadable image header{at}: {exc}") from None
    if image.format not in ("PNG", "JPEG", "MPO"):  # MPO: a JPEG with extra views (cameras)
        raise InputError("not_an_image", f"{image.format} images are not accepted{at}")
    width, height = image.size
    if width * height > max_pixels:
        raise InputError(
            "image_too_large",
            f"image of {width}x{height} pixels{at} exceeds the limit of {max_pixels} pixels",
        )
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt pixel data
        raise InputError(
            "truncated_image", f"image data is truncated or corrupt{at}: {exc}"
        ) from None
    return image


def to_pixels(image: Image.Image, size: tuple[int, int], mode: str = "L") -> np.ndarray:
    """The model's input: `mode` ("L" grey or "RGB"), resized to (height, width), in [0, 1]."""
    from PIL import Image

    if image.mode in _WIDE_GREY:  # Pillow's convert clips 16-bit grey at 255: scale instead
        wide = np.asarray(image, dtype=np.float32)
        image = Image.fromarray(np.clip(wide / 257.0 + 0.5, 0, 255).astype(np.uint8))
    if image.mode != mode:
        image = image.convert(mode)
    height, width = size
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


def load_pixels(
    data: bytes,
    size: tuple[int, int],
    mode: str = "L",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    where: str = "",
) -> np.ndarray:
    """The model's input from encoded bytes, without statistics (batch scoring, training)."""
    return to_pixels(open_image(data, max_pixels, where), size, mode)


def decode(
    data: bytes,
    size: tuple[int, int],
    mode: str = "L",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    where: str = "",
) -> tuple[np.ndarray, dict[str, float]]:
    """(pixels for the model, statistics of the image as sent) from encoded bytes."""
    image = open_image(data, max_pixels, where)
    width, height = image.size
    pixels = to_pixels(image, size, mode)
    return pixels, {"width": float(width), "height": float(height), **pixel_stats(pixels)}


def pixel_stats(pixels: np.ndarray) -> dict[str, float]:
    """Brightness (mean), contrast (std) and sharpness (mean absolute Laplacian)."""
    grey = pixels if pixels.ndim == 2 else pixels.mean(axis=-1)
    lap = (
        -4 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
    )
    return {
        "brightness": float(grey.mean()),
        "contrast": float(grey.std()),
        "sharpness": float(np.abs(lap).mean()) if lap.size else 0.0,
    }


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a [0, 1] float or uint8 array (grey HxW or colour HxWx3)."""
    from PIL import Image

    array = pixels if pixels.dtype == np.uint8 else np.clip(pixels * 255 + 0.5, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
