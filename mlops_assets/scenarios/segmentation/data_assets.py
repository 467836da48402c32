"""The segmentation data estate: new microscopy tiles by day, and training sets of masks.

`raw_tiles` lands one day of "new tiles" (`dataset.production_frame`: holdout tiles of the
source image, rotated and flipped; from DRIFT_FROM on dimmer and flatter on purpose, a
simulated acquisition change). Their true masks are not part of the asset: they go to a
held-truth file apart, as a person looking at a tile would draw them.

`training_set` is a content-addressed version of the source image's tiles (split by
region, `dataset.training_splits`) plus every human-labeled production tile of the newest
labeled set: the tile's bytes from the lake (stored by digest when it was scored) and the
mask its label draws (`labels.mask_from_label`: a Label Studio brush region or a PNG mask;
a label that draws no mask fails the asset, naming the items). A share of the human tiles
goes to the holdout, so the gates judge on tiles like production's too. Only Label Studio
returns masks today: the local and Azure ML backends record a class per item, which this
asset refuses (see docs/architecture.md, "Vision: segmentation as a second task").
"""

from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets import naming
from mlops_assets.handoff import upstream_result
from mlops_assets.monitoring.inference_log import scored_image_path
from mlops_assets.scenarios.landing import land_days
from mlops_core.datasets import write_version
from mlops_core.labeling import held_out
from mlops_core.results import DatasetVersion
from resources.lake import DataLake

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

SCENARIO = "segmentation"
FIRST_DAY, LAST_DAY = "2024-07-01", "2024-07-10"
DRIFT_FROM = "2024-07-07"
TILES_PER_DAY = 24
RAW_KEY = naming.key(SCENARIO, "raw_tiles")
TRAINING_SET_KEY = naming.key(SCENARIO, "training_set")
LABELED_KEY = naming.key(SCENARIO, "labeled_set")
TRAINING_SET_ROOT = f"curated/{SCENARIO}/training_set"
daily = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_date="2024-07-11")


def raw_path(day: str) -> str:
    return f"raw/{SCENARIO}/tiles/{day}.parquet"


def truth_path(day: str) -> str:
    return f"landing/{SCENARIO}/held_truth/{day}.parquet"


def day_tiles(day: str) -> "tuple[pd.DataFrame, pd.DataFrame]":
    """(new tiles of `day` as PNG rows, their held truth); drifted from DRIFT_FROM on."""
    from mlops_assets.scenarios.segmentation import dataset, source
    from serving.scoring.images import digest

    drifted = day >= DRIFT_FROM
    frame = dataset.production_frame(day, count=TILES_PER_DAY, drifted=drifted)
    frame["digest"] = [digest(p) for p in frame["image"]]
    raw = frame[["tile_id", "digest", "image"]].assign(width=source.TILE, height=source.TILE)
    truth = frame[["tile_id", "digest", "mask", "objects"]].assign(drifted=drifted)
    return raw, truth


