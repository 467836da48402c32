"""Benchmark: the Dagster instance on PostgreSQL vs on SQLite, both measured in the same run.

Run: `.venv/bin/python bench/postgres_bench.py [--runs N]` (not part of the tests; about
5 minutes on 2 cores). PostgreSQL is a throwaway local cluster (resources/postgres_local.py)
with fsync on, as deployed; SQLite lives in a throwaway DAGSTER_HOME. Both instances take
their storage from the shipped deploy/dagster.yaml and deploy/dagster-postgres.yaml, with
the same run concurrency (4). Writes the printed report to bench/results/postgres_bench.txt.

1. Runs of a one-asset job executed in this process, one after another: runs/s (a run is
   about 15 event writes and a dozen reads: storage-bound, the work itself is nothing).
2. The same from two processes at once (two concurrent runs, as dagster.yaml allows).
3. Runless asset materializations reported one by one: event writes/s.
4. Each product sensor (build_defs("local")) evaluated against each instance, after 1-3
   left their history there: median of 5 ticks.
0. Opening a PostgreSQL connection, which dagster-postgres does for every query.
5. The daemon: a sensor asks for --launch runs in one tick. That tick's time (creating and
   queueing them) as the daemon recorded it, a later tick (the same run keys, deduplicated),
   and the time until the queue has launched and finished them all (DefaultRunLauncher).

Ratios are PostgreSQL time / SQLite time (above 1: PostgreSQL is slower). Nothing asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "postgres_bench.txt"
DEFS = """
import os
import dagster as dg

@dg.asset
def beat() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"beats": 1})

@dg.sensor(target=[beat], minimum_interval_seconds=1,
           default_status=dg.DefaultSensorStatus.RUNNING)
def burst(context):
    n = int(os.environ["BENCH_LAUNCH"])
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"r{i}") for i in range(n)])

job = dg.define_asset_job("beat_job", [beat])
defs = dg.Definitions(assets=[beat], sensors=[burst], jobs=[job])
"""
lines: list[str] = []


def report(text: str = "") -> None:
    print(text, flush=True)
    lines.append(text)


def make_home(folder: Path, shipped: str) -> Path:
    config = yaml.safe_load((ROOT / "deploy" / shipped).read_text())
    config["concurrency"] = {"runs": {"max_concurrent_runs": 4}}
    if "custom" in config["storage"]:  # the batching SQLite storage finds its folder this way
        config["storage"]["custom"]["config"] = {"base_dir": str(folder / "storage")}
    folder.mkdir(parents=True)
    (folder / "dagster.yaml").write_text(yaml.safe_dump(config))
    (folder / "defs.py").write_text(DEFS)
    return folder


def _job(home: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_defs", home / "defs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.defs.resolve_job_def("beat_job")


def execute_runs(home: str, count: int) -> float:
    """`count` runs in process on the instance in `home`; seconds taken (also a pool worker)."""
    import dagster as dg

    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    job = _job(Path(home))
    with dg.DagsterInstance.from_config(home) as instance:
        started = time.perf_counter()
        for _ in range(count):
            assert job.execute_in_process(instance=instance, run_config=quiet).success
        return time.perf_counter() - started


def report_events(home: Path, count: int) -> float:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        started = time.perf_counter()
        for i in range(count):
            instance.report_runless_asset_event(dg.AssetMaterialization("beat", metadata={"i": i}))
        return time.perf_counter() - started


def sensor_ticks(home: Path) -> dict[str, float]:
    import dagster as dg

    from bench.sensor_ticks import tick_seconds
    from mlops_assets.definitions import build_defs

    defs, ticks = build_defs("local"), {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for sensor in defs.sensors:
            if isinstance(sensor, dg.AutomationConditionSensorDefinition):
                continue  # evaluated by the asset daemon, not as a sensor tick
            times = tick_seconds(sensor, instance, defs, repeats=6)
            ticks[sensor.name] = statistics.median(times[1:])  # the first pays lazy imports
    return ticks


def _burst_state(instance, count: int) -> tuple[list, list] | None:
    """(finished runs, finished ticks) once all `count` runs and two ticks are done."""
    import dagster as dg

    runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": "burst"}))
    done = [r for r in runs if r.dagster_run.is_finished]
    states = [s for s in instance.all_instigator_state() if s.name == "burst"]
    if not states or len(done) < count:
        return None
    ticks = instance.get_ticks(states[0].instigator_origin_id, states[0].selector_id)
    ticks = sorted((t for t in ticks if t.end_timestamp), key=lambda t: t.timestamp)
    return (done, ticks) if len(ticks) >= 2 else None


def daemon_burst(home: Path, count: int) -> tuple[float, float, float]:
    """(first tick s, a later tick s, first created .. last finished s) for `count` runs."""
    import dagster as dg

    env = {**os.environ, "DAGSTER_HOME": str(home), "BENCH_LAUNCH": str(count),
           "PYTHONWARNINGS": "ignore"}  # fmt: skip
    with dg.DagsterInstance.from_config(str(home)):
        pass  # the schema exists before the daemon's threads race to create it
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-f", str(home / "defs.py")],
        cwd=home, env=env, stdout=(home / "daemon.log").open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + 600
            while not (state := _burst_state(instance, count)):
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise RuntimeError((home / "daemon.log").read_text()[-3000:])
                time.sleep(1)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
    done, ticks = state
    first, later = (t.end_timestamp - t.timestamp for t in (ticks[0], ticks[-1]))
    created = min(r.create_timestamp.timestamp() for r in done)
    return first, later, max(r.end_time for r in done) - created


def connect_ms(cluster, count: int = 30) -> float:
    """Median time to open a connection (TCP + scram-sha-256) and run one query."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        cluster.query("dagster", "SELECT 1")
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def row(name: str, values: dict[str, float], unit: str) -> None:
    """One measurement; rates (unit ending in /s) are turned into a time ratio."""
    sqlite, pg = values["sqlite"], values["pg"]
    ratio = sqlite / pg if unit.endswith("/s") else pg / sqlite
    digits = 1 if unit.endswith("/s") else 3
    report(f"   {name:<44} {sqlite:9.{digits}f} {pg:9.{digits}f} {unit:<9} "
           f"PG/SQLite time {ratio:5.2f}x")  # fmt: skip


