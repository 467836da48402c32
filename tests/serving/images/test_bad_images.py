"""Every client mistake with an image is a 4xx naming it, never a 5xx, and memory stays bounded.

Not base64, not an image, truncated, bombs (refused from the header, pixels never decoded),
other formats, wrong cells or columns, too many images, oversized bodies; after each the
server answers the next request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import ImageFile

from tests.serving.conftest import (
    AUTH,
    MLFLOW_PANDAS_WARNING,
    Server,
    TestClient,
)
from tests.serving.images.cases import (
    BAD,
    COLOUR_PNG,
    GOOD,
    JSON,
    b64,
    good_request,
    jpeg_header_bomb,
    png_header,
    real_bomb,
    score_split,
)

pytestmark = pytest.mark.filterwarnings(
    f"ignore:{MLFLOW_PANDAS_WARNING}", "ignore::PIL.Image.DecompressionBombWarning"
)


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code", "text"),
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
def test_client_mistake_is_a_4xx_naming_it(
    vision: TestClient,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    code: str,
    text: str,
) -> None:
    response = vision.post(path, content=json.dumps(body), headers={**JSON, **headers})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert text in error["message"], error["message"]
    good_request(vision)


def test_bomb_is_refused_before_its_pixels_are_decoded(
    vision: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def spy(image: ImageFile.ImageFile) -> Any:  # PNG and JPEG decode their pixels here
        loaded.append(image.size)
        return load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    for bomb in (real_bomb(), png_header(50000, 50000), jpeg_header_bomb()):
        response = vision.post("/score", json=score_split([b64(bomb)]), headers=AUTH)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "image_too_large"
    assert loaded == []
    good_request(vision)
    assert set(loaded) == {(28, 28)}  # the spy does see real decodes


def _peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_server_process_stays_small_under_bombs(
    serve: Callable[[Path], Server], vision_config: Callable[..., Path]
) -> None:
    server = serve(vision_config())
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as http:
        warm = http.post("/score", json=score_split([b64(COLOUR_PNG)]))  # Pillow imported
        assert warm.status_code == 200, warm.text
        before = _peak_rss_kib(server.proc.pid)
        bombs = [real_bomb(), png_header(50000, 50000), jpeg_header_bomb(), png_header(3000, 3000)]
        for bomb in bombs * 3:  # 144M pixels each for the real one: 144 MB were it decoded
            response = http.post("/score", json=score_split([b64(bomb)]))
            assert response.status_code == 400
            assert response.json()["error"]["code"] == "image_too_large"
        grown_mib = (_peak_rss_kib(server.proc.pid) - before) / 1024
        assert grown_mib < 48, f"peak memory grew by {grown_mib:.0f} MiB"
        assert http.post("/score", json=score_split([GOOD])).json()[0]["label"] == "bright"


# --- log, mirror, health, metrics -------------------------------------------------------------
