"""The segmentation training entry point end to end, against a throwaway MLflow sqlite store."""

from __future__ import annotations

import base64
import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from mlops_assets.scenarios.segmentation import dataset, train
from mlops_assets.scenarios.segmentation import model as seg_model
from mlops_core.monitoring.drift import ReferenceProfile
from mlops_core.segmentation_model import clean_mask
from serving.scoring.errors import InputError
from serving.scoring.images import STAT_COLUMNS, encode_png

TEST_PARAMS = {"epochs": 4, "base_channels": 4, "max_train_tiles": 48}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("segmentation")
    paths = dataset.write_splits(root / "dataset")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("segmentation", artifact_location=str(root / "artifacts"))
    result = train.run([
        "--train-uri", paths["train"], "--holdout-uri", paths["holdout"],
        "--dataset-name", "ds-test", "--tracking-uri", uri, "--experiment-id", experiment,
        "--params", json.dumps(TEST_PARAMS), "--tags", json.dumps({"scenario": "segmentation"}),
    ])  # fmt: skip
    # a local artifact store: the logged model's folder is the MLflow model a registry copies
    model_dir = client.get_logged_model(result["model_id"]).artifact_location
    return {"result": result, "client": client, "paths": paths, "model_dir": model_dir}


def test_run_logs_params_metrics_and_artifacts(trained):
    result, client = trained["result"], trained["client"]
    run = client.get_run(result["mlflow_run_id"])
    assert run.data.tags["scenario"] == "segmentation"
    assert run.data.params["epochs"] == "4" and run.data.params["train_rows"] == "150"
    for name in ("iou_holdout", "dice_holdout", "pixel_accuracy_holdout", "iou_train"):
        assert 0.0 <= run.data.metrics[name] <= 1.0
        assert run.data.metrics[name] == pytest.approx(result[name])
    assert result["holdout_rows"] == 45 and result["params"]["seed"] == 42
    names = {a.path for a in client.list_artifacts(result["mlflow_run_id"])}
    assert {"drift_reference.json", "holdout_tiles.png"} <= names
    assert base64.b64decode(result["plots"]["holdout_tiles.png"]).startswith(b"\x89PNG")
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {
        "ds-test:train",
        "ds-test:holdout",
    }


def test_drift_reference_profiles_image_statistics_and_objects(trained, tmp_path):
    run_id = trained["result"]["mlflow_run_id"]
    path = trained["client"].download_artifacts(run_id, "drift_reference.json", str(tmp_path))
    with open(path) as f:
        profile = ReferenceProfile.from_json(f.read())
    assert (*STAT_COLUMNS, "prediction") == seg_model.DRIFT_NUMERICAL  # inference log names
    assert list(profile.columns) == list(seg_model.DRIFT_NUMERICAL)
    assert all(c.kind == "numerical" for c in profile.columns.values())
    assert profile.n_rows == 150


def test_logged_model_carries_the_image_contract(trained):
    info = mlflow.models.Model.load(trained["model_dir"])  # the MLmodel file
    assert info.metadata == {
        "mlops_input": "image", "image_height": 64, "image_width": 64, "image_mode": "L",
        "max_pixels": 4096 * 4096, "task": "segmentation",
    }  # fmt: skip
    assert [(c.name, c.type.name) for c in info.signature.inputs.inputs] == [("image", "binary")]
    with open(f"{trained['model_dir']}/requirements.txt") as f:
        pinned = {line.split("==")[0] for line in f.read().split() if "==" in line}
    assert pinned == {"torch", "numpy", "pillow", "scipy", "mlflow"}


def test_logged_model_segments_base64_png_tiles(trained):
    model = seg_model.load(trained["model_dir"])
    holdout = pd.read_parquet(trained["paths"]["holdout"]).head(6)
    frame = pd.DataFrame({"image": [base64.b64encode(b).decode() for b in holdout["image"]]})
    out = model.predict(frame)
    assert len(out) == 6
    masks = dataset.decode_masks([o["mask"] for o in out])
    assert masks.shape == (6, 64, 64)
    min_pixels = int(seg_model.DEFAULT_PARAMS["min_object_pixels"])
    assert [o["objects"] for o in out] == [clean_mask(m, min_pixels)[1] for m in masks]
    assert all(o["objects"] >= 1 for o in out)  # every holdout tile here shows nuclei
    # any size is resized to the contract's 64x64
    big = encode_png(np.kron(dataset.decode_images(holdout["image"][:1])[0][0], np.ones((2, 2))))
    answer = model.predict(pd.DataFrame({"image": [big]}))[0]
    assert dataset.decode_masks([answer["mask"]]).shape == (1, 64, 64)


def test_spec_functions_agree_with_the_training_run(trained):
    model = seg_model.load(trained["model_dir"])
    holdout = pd.read_parquet(trained["paths"]["holdout"])
    scores = seg_model.score(model, holdout)
    assert scores["iou"] == pytest.approx(trained["result"]["iou_holdout"])
    assert scores["dice"] == pytest.approx(trained["result"]["dice_holdout"])
    predictions = seg_model.predict(model, holdout.head(5))
    rate = dataset.decode_masks([p["mask"] for p in predictions]).mean()
    assert seg_model.performance(predictions, predictions) == {
        "iou": 1.0, "dice": 1.0, "pixel_accuracy": 1.0, "foreground_rate": pytest.approx(rate),
    }  # fmt: skip
    table = seg_model.batch_predict(model, holdout.head(5))
    assert list(table.columns) == ["tile_id", "objects", "foreground_fraction", "mask"]
    assert list(table["tile_id"]) == list(holdout["tile_id"].head(5))


def test_logged_model_refuses_bad_image_bytes(trained):
    model = seg_model.load(trained["model_dir"])
    with pytest.raises(InputError) as err:
        model.predict(pd.DataFrame({"image": [b"definitely not an image"]}))
    assert err.value.code == "not_an_image"


def test_run_refuses_a_split_without_tile_columns(trained, tmp_path):
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"tile_id": ["a"], "image": [b""]}).to_parquet(bad)
    with pytest.raises(ValueError, match="lacks tile columns \\['mask', 'objects'\\]"):
        train.run([
            "--train-uri", str(bad), "--holdout-uri", trained["paths"]["holdout"],
            "--tracking-uri", "sqlite:///unused.db", "--experiment-id", "0",
        ])  # fmt: skip