@dg.asset(
    key=RAW_KEY,
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=naming.DATA_ESTATE,
    kinds={"pandas", "parquet"},
    owners=naming.OWNERS,
    tags=naming.scenario_tags(SCENARIO),
)
def raw_tiles(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """New microscopy tiles arriving that day (PNG bytes by content digest), unlabeled (daily)."""
    return land_days(context, lake, day_tiles, raw_path, truth_path, "image", "tiles")


def batch_tiles(lake: DataLake, day: str) -> "pd.DataFrame":
    """The batch endpoint's input: a day of new tiles with their ids."""
    if not lake.exists(raw_path(day)):
        raise dg.Failure(f"no new tiles landed for {day}: materialize raw_tiles first")
    return lake.read_parquet(raw_path(day))


def labeled_tiles(lake: DataLake, labeled: DatasetVersion | None) -> "pd.DataFrame":
    """Human-labeled production tiles of a labeled set version as tile table rows (the
    tile's bytes, the mask its label draws, the mask's connected components as `objects`:
    a drawn mask has no instance ids); ValueError naming the items whose label draws none."""
    import io

    import numpy as np
    import pandas as pd
    from PIL import Image
    from scipy import ndimage

    from mlops_assets.scenarios.segmentation import dataset, labels, source
    from serving.scoring.images import encode_png

    columns = [*dataset.COLUMNS, "origin"]
    if labeled is None:
        return pd.DataFrame(columns=columns)
    items = lake.read_parquet(labeled.path("train"))
    rows, refused = [], []
    for item_id, ref, label in zip(items["item_id"], items["image"], items["label"], strict=True):
        png = lake.read_bytes(scored_image_path(SCENARIO, str(ref)))
        with Image.open(io.BytesIO(png)) as image:
            shape = (image.height, image.width)
        try:
            if shape != (source.TILE, source.TILE):
                raise ValueError(f"the tile is {shape}, training takes {source.TILE}x{source.TILE}")
            mask = labels.mask_from_label(label, shape)
        except ValueError as err:
            refused.append(f"{item_id}: {err}")
            continue
        drawn = encode_png(mask.astype(np.uint8) * 255)
        rows.append((str(item_id), png, drawn, int(ndimage.label(mask)[1]), "labeled"))
    if refused:
        raise ValueError(f"{len(refused)} label(s) draw no mask: " + "; ".join(refused[:5]))
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({"objects": "int64"})


class SegmentationTrainingSetConfig(dg.Config):
    labeled_holdout_share: float = 0.3
    """Share of human-labeled production tiles held out (by item id hash)."""


@dg.asset(
    key=TRAINING_SET_KEY,
    deps=[LABELED_KEY],
    group_name=naming.MODEL_DEVELOPMENT,
    kinds={"pandas", "parquet"},
    owners=naming.OWNERS,
    tags=naming.scenario_tags(SCENARIO),
)
def training_set(
    context: dg.AssetExecutionContext, config: SegmentationTrainingSetConfig, lake: DataLake
) -> dg.MaterializeResult:
    """Tiles of the source image plus the newest labeled set's human masks, train/holdout."""
    import pandas as pd

    from mlops_assets.scenarios.segmentation import dataset
    from mlops_assets.scenarios.vision.sheets import contact_sheet

    labeled = None
    if context.instance.get_latest_materialization_event(LABELED_KEY) is not None:
        labeled = upstream_result(context, LABELED_KEY, DatasetVersion)
    try:
        human = labeled_tiles(lake, labeled)
    except ValueError as err:
        raise dg.Failure(f"labeled set {labeled.version if labeled else ''}: {err}") from err
    holdout_mask = human["tile_id"].map(lambda i: held_out(str(i), config.labeled_holdout_share))
    base = {k: v.assign(origin="base") for k, v in dataset.training_splits().items()}
    train = pd.concat([base["train"], human[~holdout_mask]], ignore_index=True)
    holdout = pd.concat([base["holdout"], human[holdout_mask]], ignore_index=True)
    labeled_version = labeled.version if labeled else "none"
    manifest = {"partition_range": f"base+{labeled_version}", "labeled_set": labeled_version}
    version, written = write_version(
        lake, TRAINING_SET_ROOT, "segmentation-tiles", {"train": train, "holdout": holdout},
        manifest,
    )  # fmt: skip
    context.log.info(f"training set {version.version}: {len(train)}+{len(holdout)} tiles")
    sheet = contact_sheet([*train["image"].head(8), *train["mask"].head(8)])  # tiles over masks
    return dg.MaterializeResult(
        metadata={
            **version.to_metadata(),
            "labeled_set": labeled_version,
            "human_labeled_train": int((~holdout_mask).sum()),
            "human_labeled_holdout": int(holdout_mask.sum()),
            "newly_written": written,
            "objects_train": int(train["objects"].sum()),
            "sample": dg.MetadataValue.md(sheet),
        }
    )
