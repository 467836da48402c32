"""Scoring server for image models: answers, conversions, log, mirror, health.

Protects: both request shapes (/score `input_data`, /invocations `dataframe_split`,
`dataframe_records` and CSV) answer per image what the model's own pyfunc `predict`
answers, for grey and colour models and inputs of any reasonable size, mode and bit depth;
the inference log names images by digest with statistics, never their bytes, stored once
under `images/<hex>` before the answer; mirrored copies work the same; decoding runs off
the event loop; `/health` describes the image input. The models are
`tests/serving/image_model.py` (real MLflow pyfuncs, no torch).
"""

from __future__ import annotations

import base64
import io
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from serving.scoring.images import STAT_COLUMNS, digest
from serving.scoring.inference_log import IMAGES_DIR, image_file, iter_records
from serving.scoring.model import ServedModel
from serving.scoring.parsing import parse_azureml
from tests.serving.conftest import (
    AUTH,
    MLFLOW_PANDAS_WARNING,
    TestClient,
    app_client,
)
from tests.serving.images.cases import (
    BRIGHT,
    COLOUR_PNG,
    DARK_JPEG,
    GOOD,
    JSON,
    _wait_for,
    b64,
    encoded,
    flat,
    good_request,
    image_config,
    score_split,
)

pytestmark = pytest.mark.filterwarnings(
    f"ignore:{MLFLOW_PANDAS_WARNING}", "ignore::PIL.Image.DecompressionBombWarning"
)


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
