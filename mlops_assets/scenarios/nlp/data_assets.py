"""The NLP data estate: new review snippets by day, and training sets with labeled texts.

`raw_texts` lands one day of "new texts" (held-out Rotten Tomatoes snippets, a
fixed number a day; from DRIFT_FROM on, with the simulated vocabulary shift of
`source.drift`). Their true sentiment is not part of the asset: it goes to a
held-truth file, keyed by the text's digest, that only simulated annotators read.

`training_set` is a content-addressed version of the base labeled snippets plus
every human-labeled production text of the newest labeled set; a share of the
human labels goes to the holdout, so the gates also judge champion and challenger
on text like production's.
"""

import hashlib
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets import naming
from mlops_assets.handoff import upstream_result
from mlops_assets.scenarios.landing import land_days
from mlops_core.datasets import write_version
from mlops_core.labeling import held_out
from mlops_core.results import DatasetVersion
from resources.lake import DataLake

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

SCENARIO = "nlp"
FIRST_DAY, LAST_DAY = "2024-06-01", "2024-06-20"
DRIFT_FROM = "2024-06-15"
TEXTS_PER_DAY = 250
RAW_KEY = naming.key(SCENARIO, "raw_texts")
TRAINING_SET_KEY = naming.key(SCENARIO, "training_set")
LABELED_KEY = naming.key(SCENARIO, "labeled_set")
TRAINING_SET_ROOT = f"curated/{SCENARIO}/training_set"
COLUMNS = ["text_id", "text", "label", "origin"]
daily = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_date="2024-06-21")


def raw_path(day: str) -> str:
    return f"raw/{SCENARIO}/texts/{day}.parquet"


def truth_path(day: str) -> str:
    return f"landing/{SCENARIO}/held_truth/{day}.parquet"


def text_digest(text: str) -> str:
    """How a held-truth row names a text: what the inference log keeps is the text itself."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def day_texts(day: str) -> "tuple[pd.DataFrame, pd.DataFrame]":
    """(new texts of `day`, their held truth); vocabulary-shifted from DRIFT_FROM on."""
    import pandas as pd

    from mlops_assets.scenarios.nlp import source

    pool = source.splits()[2]
    days = daily.get_partition_keys()
    per_day = min(TEXTS_PER_DAY, len(pool) // len(days))
    start = days.index(day) * per_day
    part = pool.iloc[start : start + per_day]
    drifted = day >= DRIFT_FROM
    texts = source.drift(part["text"].tolist()) if drifted else part["text"].tolist()
    raw = pd.DataFrame({"text_id": part["text_id"].tolist(), "text": texts})
    truth = pd.DataFrame(
        {
            "text_id": raw["text_id"],
            "digest": [text_digest(t) for t in texts],
            "label": part["label"].tolist(),
            "drifted": drifted,
        }
    )
    return raw, truth


def text_preview(raw: "pd.DataFrame", rows: int = 8, width: int = 120) -> str:
    """A markdown table of the first texts, cut to `width` characters."""
    lines = ["| text_id | text |", "|---|---|"]
    for text_id, text in raw[["text_id", "text"]].head(rows).itertuples(index=False):
        cut = text if len(text) <= width else text[: width - 1] + "…"
        lines.append(f"| {text_id} | {cut.replace('|', '/')} |")
    return "\n".join(lines)


@dg.asset(
    key=RAW_KEY,
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=naming.DATA_ESTATE,
    kinds={"pandas", "parquet"},
    owners=naming.OWNERS,
    tags=naming.scenario_tags(SCENARIO),
)
def raw_texts(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """New review snippets arriving that day, unlabeled (daily)."""
    return land_days(context, lake, day_texts, raw_path, truth_path, "text", "texts", text_preview)


def batch_texts(lake: DataLake, day: str) -> "pd.DataFrame":
    """The batch endpoint's input: a day of new texts with their ids."""
    if not lake.exists(raw_path(day)):
        raise dg.Failure(f"no new texts landed for {day}: materialize raw_texts first")
    return lake.read_parquet(raw_path(day))


def read_split(lake: DataLake, path: str) -> "pd.DataFrame":
    return lake.read_parquet(path)


class NlpTrainingSetConfig(dg.Config):
    base_texts: int = 5_000
    """Labeled snippets of the base training pool to train on (6,000 at most)."""
    holdout_texts: int = 1_500
    labeled_holdout_share: float = 0.3
    """Share of human-labeled production texts held out (by item id hash)."""


def labeled_frame(lake: DataLake, labeled: DatasetVersion | None) -> "pd.DataFrame":
    """Human-labeled production texts of a labeled set version."""
    import pandas as pd

    if labeled is None:
        return pd.DataFrame(columns=COLUMNS)
    items = lake.read_parquet(labeled.path("train"))
    return pd.DataFrame(
        {"text_id": items["item_id"], "text": items["text"], "label": items["label"]}
    ).assign(origin="labeled")[COLUMNS]


@dg.asset(
    key=TRAINING_SET_KEY,
    deps=[LABELED_KEY],
    group_name=naming.MODEL_DEVELOPMENT,
    kinds={"pandas", "parquet"},
    owners=naming.OWNERS,
    tags=naming.scenario_tags(SCENARIO),
)
def training_set(
    context: dg.AssetExecutionContext, config: NlpTrainingSetConfig, lake: DataLake
) -> dg.MaterializeResult:
    """Base labeled snippets plus the newest labeled set's human labels, split train/holdout."""
    import pandas as pd

    from mlops_assets.scenarios.nlp import source

    if config.base_texts < 1 or config.holdout_texts < 1:
        raise dg.Failure("base_texts and holdout_texts must be positive")
    labeled = None
    if context.instance.get_latest_materialization_event(LABELED_KEY) is not None:
        labeled = upstream_result(context, LABELED_KEY, DatasetVersion)
    human = labeled_frame(lake, labeled)
    holdout_mask = human["text_id"].map(lambda i: held_out(str(i), config.labeled_holdout_share))
    base_train, base_holdout, _ = source.splits()
    base = base_train.head(config.base_texts)[["text_id", "text", "label"]].assign(origin="base")
    base_hold = base_holdout.head(config.holdout_texts)[["text_id", "text", "label"]]
    train = pd.concat([base, human[~holdout_mask]], ignore_index=True)
    holdout = pd.concat([base_hold.assign(origin="base"), human[holdout_mask]], ignore_index=True)
    labeled_version = labeled.version if labeled else "none"
    manifest = {"partition_range": f"base+{labeled_version}", "labeled_set": labeled_version}
    version, written = write_version(
        lake, TRAINING_SET_ROOT, "nlp-texts", {"train": train, "holdout": holdout}, manifest
    )
    context.log.info(f"training set {version.version}: {len(train)}+{len(holdout)} texts")
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
