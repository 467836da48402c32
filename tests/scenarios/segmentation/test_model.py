"""The tiny U-Net, its metrics and its pyfunc wrapper, on synthetic discs with exact masks."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest

from mlops_assets.scenarios.segmentation import dataset
from mlops_assets.scenarios.segmentation.model import DEFAULT_PARAMS
from mlops_core import segmentation_model as seg
from serving.scoring.errors import InputError
from serving.scoring.images import encode_png

QUICK = {**DEFAULT_PARAMS, "epochs": 20, "base_channels": 4, "min_object_pixels": 4}


def discs(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Noisy images of 1-3 brighter non-touching discs under a random illumination ramp (so
    no global grey threshold separates them), their exact masks and disc counts."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images, masks, counts = [], [], []
    for _ in range(n):
        mask = np.zeros((size, size), bool)
        placed = 0
        for _ in range(int(rng.integers(1, 4))):
            r = int(rng.integers(3, 6))
            cy, cx = rng.integers(r + 1, size - r - 1, size=2)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            grown = (yy - cy) ** 2 + (xx - cx) ** 2 <= (r + 2) ** 2
            if not (grown & mask).any():  # keep discs apart, so components = discs
                mask |= disc
                placed += 1
        angle = rng.uniform(0, 2 * np.pi)
        slope = (np.cos(angle) * (xx - size / 2) + np.sin(angle) * (yy - size / 2)) / size
        ramp = 0.25 + 0.5 * slope  # 0 to 0.5 across the image, in a random direction
        image = ramp + 0.3 * mask + rng.normal(0, 0.05, (size, size))
        images.append(np.clip(image, 0, 1).astype(np.float32))
        masks.append(mask)
        counts.append(placed)
    return np.stack(images), np.stack(masks), counts


@pytest.fixture(scope="module")
def trained() -> seg.SegmentationModel:
    images, masks, _ = discs(48)
    return seg.train(images, masks, QUICK)


def test_metrics_are_exact_on_known_masks():
    truth = np.zeros((2, 4, 4), bool)
    truth[0, :2] = True  # 8 pixels in the first image, none in the second
    assert seg.mask_metrics(truth, truth) == {
        "iou": 1.0, "dice": 1.0, "pixel_accuracy": 1.0, "foreground_rate": 0.25,
    }  # fmt: skip
    empty = np.zeros_like(truth)
    assert seg.mask_metrics(empty, truth)["iou"] == 0.0
    assert seg.mask_metrics(empty, truth)["dice"] == 0.0
    assert seg.mask_metrics(empty, truth)["pixel_accuracy"] == 0.75
    assert seg.mask_metrics(empty, empty)["iou"] == seg.mask_metrics(empty, empty)["dice"] == 1.0
    half = np.zeros_like(truth)
    half[0, 0] = True  # 4 of the 8 true pixels, nothing else
    got = seg.mask_metrics(half, truth)
    assert got["iou"] == 0.5 and got["dice"] == pytest.approx(2 / 3)
    assert got["pixel_accuracy"] == 28 / 32
    with pytest.raises(ValueError, match="shape"):
        seg.mask_metrics(half[:1], truth)


def test_clean_mask_drops_specks_and_counts_components():
    mask = np.zeros((10, 10), bool)
    mask[0:3, 0:3] = True  # 9 pixels
    mask[6:9, 6:9] = True
    mask[0, 9] = True  # a 1-pixel speck
    cleaned, count = seg.clean_mask(mask, min_pixels=4)
    assert count == 2 and cleaned.sum() == 18 and not cleaned[0, 9]
    assert seg.clean_mask(mask, min_pixels=1)[1] == 3
    assert seg.clean_mask(np.zeros((4, 4), bool), 4)[1] == 0


def test_params_must_be_known_and_complete():
    images, masks, _ = discs(2)
    with pytest.raises(ValueError, match="unknown hyperparameters \\['depth'\\]"):
        seg.train(images, masks, {**QUICK, "depth": 3})
    with pytest.raises(ValueError, match="missing \\['seed'\\]"):
        seg.train(images, masks, {k: v for k, v in QUICK.items() if k != "seed"})


def test_the_tiny_unet_beats_trivial_baselines_on_unseen_discs(trained):
    images, masks, counts = discs(24, seed=1)
    predicted, predicted_counts = trained.predict_masks(images)
    iou = seg.mask_metrics(predicted, masks)["iou"]
    all_foreground = seg.mask_metrics(np.ones_like(masks), masks)["iou"]
    assert iou > 0.8 > all_foreground
    # the classical baseline: the best single grey threshold, chosen with the answers known
    best_threshold = max(
        seg.mask_metrics(images > t, masks)["iou"] for t in np.linspace(0.05, 0.95, 91)
    )
    assert iou > best_threshold + 0.2
    assert np.mean(np.asarray(predicted_counts) == np.asarray(counts)) > 0.8


def test_training_is_deterministic():
    images, masks, _ = discs(8)
    params = {**QUICK, "epochs": 2}
    a, b = seg.train(images, masks, params), seg.train(images, masks, params)
    assert a.state.keys() == b.state.keys()
    assert all(np.array_equal(a.state[k], b.state[k]) for k in a.state)


def test_predict_pixels_returns_png_masks_and_counts(trained):
    images = discs(3, seed=2)[0]
    out = trained.predict_pixels(images)
    assert [sorted(o) for o in out] == [["mask", "objects"]] * 3
    decoded = dataset.decode_masks([o["mask"] for o in out])
    assert decoded.shape == images.shape
    assert [o["objects"] for o in out] == [seg.clean_mask(m, 1)[1] for m in decoded]
    raw = base64.b64decode(out[0]["mask"])
    import io

    from PIL import Image

    assert set(np.unique(np.asarray(Image.open(io.BytesIO(raw))))) <= {0, 255}


def test_pyfunc_predict_decodes_bytes_and_base64_alike(trained):
    images, _, _ = discs(2, seed=3)
    pngs = [encode_png(image) for image in images]
    as_bytes = trained.predict(None, pd.DataFrame({"image": pngs}))
    as_text = trained.predict(
        None, pd.DataFrame({"image": [base64.b64encode(p).decode() for p in pngs]})
    )
    assert as_bytes == as_text
    assert as_bytes == trained.predict_pixels(dataset.decode_images(pngs, (32, 32))[0])
    assert trained.predict(None, pd.DataFrame({"image": []})) == []


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b"GIF89a not a png", "not_an_image"),
        ("%%% not base64", "not_an_image"),
        (7, "not_an_image"),
    ],
)
def test_pyfunc_predict_refuses_bad_images_with_input_error(trained, value, code):
    good = encode_png(discs(1)[0][0])
    with pytest.raises(InputError) as err:
        trained.predict(None, pd.DataFrame({"image": [good, value]}))
    assert err.value.code == code and "row 1" in err.value.message


def test_pyfunc_predict_needs_an_image_column(trained):
    with pytest.raises(InputError) as err:
        trained.predict(None, pd.DataFrame({"pixels": [b""]}))
    assert err.value.code == "missing_column"


def test_a_mask_does_not_depend_on_the_images_scored_with_it(trained):
    """The server micro-batches requests: an image's answer must be the same alone or not."""
    images = discs(12, seed=4)[0]
    batched = trained.probabilities(images)
    alone = np.concatenate([trained.probabilities(images[i : i + 1]) for i in range(12)])
    np.testing.assert_array_equal(batched, alone)  # exactly: staging compares masks as text
    assert trained.predict_pixels(images[3:5]) == trained.predict_pixels(images)[3:5]
