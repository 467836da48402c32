"""How one stage reads what another produced (to be replaced by run-scoped hand-off)."""

from __future__ import annotations

import dagster as dg


def latest_metadata(context: dg.AssetExecutionContext, key: dg.AssetKey) -> dict:
    """Plain-valued metadata of `key`'s latest materialization; fails if there is none."""
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        raise dg.Failure(
            f"{key.to_user_string()} has never been materialized; materialize it first"
        )
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
