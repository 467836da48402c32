"""Images, request bodies and bad cases for the image-serving tests."""

from __future__ import annotations

import base64
import functools
import io
import os
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.serving.conftest import (
    AUTH,
    PRIMARY,
    SECONDARY,
    TestClient,
)
from tests.serving.image_model import GREY_CAP

JSON = {**AUTH, "content-type": "application/json"}


# --- images -------------------------------------------------------------------------------


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def flat(level: float, size: tuple[int, int] = (28, 28), mode: str = "L") -> Image.Image:
    """A uniform image of grey `level` in [0, 1]; `size` is (width, height) as Pillow has it."""
    if mode == "I;16":
        return Image.fromarray(np.full(size[::-1], round(level * 65535), dtype=np.uint16))
    return Image.new("L", size, round(level * 255)).convert(mode)


def gradient(size: tuple[int, int] = (300, 200)) -> Image.Image:
    """A colour image (width, height) whose red and green ramp across it; mean level ~0.45."""
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, axis=0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, axis=1)
    blue = np.full_like(x, 40)  # keeps the mean level clear of the 0.5 threshold
    return Image.fromarray(np.stack([x, y, blue], axis=-1).astype(np.uint8))


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_header(width: int, height: int, idat: bytes = b"", bit_depth: int = 8) -> bytes:
    """A grey PNG declaring width x height; `idat` is the compressed data (often none)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


@functools.cache
def real_bomb(side: int = 12000) -> bytes:
    """A complete, valid 1-bit black PNG of side x side (144M pixels) in about 18 KB."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte, then the packed bits
    squeeze = zlib.compressobj(9)
    idat = b"".join(squeeze.compress(row) for _ in range(side)) + squeeze.flush()
    return png_header(side, side, idat, bit_depth=1)


def jpeg_header_bomb() -> bytes:
    """A small JPEG whose frame header claims 60000 x 60000 pixels."""
    data = bytearray(encoded(flat(0.5, (16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)
    return bytes(data)


BRIGHT = encoded(flat(0.8))
DARK_JPEG = encoded(flat(0.2, (300, 200), "RGB"), "JPEG")
COLOUR_PNG = encoded(gradient())


def image_config(directory: Path, models: dict[str, Path], **overrides: Any) -> dict[str, Any]:
    config = {
        "endpoint": "vision-online",
        "deployments": {
            name: {"model_path": str(path), "model_name": f"vision-{name}", "model_version": "1"}
            for name, path in models.items()
        },
        "traffic": {"grey": 100},
        "keys": {"primary": PRIMARY, "secondary": SECONDARY},
        "inference_log_dir": str(directory / "inference_log"),
        "max_body_bytes": 1 << 20,
    }
    config.update(overrides)
    return config


def score_split(cells: list[Any]) -> dict[str, Any]:
    data = [[cell] for cell in cells]
    return {"input_data": {"columns": ["image"], "index": list(range(len(cells))), "data": data}}


def good_request(client: TestClient) -> None:
    response = client.post("/score", json=score_split([b64(BRIGHT)]), headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json() == [{"label": "bright", "probability": pytest.approx(0.8, abs=0.01)}]


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


GOOD = b64(BRIGHT)
HALF_PNG = COLOUR_PNG[: len(COLOUR_PNG) // 2]
OTHER_FORMATS = {fmt: encoded(gradient((40, 30)), fmt) for fmt in ("GIF", "BMP", "WEBP", "TIFF")}
# (id, path, body, extra headers, status, code, text in the message)
BAD: list[tuple[str, str, Any, dict[str, str], int, str, str]] = [
    ("not_base64", "/score", score_split(["not base64!"]), {}, 400, "invalid_type", "base64"),
    ("non_ascii_text", "/score", score_split(["bïld"]), {}, 400, "invalid_type", "base64"),
    ("not_an_image", "/score", score_split([b64(b"hello")]), {}, 400, "not_an_image", "row 0"),
    ("empty_image", "/score", score_split([""]), {}, 400, "not_an_image", "empty image"),
    ("truncated_png", "/score", score_split([b64(HALF_PNG)]), {}, 400, "truncated_image", "row"),
    (
        "truncated_png_header",
        "/score",
        score_split([b64(COLOUR_PNG[:30])]),
        {},
        400,
        "truncated_image",
        "header",
    ),
    (
        "truncated_jpeg",
        "/score",
        score_split([GOOD, b64(DARK_JPEG[: len(DARK_JPEG) // 2])]),
        {},
        400,
        "truncated_image",
        "row 1",
    ),
    (
        "png_bomb_header",
        "/score",
        score_split([b64(png_header(50000, 50000))]),
        {},
        400,
        "image_too_large",
        "row 0",
    ),
    (
        "png_over_the_model_cap",
        "/score",
        score_split([b64(png_header(3000, 3000))]),
        {},
        400,
        "image_too_large",
        f"limit of {GREY_CAP} pixels",
    ),
    (
        "jpeg_bomb_header",
        "/score",
        score_split([b64(jpeg_header_bomb())]),
        {},
        400,
        "image_too_large",
        "row 0",
    ),
    *[
        (f"{fmt.lower()}_image", "/score", score_split([b64(data)]), {}, 400, "not_an_image", name)
        for (fmt, data), name in zip(
            OTHER_FORMATS.items(), ["GIF", "BMP", "WebP", "TIFF"], strict=True
        )
    ],
    ("null_cell", "/score", score_split([None]), {}, 400, "null_value", "row 0 is null"),
    ("number_cell", "/score", score_split([5]), {}, 400, "invalid_type", "expects binary"),
    ("object_cell", "/score", score_split([{"a": 1}]), {}, 400, "invalid_type", "object"),
    ("list_cell", "/score", score_split([[1, 2]]), {}, 400, "invalid_type", "array"),
    (
        "missing_image_column",
        "/invocations",
        {"dataframe_split": {"columns": ["picture"], "data": [[GOOD]]}},
        {},
        400,
        "missing_column",
        "['image']",
    ),
    (
        "other_column_on_score",
        "/score",
        {"input_data": {"columns": ["picture"], "data": [[GOOD]]}},
        {},
        400,
        "unexpected_column",
        "picture",
    ),
    (
        "probabilities",
        "/score",
        {**score_split([GOOD]), "params": {"output": "probabilities"}},
        {},
        400,
        "unsupported_output",
        "predictions",
    ),
    (
        "too_many_images",
        "/score",
        score_split([GOOD] * 5),
        {"azureml-model-deployment": "seg"},
        400,
        "too_many_images",
        "at most 4",
    ),
    (
        "oversized_body",
        "/score",
        score_split([b64(os.urandom(800_000))]),
        {},
        413,
        "payload_too_large",
        "at most 1048576",
    ),
]
