"""The segmentation spec's parts: codec, monitoring and labeling functions, mask labels, the
training set's human tiles, and the batch job's pickling (no Dagster run, no server)."""

from __future__ import annotations

import base64
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from mlops_assets.deployment.batch_predictions import batch_job
from mlops_assets.monitoring.inference_log import scored_image_path
from mlops_assets.scenarios.segmentation import SPEC, data_assets, dataset, labels, model
from mlops_core.codecs import mask_outputs
from mlops_core.datasets import write_version
from mlops_core.labeling import labeled_set_root
from resources.lake import LocalLake
from serving.scoring.images import digest, encode_png

# Label Studio's own encoder (label_studio_sdk.converter.brush.mask2rle) on an 8x8 mask with
# a 3x3 square at rows 2-4, columns 1-3 and one pixel at (6, 6), and on a 4x4 noisy mask
# (short runs: the encoder writes literal runs for them)
RLE_8X8 = [0, 0, 1, 0, 57, 27, 254, 67, 0, 183, 255, 132, 192, 45, 255, 225, 48, 11, 127, 249,
           28, 2, 63, 252, 70, 0]  # fmt: skip
NOISY_4X4 = [[1, 1, 0, 1], [0, 0, 1, 0], [1, 0, 1, 1], [0, 1, 0, 0]]
RLE_4X4 = [0, 0, 0, 64, 57, 27, 252, 255, 241, 128, 71, 255, 56, 4, 127, 241, 128, 71, 255, 24,
           4, 255, 241, 128, 71, 255, 56, 0]  # fmt: skip


def brush(rle: list[int]) -> str:
    """A label as `resources/labeling_studio.annotation_label` keeps a brush region."""
    return json.dumps({"brushlabels": ["nucleus"], "format": "rle", "rle": rle}, sort_keys=True)


def png_b64(mask: np.ndarray) -> str:
    return base64.b64encode(encode_png(mask.astype(np.uint8) * 255)).decode()


def test_brush_regions_decode_as_label_studio_encoded_them():
    square = np.zeros((8, 8), bool)
    square[2:5, 1:4] = True
    square[6, 6] = True
    np.testing.assert_array_equal(labels.mask_from_label(brush(RLE_8X8), (8, 8)), square)
    noisy = labels.mask_from_label(brush(RLE_4X4), (4, 4))
    np.testing.assert_array_equal(noisy, np.array(NOISY_4X4, bool))
    with pytest.raises(ValueError, match="64 pixels, the image 16"):
        labels.mask_from_label(brush(RLE_8X8), (4, 4))
    with pytest.raises(ValueError, match="ends in the middle"):
        labels.decode_brush_rle(RLE_8X8[:10])


def test_png_masks_decode_and_class_names_are_refused():
    mask = np.zeros((6, 6), bool)
    mask[1:3, 2:5] = True
    np.testing.assert_array_equal(labels.mask_from_label(png_b64(mask), (6, 6)), mask)
    uri = labels.DATA_URI + png_b64(mask)
    np.testing.assert_array_equal(labels.mask_from_label(uri, (6, 6)), mask)
    for bad, why in (("nucleus", "neither"), (3, "not int"), ('{"format": "png"}', "rle")):
        with pytest.raises(ValueError, match=why):
            labels.mask_from_label(bad, (6, 6))
    with pytest.raises(ValueError, match=r"\(6, 6\), the image \(4, 4\)"):
        labels.mask_from_label(png_b64(mask), (4, 4))


def test_mask_outputs_log_counts_and_foreground_never_the_mask():
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    out = mask_outputs([{"mask": png_b64(mask), "objects": 1},
                        {"mask": png_b64(np.zeros((4, 4), bool)), "objects": 0}])  # fmt: skip
    assert out == {"prediction": [1, 0], "foreground_fraction": [0.25, 0.0]}


def test_the_codec_sends_base64_tiles_and_builds_image_mistakes():
    tiles = dataset.production_frame("2024-07-01", count=3)
    batch = SPEC.codec.request_batch(tiles)
    assert list(batch.columns) == ["image"]
    assert [base64.b64decode(v) for v in batch["image"]] == list(tiles["image"])
    json.dumps(SPEC.codec.payload(batch))  # JSON carries the tiles as text
    assert {"not_base64", "decompression_bomb", "missing_column"} <= set(
        SPEC.codec.bad_inputs(batch)
    )
    assert SPEC.codec.kind == "image" and SPEC.codec.log_outputs is mask_outputs


