"""Scoring server for image models: same keys, shapes, log, mirror and metrics as tabular ones.

Protects the image contract (`serving.scoring.image_model`, docs/serving-clients.md "Images"):
- both request shapes (/score `input_data`, /invocations `dataframe_split`, `dataframe_records`
  and CSV) answer per image what the model's own pyfunc `predict` answers, for grey and
  colour models and grey or colour inputs of any reasonable size, mode and bit depth;
- every client mistake (not base64, not an image, truncated, bombs, other formats, wrong
  cells or columns, too many images, oversized bodies) is a 4xx naming it, and the server
  answers the next request; a bomb is refused from its header, its pixels never decoded;
- the inference log names images by digest with statistics, never their bytes, which are
  stored once under `images/<hex>` before the answer; mirrored copies work the same;
- decoding runs off the event loop; `/health` describes the image input;
- `mlflow models serve` answers the same model the same way.
The model is `tests/serving/image_model.py` (a real MLflow pyfunc, no torch).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from PIL import Image, ImageFile

from serving.scoring.image_model import ImageSpec
from serving.scoring.images import STAT_COLUMNS, digest
from serving.scoring.inference_log import IMAGES_DIR, image_file, iter_records
from serving.scoring.model import ModelLoadError, ServedModel
from serving.scoring.parsing import parse_azureml
from tests.serving.conftest import (
    AUTH,
    MLFLOW_PANDAS_WARNING,
    PRIMARY,
    ROOT,
    SECONDARY,
    Server,
    TestClient,
    app_client,
    free_port,
)
from tests.serving.image_model import GREY_CAP, save_image_model

pytestmark = pytest.mark.filterwarnings(
    f"ignore:{MLFLOW_PANDAS_WARNING}", "ignore::PIL.Image.DecompressionBombWarning"
)
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


# --- models, config, clients ----------------------------------------------------------------


@pytest.fixture(scope="session")
def image_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("image-models")
    return {
        "grey": save_image_model(root / "grey"),
        "rgb": save_image_model(root / "rgb", size=(32, 48), mode="RGB", max_pixels=2000 * 2000),
        "seg": save_image_model(root / "seg", size=(16, 16), task="segmentation", max_images=4),
    }


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


@pytest.fixture
def vision_config(tmp_path: Path, image_models: dict[str, Path]) -> Callable[..., Path]:
    def write(**overrides: Any) -> Path:
        path = tmp_path / "vision.json"
        path.write_text(json.dumps(image_config(tmp_path, image_models, **overrides)))
        return path

    return write


@pytest.fixture(scope="module")
def vision(
    image_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One in-process server for the module's tests that read no log."""
    path = tmp_path_factory.mktemp("vision") / "vision.json"
    path.write_text(json.dumps(image_config(path.parent, image_models)))
    with app_client(path) as client:
        yield client


@pytest.fixture(scope="module")
def pyfunc_answer(image_models: dict[str, Path]) -> Callable[[str, list[bytes]], list[Any]]:
    """What the model's own pyfunc `predict` answers (MLflow's loader, the model's decoding)."""
    import mlflow.pyfunc
    import pandas as pd

    loaded = {name: mlflow.pyfunc.load_model(str(path)) for name, path in image_models.items()}
    return lambda name, images: list(loaded[name].predict(pd.DataFrame({"image": images})))


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


# --- answers ----------------------------------------------------------------------------------

