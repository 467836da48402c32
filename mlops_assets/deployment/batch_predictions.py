"""Generic batch endpoint: daily partitions scored with the prod champion.

A partition range runs in one process (single-run backfill): the champion is
loaded once and each day is scored vectorized in one call, then written to
`predictions/<scenario>/<day>.parquet`, replacing that day's file, so a
backfill never writes a day twice and re-running it is idempotent.
"""

import time
from datetime import date, timedelta

import dagster as dg

from mlops_assets import naming
from mlops_core.spec import ScenarioSpec
from resources.lake import DataLake
from resources.registry import ModelRegistry


def batch_days(spec: ScenarioSpec) -> dg.DailyPartitionsDefinition:
    """The days the batch inputs exist for (the data spec's range, end inclusive)."""
    end = spec.data.last_day
    end_date = (date.fromisoformat(end) + timedelta(days=1)).isoformat() if end else None
    return dg.DailyPartitionsDefinition(start_date=spec.data.first_day, end_date=end_date)


def predictions_path(scenario: str, day: str) -> str:
    return f"predictions/{scenario}/{day}.parquet"


def build_batch_predictions(
    spec: ScenarioSpec,
) -> tuple[dg.AssetsDefinition, dg.ScheduleDefinition]:
    key = naming.key(spec.name, "batch_predictions")

    @dg.asset(
        key=key,
        deps=[
            naming.key(spec.name, spec.data.batch_input_artifact),
            naming.key(spec.name, "promoted_model"),
        ],
        group_name=naming.DEPLOYMENT,
        partitions_def=batch_days(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"pandas", "parquet", "mlflow"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
    )
    def batch_predictions(
        context: dg.AssetExecutionContext, lake: DataLake, registry: ModelRegistry
    ) -> dg.MaterializeResult:
        """Predictions of the prod champion for every record of a day (daily partitions)."""
        champion = registry.version_by_alias(spec.model_name, naming.CHAMPION_ALIAS, "prod")
        if champion is None:
            raise dg.Failure(f"no '{naming.CHAMPION_ALIAS}' in the prod registry to score with")
        model = spec.model.load(
            registry.download_model(spec.model_name, str(champion.version), "prod")
        )
        rows, started = 0, time.monotonic()
        for day in context.partition_keys:
            frame = spec.data.batch_items(lake, day)
            out = spec.model.batch_predict(model, frame)
            out["model_version"] = str(champion.version)
            lake.write_parquet(predictions_path(spec.name, day), out)
            rows += len(out)
        elapsed = time.monotonic() - started
        context.log.info(
            f"scored {rows} rows over {len(context.partition_keys)} day(s) in {elapsed:.1f}s"
        )
        return dg.MaterializeResult(
            metadata={
                "row_count": rows,
                "partitions": len(context.partition_keys),
                "model_version": int(champion.version),
                "rows_per_second": rows / elapsed if elapsed else 0.0,
                "path": dg.MetadataValue.path(
                    lake.uri(predictions_path(spec.name, context.partition_keys[0]))
                ),
            }
        )

    job = dg.define_asset_job(
        f"{spec.name}_batch_scoring_job",
        selection=dg.AssetSelection.assets(key),
        tags=naming.scenario_tags(spec.name),
    )
    schedule = dg.build_schedule_from_partitioned_job(
        job, name=f"{spec.name}_batch_scoring_schedule", hour_of_day=3
    )
    return batch_predictions, schedule
