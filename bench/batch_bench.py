"""Benchmark: the `batch_predictions` asset vs honest floors on the same files and model.

Run: `.venv/bin/python bench/batch_bench.py` (not part of the tests).

Setup (not timed), two layouts in temporary lakes, validated days written with
their integrity records, and a champion trained on January in the prod registry:
- "10 big days": 10 daily partitions, each a day's flights repeated to ~100k rows (~1.0M);
- "365 days": every 2013 day, each repeated to at least 2,740 rows (~1.1M rows in all).

Timed, each layout in a fresh interpreter (so no worker pool or forkserver is
warm from an earlier case), input files read once beforehand (warm page cache):
- floor, one process: `bench/batch_floor.py`, a loop that reads each day's parquet,
  builds the features, predicts and writes the parquet output;
- floor, one process per core: the same loop in spawned processes, one per core,
  each loading the model, a contiguous share of the days each (start included);
- asset: `classical_batch_scoring_job` over the range as one single-run backfill,
  default config (all cores), on an instance configured as deploy/dagster.yaml: run
  creation, registry lookups, model download, worker start, scoring and Dagster's records;
  then the same run again on Dagster's own SQLite storage, for comparison.
Dagster's per-partition bookkeeping is the time its event log spends writing the run's
ASSET_MATERIALIZATION_PLANNED events (at run creation) and ASSET_MATERIALIZATION events
(after the step returns), one per day each, timed around the storage's write calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Heavy imports live in the functions: the per-core floor's spawned processes (and
# the batch pool's forkserver) import this module as their `__main__`.

TOTAL_ROWS = 1_000_000  # per day: TOTAL_ROWS / days, rounded up to whole copies of the day
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def setup(home: Path, n_days: int) -> list[str]:
    """Write the layout's validated days and register + promote a champion."""
    import mlflow.sklearn
    import pandas as pd

    from mlops_assets.scenarios.classical import SPEC, model
    from mlops_assets.scenarios.classical.features import FEATURES, LABEL, build_features
    from mlops_assets.scenarios.classical.schema import canonical
    from mlops_assets.scenarios.classical.source import _flights_by_day
    from mlops_assets.scenarios.classical.validated_store import write_validated
    from resources.env import local_resources

    res = local_resources(home)
    all_days = sorted(_flights_by_day())
    days = all_days[:n_days]
    for day in days:
        frame = canonical(_flights_by_day()[day])
        write_validated(
            res["lake"], day, pd.concat([frame] * -(-(TOTAL_ROWS // len(days)) // len(frame)))
        )
    january = build_features(pd.concat([_flights_by_day()[d] for d in all_days[:31]]))
    fitted = model.build_pipeline({}).fit(january[FEATURES], january[LABEL])
    registry = res["registry"]
    client = registry.client("dev")
    run = client.create_run(registry.ensure_experiment("bench"))
    mlflow.sklearn.save_model(
        fitted, home / "model", skops_trusted_types=model.SKOPS_TRUSTED_TYPES,
        pip_requirements=model.pip_requirements(),
    )  # fmt: skip
    client.log_artifacts(run.info.run_id, str(home / "model"), "model")
    registry.register(SPEC.model_name, f"{run.info.artifact_uri}/model", run.info.run_id, {})
    registry.promote(SPEC.model_name, "1", tags={})
    return days


STORAGES = {
    # deploy/dagster.yaml: Dagster's SQLite storage writing per-partition records in batches
    "batching": (Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml").read_text(),
    "dagster's sqlite": "telemetry:\n  enabled: false\n",
}


def timed_records(instance) -> list[float]:
    """Seconds the event log spends writing asset events (planned + materialized), summed
    over every call: the per-partition bookkeeping of a single-run backfill."""
    from resources.instance_storage import BATCHED

    storage, spent, depth = instance.event_log_storage, [0.0], [0]

    def timing(method):
        def wrapper(events_or_event):
            events = events_or_event if isinstance(events_or_event, list) else [events_or_event]
            depth[0] += 1  # Dagster's own batch write calls store_event: count the outer call
            started = time.perf_counter()
            try:
                method(events_or_event)
            finally:
                depth[0] -= 1
            if depth[0] == 0 and all(e.dagster_event_type in BATCHED for e in events):
                spent[0] += time.perf_counter() - started

        return wrapper

    storage.store_event = timing(storage.store_event)
    storage.store_event_batch = timing(storage.store_event_batch)
    return spent


def asset(home: Path, days: list[str], storage: str) -> dict:
    import dagster as dg

    from mlops_assets.definitions import build_defs
    from resources.env import local_resources

    res = local_resources(home)
    job = build_defs("local", resources=res).resolve_job_def("classical_batch_scoring_job")
    tags = {
        "dagster/asset_partition_range_start": days[0],
        "dagster/asset_partition_range_end": days[-1],
    }
    dagster_home = home / f"dagster-{storage.split()[0]}"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(STORAGES[storage])
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = timed_records(instance)
        started = time.perf_counter()
        result = job.execute_in_process(instance=instance, tags=tags, run_config=QUIET)
        wall = time.perf_counter() - started
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    return {
        "rows": int(meta["run_row_count"].value),
        "seconds": wall,
        "scoring_seconds": float(meta["scoring_seconds"].value),
        "workers": int(meta["workers"].value),
        "mini_batches": int(meta["mini_batches"].value),
        "records": records[0],
    }


def case(home: Path, n_days: int) -> dict:
    import pandas as pd

    from bench import batch_floor
    from mlops_assets.deployment.batch_predictions import predictions_path
    from mlops_assets.scenarios.classical.validated_store import validated_path

    lake_root = home / "lake"
    days = sorted(p.stem for p in (lake_root / "validated/classical/flights").glob("*.parquet"))
    for day in days:  # warm the page cache for every contender alike
        (lake_root / validated_path(day)).read_bytes()
    model_dir = str(home / "model")
    jobs = {
        name: [
            (str(lake_root / validated_path(d)), str(home / name / f"{d}.parquet")) for d in days
        ]
        for name in ("floor1", "floor_n")
    }
    for name in jobs:
        (home / name).mkdir(exist_ok=True)
    single = batch_floor.single_process(model_dir, jobs["floor1"], "1")
    per_core = batch_floor.per_core(model_dir, jobs["floor_n"], "1")
    ours = asset(home, days, "batching")
    plain = asset(home, days, "dagster's sqlite")  # the same run on Dagster's own storage
    for day in (days[0], days[-1]):  # same predictions as the floor
        floor_out = pd.read_parquet(home / "floor1" / f"{day}.parquet")
        asset_out = pd.read_parquet(lake_root / predictions_path("classical", day))
        pd.testing.assert_frame_equal(floor_out, asset_out, check_dtype=False)
    return {
        "days": len(days),
        "single": single,
        "per_core": per_core,
        "asset": ours,
        "plain": plain,
    }


def report(label: str, r: dict) -> list[str]:
    a, (rows1, s1), (rows_n, sn) = r["asset"], r["single"], r["per_core"]
    assert rows1 == rows_n == a["rows"]
    plain, days = r["plain"], r["days"]
    book, cores, wall = a["records"], os.cpu_count(), a["seconds"]
    return [
        f"[{label}] {a['rows']:,} rows over {r['days']} daily partitions, {cores} cores",
        f"  floor, 1 process: {s1:.2f}s = {rows1 / s1:,.0f} rows/s",
        f"  floor, {cores} processes (start included): {sn:.2f}s = {rows_n / sn:,.0f} rows/s",
        f"  asset (single-run backfill, {a['workers']} workers, {a['mini_batches']} mini-batches): "
        f"{wall:.2f}s = {a['rows'] / wall:,.0f} rows/s; pool {a['scoring_seconds']:.2f}s",
        f"  Dagster per-partition records ({days} planned + {days} materialized), written in "
        f"batches: {book:.2f}s, {book / wall:.1%} of the run (goal < 10%; "
        f"{book / days * 1000:.1f} ms per partition)",
        f"  the same run again (warm) on Dagster's own SQLite storage: {plain['seconds']:.2f}s, "
        f"records {plain['records']:.2f}s ({plain['records'] / days * 1000:.1f} ms per partition)",
        f"  asset / 1-process floor = {s1 / wall:.2f}; asset / per-core floor = {sn / wall:.2f} "
        f"(goal >= {0.8 if r['days'] <= 10 else 0.6} of the per-core floor)",
    ]


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--case":
        print(json.dumps(case(Path(sys.argv[2]), int(sys.argv[3]))))
        return
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, n_days in (("10 big days", 10), ("365 days", 365)):
            home = Path(tmp) / f"d{n_days}"
            setup(home, n_days)
            out = subprocess.run(
                [sys.executable, __file__, "--case", str(home), str(n_days)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            lines += report(label, json.loads(out.stdout.strip().splitlines()[-1]))
    lines.append(f"load: {Path('/proc/loadavg').read_text().strip()}")
    print("\n".join(lines))
    out_dir = Path(__file__).with_name("results")
    out_dir.mkdir(exist_ok=True)
    (out_dir / "batch_bench.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
