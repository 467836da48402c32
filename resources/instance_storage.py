"""Dagster's embedded instance storage with per-partition records written in batches.

A single-run backfill of N daily partitions writes N ASSET_MATERIALIZATION_PLANNED
events when the run is created and N ASSET_MATERIALIZATION events when the step
returns. Dagster hands each group to `store_event_batch` when the environment
variable `DAGSTER_EVENT_BATCH_SIZE` is above 0, but its SQLite event log stores a
batch one event (one transaction, one fsync) at a time: a year of days cost more
time than scoring it (bench/batch_bench.py). `BatchingSqliteStorage` is Dagster's
SQLite storage whose event log writes such a batch in one transaction per database
(the run's shard and the cross-run index), with the same rows as one-by-one writes.

deploy/dagster.yaml selects it through `instance_class: BatchingInstance`; the files stay
where Dagster's default SQLite storage keeps them (the instance folder), so an instance
created without this setting opens unchanged, with its history. On
PostgreSQL, dagster-postgres writes materialization batches (not planned events) in one
insert.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import DagsterInstance
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData

# Dagster reads the variable on every event; the processes that load this storage
# (webserver, daemon, run workers, the CLI) batch unless an operator set it.
EVENT_BATCH_SIZE = "1000"
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)

BATCHED = {
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
}


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """Writes a batch of one run's materialization (or planned) events in one transaction
    per database; anything else goes through Dagster's one-by-one path."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        kinds = {event.dagster_event_type for event in events}
        runs = {event.run_id for event in events}
        if len(events) < 2 or len(kinds) != 1 or not kinds <= BATCHED or len(runs) != 1:
            return super().store_event_batch(events)
        # Dagster's SQLite connections are already a transaction each
        with self.run_connection(next(iter(runs))) as conn:
            conn.execute(self.prepare_insert_event_batch(events))
        # The run's log holds the events now. Raising would make Dagster store them all
        # again one by one (its fallback for a failed batch), duplicating them there; so a
        # failed index batch (e.g. the index locked past SQLite's timeout) is retried an
        # event at a time, as Dagster's own path writes the index.
        try:
            self._index(events)
        except Exception:
            for event in events:
                self._index([event])

    def _index(self, events: Sequence[EventLogEntry]) -> None:
        """The cross-run index rows of `events`, in one transaction. The index keeps each
        event's own id (the tags point at it), so the inserts are one per event. An asset's
        row keeps its last event only: written once per asset, as dagster-postgres does."""
        with self.index_transaction() as conn:
            inserts = [conn.execute(self.prepare_insert_event(e)) for e in events]
            ids = [insert.inserted_primary_key[0] for insert in inserts]
            self._store_asset_event_tags(conn, events, ids)
            last = {
                event.dagster_event.asset_key: (event, i)
                for event, i in zip(events, ids, strict=True)
            }
            for event, event_id in last.values():
                self._store_asset_event(conn, event, event_id)


class BatchingSqliteStorage(DagsterSqliteStorage):
    """`DagsterSqliteStorage` (same `base_dir`, same files) with the batching event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data=inst_data)
        self._event_log_storage = BatchingSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Any) -> Any:
        return cls.from_local(inst_data=inst_data, **config_value)  # Dagster's names its class


class BatchingInstance(DagsterInstance):
    """Dagster's instance whose default storage is `BatchingSqliteStorage` in the instance's
    own folder (where Dagster's default SQLite storage keeps its files). A `storage:` in
    dagster.yaml (PostgreSQL) still takes precedence. An instance class, rather than a
    `storage:` entry, because only the instance class is told which folder it lives in."""

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> Mapping[str, ConfigurableClassData | None]:
        import yaml

        return {
            **InstanceRef.config_defaults(base_dir),
            "storage": ConfigurableClassData(
                __name__, BatchingSqliteStorage.__name__, yaml.dump({"base_dir": base_dir})
            ),
        }
