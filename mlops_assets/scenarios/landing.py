"""Landing simulated new items by day, their held truth apart (vision, segmentation, NLP).

Each day's items go to the lake (images as PNG bytes by content digest, texts as
strings); the truth (a class, a mask) goes to a separate file that only simulated
annotators read, as a person labeling the item would know it. A partition range
lands in one run.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets import naming
from mlops_assets.partitions import partition_days
from resources.lake import DataLake

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd


def land_days(
    context: dg.AssetExecutionContext,
    lake: DataLake,
    make_day: Callable[[str], "tuple[pd.DataFrame, pd.DataFrame]"],
    raw_path: Callable[[str], str],
    truth_path: Callable[[str], str],
    image_column: str,
    noun: str,
    preview: Callable[["pd.DataFrame"], str] | None = None,
) -> dg.MaterializeResult:
    """Write each day of the run's range (items, held truth) and describe them for the UI;
    `preview` renders the last day's sample as markdown (default: a contact sheet of
    `image_column`'s first 16 images)."""
    from mlops_assets.scenarios.vision.sheets import contact_sheet

    days, count, drifted, raw = partition_days(context), 0, [], None
    for day in days:
        raw, truth = make_day(day)
        if raw.empty:
            raise dg.Failure(f"no {noun} for {day}: the source has none for that day")
        lake.write_parquet(truth_path(day), truth)
        lake.write_parquet(raw_path(day), raw)
        count += len(raw)
        drifted += [day] if bool(truth["drifted"].iloc[0]) else []
    assert raw is not None  # partition_days never returns an empty range
    return dg.MaterializeResult(
        metadata={
            noun: count,
            "partitions": len(days),
            "drifted_days": dg.MetadataValue.json(drifted),
            "path": dg.MetadataValue.path(lake.uri(raw_path(days[-1]))),
            "sample": dg.MetadataValue.md(
                preview(raw) if preview else contact_sheet(raw[image_column].head(16).tolist())
            ),
        }
    )


def daily_landing_defs(
    scenario: str, raw: dg.AssetsDefinition, training_set: dg.AssetsDefinition, noun: str
) -> dg.Definitions:
    """A scenario's own assets: new items by day (a job and a daily schedule landing them)
    and the training set built from base and human-labeled items."""
    data_job = dg.define_asset_job(
        f"{scenario}_data_job",
        selection=dg.AssetSelection.assets(raw.key),
        description=f"{scenario}: land a range of days of new {noun}",
        tags=naming.scenario_tags(scenario),
    )
    schedule = dg.build_schedule_from_partitioned_job(
        data_job, name=f"{scenario}_daily_ingest_schedule", hour_of_day=1
    )
    return dg.Definitions(assets=[raw, training_set], jobs=[data_job], schedules=[schedule])