def test_uncertainty_ranks_masks_far_from_the_usual_nucleus_share_first():
    logged = pd.DataFrame({"foreground_fraction": [0.22, 0.95, 0.0, 0.3]})
    assert list(np.argsort(-model.uncertainty(logged), kind="stable")) == [1, 2, 3, 0]
    train = dataset.training_splits()["train"]
    rate = dataset.decode_masks(train["mask"]).mean()
    assert abs(model.TYPICAL_FOREGROUND - rate) < 0.01


def test_log_performance_scores_counts_and_leaves_iou_unreported():
    assert model.log_performance([2, 3, 1], [2, 1, 1]) == {
        "objects_mae": pytest.approx(2 / 3), "objects_exact": pytest.approx(2 / 3),
    }  # fmt: skip
    assert model.log_performance([2], ["a mask, base64"]) == {}  # no mask in the log


def test_drift_columns_are_what_the_inference_log_holds():
    from serving.scoring.images import STAT_COLUMNS

    assert SPEC.monitoring.drift.numerical == (*STAT_COLUMNS, "prediction")
    assert SPEC.monitoring.drift.categorical == ()


def labeled_version(lake: LocalLake, items: list[tuple[str, bytes, object]]):
    frame = pd.DataFrame(
        {"item_id": [i for i, _, _ in items], "image": [digest(p) for _, p, _ in items],
         "label": [json.dumps(x) if isinstance(x, dict) else x for _, _, x in items]}
    )  # fmt: skip
    for _, png, _ in items:
        lake.write_bytes(scored_image_path("segmentation", digest(png)), png)
    version, _ = write_version(lake, labeled_set_root("segmentation"), "l", {"train": frame}, {})
    return version


def test_human_masks_become_tile_rows_for_training(tmp_path):
    lake = LocalLake(root=str(tmp_path))
    tiles = dataset.production_frame("2024-07-02", count=2)
    truth = dataset.decode_masks(tiles["mask"])
    version = labeled_version(lake, [
        ("r1:0", tiles["image"][0], png_b64(truth[0])),
        ("r1:1", tiles["image"][1], labels.DATA_URI + png_b64(truth[1])),
    ])  # fmt: skip
    rows = data_assets.labeled_tiles(lake, version)
    assert list(rows.columns) == [*dataset.COLUMNS, "origin"]
    assert list(rows["tile_id"]) == ["r1:0", "r1:1"] and set(rows["origin"]) == {"labeled"}
    assert list(rows["image"]) == list(tiles["image"])
    np.testing.assert_array_equal(dataset.decode_masks(rows["mask"]), truth)
    assert (rows["objects"] >= 1).all() and rows["objects"].dtype == np.int64
    assert data_assets.labeled_tiles(lake, None).empty


def test_a_label_that_draws_no_mask_is_refused_by_item(tmp_path):
    lake = LocalLake(root=str(tmp_path))
    tiles = dataset.production_frame("2024-07-02", count=2)
    small = encode_png(np.zeros((8, 8), np.float32))
    version = labeled_version(lake, [
        ("r2:0", tiles["image"][0], "nucleus"),
        ("r2:1", small, png_b64(np.zeros((8, 8), bool))),
    ])  # fmt: skip
    with pytest.raises(ValueError, match="2 label") as err:
        data_assets.labeled_tiles(lake, version)
    assert "r2:0: the label is neither" in str(err.value) and "r2:1: the tile is" in str(err.value)


def test_the_batch_job_pickles_with_the_spec_callables_by_reference(tmp_path):
    lake = LocalLake(root=str(tmp_path))
    job = batch_job(SPEC, lake, str(tmp_path / "model"), "1", "t0", "predictions.parquet")
    back = pickle.loads(pickle.dumps(job))
    assert (back.load, back.batch_items, back.batch_predict) == (
        model.load, data_assets.batch_tiles, model.batch_predict,
    )  # fmt: skip
    assert "mlops_assets.scenarios.segmentation.data_assets" in back.modules()


def test_every_brush_region_of_an_annotation_is_kept():
    from resources.labeling_studio import annotation_label

    region = {"type": "brushlabels", "value": json.loads(brush(RLE_8X8))}
    one = annotation_label([region], ["nucleus"])
    two = annotation_label([region, {"type": "brushlabels", "value": {**region["value"]}}], [])
    assert json.loads(one)["rle"] == RLE_8X8 and len(json.loads(two)["regions"]) == 2
    union = labels.mask_from_label(two, (8, 8))
    np.testing.assert_array_equal(union, labels.mask_from_label(one, (8, 8)))
    with pytest.raises(ValueError, match="no regions"):
        labels.mask_from_label(json.dumps({"regions": []}), (8, 8))
