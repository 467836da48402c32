"""Benchmark: the `batch_predictions` asset vs the raw floor on the same ~1M rows.

Run: `.venv/bin/python bench/batch_bench.py` (not part of the tests).

Setup (not timed), two layouts of about 1M rows each in a temporary lake, and a
champion trained on January and promoted to the prod registry:
- "10 big days": 10 daily partitions, each a day's flights repeated to ~101k rows;
- "365 real days": every 2013 day's validated flights, tripled (~2.8k rows a day),
  which adds Dagster's per-partition bookkeeping (one materialization event each).

Timed, same process, same files:
- asset: `classical_batch_scoring_job` over the whole year as one single-run
  backfill through Dagster (instance, events, registry lookups included);
- floor: a plain loop that reads each parquet file, builds the features, calls
  `model.predict_proba` and writes the parquet output - no Dagster, no registry.
Prints rows/s of each and floor_time / asset_time (target >= 0.8).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg  # noqa: E402
import pandas as pd  # noqa: E402

from mlops_assets.definitions import build_defs  # noqa: E402
from mlops_assets.deployment.batch_predictions import predictions_path  # noqa: E402
from mlops_assets.scenarios.classical import SPEC, data_assets, model  # noqa: E402
from mlops_assets.scenarios.classical.features import FEATURES, LABEL, build_features  # noqa: E402
from mlops_assets.scenarios.classical.schema import canonical  # noqa: E402
from mlops_assets.scenarios.classical.source import _flights_by_day  # noqa: E402
from resources.env import local_resources  # noqa: E402

TOTAL_ROWS = 1_000_000


def write_days(res: dict, n_days: int) -> list[str]:
    days = sorted(_flights_by_day())[:n_days] if n_days < 365 else sorted(_flights_by_day())
    per_day = TOTAL_ROWS // len(days)
    for day in days:
        frame = canonical(_flights_by_day()[day])
        repeat = -(-per_day // len(frame))
        res["lake"].write_parquet(data_assets.validated_path(day), pd.concat([frame] * repeat))
    return days


def setup(home: Path) -> dict:
    res = local_resources(home)
    registry = res["registry"]
    days = sorted(_flights_by_day())
    january = build_features(pd.concat([_flights_by_day()[d] for d in days[:31]]))
    fitted = model.build_pipeline({}).fit(january[FEATURES], january[LABEL])
    import mlflow.sklearn

    exp = registry.ensure_experiment("bench")
    client = registry.client("dev")
    run = client.create_run(exp)
    path = home / "model"
    mlflow.sklearn.save_model(
        fitted, path, skops_trusted_types=model.SKOPS_TRUSTED_TYPES,
        pip_requirements=model.pip_requirements(),
    )  # fmt: skip
    client.log_artifacts(run.info.run_id, str(path), "model")
    registry.register(SPEC.model_name, f"{run.info.artifact_uri}/model", run.info.run_id, {})
    registry.promote(SPEC.model_name, "1", tags={})
    return res


def floor(res: dict, days: list[str]) -> tuple[int, float]:
    lake, registry = res["lake"], res["registry"]
    fitted = SPEC.model.load(registry.download_model(SPEC.model_name, "1", "prod"))
    started, rows = time.perf_counter(), 0
    for day in days:
        out = SPEC.model.batch_predict(fitted, SPEC.data.batch_items(lake, day))
        lake.write_parquet(f"floor/{day}.parquet", out)
        rows += len(out)
    return rows, time.perf_counter() - started


def asset(res: dict, days: list[str]) -> tuple[int, float]:
    defs = build_defs("local", resources=res)
    job = defs.resolve_job_def("classical_batch_scoring_job")
    tags = {
        "dagster/asset_partition_range_start": days[0],
        "dagster/asset_partition_range_end": days[-1],
    }
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        result = job.execute_in_process(instance=instance, tags=tags, run_config=quiet)
        elapsed = time.perf_counter() - started
    assert result.success
    rows = sum(len(res["lake"].read_parquet(predictions_path("classical", d))) for d in days)
    return rows, elapsed


def main() -> None:
    lines = []
    for label, n_days in (("10 big days", 10), ("365 real days", 365)):
        with tempfile.TemporaryDirectory() as tmp:
            res = setup(Path(tmp))
            days = write_days(res, n_days)
            floor(res, days[:2])  # warm caches and imports for both
            floor_rows, floor_s = floor(res, days)
            asset_rows, asset_s = asset(res, days)
        assert floor_rows == asset_rows
        lines += [
            f"[{label}] rows scored: {asset_rows:,} over {len(days)} daily partitions",
            f"  floor (read + features + predict_proba + write, no Dagster): {floor_s:.2f}s "
            f"= {floor_rows / floor_s:,.0f} rows/s",
            f"  batch_predictions asset (one single-run backfill): {asset_s:.2f}s "
            f"= {asset_rows / asset_s:,.0f} rows/s",
            f"  asset throughput / floor throughput = {floor_s / asset_s:.2f} (target >= 0.8)",
        ]
    print("\n".join(lines))
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "batch_bench.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