def run_all(args: argparse.Namespace, cluster, homes: dict[str, Path]) -> None:
    version = cluster.query("postgres", "SHOW server_version")[0][0]
    report(f"Dagster instance: SQLite vs PostgreSQL {version} (fsync on)")
    report(f"0. a new PostgreSQL connection (dagster-postgres opens one per query: "
           f"NullPool): {connect_ms(cluster):.1f} ms")  # fmt: skip
    report(f"   {'':<44} {'SQLite':>9} {'Postgres':>9}")
    runs = {k: args.runs / execute_runs(str(h), args.runs) for k, h in homes.items()}
    row(f"1. in-process runs, 1 process ({args.runs})", runs, "runs/s")
    half, parallel = args.runs // 2, {}
    with ProcessPoolExecutor(2) as pool:
        for key, home in homes.items():
            started = time.perf_counter()
            list(pool.map(execute_runs, [str(home)] * 2, [half] * 2))
            parallel[key] = 2 * half / (time.perf_counter() - started)
    row("2. in-process runs, 2 processes at once", parallel, "runs/s")
    events = {k: args.events / report_events(h, args.events) for k, h in homes.items()}
    row(f"3. runless materializations ({args.events})", events, "events/s")
    ticks = {k: sensor_ticks(h) for k, h in homes.items()}
    report("4. product sensor ticks on that history (median of 5)")
    for name in ticks["sqlite"]:
        row(f"   {name}", {k: t[name] for k, t in ticks.items()}, "s")
    burst = {k: daemon_burst(h, args.launch) for k, h in homes.items()}
    report(f"5. daemon: one tick requests {args.launch} runs")
    whats = ("tick creating + queueing them", "later tick (keys deduplicated)",
             "first created .. last finished")  # fmt: skip
    for i, what in enumerate(whats):
        row(f"   {what}", {k: b[i] for k, b in burst.items()}, "s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="in-process runs per backend")
    parser.add_argument("--events", type=int, default=500, help="event writes per backend")
    parser.add_argument("--launch", type=int, default=12, help="runs the daemon launches")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from resources.postgres_local import throwaway

    tmp = Path(tempfile.mkdtemp(prefix="pg-bench-"))
    os.environ.update(MLOPS_HOME=str(tmp / "mlops"), OMP_NUM_THREADS="1")
    try:
        with throwaway(databases=("dagster",), durable=True) as cluster:
            os.environ.update(cluster.env())
            homes = {"sqlite": make_home(tmp / "sqlite", "dagster.yaml"),
                     "pg": make_home(tmp / "pg", "dagster-postgres.yaml")}  # fmt: skip
            for home in homes.values():
                execute_runs(str(home), 1)  # schema, imports and first connections: not timed
            run_all(args, cluster, homes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
