"""The days a partitioned step works on, or one clear error when a run was launched without."""

import dagster as dg


def partition_days(context: dg.AssetExecutionContext) -> list[str]:
    """The run's partition keys; a run launched without a partition or range fails with what
    to pick, instead of Dagster's "Cannot access partition_key for a non-partitioned run"."""
    if not (context.has_partition_key or context.has_partition_key_range):
        raise dg.Failure(
            f"{context.job_name} works on days: launch it with a partition or a range "
            "(UI: the launchpad's partition picker; CLI: --partition 2013-01-01, or the tags "
            "dagster/asset_partition_range_start and dagster/asset_partition_range_end)"
        )
    return list(context.partition_keys)
