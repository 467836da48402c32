"""The vision scenario's parts: data source, simulated drift, codec, metrics, training entry point.

Protects: Fashion-MNIST and the digits fallback come through one code path with the
same shapes; the simulated drift moves the image statistics the drift test watches;
the logged pyfunc carries the scoring server's image contract and answers the same
through `predict` (base64 column) as through `predict_pixels`; the codec's client
mistakes and output columns; per-class recall.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_assets.scenarios.vision import SPEC, source
from mlops_assets.scenarios.vision import model as vision
from mlops_assets.scenarios.vision.data_assets import base_frame, day_images, held_out
from mlops_core.codecs import label_outputs
from serving.scoring.images import decode, encode_png, pixel_stats


@pytest.mark.parametrize("folder", [source.FASHION_DIR, Path("/nonexistent")])
def test_fashion_mnist_and_the_digits_fallback_share_one_shape(folder):
    if folder == source.FASHION_DIR and not source.fashion_available():
        pytest.skip("dataset-fashion-mnist is not installed (make install adds it where apt is)")
    test = source.load("test", folder)
    assert test.images.dtype == np.uint8 and test.images.shape[1:] == (28, 28)
    assert len(test.images) == len(test.labels) and len(test.classes) == 10
    assert set(np.unique(test.labels)) <= set(range(10))
    with pytest.raises(ValueError, match="split must be"):
        source.load("validation", folder)


def test_simulated_drift_moves_brightness_and_contrast():
    images = source.load("test").images[:200]
    before = pd.DataFrame([pixel_stats(im / 255.0) for im in images]).mean()
    after = pd.DataFrame([pixel_stats(im / 255.0) for im in source.drift(images)]).mean()
    assert after["brightness"] > before["brightness"] + 0.2
    assert after["contrast"] < before["contrast"] * 0.6


def test_a_day_of_new_images_keeps_its_truth_apart_and_is_stable():
    raw, truth = day_images("2024-06-03")
    assert "label" not in raw.columns and len(raw) == len(truth) > 0
    assert (raw["digest"] == truth["digest"]).all() and not truth["drifted"].any()
    again, _ = day_images("2024-06-03")
    assert again["digest"].tolist() == raw["digest"].tolist()  # same bytes, same addresses
    drifted_raw, drifted = day_images("2024-06-16")
    assert drifted["drifted"].all() and set(drifted_raw["digest"]).isdisjoint(raw["digest"])
    pixels, stats = decode(raw["png"].iloc[0], (28, 28))
    assert pixels.shape == (28, 28) and stats["width"] == 28


def test_held_out_share_is_deterministic_and_close_to_the_share():
    ids = [f"r{i}:0" for i in range(2000)]
    picked = [held_out(i, 0.3) for i in ids]
    assert picked == [held_out(i, 0.3) for i in ids]
    assert 0.25 < sum(picked) / len(ids) < 0.35


def test_label_outputs_become_prediction_and_confidence():
    columns = label_outputs(
        [{"label": "Bag", "probability": 0.9}, {"label": "Coat", "probability": 0.4}]
    )
    assert columns == {"prediction": ["Bag", "Coat"], "confidence": [0.9, 0.4]}
    logged = pd.DataFrame({"confidence": columns["confidence"]})
    assert vision.uncertainty(logged).tolist() == pytest.approx([0.1, 0.6])


def test_performance_reports_accuracy_and_recall_per_class():
    predictions = [
        {"label": "Bag", "probability": 0.9},
        {"label": "Bag", "probability": 0.6},
        "Coat",
    ]
    metrics = vision.performance(predictions, ["Bag", "Coat", "Coat"])
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["recall_Bag"] == 1.0 and metrics["recall_Coat"] == 0.5


def test_image_codec_names_the_client_mistakes_it_sends():
    frame = vision.request_frame(base_frame(0, 2))
    cases = SPEC.codec.bad_inputs(frame)
    assert {"not_base64", "not_an_image", "truncated_image", "decompression_bomb", "null_cell",
            "number_cell", "missing_column"} <= set(cases)  # fmt: skip
    body = json.loads(cases["truncated_image"][0])
    cell = base64.b64decode(body["input_data"]["data"][0][0])
    assert 0 < len(cell) < len(base64.b64decode(frame["image"].iloc[0]))


def test_training_logs_a_pyfunc_with_the_image_contract(tmp_path):
    import mlflow
    import yaml

    from mlops_assets.scenarios.vision import train

    frame = base_frame(0, 600)
    frame.iloc[:500].to_parquet(tmp_path / "train.parquet")
    frame.iloc[500:].to_parquet(tmp_path / "holdout.parquet")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment = mlflow.MlflowClient(uri).create_experiment("vision-test", str(tmp_path / "art"))
    result = train.run([
        "--train-uri", str(tmp_path / "train.parquet"),
        "--holdout-uri", str(tmp_path / "holdout.parquet"),
        "--tracking-uri", uri, "--experiment-id", experiment,
        "--params", json.dumps({"epochs": 1}),
    ])  # fmt: skip
    assert 0.0 <= result["accuracy_holdout"] <= 1.0 and result["train_rows"] == 500
    mlflow.set_tracking_uri(uri)
    local = mlflow.artifacts.download_artifacts(result["model_uri"], dst_path=str(tmp_path / "m"))
    meta = yaml.safe_load((Path(local) / "MLmodel").read_text())
    assert (
        meta["metadata"]["mlops_input"] == "image" and meta["metadata"]["task"] == "classification"
    )
    assert json.loads(meta["signature"]["inputs"]) == [
        {"type": "binary", "name": "image", "required": True}
    ]
    served = vision.load_model(local)
    holdout = frame.iloc[500:520]
    direct = vision.predict(served, holdout)
    via_request = vision.predict(served, vision.request_frame(holdout))
    assert direct == via_request and {"label", "probability"} == set(direct[0])
    assert all(r["label"] in served.classes and 0 < r["probability"] <= 1 for r in direct)
    grey_jpeg_like = encode_png(np.full((60, 40), 0.5))  # other size: resized to 28x28
    assert len(served.predict_pixels(np.stack([decode(grey_jpeg_like, served.size)[0]]))) == 1