SHAPES: dict[str, tuple[str, Callable[[list[str]], Any]]] = {
    "score_input_data_split": ("/score", score_split),
    "score_input_data_records": ("/score", lambda c: {"input_data": [{"image": x} for x in c]}),
    "invocations_dataframe_split": (
        "/invocations",
        lambda c: {"dataframe_split": {"columns": ["image"], "data": [[x] for x in c]}},
    ),
    "invocations_dataframe_records": (
        "/invocations",
        lambda c: {"dataframe_records": [{"image": x} for x in c]},
    ),
    "invocations_csv": ("/invocations", lambda c: "image\r\n" + "\r\n".join(c) + "\r\n"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_request_shape_answers_per_image(
    vision: TestClient, pyfunc_answer: Callable[..., list[Any]], shape: str
) -> None:
    path, build = SHAPES[shape]
    images = [BRIGHT, DARK_JPEG, COLOUR_PNG, encoded(flat(0.9, (300, 200)))]
    body = build([b64(i) for i in images])
    if isinstance(body, str):
        response = vision.post(path, content=body, headers={**AUTH, "content-type": "text/csv"})
    else:
        response = vision.post(path, json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    answer = response.json() if path == "/score" else response.json()["predictions"]
    assert answer == pyfunc_answer("grey", images)
    assert [a["label"] for a in answer] == ["bright", "dark", "dark", "bright"]
    assert answer[0]["probability"] == pytest.approx(0.8, abs=0.01)
    assert response.headers["azureml-model-deployment"] == "grey"


SOURCES = {
    "grey_28x28_png": encoded(flat(0.8)),
    "grey_300x200_png": encoded(flat(0.8, (300, 200))),
    "rgb_28x28_png": encoded(flat(0.8, mode="RGB")),
    "rgb_300x200_png": encoded(flat(0.8, (300, 200), "RGB")),
    "rgba_300x200_png": encoded(flat(0.8, (300, 200), "RGBA")),
    "palette_64x64_png": encoded(flat(0.8, (64, 64), "P")),
    "grey_16bit_40x30_png": encoded(flat(0.8, (40, 30), "I;16")),
    "grey_28x28_jpeg": encoded(flat(0.8), "JPEG"),
    "rgb_300x200_jpeg": encoded(flat(0.8, (300, 200), "RGB"), "JPEG"),
    "cmyk_300x200_jpeg": encoded(flat(0.8, (300, 200), "CMYK"), "JPEG"),
}


@pytest.mark.parametrize("deployment", ["grey", "rgb"])
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_any_mode_and_size_is_converted_to_the_model_input(
    vision: TestClient, deployment: str, source: str
) -> None:
    response = vision.post(
        "/score",
        json=score_split([b64(SOURCES[source])]),
        headers={**AUTH, "azureml-model-deployment": deployment},
    )
    assert response.status_code == 200, response.text
    assert response.json()[0]["label"] == "bright"
    assert response.json()[0]["probability"] == pytest.approx(0.8, abs=0.02)


def test_segmentation_answers_a_mask_and_an_object_count(vision: TestClient) -> None:
    scene = np.zeros((200, 300), dtype=np.uint8)
    scene[20:90, 30:120] = scene[120:180, 180:280] = 255  # two bright boxes
    body = score_split([b64(encoded(Image.fromarray(scene)))])
    response = vision.post("/score", json=body, headers={**AUTH, "azureml-model-deployment": "seg"})
    assert response.status_code == 200, response.text
    (answer,) = response.json()
    assert answer["objects"] == 2
    mask = Image.open(io.BytesIO(base64.b64decode(answer["mask"])))
    assert (mask.format, mask.size) == ("PNG", (16, 16))


def test_mlflow_payload_helper_mime_base64_is_read(
    vision: TestClient, pyfunc_answer: Callable[..., list[Any]]
) -> None:
    import pandas as pd
    from mlflow.models import convert_input_example_to_serving_input

    images = [COLOUR_PNG, DARK_JPEG]
    # MLflow's payload helper (also what a model's serving_input_example.json holds)
    # writes bytes as MIME base64: lines of 76 characters, each ending in a newline.
    body = convert_input_example_to_serving_input(pd.DataFrame({"image": images}))
    assert body is not None and "\\n" in body
    response = vision.post("/invocations", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pyfunc_answer("grey", images)


def test_requests_are_batched_like_single_calls(image_models: dict[str, Path]) -> None:
    model = ServedModel(image_models["rgb"])
    tables = [
        parse_azureml(score_split([b64(x) for x in images]))
        for images in ([BRIGHT], [DARK_JPEG, COLOUR_PNG], [BRIGHT, BRIGHT, DARK_JPEG])
    ]
    inputs = [({"image": model.decode_images(t).pixels}, t.nrows) for t in tables]
    assert model.predict_arrays(inputs) == [model.predict(a, n) for a, n in inputs]
    assert model.describe()["predict_fn"] == "predict_pixels"


# --- client mistakes --------------------------------------------------------------------------

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


def test_inference_log_names_images_by_digest_and_stores_them_once(
    vision_config: Callable[..., Path], tmp_path: Path
) -> None:
    log_dir = tmp_path / "inference_log"
    images = [BRIGHT, DARK_JPEG, BRIGHT]
    with app_client(vision_config()) as client:
        response = client.post(
            "/score",
            json=score_split([b64(x) for x in images]),
            headers={**AUTH, "x-request-id": "images-1"},
        )
        assert response.status_code == 200, response.text
        # Stored before the answer: no waiting here.
        for data in (BRIGHT, DARK_JPEG):
            assert image_file(log_dir, digest(data)).read_bytes() == data
    expected_files = sorted(digest(x).removeprefix("sha256:") for x in (BRIGHT, DARK_JPEG))
    assert sorted(os.listdir(log_dir / IMAGES_DIR)) == expected_files  # once each, no temp files
    (row,) = iter_records(log_dir)
    assert row["request_id"] == "images-1" and row["status"] == 200
    assert row["inputs"]["columns"] == ["image", *STAT_COLUMNS]
    data = row["inputs"]["data"]
    assert [r[0] for r in data] == [digest(x) for x in images]
    stats = [dict(zip(STAT_COLUMNS, r[1:], strict=True)) for r in data]
    assert (stats[1]["width"], stats[1]["height"]) == (300, 200)
    assert stats[0]["brightness"] == pytest.approx(0.8, abs=0.01) and stats[0]["contrast"] < 0.01
    assert row["outputs"] == response.json()
    text = "".join(p.read_text() for p in log_dir.glob("date=*/*.jsonl"))
    assert b64(BRIGHT)[:40] not in text and b64(DARK_JPEG)[:40] not in text


def test_mirrored_copies_are_scored_and_logged_by_digest(
    vision_config: Callable[..., Path], image_models: dict[str, Path], tmp_path: Path
) -> None:
    log_dir = tmp_path / "inference_log"
    deployments = image_config(tmp_path, {**image_models, "twin": image_models["grey"]})
    config = vision_config(
        deployments=deployments["deployments"],
        traffic={"grey": 100},
        mirror_traffic={"rgb": 100, "twin": 100},  # twin: same spec, reuses the live pixels
    )
    with app_client(config) as client:
        for i in range(3):
            response = client.post(
                "/invocations",
                json={"dataframe_records": [{"image": b64(COLOUR_PNG)}, {"image": GOOD}]},
                headers={**AUTH, "x-request-id": f"mirror-{i}"},
            )
            assert response.status_code == 200, response.text
        _wait_for(lambda: sum(r["mirror"] for r in iter_records(log_dir)) == 6)
        metrics = client.get("/metrics").text
    rows = list(iter_records(log_dir))
    live = {r["request_id"]: r for r in rows if not r["mirror"]}
    for row in (r for r in rows if r["mirror"]):
        assert row["status"] == 200 and len(row["outputs"]) == 2, row
        inputs = row["inputs"]
        assert [d[0] for d in inputs["data"]] == [digest(COLOUR_PNG), digest(BRIGHT)]
        if row["deployment"] == "twin":
            assert inputs == live[row["request_id"]]["inputs"]
            assert row["outputs"] == live[row["request_id"]]["outputs"]
    for name in ("rgb", "twin"):
        assert f'mirror_requests_total{{deployment="{name}",status="200"}} 3.0' in metrics
    assert 'model_batch_rows_total{deployment="grey"} 6.0' in metrics
    assert 'requests_total{deployment="grey",status="200"} 3.0' in metrics


def test_health_describes_the_image_input(vision: TestClient) -> None:
    described = vision.get("/health", headers=AUTH).json()["deployments"]
    assert described["grey"]["input_kind"] == "image"
    assert described["rgb"]["image"] == {
        "column": "image",
        "height": 32,
        "width": 48,
        "mode": "RGB",
        "max_pixels": 2000 * 2000,
        "max_images": (64 << 20) // (4 * 32 * 48 * 3),
        "task": "classification",
    }
    assert described["seg"]["image"]["task"] == "segmentation"
    assert described["seg"]["image"]["max_images"] == 4


def test_images_are_decoded_off_the_event_loop(
    vision: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import serving.scoring.image_model as image_model

    threads: list[str] = []
    decode = image_model.decode

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return decode(*args, **kwargs)

    monkeypatch.setattr(image_model, "decode", spy)
    good_request(vision)
    assert threads and all(name.startswith("decode") for name in threads), threads


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"image_mode": "CMYK"}, "image_mode"),
        ({"image_height": 0}, "image_height"),
        ({"image_width": "28"}, "image_width"),
        ({"max_pixels": None}, "max_pixels"),
        ({"max_images": True}, "max_images"),
        ({"task": "detection"}, "task"),
    ],
)
def test_malformed_image_metadata_is_refused_at_load(
    image_models: dict[str, Path], tmp_path: Path, change: dict[str, Any], problem: str
) -> None:
    path = shutil.copytree(image_models["grey"], tmp_path / "model")
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    mlmodel["metadata"].update(change)
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(ModelLoadError, match=problem):
        ServedModel(path)


def test_image_signature_must_be_one_binary_column() -> None:
    from serving.scoring.schema import InputSchema

    schema = InputSchema.from_signature_json('[{"name": "image", "type": "string"}]')
    with pytest.raises(ValueError, match="one binary column"):
        ImageSpec.from_mlmodel({"metadata": {"mlops_input": "image"}}, schema)


# --- processes ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_serving_loads_and_scores_an_image_model_without_torch(
    image_models: dict[str, Path],
) -> None:
    """torch comes with a model's own module when it needs it, never with the server."""
    check = (
        "import sys, base64, json; from serving.scoring.model import ServedModel; "
        "from serving.scoring.parsing import parse_azureml; "
        f"m = ServedModel({str(image_models['grey'])!r}); "
        f"t = parse_azureml({json.dumps(score_split([GOOD]))}); "
        "print(m.predict({'image': m.decode_images(t).pixels}, 1)); "
        "assert 'torch' not in sys.modules, 'serving imported torch'"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "bright" in result.stdout


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_mlflow_models_serve_answers_the_same(
    image_models: dict[str, Path], vision: TestClient, tmp_path: Path
) -> None:
    """MLflow's server base64-decodes `binary` columns itself (`base64.decodebytes`) before
    `predict`; the model's `predict` also takes base64 text for direct pyfunc calls."""
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # it execs `uvicorn`
        "PYTHONPATH": str(ROOT),  # the pickled model class lives in tests.serving
    }
    command = [str(bin_dir / "mlflow"), "models", "serve", "-m", str(image_models["grey"])]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "-w", "1"]
    with open(tmp_path / "mlflow-serve.log", "wb") as log:
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the uvicorn child stops with it
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "mlflow-serve.log").read_text()
            assert time.monotonic() < deadline, "mlflow models serve did not start"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        images = [b64(x) for x in (BRIGHT, DARK_JPEG, COLOUR_PNG)]
        body = {"dataframe_split": {"columns": ["image"], "data": [[x] for x in images]}}
        theirs = httpx.post(f"{url}/invocations", json=body, timeout=30)
        assert theirs.status_code == 200, theirs.text
        ours = vision.post("/invocations", json=body, headers=AUTH)
        assert theirs.json() == ours.json()
        # A bad image is a 400 there too (MLflow words it generically).
        bad = {"dataframe_split": {"columns": ["image"], "data": [[b64(b"hello")]]}}
        assert httpx.post(f"{url}/invocations", json=bad, timeout=30).status_code == 400
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group we started, by its id
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
