"""The segmentation source: tiles, a leak-free split, simulated production, the tile table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlops_assets.scenarios.segmentation import dataset, source

ROOT = Path(__file__).resolve().parents[3]


def covered(origins: list[tuple[int, int]], shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for y, x in origins:
        mask[y : y + source.TILE, x : x + source.TILE] = True
    return mask


def test_source_image_is_the_stardist_sample():
    image, labels = source.load_image()
    assert image.shape == labels.shape == (512, 512)
    assert image.dtype == np.float32 and image.min() >= 0.0 and image.max() <= 1.0
    assert len(np.unique(labels)) - 1 == 125  # background plus 125 nuclei


def test_tile_origins_stay_inside_their_columns():
    origins = source.tile_origins(128, 200, 40, 150, tile=32, stride=16)
    assert origins and all(x >= 40 and x + 32 <= 150 and y + 32 <= 128 for y, x in origins)
    assert {x for _, x in origins} == {40, 56, 72, 88, 104}  # 120 + 32 > 150


def test_train_and_holdout_share_no_pixel_and_no_nucleus():
    image = source.load_image()[0]
    train_origins = source.tile_origins(512, 512, 0, source.HOLDOUT_X - source.GUARD)
    holdout_origins = source.tile_origins(512, 512, source.HOLDOUT_X, 512)
    train_area, holdout_area = (
        covered(train_origins, image.shape),
        covered(holdout_origins, (512, 512)),
    )
    assert not (train_area & holdout_area).any()
    assert holdout_area[:, source.HOLDOUT_X :].all()  # the whole right quarter is held out

    splits = source.split_tiles()
    assert (len(splits["train"]), len(splits["holdout"])) == (
        len(train_origins),
        len(holdout_origins),
    )
    train_nuclei = set(np.unique(splits["train"].labels)) - {0}
    holdout_nuclei = set(np.unique(splits["holdout"].labels)) - {0}
    assert train_nuclei and holdout_nuclei and not train_nuclei & holdout_nuclei
    assert not set(splits["train"].ids) & set(splits["holdout"].ids)


def test_tiles_carry_their_window_and_count_nuclei_by_instance():
    image, labels = source.load_image()
    holdout = source.split_tiles()["holdout"]
    y, x = 64, 416
    i = holdout.ids.index(f"y{y:03d}x{x:03d}")
    np.testing.assert_array_equal(holdout.images[i], image[y : y + 64, x : x + 64])
    window = labels[y : y + 64, x : x + 64]
    assert holdout.objects()[i] == len(set(np.unique(window)) - {0})


def test_production_tiles_are_seeded_by_day_and_the_drift_is_visible():
    a, b = source.production_tiles("2024-05-01"), source.production_tiles("2024-05-01")
    assert a.ids == b.ids and np.array_equal(a.images, b.images)
    assert source.production_tiles("2024-05-02").ids != a.ids
    drifted = source.production_tiles("2024-05-01", drifted=True)
    np.testing.assert_array_equal(drifted.labels, a.labels)  # same truth, other acquisition
    assert drifted.images.mean() > a.images.mean() + 0.2
    assert drifted.images.std() < a.images.std()
    # rotations and flips keep the holdout's pixels: each tile's sorted values match its source
    holdout = source.split_tiles()["holdout"]
    source_id = a.ids[0].split("/")[2]
    original = holdout.images[holdout.ids.index(source_id)]
    np.testing.assert_array_equal(np.sort(a.images[0], axis=None), np.sort(original, axis=None))


def test_tile_table_round_trips_through_png(tmp_path):
    paths = dataset.write_splits(tmp_path)
    import pandas as pd

    holdout = pd.read_parquet(paths["holdout"])
    assert list(holdout.columns) == list(dataset.COLUMNS)
    tiles = source.split_tiles()["holdout"]
    pixels, stats = dataset.decode_images(holdout["image"])
    assert np.abs(pixels - tiles.images).max() <= 0.5 / 255 + 1e-6  # 8-bit quantization only
    np.testing.assert_array_equal(dataset.decode_masks(holdout["mask"]), tiles.masks)
    np.testing.assert_array_equal(holdout["objects"].to_numpy(), tiles.objects())
    assert (stats["width"] == 64).all() and (stats["height"] == 64).all()


def test_bad_tile_bytes_raise_input_error():
    from serving.scoring.errors import InputError

    with pytest.raises(InputError) as err:
        dataset.decode_images([b"\x89PNG but not really"])
    assert err.value.code == "not_an_image" and "row 0" in err.value.message


def test_importing_the_scenario_modules_loads_no_step_library(tmp_path):
    code = (
        "import json, sys\n"
        "import mlops_assets.scenarios.segmentation.model\n"
        "import mlops_assets.scenarios.segmentation.dataset\n"
        "import mlops_assets.scenarios.segmentation.data_assets\n"
        "import mlops_assets.scenarios.segmentation.labels\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules} & "
        "{'torch', 'mlflow', 'pandas', 'scipy', 'tifffile', 'PIL'})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_training_splits_get_one_content_version_until_a_tile_changes():
    from mlops_core.datasets import content_version

    a, b = dataset.training_splits(), dataset.training_splits()
    assert content_version(a) == content_version(b)
    b["train"].loc[0, "image"] = b["train"].loc[1, "image"]
    assert content_version(a) != content_version(b)
