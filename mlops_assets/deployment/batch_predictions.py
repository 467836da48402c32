"""Generic batch endpoint: daily partitions scored with the prod champion.

A partition range runs as one Dagster run (single-run backfill) whose step hands
the range to the `batch` resource (`resources/batch_scoring.py`): locally the batch
pool (`mlops_core/batch_pool.py`, mini-batches of days scored by worker processes,
each loading the champion once), on Azure the scenario's Azure ML batch endpoint
(`<scenario>-batch`), which scores the same way on a compute cluster. Every day's output
(`predictions/<scenario>/<day>/<output_file_name>`) is replaced atomically, so a
backfill never writes a day twice, re-running it is idempotent, and a failed run
leaves no half-written day. The config fields are Azure ML's batch deployment
settings (`mlops_core/batch_azure.py` builds the deployment from them).

Dagster records one materialization per day of the range (it expands the one
`MaterializeResult`); each day's record carries its own row count and path.
"""

from datetime import date, timedelta

import dagster as dg
from pydantic import Field

from mlops_assets import naming
from mlops_assets.partitions import partition_days
from mlops_core.batch import BatchJob, BatchSettings, MiniBatchFailed, model_modules
from mlops_core.lake_fs import FsLake
from mlops_core.spec import ScenarioSpec
from resources.batch_scoring import BatchScoring, BatchScoringError
from resources.lake import DataLake
from resources.registry import ModelRegistry

OUTPUT_FILE_NAME = BatchSettings.output_file_name


class BatchScoringConfig(dg.Config):
    """Azure ML batch deployment settings, same names; see `BatchSettings`."""

    mini_batch_size: int = Field(
        default=10, description="Most days (input files) per mini-batch; 10 is Azure's default."
    )
    max_concurrency_per_instance: int = Field(
        default=0, description="Worker processes; 0 means one per core."
    )
    max_retries: int = Field(default=3, description="Retries of a failed mini-batch.")
    retry_timeout: int = Field(default=300, description="Seconds before a mini-batch is retried.")
    output_file_name: str = Field(
        default=OUTPUT_FILE_NAME, description="Output file in each day's folder."
    )

    def settings(self) -> BatchSettings:
        return BatchSettings(
            mini_batch_size=self.mini_batch_size,
            max_concurrency_per_instance=self.max_concurrency_per_instance,
            max_retries=self.max_retries,
            retry_timeout=self.retry_timeout,
            output_file_name=self.output_file_name,
        )


def batch_days(spec: ScenarioSpec) -> dg.DailyPartitionsDefinition:
    """The days the batch inputs exist for (the data spec's range, end inclusive)."""
    end = spec.data.last_day
    end_date = (date.fromisoformat(end) + timedelta(days=1)).isoformat() if end else None
    return dg.DailyPartitionsDefinition(start_date=spec.data.first_day, end_date=end_date)


def batch_endpoint_name(scenario: str) -> str:
    """The scenario's batch endpoint (Azure ML endpoint names: letters, digits, hyphens)."""
    return f"{scenario}-batch"


def predictions_path(scenario: str, day: str, file_name: str = OUTPUT_FILE_NAME) -> str:
    return f"predictions/{scenario}/{day}/{file_name}"


def fs_lake(lake: DataLake) -> FsLake:
    """The lake as worker processes address it: its root URI and storage options.

    Both lakes' `uri(path)` is the root URI joined with the path."""
    return FsLake(root=lake.uri("_")[:-1], storage_options=lake.storage_options())


def batch_job(
    spec: ScenarioSpec, lake: DataLake, model_dir: str, version: str, token: str, file_name: str
) -> BatchJob:
    """What the workers run: the spec's callables by reference, the lake by URI."""
    return BatchJob(
        load=spec.model.load,
        batch_items=spec.data.batch_items,
        batch_predict=spec.model.batch_predict,
        model_dir=model_dir,
        lake=fs_lake(lake),
        output=predictions_path(spec.name, "{partition}", file_name),
        constants={"model_version": version},
        run_token=token,
        preload=model_modules(model_dir),
    )


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
        context: dg.AssetExecutionContext,
        config: BatchScoringConfig,
        lake: DataLake,
        registry: ModelRegistry,
        batch: BatchScoring,
    ) -> dg.MaterializeResult:
        """Predictions of the prod champion for every record of a day (daily partitions)."""
        settings = config.settings()
        champion = registry.version_by_alias(spec.model_name, naming.CHAMPION_ALIAS, "prod")
        if champion is None:
            raise dg.Failure(f"no '{naming.CHAMPION_ALIAS}' in the prod registry to score with")
        version = str(champion.version)
        model_dir = registry.download_model(spec.model_name, version, "prod")
        token = context.run.run_id[:8]
        job = batch_job(spec, lake, model_dir, version, token, settings.output_file_name)
        days = partition_days(context)
        try:
            report = batch.score(
                batch_endpoint_name(spec.name), job, days, settings,
                model_name=spec.model_name, model_version=version, log=context.log.warning,
            )  # fmt: skip
        except MiniBatchFailed as err:
            raise dg.Failure(
                description=str(err),
                metadata={"partition": err.partition or "", "attempts": err.attempts},
            ) from err
        except BatchScoringError as err:
            raise dg.Failure(description=str(err)) from err
        rows = sum(report.rows.values())
        context.log.info(
            f"scored {rows} rows over {len(days)} day(s) in {report.seconds:.1f}s: "
            f"{report.mini_batches} mini-batch(es) on {report.workers} worker(s), "
            f"{report.retries} retried"
        )
        for day, count in report.rows.items():
            path = job.output_path(day)
            context.add_asset_metadata(
                {"row_count": count, "path": dg.MetadataValue.path(lake.uri(path))},
                partition_key=day,
            )
        return dg.MaterializeResult(
            metadata={
                "model_version": int(version),
                "partitions": len(days),
                "run_row_count": rows,
                "scoring_seconds": report.seconds,
                "rows_per_second": rows / report.seconds if report.seconds else 0.0,
                "workers": report.workers,
                "mini_batches": report.mini_batches,
                "retries": report.retries,
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
