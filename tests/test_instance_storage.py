"""The batching SQLite storage records a single-run backfill exactly as Dagster's own does.

Same partitions materialized, same per-partition metadata, same planned events, same
partition statuses after a failed run; and the storage really receives the run's
per-partition events as one batch (so the setting that makes Dagster batch is in effect).
"""

from pathlib import Path

import dagster as dg
import pytest

from resources.instance_storage import BatchingSqliteEventLogStorage
from tests.conftest import ROOT

DAYS = dg.DailyPartitionsDefinition(start_date="2013-01-01", end_date="2013-03-01")
KEY = dg.AssetKey("daily_rows")


@dg.asset(key=KEY, partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def daily_rows(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    if context.partition_keys[0] >= "2013-02-01":
        raise dg.Failure("February fails")
    for key in context.partition_keys:
        context.add_asset_metadata({"rows": int(key[-2:])}, partition_key=key)
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})


COPY_KEY = dg.AssetKey("daily_copy")


@dg.asset(
    key=COPY_KEY, deps=[KEY], partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run()
)
def daily_copy() -> None:
    """A second asset in the run: its planned events share the batch with daily_rows'."""


JOB = dg.Definitions(assets=[daily_rows, daily_copy]).resolve_implicit_global_asset_job_def()
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def backfill(instance: dg.DagsterInstance, first: str, last: str) -> bool:
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    result = JOB.execute_in_process(
        instance=instance, tags=tags, run_config=QUIET, raise_on_error=False
    )
    return result.success


def record(instance: dg.DagsterInstance) -> dict:
    """What a person sees of the asset: per-partition metadata, planned events, statuses."""
    materializations = instance.fetch_materializations(KEY, limit=1000).records
    planned = instance.fetch_planned_materializations(KEY, limit=1000).records
    keys = DAYS.get_partition_keys()
    newest_run = instance.get_run_records(limit=1)[0].dagster_run.run_id
    assets = {
        record.asset_entry.asset_key.to_user_string(): (
            record.asset_entry.last_materialization_record.partition_key,
            record.asset_entry.last_run_id == newest_run,
        )
        for record in instance.get_asset_records([KEY, COPY_KEY])
    }
    return {
        "assets": assets,
        "metadata": sorted(
            (r.partition_key, r.asset_materialization.metadata["rows"].value)
            for r in materializations
        ),
        "planned": sorted(r.partition_key for r in planned),
        "materialized": sorted(instance.get_materialized_partitions(KEY)),
        # the tag names per event (data versions hash the run id, which differs)
        "tags": sorted(tuple(sorted(t)) for t in instance.get_event_tags_for_asset(KEY)),
        "status": instance.get_status_by_partition(KEY, keys, DAYS),
    }


def run_both_ranges(home: Path) -> dict:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert backfill(instance, "2013-01-01", "2013-01-31")
        assert not backfill(instance, "2013-02-01", "2013-02-28")
        return record(instance)


@pytest.fixture
def batching_home(tmp_path) -> Path:
    """An instance configured as deploy/dagster.yaml configures it."""
    home = tmp_path / "batching"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
    return home


def test_batched_records_match_dagsters_own(tmp_path, batching_home):
    plain_home = tmp_path / "plain"
    plain_home.mkdir()
    (plain_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

    batched = run_both_ranges(batching_home)
    plain = run_both_ranges(plain_home)

    assert batched == plain
    assert len(batched["metadata"]) == 31 and batched["metadata"][0] == ("2013-01-01", 1)
    assert len(batched["planned"]) == 59
    # the last materialization is January's; the failed February run planned both assets
    assert batched["assets"] == {
        "daily_rows": ("2013-01-31", True),
        "daily_copy": ("2013-01-31", True),
    }
    failed = [k for k, s in batched["status"].items() if s == dg.AssetPartitionStatus.FAILED]
    assert failed == DAYS.get_partition_keys()[31:]


def test_a_run_hands_its_partition_events_over_as_batches(batching_home, monkeypatch):
    batches: list[tuple[str, int]] = []
    original = BatchingSqliteEventLogStorage.store_event_batch

    def spy(self, events):
        batches.append((events[0].dagster_event_type.value, len(events)))
        return original(self, events)

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "store_event_batch", spy)
    with dg.DagsterInstance.from_config(str(batching_home)) as instance:
        assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
        assert backfill(instance, "2013-01-01", "2013-01-31")
    # planned: both assets' days in one batch; materialized: each asset's days in one
    assert sorted(batches) == [
        ("ASSET_MATERIALIZATION", 31),
        ("ASSET_MATERIALIZATION", 31),
        ("ASSET_MATERIALIZATION_PLANNED", 62),
    ]


def test_the_instance_keeps_its_files_in_its_own_folder(tmp_path, monkeypatch):
    """An instance made by Dagster's default settings opens with its history under this
    one, and its files stay in its own folder whatever DAGSTER_HOME says."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert backfill(instance, "2013-01-01", "2013-01-10")
        (before,) = [r.dagster_run.run_id for r in instance.get_run_records()]
    (home / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
        assert [r.dagster_run.run_id for r in instance.get_run_records()] == [before]
        assert backfill(instance, "2013-01-11", "2013-01-20")
        assert len(instance.get_materialized_partitions(KEY)) == 20
    assert not (tmp_path / "elsewhere").exists()
    assert (home / "history" / "runs.db").is_file()


def test_a_failed_index_write_does_not_store_the_events_twice(batching_home, monkeypatch):
    """The run's log is written first; an index batch that fails (SQLite locked past its
    timeout) is retried an event at a time, never by Dagster storing the batch again."""
    original, failures = BatchingSqliteEventLogStorage._index, []

    def flaky(self, events):
        if len(events) > 1 and not failures:
            failures.append(len(events))
            raise RuntimeError("database is locked")
        return original(self, events)

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "_index", flaky)
    with dg.DagsterInstance.from_config(str(batching_home)) as instance:
        assert backfill(instance, "2013-01-01", "2013-01-10")
        (run,) = instance.get_run_records()
        kinds = [e.dagster_event_type for e in instance.all_logs(run.dagster_run.run_id)]
        assert failures, "no batch reached the index"
        assert kinds.count(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED) == 20
        assert kinds.count(dg.DagsterEventType.ASSET_MATERIALIZATION) == 20
        assert len(instance.get_materialized_partitions(KEY)) == 10
        assert len(instance.fetch_materializations(KEY, limit=100).records) == 10
