"""The vision data estate: new images by day, and training sets built from labeled images.

`raw_images` lands one day of "new images" (the held-out Fashion-MNIST test
images, 500 a day; from DRIFT_FROM on they are washed out on purpose, a
simulated camera change). The true classes of new images are not part of the
asset: they go to a held-truth file that only the simulated annotator reads,
as a person looking at the image would know them.

`training_set` is a content-addressed version of base labeled images (the
Fashion-MNIST training split) plus every human-labeled production image of the
labeled set; a share of the human labels goes to the holdout, so the gates judge
champion and challenger on images like production's too.
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

SCENARIO = "vision"
FIRST_DAY, LAST_DAY = "2024-06-01", "2024-06-20"
DRIFT_FROM = "2024-06-15"
IMAGES_PER_DAY = 500
RAW_KEY = naming.key(SCENARIO, "raw_images")
TRAINING_SET_KEY = naming.key(SCENARIO, "training_set")
LABELED_KEY = naming.key(SCENARIO, "labeled_set")
TRAINING_SET_ROOT = f"curated/{SCENARIO}/training_set"
daily = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_date="2024-06-21")


def raw_path(day: str) -> str:
    return f"raw/{SCENARIO}/images/{day}.parquet"


def truth_path(day: str) -> str:
    return f"landing/{SCENARIO}/held_truth/{day}.parquet"


def day_index(day: str) -> int:
    return daily.get_partition_keys().index(day)


def day_images(day: str) -> "tuple[pd.DataFrame, pd.DataFrame]":
    """(new images of `day` as PNG rows, their held truth); drifted from DRIFT_FROM on."""
    import pandas as pd

    from mlops_assets.scenarios.vision import source
    from serving.scoring.images import digest, encode_png

    test = source.load("test")
    per_day = min(IMAGES_PER_DAY, len(test.images) // len(daily.get_partition_keys()))
    start = day_index(day) * per_day
    images = test.images[start : start + per_day]
    drifted = day >= DRIFT_FROM
    if drifted:
        images = source.drift(images)
    pngs = [encode_png(im) for im in images]
    ids = [f"{day}-{i:04d}" for i in range(len(pngs))]
    digests = [digest(p) for p in pngs]
    raw = pd.DataFrame({"image_id": ids, "digest": digests, "png": pngs})
    raw["width"], raw["height"] = images.shape[2], images.shape[1]
    labels = [test.classes[i] for i in test.labels[start : start + per_day]]
    truth = pd.DataFrame({"image_id": ids, "digest": digests, "label": labels, "drifted": drifted})
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
def raw_images(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """New images arriving that day (PNG bytes by content digest), unlabeled (daily)."""
    return land_days(context, lake, day_images, raw_path, truth_path, "png", "images")


def batch_images(lake: DataLake, day: str) -> "pd.DataFrame":
    """The batch endpoint's input: a day of new images with their ids."""
    if not lake.exists(raw_path(day)):
        raise dg.Failure(f"no new images landed for {day}: materialize raw_images first")
    return lake.read_parquet(raw_path(day))


def read_split(lake: DataLake, path: str) -> "pd.DataFrame":
    return lake.read_parquet(path)


class VisionTrainingSetConfig(dg.Config):
    base_images: int = 10_000
    """Images of the Fashion-MNIST training split to train on."""
    holdout_images: int = 2_000
    labeled_holdout_share: float = 0.3
    """Share of human-labeled production images held out (by item id hash)."""


def base_frame(start: int, count: int) -> "pd.DataFrame":
    import pandas as pd

    from mlops_assets.scenarios.vision import source
    from serving.scoring.images import encode_png

    train = source.load("train")
    images = train.images[start : start + count]
    return pd.DataFrame(
        {
            "image_id": [f"base-{i}" for i in range(start, start + len(images))],
            "png": [encode_png(im) for im in images],
            "label": [train.classes[i] for i in train.labels[start : start + count]],
            "origin": "base",
        }
    )


def base_images_available() -> int:
    from mlops_assets.scenarios.vision import source

    return len(source.load("train").labels)


def labeled_frame(lake: DataLake, labeled: DatasetVersion | None) -> "pd.DataFrame":
    """Human-labeled production images of a labeled set version, with their bytes."""
    import pandas as pd

    columns = ["image_id", "png", "label", "origin"]
    if labeled is None:
        return pd.DataFrame(columns=columns)
    items = lake.read_parquet(labeled.path("train"))
    pngs = [lake.read_bytes(scored_image_path(SCENARIO, d)) for d in items["image"]]
    return pd.DataFrame(
        {"image_id": items["item_id"], "png": pngs, "label": items["label"], "origin": "labeled"}
    )[columns]


@dg.asset(
    key=TRAINING_SET_KEY,
    deps=[LABELED_KEY],
    group_name=naming.MODEL_DEVELOPMENT,
    kinds={"pandas", "parquet"},
    owners=naming.OWNERS,
    tags=naming.scenario_tags(SCENARIO),
)
def training_set(
    context: dg.AssetExecutionContext, config: VisionTrainingSetConfig, lake: DataLake
) -> dg.MaterializeResult:
    """Base labeled images plus the newest labeled set's human labels, split train/holdout."""
    import pandas as pd

    labeled = None
    if context.instance.get_latest_materialization_event(LABELED_KEY) is not None:
        labeled = upstream_result(context, LABELED_KEY, DatasetVersion)
    human = labeled_frame(lake, labeled)
    holdout_mask = human["image_id"].map(lambda i: held_out(str(i), config.labeled_holdout_share))
    # the digits fallback has 1,257 training images: keep a fifth of them for the holdout
    base = min(config.base_images, int(base_images_available() * 0.8))
    train = pd.concat([base_frame(0, base), human[~holdout_mask]], ignore_index=True)
    holdout = pd.concat(
        [base_frame(base, config.holdout_images), human[holdout_mask]], ignore_index=True
    )
    labeled_version = labeled.version if labeled else "none"
    manifest = {"partition_range": f"base+{labeled_version}", "labeled_set": labeled_version}
    version, written = write_version(
        lake, TRAINING_SET_ROOT, "vision-images", {"train": train, "holdout": holdout}, manifest
    )
    context.log.info(f"training set {version.version}: {len(train)}+{len(holdout)} images")
    return dg.MaterializeResult(
        metadata={
            **version.to_metadata(),
            "labeled_set": labeled_version,
            "human_labeled_train": int((~holdout_mask).sum()),
            "human_labeled_holdout": int(holdout_mask.sum()),
            "newly_written": written,
            "label_counts": dg.MetadataValue.json(
                {str(k): int(v) for k, v in train["label"].value_counts().items()}
            ),
        }
    )
