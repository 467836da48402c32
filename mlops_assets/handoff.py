"""How a stage gets what an upstream stage produced, safely under concurrent runs.

A value produced upstream in the same run is read from that run's own
materialization event (looked up by run id), never from "the latest
materialization", which another run may have written in between. Only when the
upstream asset did not run in this run (a stage launched on its own) does the
stage fall back to the newest materialization, and it says so in the log.
"""

from __future__ import annotations

from typing import TypeVar

import dagster as dg

from mlops_core.results import Result, ResultError

R = TypeVar("R", bound=Result)


def materialized_in_run(
    instance: dg.DagsterInstance, run_id: str, key: dg.AssetKey
) -> dg.AssetMaterialization | None:
    """The last materialization of `key` in run `run_id`, if that run produced one."""
    records = instance.get_records_for_run(
        run_id=run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    found = None
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.asset_key == key:
            found = event.event_specific_data.materialization
    return found


def upstream_result(context: dg.AssetExecutionContext, key: dg.AssetKey, cls: type[R]) -> R:
    """`cls` as `key` produced it in this run, else its newest materialization."""
    materialization = materialized_in_run(context.instance, context.run.run_id, key)
    if materialization is None:
        event = context.instance.get_latest_materialization_event(key)
        if event is None or event.asset_materialization is None:
            raise dg.Failure(
                f"{key.to_user_string()} has never been materialized; materialize it first"
            )
        context.log.info(
            f"{key.to_user_string()} did not run in this run: using its newest "
            f"materialization (run {event.run_id})"
        )
        materialization = event.asset_materialization
    try:
        return cls.from_metadata(materialization.metadata)
    except ResultError as err:
        raise dg.Failure(
            f"{key.to_user_string()}'s materialization is not a {cls.__name__}: {err}; "
            "re-materialize it with this version of the code"
        ) from err
